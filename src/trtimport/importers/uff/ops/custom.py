"""TensorFlow ops the ``uff`` converter wrote as custom ops (``_`` + the TensorFlow op name,
its attributes as fields), and the TensorRT plugin ops (``*_TRT``) of the SSD samples.

Control flow of ``tf.cond`` (``_Switch``/``_Merge``) converts when its predicate is a constant,
as in the inference graphs Keras writes (the learning phase, a ``_PlaceholderWithDefault`` of
``False``): the branch the predicate selects is converted and the other one dropped.
"""

from __future__ import annotations

import numpy as np
from onnx import helper

from trtimport.importers.uff.context import Converter, NotConvertible
from trtimport.importers.uff.model import UffModel, UffNode
from trtimport.importers.uff.ops.math import emit_binary
from trtimport.importers.uff.ops.nn import batch_norm
from trtimport.importers.uff.ops.registry import handles
from trtimport.importers.uff.ops.tensor import const_array, pad_constant

#: TensorRT plugin ops of the old SSD samples and why each has no ONNX form here.
PLUGIN_OPS = {
    "_GridAnchor_TRT": "SSD anchor generator (TensorRT plugin)",
    "_GridAnchorRect_TRT": "SSD anchor generator (TensorRT plugin)",
    "_NMS_TRT": "SSD detection output with non-maximum suppression (TensorRT plugin); "
    "tensorrt_rtx cannot build ONNX NonMaxSuppression",
    "_FlattenConcat_TRT": "flatten-and-concatenate (TensorRT plugin)",
    "_Concat_TRT": "concatenate (TensorRT plugin)",
    "_PriorBox_TRT": "SSD prior boxes (TensorRT plugin)",
    "_Normalize_TRT": "L2 normalisation (TensorRT plugin)",
    "_Reorg_TRT": "YOLO reorg (TensorRT plugin)",
    "_Region_TRT": "YOLO region (TensorRT plugin)",
    "_ResizeNearest_TRT": "nearest resize (TensorRT plugin)",
    "_BatchedNMS_TRT": "batched non-maximum suppression (TensorRT plugin)",
    "_CropAndResize": "crop and resize (TensorRT plugin)",
    "_Proposal": "region proposals (TensorRT plugin)",
}

#: Keras's training flag; older Keras made it a plain placeholder, False at inference.
LEARNING_PHASE = "keras_learning_phase"

_PASS_THROUGH = ("Identity", "_Identity", "_PlaceholderWithDefault", "_Switch", "_StopGradient")


def _text(value: object) -> str:
    """A string field; the converter wrote TensorFlow's bytes attributes as ``"b'NHWC'"``."""
    text = str(value)
    if len(text) > 3 and text[:2] in ("b'", 'b"') and text[-1] == text[1]:
        return text[2:-1]
    return text


def constant_of(model: UffModel, name: str, depth: int = 0) -> np.ndarray | None:
    """The value of node ``name`` when it is a constant, through identities and defaults."""
    node = model.nodes[name]
    if depth > 64:
        return None
    if node.op == "Const":
        try:
            return const_array(node)
        except NotConvertible:
            return None
    if node.op == "Input" and name.rsplit("/", 1)[-1] == LEARNING_PHASE:
        return np.array(False)  # inference
    if node.op in _PASS_THROUGH and node.inputs:
        return constant_of(model, node.inputs[0], depth + 1)
    if node.op == "_LogicalNot" and node.inputs:
        value = constant_of(model, node.inputs[0], depth + 1)
        return None if value is None else np.logical_not(value)
    return None


def _predicate(model: UffModel, node: UffNode) -> bool:
    """The constant predicate of the ``_Switch`` nodes feeding a ``_Merge``."""
    seen: set[str] = set()
    todo = list(node.inputs)
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        found = model.nodes[name]
        if found.op == "_Switch" and len(found.inputs) == 2:
            value = constant_of(model, found.inputs[1])
            if value is None or value.size != 1:
                raise NotConvertible(
                    f"selects a branch by '{found.inputs[1]}', which is not a constant; only "
                    "conditions fixed at inference time (such as the Keras learning phase) convert"
                )
            return bool(value.reshape(()))
        todo += found.inputs
    raise NotConvertible("has no _Switch upstream, so the branch it selects is unknown")


def dependencies(model: UffModel, node: UffNode) -> list[str]:
    """The nodes ``node`` needs converted first: for ``_Merge`` only the branch taken (inputs
    are written false branch first, as ``tf.cond`` builds them), for ``_Switch`` only its data."""
    if node.op == "_Merge":
        if len(node.inputs) != 2:
            raise NotConvertible(f"has {len(node.inputs)} inputs; only tf.cond's two convert")
        return [node.inputs[1] if _predicate(model, node) else node.inputs[0]]
    if node.op == "_Switch":
        return node.inputs[:1]
    return list(node.inputs)


