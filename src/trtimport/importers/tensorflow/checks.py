"""Checks and rewrites of a converted ONNX model, and of the options that shape it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtimport.errors import UnsupportedLayerError, UsageError
from trtimport.importers.tensorflow.names import spellings

if TYPE_CHECKING:
    import onnx

DEFAULT_OPSET = 17
#: The highest opset tf2onnx 1.17 converts to.
MAX_OPSET = 18


def check_opset(opset: int | None) -> int:
    """The opset to convert to: ``opset`` if tf2onnx supports it, else a UsageError."""
    if opset is None:
        return DEFAULT_OPSET
    if not 1 <= opset <= MAX_OPSET:
        raise UsageError(
            f"--opset {opset}: TensorFlow models convert to ONNX opsets up to {MAX_OPSET} "
            f"(tf2onnx's limit); the default is {DEFAULT_OPSET}"
        )
    return opset


def check_nchw_applied(model: onnx.ModelProto, names: list[str], source: Path) -> None:
    """Every ``--inputs-as-nchw`` name must be one of the converted model's inputs."""
    inputs = [v.name for v in model.graph.input]
    unknown = [n for n in names if not set(spellings(n)) & set(inputs)]
    if unknown:
        raise UsageError(
            f"{source}: --inputs-as-nchw names {', '.join(repr(n) for n in unknown)}, but the "
            f"model's inputs are {', '.join(inputs) or '(none)'}"
        )


def unsupported_ops(model: onnx.ModelProto) -> list[str]:
    """Nodes tf2onnx left unconverted (no ONNX schema for their op), as ``name (OpType)``."""
    import onnx

    return [
        f"{node.name} ({node.op_type})"
        for node in model.graph.node
        if not onnx.defs.has(node.op_type, node.domain)
    ]


def _attribute(node: Any, name: str) -> Any:
    return next((a for a in node.attribute if a.name == name), None)


def rewrite_nearest_resize(model: onnx.ModelProto) -> int:
    """Respell TensorFlow's half-pixel nearest-neighbour Resize in a form TensorRT accepts.

    tf2onnx writes ``tf_half_pixel_for_nn`` with ``floor``: source index floor((x + 0.5) / s).
    TensorRT only takes that mode with ``round_prefer_floor``, but ``half_pixel`` with
    ``round_prefer_ceil`` selects floor((x + 0.5) / s - 0.5 + 0.5), the same pixel. (tf2onnx's
    own ``tensorrt`` target uses ``half_pixel`` with ``floor`` instead, which picks different
    pixels.) Returns how many nodes were changed.
    """
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Resize":
            continue
        transform = _attribute(node, "coordinate_transformation_mode")
        nearest = _attribute(node, "nearest_mode")
        if transform is None or transform.s != b"tf_half_pixel_for_nn":
            continue
        if nearest is None or nearest.s != b"floor":
            continue
        transform.s = b"half_pixel"
        nearest.s = b"round_prefer_ceil"
        changed += 1
    return changed


def check_supported(model: onnx.ModelProto, source: Path, opset: int) -> None:
    """Raise UnsupportedLayerError listing every op tf2onnx could not convert."""
    unsupported = unsupported_ops(model)
    if unsupported:
        import tf2onnx

        raise UnsupportedLayerError(
            f"{source}: tf2onnx {tf2onnx.__version__} has no ONNX conversion (opset {opset}) "
            f"for {len(unsupported)} TensorFlow op(s). Replace them in the model, or try a "
            "higher --opset (up to 18)",
            unsupported,
        )
