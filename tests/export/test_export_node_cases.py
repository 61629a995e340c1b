"""Round trip of ONNX's backend node cases: ONNX -> TensorRT network -> exported ONNX -> ORT.

Every case trtimport imports is exported and run with onnxruntime next to the source model, on
the case's own inputs. Only cases whose network TensorRT can also build count; the builds run
in two worker processes while the round trips run, and are remembered in pytest's cache.
Every category is printed, listed and asserted.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from onnx_node_cases import NodeCase, node_cases

ort = pytest.importorskip("onnxruntime")

#: Measured with tensorrt_rtx 1.7.1, onnx 1.23.2, onnxruntime 1.32: of 1,884 cases trtimport
#: imports 1,013 and TensorRT builds 837; the exported network of 756 of those matches
#: onnxruntime on the source model (max relative error <= 1e-5), loops, attention, rotary
#: embeddings and KV-cache updates included.
MIN_MATCHED = 756
#: ... and 2 more (Bernoulli's random fills) export with shapes, types and sample range checked.
MIN_RANDOM = 2

#: Building cases whose TensorRT network itself computes something else than the ONNX model
#: (the exporter reproduces TensorRT's network; these differences come from TensorRT's parser).
TENSORRT_DIFFERS = {
    # The parser builds the same lower-triangle network for Trilu(upper=1) as for Trilu(upper=0).
    **{
        f"test_triu{suffix}": "parser ignores upper=1"
        for suffix in (
            "",
            "_neg",
            "_one_row",
            "_out_neg_out",
            "_out_pos",
            "_pos",
            "_square",
            "_square_neg",
        )
    },
    "test_selu_default": "parser uses alpha=1.6732, gamma=1.0507 instead of ONNX's defaults",
    "test_spacetodepth_crd_mode_example": "parser ignores mode=CRD (builds DCR)",
    "test_causal_conv_with_state_silu_fp16_expanded": "float16 network: rounding differs",
}

#: Building cases whose network reads an input through something the Python API does not show:
#: the parser keeps Attention's nonpad_kv_seqlen as a network input that no layer reads, and
#: IAttention.key_value_lengths is None, so the export attends over every key.
HIDDEN_IN_NETWORK = {
    "test_attention_4d_gqa_causal_nonpad_decode": "key/value lengths not visible",
    "test_attention_4d_gqa_causal_nonpad_decode_fp16": "key/value lengths not visible",
}

#: Exported models onnxruntime cannot run (kernels it lacks, limits it enforces).
ORT_CANNOT_RUN_EXPORTED = {
    "test_maxpool_2d_ceil_output_size_reduce_by_one": "TensorRT keeps the window ONNX drops; "
    "ORT refuses end padding >= kernel",
}

REL_TOL = 1e-5

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


@dataclass
class RoundTrip:
    """What happened to every case."""

    import_failed: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    #: Exported with random fills: output shapes/types and the samples' range or mean checked.
    random: list[str] = field(default_factory=list)
    source_not_runnable: list[str] = field(default_factory=list)
    #: Cases that did not match, with why; sorted out by whether they build.
    failed: dict[str, str] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)
    ort_cannot_run: dict[str, str] = field(default_factory=dict)
    not_building: list[str] = field(default_factory=list)


def _session(model_bytes: bytes) -> object:
    options = ort.SessionOptions()
    options.log_severity_level = 4
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def max_relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| over finite entries; NaN and inf must match in place."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return float("inf")
    if want.dtype.kind not in "fc":
        return 0.0 if np.array_equal(got, want) else float("inf")
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    finite = np.isfinite(want64)
    if not np.array_equal(np.isnan(got64), np.isnan(want64)):
        return float("inf")
    if not np.array_equal(got64[~finite & ~np.isnan(want64)], want64[~finite & ~np.isnan(want64)]):
        return float("inf")
    if not finite.any():
        return 0.0
    scale = max(float(np.max(np.abs(want64[finite]))), 1e-30)
    return float(np.max(np.abs(got64[finite] - want64[finite]))) / scale


def _node_names(graph: object) -> set[str]:
    """Names of a graph's nodes and of the nodes in their subgraphs (Loop bodies)."""
    names = set()
    for node in graph.node:  # type: ignore[attr-defined]
        names.add(node.name)
        for attr in node.attribute:
            if attr.HasField("g"):
                names |= _node_names(attr.g)
    return names


