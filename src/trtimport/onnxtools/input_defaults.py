"""Shapes for dynamic inputs nobody gave, and shapes TensorRT cannot tell.

With no ``--input``, ``--shapes``, ``--profile`` or ``--batch``, a dynamic leading (batch)
dimension becomes 1, as trtexec and Polygraphy do, and a note says so. Other dynamic dimensions
take a size only where the model tells one: an ONNX dimension that carries the same symbol
(``dim_param``) as some input's leading dimension is a batch too. Anything else is one error
naming every such dimension, with a ``--input`` line to edit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtimport.errors import UsageError

#: An ONNX dimension: its fixed size, its symbol, or None when it has neither.
Dim = int | str | None


def declared_dims(onnx_path: Path | None) -> dict[str, list[Dim]]:
    """Every graph input's and output's dimensions as the ONNX file declares them.

    Empty when there is no ONNX file or it cannot be read (the hints are only hints).
    """
    if onnx_path is None:
        return {}
    import onnx

    try:
        graph = onnx.load(str(onnx_path), load_external_data=False).graph
    except Exception:  # the parser already read this file; a hint is not worth an error
        return {}
    found: dict[str, list[Dim]] = {}
    for vi in [*graph.input, *graph.output]:
        tensor_type = vi.type.tensor_type
        if not tensor_type.HasField("shape"):
            continue
        found[vi.name] = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in tensor_type.shape.dim
        ]
    return found


def tensor_shape(tensor: Any, onnx_path: Path | None = None) -> tuple[int, ...]:
    """A network tensor's shape, -1 for dynamic or data-dependent dimensions.

    TensorRT cannot tell the rank of some tensors (outputs of an ``If`` whose branches differ,
    say) and raises "Could not get tensor shape"; then the ONNX file's declared shape is used
    (unknown dimensions as -1), or ``(-1,)`` when it declares none.
    """
    try:
        return tuple(int(d) for d in tensor.shape)
    except (RuntimeError, ValueError, TypeError):
        dims = declared_dims(onnx_path).get(tensor.name)
        if dims is None:
            return (-1,)
        return tuple(d if isinstance(d, int) and d > 0 else -1 for d in dims)


def _batch_symbols(dims: dict[str, list[Dim]], inputs: list[str]) -> set[str]:
    return {
        first for name in inputs if (shape := dims.get(name)) and isinstance(first := shape[0], str)
    }


def default_input_shapes(
    network: Any, onnx_path: Path | None, shape_inputs: dict[str, int], source: Path
) -> tuple[dict[str, tuple[int, ...]], str | None]:
    """Fix the batch dimension of every dynamic input to 1; returns (shapes set, note).

    Raises one :class:`UsageError` naming every other dynamic dimension the model gives no
    size for. Call only when no profile covers the inputs.
    """
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    dynamic = [
        t for t in inputs if t.name not in shape_inputs and any(d < 0 for d in tuple(t.shape))
    ]
    if not dynamic:
        return {}, None
    dims = declared_dims(onnx_path)
    batch = _batch_symbols(dims, [t.name for t in inputs])
    chosen: dict[str, tuple[int, ...]] = {}
    unknown: list[tuple[str, list[int], list[int]]] = []
    for t in dynamic:
        shape = [int(d) for d in t.shape]
        symbols = dims.get(t.name, [])
        open_axes = []
        for axis, d in enumerate(shape):
            if d >= 0:
                continue
            symbol = symbols[axis] if axis < len(symbols) else None
            if axis == 0 or (isinstance(symbol, str) and symbol in batch):
                shape[axis] = 1
            else:
                open_axes.append(axis)
        if open_axes:
            unknown.append((t.name, [int(d) for d in t.shape], open_axes))
        chosen[t.name] = tuple(shape)
    if unknown:
        raise UsageError(_unknown_dims_message(source, unknown, chosen))
    for t in dynamic:
        t.shape = chosen[t.name]
    listed = ", ".join(f"'{t.name}' {[int(d) for d in t.shape]}" for t in dynamic)
    note = (
        f"dynamic batch set to 1 for input(s) {listed}, as trtexec does; choose otherwise with "
        f"--input {dynamic[0].name}:{'x'.join(map(str, chosen[dynamic[0].name]))} (edit it), "
        "--batch MIN/OPT/MAX or --shapes NAME:MIN/OPT/MAX"
    )
    return chosen, note


def _unknown_dims_message(
    source: Path,
    unknown: list[tuple[str, list[int], list[int]]],
    chosen: dict[str, tuple[int, ...]],
) -> str:
    lines = []
    flags = []
    for name, dims, axes in unknown:
        lines.append(
            f"  - '{name}' {dims}: dimension(s) {', '.join(map(str, axes))} "
            "(the model gives no size)"
        )
        template = [f"D{axis}" if axis in axes else str(d) for axis, d in enumerate(chosen[name])]
        flags.append(f"--input {name}:{'x'.join(template)}")
    for name, shape in chosen.items():
        if name not in {u[0] for u in unknown}:
            flags.append(f"--input {name}:{'x'.join(map(str, shape))}")
    return (
        f"{source}: dynamic input dimension(s) other than the batch, which the model gives no "
        "size for:\n"
        + "\n".join(lines)
        + "\nGive sizes (replace each D<axis>):\n  "
        + " ".join(flags)
        + "\nor ranges with --shapes NAME:MIN/OPT/MAX, one per dynamic input."
    )
