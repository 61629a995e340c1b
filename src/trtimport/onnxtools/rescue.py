"""Make an ONNX graph that TensorRT refused buildable, as an expert would, and say how.

When TensorRT's ONNX parser or builder refuses a graph, or the user pins an input's value with
``--input-values``, the ONNX model is rewritten:

1. ONNX Runtime's contrib and fused ops become standard ONNX
   (:mod:`trtimport.onnxtools.passes.contrib`);
2. inputs whose values are pinned become constants, and inputs whose shapes are fixed get those
   shapes in the graph;
3. constants are folded and shapes inferred, repeatedly, with onnx-graphsurgeon (evaluating on
   ONNX Runtime, as Polygraphy's ``surgeon sanitize --fold-constants`` does), which also
   flattens ``If`` nodes whose condition became constant.

The rewritten model must give the original's outputs on ONNX Runtime (within 1e-5) before it is
used. What TensorRT still cannot take is listed node by node (TensorRT's
``supports_model_v2``, as Polygraphy's ``inspect capability``). ``--no-rewrite`` turns all of
this off; the sidecar records each rewrite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtimport.core.options import Shape
from trtimport.errors import MissingDependencyError, ModelParseError, UsageError

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from trtimport.core.importer import ImportContext

#: A rewrite is used only if every output stays within ATOL + RTOL * |original|.
ATOL = 1e-5
RTOL = 1e-5
#: Fold-and-infer passes at most (each ``If`` flattened can expose more constants).
_MAX_PASSES = 6


@dataclass(frozen=True)
class Rewrite:
    """One change made to the ONNX graph, recorded in the sidecar."""

    step: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        """JSON-friendly form."""
        return {"step": self.step, "detail": self.detail}


class RewriteNotVerified(Exception):
    """The rewritten model could not be shown equal to the original (internal signal)."""


def _pin(
    model: onnx.ModelProto,
    shapes: dict[str, Shape],
    values: dict[str, Shape],
    pinned: dict[str, np.ndarray],
) -> list[Rewrite]:
    """Pinned values become initializers (also put in ``pinned``); fixed shapes go into the
    graph's inputs."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    done: list[Rewrite] = []
    kept = []
    for vi in graph.input:
        tensor_type = vi.type.tensor_type
        if vi.name in values:
            dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
            array = np.array(values[vi.name], dtype=dtype)
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
            if -1 not in dims and int(np.prod(dims)) == array.size:
                array = array.reshape(dims)
            elif len(dims) != 1:
                raise UsageError(
                    f"--input-values {vi.name}: the input has shape {dims}, which "
                    f"{array.size} value(s) do not fill; give one value per element"
                )
            graph.initializer.append(numpy_helper.from_array(array, vi.name))
            pinned[vi.name] = array
            done.append(Rewrite("pin-value", f"input '{vi.name}' = {array.tolist()}"))
            continue
        kept.append(vi)
        shape = shapes.get(vi.name)
        dims = tensor_type.shape.dim
        if shape is None or len(shape) != len(dims):
            continue
        if any(not d.HasField("dim_value") for d in dims):
            for d, size in zip(dims, shape, strict=True):
                d.Clear()
                d.dim_value = size
            done.append(Rewrite("pin-shape", f"input '{vi.name}' shape {list(shape)}"))
    del graph.input[:]
    graph.input.extend(kept)
    return done


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ONNX Runtime reports every node it cannot optimise while folding: not for users."""
    import onnxruntime

    onnxruntime.set_default_logger_severity(4)
    try:
        yield
    finally:
        onnxruntime.set_default_logger_severity(2)


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def _node_count(model: onnx.ModelProto) -> int:
    return len(model.graph.node)


def _constant_bool(graph: onnx.GraphProto, name: str) -> bool | None:
    from onnx import numpy_helper

    for t in graph.initializer:
        if t.name == name:
            value = numpy_helper.to_array(t)
            return bool(value.reshape(-1)[0]) if value.size == 1 else None
    return None


def inline_constant_ifs(graph: onnx.GraphProto) -> int:
    """Replace each ``If`` whose condition is a constant by the branch it takes; returns count.

    onnx-graphsurgeon 0.6.1 can do this too (``flatten_subgraphs``), but it loses every second
    output of an ``If`` with several (it edits the list it walks), so it is done here.
    """
    from onnx import helper

    from trtimport.onnxtools.graph import rename_outer, unique_namer

    fresh = unique_namer(graph)
    nodes: list[onnx.NodeProto] = []
    count = 0
    for node in graph.node:
        cond = _constant_bool(graph, node.input[0]) if node.op_type == "If" else None
        if cond is None:
            nodes.append(node)
            continue
        branch = next(
            a.g for a in node.attribute if a.name == ("then_branch" if cond else "else_branch")
        )
        local = {t.name for t in branch.initializer} | {o for n in branch.node for o in n.output}
        names = {name: fresh(f"{node.name or 'If'}/{name}") for name in sorted(local)}
        for t in branch.initializer:
            t.name = names[t.name]
            graph.initializer.append(t)
        for inner in branch.node:
            inner.input[:] = [names.get(i, i) for i in inner.input]
            inner.output[:] = [names[o] for o in inner.output]
            if inner.name:
                inner.name = fresh(f"{node.name or 'If'}/{inner.name}")
            for attr in inner.attribute:
                for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                    rename_outer(sub, names)
            nodes.append(inner)
        for out, branch_out in zip(node.output, branch.output, strict=True):
            nodes.append(
                helper.make_node(
                    "Identity",
                    [names.get(branch_out.name, branch_out.name)],
                    [out],
                    name=fresh(f"{node.name or 'If'}/output"),
                )
            )
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    return count


def fold_constants(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Fold constants and infer shapes until nothing changes (onnx-graphsurgeon + ONNX Runtime).

    Returns the model and how many ``If`` nodes with a constant condition were inlined.
    """
    import onnx

    try:
        import onnx_graphsurgeon as gs
        from onnx_graphsurgeon.logger import G_LOGGER
    except ImportError as err:
        raise MissingDependencyError(
            "Folding constants of a refused ONNX graph", "runtime", module="onnx_graphsurgeon"
        ) from err
    G_LOGGER.severity = G_LOGGER.ERROR
    current = model
    inlined = 0
    with _quiet():
        for _ in range(_MAX_PASSES):
            graph = gs.import_onnx(current)
            graph.fold_constants(flatten_subgraphs=False).cleanup().toposort()
            folded = gs.export_onnx(graph)
            now = inline_constant_ifs(folded.graph)
            inlined += now
            with contextlib.suppress(Exception):  # inference is a help for the next pass only
                folded = onnx.shape_inference.infer_shapes(folded)
            changed = now or _node_count(folded) != _node_count(current)
            current = folded
            if not changed:
                break
    return current, inlined