def _round_trip(case: NodeCase, folder: Path, plugins: object, results: RoundTrip) -> None:
    from trtimport.errors import TrtImportError, UnsupportedLayerError
    from trtimport.export.writer import network_to_onnx
    from trtimport.populate import import_model

    try:
        imported = import_model(case.save(folder), plugins=plugins)  # type: ignore[arg-type]
    except TrtImportError:
        results.import_failed.append(case.name)
        return
    with imported:
        network = imported.network
        layer_names = {
            network.get_layer(i).name
            for i in range(network.num_layers)
            if network.get_layer(i).num_outputs > 0
        }
        try:
            exported = network_to_onnx(network, imported.backend)
        except UnsupportedLayerError as err:
            results.unsupported[case.name] = str(err).split("\n", 1)[-1]
            return
        except Exception as err:  # an exporter bug; it only counts if the case builds
            results.failed[case.name] = f"export raised {type(err).__name__}: {err}"
            return
    lost = layer_names - _node_names(exported.graph)
    if lost:
        results.failed[case.name] = f"layer names not kept: {sorted(lost)[:5]}"
        return
    feeds = {i.name: x for i, x in zip(case.model.graph.input, case.inputs, strict=False)}
    if any(n.op_type in _RANDOM_OPS for n in exported.graph.node):
        try:
            why = _check_random(case, exported, feeds)
        except Exception as err:  # e.g. onnxruntime has no RandomUniformLike-22 kernel
            results.ort_cannot_run[case.name] = str(err).splitlines()[0][:200]
            return
        if why:
            results.failed[case.name] = why
        else:
            results.random.append(case.name)
        return
    try:
        want = _session(case.model.SerializeToString()).run(None, feeds)  # type: ignore[attr-defined]
    except Exception:  # onnxruntime lacks the op or type: nothing to compare with
        results.source_not_runnable.append(case.name)
        return
    try:
        sess = _session(exported.SerializeToString())
        # TensorRT has no float64: the parser made such inputs float32, and so does the export.
        got = sess.run(  # type: ignore[attr-defined]
            None,
            {
                i.name: np.asarray(feeds[i.name]).astype(
                    _ORT_TYPES.get(i.type, feeds[i.name].dtype)
                )
                for i in sess.get_inputs()  # type: ignore[attr-defined]
            },
        )
    except Exception as err:
        results.ort_cannot_run[case.name] = str(err).splitlines()[0][:200]
        return
    errors = [max_relative_error(g, w) for g, w in zip(got, want, strict=True)]
    if max(errors, default=0.0) <= REL_TOL:
        results.matched.append(case.name)
    else:
        results.failed[case.name] = f"max relative error {max(errors):.3g}"