@handles("_Switch", "_PlaceholderWithDefault")
def convert_pass_through(cx: Converter, node: UffNode) -> None:
    cx.emit("Identity", [cx.tensor(node.inputs[0])], node.name)


@handles("_Merge")
def convert_merge(cx: Converter, node: UffNode) -> None:
    (taken,) = dependencies(cx.model, node)
    cx.emit("Identity", [cx.tensor(taken)], node.name)


@handles("_AddV2")
def convert_add(cx: Converter, node: UffNode) -> None:
    emit_binary(cx, node, "Add")


@handles("_SquaredDifference")
def convert_squared_difference(cx: Converter, node: UffNode) -> None:
    diff = cx.step("Sub", cx.inputs(node)[:2], f"{node.name}/diff")
    cx.emit("Mul", [diff, diff], node.name)


@handles("_Cast")
def convert_cast(cx: Converter, node: UffNode) -> None:
    target = node.fields.get("DstT")
    if not isinstance(target, np.dtype):
        raise NotConvertible("has no DstT data type")
    cx.emit(
        "Cast", [cx.tensor(node.inputs[0])], node.name, to=helper.np_dtype_to_tensor_dtype(target)
    )


@handles("_BatchMatMul", "_BatchMatMulV2", "_BatchMatMulV3")
def convert_batch_matmul(cx: Converter, node: UffNode) -> None:
    """Matrix product over the last two axes; ``adj_x``/``adj_y`` transpose them first."""
    a, b = cx.inputs(node)[:2]
    swapped = []
    for tensor, flag in ((a, "adj_x"), (b, "adj_y")):
        if node.fields.get(flag):
            rank = cx.rank(tensor)
            perm = [*range(rank - 2), rank - 1, rank - 2]
            tensor = cx.transpose(tensor, perm, f"{node.name}/{flag}")
        swapped.append(tensor)
    cx.emit("MatMul", swapped, node.name)


@handles("_MatrixBandPart")
def convert_matrix_band_part(cx: Converter, node: UffNode) -> None:
    """Keep the band ``-lower <= n - m <= upper`` of the last two axes (negative: no limit)."""
    x = cx.tensor(node.inputs[0])
    lower = int(cx.const_input(node, 1, "num_lower").reshape(()))
    upper = int(cx.const_input(node, 2, "num_upper").reshape(()))
    dims = cx.dims(x)
    if dims is None or len(dims) < 2 or dims[-1] is None or dims[-2] is None:
        raise NotConvertible("needs the sizes of the last two axes of its input")
    rows, cols = dims[-2], dims[-1]
    assert rows is not None and cols is not None
    m = np.arange(rows)[:, None]
    n = np.arange(cols)[None, :]
    keep = ((lower < 0) | (m - n <= lower)) & ((upper < 0) | (n - m <= upper))
    dtype = helper.tensor_dtype_to_np_dtype(cx.elem_type(x))
    cx.emit("Mul", [x, cx.const(keep.astype(dtype), f"{node.name}/band")], node.name)


def _data_format_channel(node: UffNode, rank: int) -> int:
    fmt = _text(node.fields.get("data_format", "NHWC")).upper()
    return 1 if fmt.startswith("NC") else rank - 1


@handles("_FusedBatchNormV2", "_FusedBatchNormV3")
def convert_fused_batch_norm(cx: Converter, node: UffNode) -> None:
    if node.fields.get("is_training"):
        raise NotConvertible("is in training mode (it normalises by the batch's own statistics)")
    epsilon = float(node.fields.get("epsilon", 1e-3))
    rank = cx.rank(cx.tensor(node.inputs[0]))
    batch_norm(cx, node, epsilon, channel_axis=_data_format_channel(node, rank))


@handles("_MirrorPad")
def convert_mirror_pad(cx: Converter, node: UffNode) -> None:
    mode = _text(node.fields.get("mode", "REFLECT")).upper()
    if mode != "REFLECT":
        raise NotConvertible(f"mode {mode} has no ONNX Pad mode (REFLECT has)")
    pad_constant(cx, node, "reflect")


@handles("_PadV2")
def convert_pad_v2(cx: Converter, node: UffNode) -> None:
    value = cx.const_input(node, 2, "constant value")
    pad_constant(cx, node, "constant", cx.const(value.reshape(()), f"{node.name}/value"))


@handles("_Tile")
def convert_tile(cx: Converter, node: UffNode) -> None:
    multiples = cx.const_input(node, 1, "multiples").astype(np.int64).reshape(-1)
    cx.emit(
        "Tile",
        [cx.tensor(node.inputs[0]), cx.ints(multiples.tolist(), f"{node.name}/reps")],
        node.name,
    )