def _sample_inputs(
    model: onnx.ModelProto, shapes: dict[str, Shape], seed: int = 0
) -> dict[str, np.ndarray]:
    import numpy as np
    from onnx import helper

    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    feed: dict[str, np.ndarray] = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tensor_type = vi.type.tensor_type
        shape = shapes.get(vi.name) or tuple(
            d.dim_value if d.HasField("dim_value") else 1 for d in tensor_type.shape.dim
        )
        dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        if np.issubdtype(dtype, np.floating):
            feed[vi.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feed[vi.name] = np.zeros(shape, dtype)
    return feed


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # failures come back as exceptions, reported once
    options.intra_op_num_threads = 1
    # Run the graphs as written: ONNX Runtime's optimizer would fuse the standard ops back.
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    names = {i.name for i in session.get_inputs()}
    outs = session.run(None, {k: v for k, v in feed.items() if k in names})
    return {o.name: out for o, out in zip(session.get_outputs(), outs, strict=True)}


def verify_rewrite(
    original: onnx.ModelProto,
    rewritten: onnx.ModelProto,
    shapes: dict[str, Shape],
    pinned: dict[str, np.ndarray],
) -> float:
    """The largest output difference between the two on ONNX Runtime; raises if over tolerance.

    ``pinned`` holds the values of the original's inputs that the rewrite made constants.
    """
    import numpy as np

    feed = {**_sample_inputs(original, shapes), **pinned}
    try:
        with _quiet():
            want = _run(original, feed)
            got = _run(rewritten, feed)
    except Exception as err:  # ONNX Runtime raises its own exception types
        raise RewriteNotVerified(
            f"ONNX Runtime could not run both models to compare them ({_first_line(err)}); "
            "give fixed shapes with --input"
        ) from err
    worst = 0.0
    for name, ref in want.items():
        out = got.get(name)
        if out is None or out.shape != ref.shape:
            raise RewriteNotVerified(
                f"output '{name}' has shape {None if out is None else list(out.shape)} after the "
                f"rewrite, {list(ref.shape)} before"
            )
        if ref.size == 0:
            continue
        ref64, out64 = ref.astype(np.float64), out.astype(np.float64)
        diff = np.abs(out64 - ref64)
        if not np.all(diff <= ATOL + RTOL * np.abs(ref64)):
            raise RewriteNotVerified(
                f"output '{name}' differs by up to {float(diff.max()):.3g} after the rewrite"
            )
        worst = max(worst, float(diff.max()))
    return worst


def rewrite_for_tensorrt(
    source: Path,
    dest: Path,
    *,
    shapes: dict[str, Shape],
    values: dict[str, Shape],
) -> list[Rewrite]:
    """Rewrite ``source`` into ``dest`` (see the module docstring); [] when nothing changed.

    Raises :class:`RewriteNotVerified` when the rewritten model is not the original's equal.
    """

    from trtimport.onnxtools.external_data import load_model
    from trtimport.onnxtools.graph import save_model
    from trtimport.onnxtools.passes.contrib import replace_contrib_ops

    original = load_model(source)  # onnx.load refuses the caffemodel a Caffe model links
    model, replaced, left = replace_contrib_ops(original)
    done = [
        Rewrite("standard-op", f"{count} com.microsoft.{op} as standard ONNX")
        for op, count in sorted(replaced.items())
    ]
    pinned: dict[str, np.ndarray] = {}
    done += _pin(model, shapes, values, pinned)
    before = _node_count(model)
    try:
        model, inlined = fold_constants(model)
    except MissingDependencyError:
        raise
    except Exception as err:  # onnx-graphsurgeon and ONNX Runtime raise many types
        raise RewriteNotVerified(f"constant folding failed ({_first_line(err)})") from err
    if _node_count(model) != before or inlined:
        detail = f"{before} nodes -> {_node_count(model)}"
        if inlined:
            detail += f"; {inlined} If node(s) with a constant condition replaced by their branch"
        done.append(Rewrite("fold-constants", detail))
    if all(r.step == "pin-shape" for r in done):
        return []  # shapes alone, nothing folded: the parser and builder get them anyway
    if left:
        done.append(Rewrite("contrib-op-kept", "; ".join(left)))
    worst = verify_rewrite(original, model, shapes, pinned)
    done.append(Rewrite("verified", f"max difference {worst:.3g} on ONNX Runtime"))
    save_model(model, dest)
    return done


def unsupported_nodes(ctx: ImportContext, path: Path) -> list[str]:
    """The nodes TensorRT's parser says it cannot take, each with its reason.

    TensorRT's ``supports_model_v2`` goes on past the first refused node (a parse stops there);
    its errors name each refused node, as Polygraphy's ``inspect capability`` reports them.
    Empty when the backend cannot tell.
    """
    from trtimport.onnxtools.parse import parser_errors

    network = ctx.builder.create_network(ctx.backend.network_flags)
    parser = ctx.backend.trt.OnnxParser(network, ctx.logger)
    if not hasattr(parser, "supports_model_v2"):
        return []
    try:
        parser.supports_model_v2(path.read_bytes(), str(path))
    except (RuntimeError, TypeError, ValueError):
        return []
    return list(dict.fromkeys(parser_errors(parser)))


def _with_report(err: Exception, tried: str, nodes: list[str]) -> Exception:
    """The original error, with what trtimport tried and what TensorRT cannot take."""
    problems = list(getattr(err, "problems", []))
    extra = [f"trtimport tried: {tried}"]
    more = [n for n in nodes if n not in problems]
    if more:
        shown = "; ".join(more[:40]) + (f"; … ({len(more) - 40} more)" if len(more) > 40 else "")
        extra.append(f"TensorRT's capability check also refuses: {shown}")
    if isinstance(err, ModelParseError):
        message = str(err).split("\n  - ")[0]
        return ModelParseError(message, [*problems, *extra])
    return type(err)(str(err).rstrip() + "\n" + "\n".join(f"  - {e}" for e in extra))


def _branch_hint(path: Path, values: dict[str, Shape]) -> str:
    """For a graph with ``If``: the scalar inputs that may select a branch, to pin."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    if not any(n.op_type in ("If", "Loop") for n in graph.node):
        return ""
    scalars = [
        vi.name
        for vi in graph.input
        if vi.name not in values and len(vi.type.tensor_type.shape.dim) == 0
    ]
    if not scalars:
        return ""
    return (
        "; the graph has If/Loop nodes: if a scalar input selects the branch, pin it with "
        + " ".join(f"--input-values {n}:V" for n in scalars)
    )


def reparse(ctx: ImportContext, path: Path) -> None:
    """Parse ``path`` into a fresh network of ``ctx`` (the refused one is dropped)."""
    from trtimport.onnxtools.parse import parse_onnx_into

    ctx.keepalive.append(ctx.network)
    ctx.network = ctx.builder.create_network(ctx.backend.network_flags)
    ctx.onnx_path = path
    parse_onnx_into(ctx, path)


def rescue(
    ctx: ImportContext,
    err: Exception,
    *,
    shapes: dict[str, Shape],
    values: dict[str, Shape] | None = None,
) -> None:
    """Rewrite the refused ``ctx.onnx_path`` and parse it again, or raise ``err`` with a report.

    ``values`` are inputs pinned to constants (``--input-values`` on a non-shape-tensor input).
    """
    assert ctx.onnx_path is not None
    path = ctx.onnx_path
    values = values or {}
    if not ctx.options.rewrite:
        raise _with_report(err, "nothing (--no-rewrite)", unsupported_nodes(ctx, path))
    import importlib.util

    missing = [m for m in ("onnxruntime", "onnx_graphsurgeon") if not importlib.util.find_spec(m)]
    if missing:
        tried = f"nothing: rewriting needs `pip install trtimport[runtime]` ({', '.join(missing)})"
        raise _with_report(err, tried, unsupported_nodes(ctx, path))
    dest = ctx.workdir / f"{path.stem}.rewritten{len(ctx.rewrites)}.onnx"
    try:
        done = rewrite_for_tensorrt(path, dest, shapes=shapes, values=values)
    except RewriteNotVerified as why:
        tried = f"rewriting the graph, but the rewrite was not used: {why}"
        raise _with_report(err, tried + _branch_hint(path, values), []) from err
    if not done:
        raise _with_report(
            err, "constant folding (nothing to fold)", unsupported_nodes(ctx, path)
        ) from err
    summary = "; ".join(f"{r.step}: {r.detail}" for r in done)
    try:
        reparse(ctx, dest)
    except ModelParseError as again:
        raise _with_report(again, summary, unsupported_nodes(ctx, dest)) from err
    ctx.rewrites.extend(done)
    ctx.note(f"TensorRT refused the graph as it was; rewrote it: {summary}")
    ctx.options = replace(
        ctx.options,
        input_values={k: v for k, v in ctx.options.input_values.items() if k not in values},
    )


def network_input_shapes(network: Any) -> dict[str, Shape]:
    """The network's inputs whose shapes are fully fixed."""
    found = {}
    for i in range(network.num_inputs):
        t = network.get_input(i)
        with contextlib.suppress(RuntimeError, ValueError):
            shape = tuple(int(d) for d in t.shape)
            if all(d >= 0 for d in shape):
                found[t.name] = shape
    return found