_RANDOM_OPS = {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike"}


def _check_random(case: NodeCase, exported: object, feeds: dict[str, np.ndarray]) -> str:
    """Why a model with random fills is wrong ('' if right): the outputs' shapes and types
    match the case's expected outputs, uniform samples lie in [low, high], normal samples'
    mean is within 6 standard errors of ``mean``."""
    from onnx import helper

    model = exported.__class__()  # type: ignore[attr-defined]
    model.CopyFrom(exported)
    randoms = [n for n in model.graph.node if n.op_type in _RANDOM_OPS]
    for n in randoms:
        dtype = next((a.i for a in n.attribute if a.name == "dtype"), 1)
        model.graph.output.append(helper.make_tensor_value_info(n.output[0], dtype, None))
    sess = _session(model.SerializeToString())
    ins = sess.get_inputs()  # type: ignore[attr-defined]
    got = sess.run(None, {i.name: feeds[i.name] for i in ins})  # type: ignore[attr-defined]
    outs, samples = got[: len(case.outputs)], got[len(case.outputs) :]
    for g, w in zip(outs, case.outputs, strict=True):
        w = np.asarray(w)
        want_type = np.float32 if w.dtype == np.float64 else w.dtype
        if g.shape != w.shape or g.dtype != want_type:
            return f"random output {g.dtype}{g.shape}, want {w.dtype}{w.shape}"
    for n, x in zip(randoms, samples, strict=True):
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if "low" in attrs or "high" in attrs:
            low, high = attrs.get("low", 0.0), attrs.get("high", 1.0)
            if x.min() < low or x.max() > high:
                return f"{n.name}: samples outside [{low}, {high}]"
        else:
            mean, scale = attrs.get("mean", 0.0), attrs.get("scale", 1.0)
            if abs(float(x.mean()) - mean) > 6 * scale / np.sqrt(x.size):
                return f"{n.name}: sample mean {x.mean()} for mean {mean}"
    return ""


def _build_one(item: tuple[str, bytes]) -> tuple[str, bool]:
    """Build one case's model with trtimport (runs in a worker process)."""
    import tempfile

    from trtimport.core.options import BuildOptions
    from trtimport.errors import TrtImportError
    from trtimport.pipeline import convert

    name, model = item
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.onnx"
        path.write_bytes(model)
        try:
            convert(path, Path(folder) / "x.engine", build_options=BuildOptions(progress=False))
        except TrtImportError:
            return name, False
    return name, True


def _build_key() -> str:
    import onnx

    from trtimport.core.backend import get_backend

    backend = get_backend()
    return f"trtimport/node-case-builds/{backend.name}-{backend.version}-onnx-{onnx.__version__}"


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> RoundTrip:
    """Run every node case once for the whole module; builds run meanwhile in two workers.

    Which cases build is remembered in pytest's cache per TensorRT and onnx version.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from trtimport.plugins.manager import load_plugins

    cache = pytestconfig.cache
    assert cache is not None
    known: dict[str, bool] = cache.get(_build_key(), {})
    todo = [(c.name, c.model.SerializeToString()) for c in node_cases() if c.name not in known]
    folder = tmp_path_factory.mktemp("node_cases")
    plugins = load_plugins()
    results = RoundTrip()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        pending = pool.map(_build_one, todo, chunksize=16)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for case in node_cases():
                _round_trip(case, folder, plugins, results)
        known.update(pending)
    cache.set(_build_key(), known)
    # Only cases TensorRT builds count.
    for bucket in (results.failed, results.unsupported, results.ort_cannot_run):
        for name in [n for n in bucket if not known.get(n)]:
            results.not_building.append(name)
            del bucket[name]
    for names in (results.matched, results.random, results.source_not_runnable):
        for name in [n for n in names if not known.get(n)]:
            results.not_building.append(name)
            names.remove(name)
    return results


def test_node_case_round_trip(round_trip: RoundTrip, capsys: pytest.CaptureFixture[str]) -> None:
    """Every building case round-trips, except the listed, explained ones."""
    r = round_trip
    imported = (
        len(r.matched) + len(r.random) + len(r.failed) + len(r.unsupported) + len(r.ort_cannot_run)
    )
    imported += len(r.source_not_runnable) + len(r.not_building)
    unsupported_types = sorted(
        {
            line.strip().lstrip("- ").split(" layer ")[0]
            for v in r.unsupported.values()
            for line in v.splitlines()
            if " layer " in line
        }
    )
    with capsys.disabled():
        print(
            f"\nnode cases: {len(node_cases())}, imported {imported}, not building "
            f"{len(r.not_building)}, exported+matched {len(r.matched)}, "
            f"exported, random: shapes checked {len(r.random)}, "
            f"TensorRT differs or hides an input {len(r.failed)}, "
            f"ORT cannot run export {len(r.ort_cannot_run)}, "
            f"ORT cannot run source {len(r.source_not_runnable)}, "
            f"unsupported layers {len(r.unsupported)} ({', '.join(unsupported_types)})"
        )
        for name, why in sorted(r.ort_cannot_run.items()):
            print(f"  ORT cannot run export: {name}: {why}")
        for name, why in sorted(r.unsupported.items()):
            print(f"  unsupported: {name}: {why.splitlines()[0]}")
    explained = TENSORRT_DIFFERS.keys() | HIDDEN_IN_NETWORK.keys()
    unexplained = {n: why for n, why in r.failed.items() if n not in explained}
    assert not unexplained, f"exported networks differ from the source: {unexplained}"
    assert set(r.ort_cannot_run) == set(ORT_CANNOT_RUN_EXPORTED), r.ort_cannot_run
    assert len(r.matched) >= MIN_MATCHED
    assert len(r.random) >= MIN_RANDOM
    assert set(r.failed) <= explained


def test_unsupported_layers_are_only_the_known_kinds(round_trip: RoundTrip) -> None:
    """The exporter refuses no building case; a refusal could only name these kinds."""
    allowed = {
        "NMS",
        "SLICE",  # out-of-bounds modes with strides or shape tensors
        "QUANTIZE",  # float8 / block quantization
        "DEQUANTIZE",
    }
    kinds = {
        line.strip().lstrip("- ").split(" layer ")[0]
        for v in round_trip.unsupported.values()
        for line in v.splitlines()
        if " layer " in line
    }
    assert kinds <= allowed, kinds - allowed
    assert not round_trip.unsupported, round_trip.unsupported


def test_opset_is_raised_for_float8_and_an_explicit_lower_one_is_refused(tmp_path: Path) -> None:
    """A float8 quantize needs opset 19: chosen automatically, refused (layer named) at 17."""
    from trtimport.errors import UnsupportedLayerError
    from trtimport.export.writer import network_to_onnx
    from trtimport.populate import import_model

    (case,) = [c for c in node_cases() if c.name == "test_quantizelinear_e4m3fn"]
    with import_model(case.save(tmp_path)) as imported:
        model = network_to_onnx(imported.network, imported.backend)
        assert [o.version for o in model.opset_import] == [19]
        assert (
            network_to_onnx(imported.network, imported.backend, opset=21).opset_import[0].version
            == 21
        )
        with pytest.raises(
            UnsupportedLayerError,
            match=r"QUANTIZE layer 'node_of_y': needs ONNX opset >= 19 \(requested 17\)",
        ):
            network_to_onnx(imported.network, imported.backend, opset=17)
