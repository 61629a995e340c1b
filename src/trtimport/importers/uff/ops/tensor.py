"""Inputs, constants and ops that move data without computing: reshape, transpose, concat,
stack, squeeze, expand, slice, pad, gather, shape."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from trtimport.importers.uff.context import Converter, NotConvertible
from trtimport.importers.uff.model import UffNode
from trtimport.importers.uff.ops.registry import handles
from trtimport.onnxtools import encode

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def channel_second(rank: int) -> list[int]:
    """The permutation that moves the last axis to position 1 (NHWC -> NCHW)."""
    return [0, rank - 1, *range(1, rank - 1)] if rank > 2 else list(range(rank))


def input_dims(cx: Converter, node: UffNode) -> list[int | str]:
    """The engine-side shape of an Input node: ``--input`` if given, else the UFF's own shape
    with a -1 batch axis as 1 (unless the input has ``--shapes`` ranges) and other -1 axes
    dynamic. The caller has checked that one of the two exists."""
    request = cx.request
    written = [int(d) for d in node.fields.get("shape") or []]
    nchw = node.name in request.inputs_as_nchw
    if nchw and len(written) > 2:
        written = [written[p] for p in channel_second(len(written))]
    given = request.input_shapes.get(node.name)
    if given is not None:
        from trtimport.errors import ShapeError

        if written and (
            len(given) != len(written)
            or any(w >= 0 and w != g for w, g in zip(written, given, strict=True))
        ):
            raise ShapeError(
                f"{cx.model.path}: input '{node.name}' has shape {written} in the UFF; --input "
                f"{'x'.join(map(str, given))} does not fit it (-1 axes may take any size)"
            )
        return list(given)
    dims: list[int | str] = []
    for axis, d in enumerate(written):
        if d >= 0:
            dims.append(d)
        elif axis == 0 and node.name not in request.dynamic_inputs:
            dims.append(1)
        else:
            dims.append(f"{node.name}_dim{axis}")
    return dims


@handles("Input")
def convert_input(cx: Converter, node: UffNode) -> None:
    dtype = node.fields.get("dtype", np.dtype(np.float32))
    dims = input_dims(cx, node)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    cx.graph.claim(node.name)
    cx.graph.inputs.append(encode.value_info(node.name, elem, dims))
    if node.name in cx.request.inputs_as_nchw and len(dims) > 2:
        back = [int(p) for p in np.argsort(channel_second(len(dims)))]
        cx.alias(node.name, cx.transpose(node.name, back, f"{node.name}/nhwc"))


def const_array(node: UffNode) -> np.ndarray:
    """The value of a Const node (a single value fills the whole shape, as the converter meant).

    A blob's value is a read-only view of the UFF file's mapping, not a copy."""
    dtype = np.dtype(node.fields.get("dtype", np.float32))
    shape = [int(d) for d in node.fields.get("shape") or []]
    values = node.fields.get("values")
    if isinstance(values, bytes | memoryview):
        if len(values) % dtype.itemsize:
            raise NotConvertible(f"holds {len(values)} bytes, not a whole number of {dtype}")
        # A view of the file's bytes (little-endian, as the machine's): no copy.
        array = np.frombuffer(values, dtype=dtype.newbyteorder("<"))
        if array.dtype != dtype:
            array = array.astype(dtype)
    elif isinstance(values, list) and all(isinstance(v, (int, float)) for v in values):
        array = np.asarray(values, dtype=dtype)
    else:
        raise NotConvertible("holds no numeric values (a string constant?)")
    count = int(np.prod(shape)) if shape else 1
    if array.size == count:
        return array.reshape(shape)
    if array.size == 1:
        return np.full(shape, array.reshape(()), dtype=dtype)
    raise NotConvertible(f"holds {array.size} values, but its shape {shape} needs {count}")


@handles("Const")
def convert_const(cx: Converter, node: UffNode) -> None:
    cx.set_value(node.name, const_array(node))


@handles("Identity", "_StopGradient")
def convert_identity(cx: Converter, node: UffNode) -> None:
    cx.emit("Identity", [cx.tensor(node.inputs[0])], node.name)


@handles("Flatten")
def convert_flatten(cx: Converter, node: UffNode) -> None:
    cx.emit("Flatten", [cx.tensor(node.inputs[0])], node.name, axis=1)


@handles("Reshape")
def convert_reshape(cx: Converter, node: UffNode) -> None:
    x = cx.tensor(node.inputs[0])
    if len(node.inputs) < 2:
        shape = node.fields.get("shape")
        if not isinstance(shape, list):
            raise NotConvertible("has no target shape")
        target = np.asarray(shape, dtype=np.int64)
    else:
        value = cx.value(node.inputs[1])
        if value is None:
            target_tensor = cx.tensor(node.inputs[1])
            if cx.elem_type(target_tensor) != TensorProto.INT64:
                target_tensor = cx.step(
                    "Cast", [target_tensor], f"{node.name}/shape", to=TensorProto.INT64
                )
            cx.emit("Reshape", [x, target_tensor], node.name)
            return
        target = value.astype(np.int64).reshape(-1)
    allowzero = 1 if (target == 0).any() else None
    cx.emit(
        "Reshape",
        [x, cx.ints(target.tolist(), f"{node.name}/shape")],
        node.name,
        allowzero=allowzero,
    )


@handles("Transpose")
def convert_transpose(cx: Converter, node: UffNode) -> None:
    perm = node.fields.get("permutation")
    if perm is None:
        perm = cx.const_input(node, 1, "permutation").reshape(-1).tolist()
    cx.emit("Transpose", [cx.tensor(node.inputs[0])], node.name, perm=[int(p) for p in perm])


def _axis_field(node: UffNode, default: int | None = None) -> int:
    axis = node.fields.get("axis", default)
    if isinstance(axis, list) and len(axis) == 1:
        axis = axis[0]
    if not isinstance(axis, int):
        raise NotConvertible("has no integer 'axis' field")
    return axis


@handles("Concat")
def convert_concat(cx: Converter, node: UffNode) -> None:
    cx.emit("Concat", cx.inputs(node), node.name, axis=_axis_field(node))


@handles("Stack")
def convert_stack(cx: Converter, node: UffNode) -> None:
    axis = _axis_field(node, 0)
    if axis < 0:
        axis += cx.rank(cx.tensor(node.inputs[0])) + 1
    parts = [unsqueeze(cx, t, [axis], f"{node.name}/expand") for t in cx.inputs(node)]
    cx.emit("Concat", parts, node.name, axis=axis)


def unsqueeze(
    cx: Converter, tensor: str, axes: list[int], hint: str, out: str | None = None
) -> str:
    """``tensor`` with size-1 axes inserted at ``axes`` (of the result)."""
    out = out or cx.graph.fresh(hint)
    if cx.opset >= 13:
        return cx.emit("Unsqueeze", [tensor, cx.ints(axes, f"{hint}/axes")], out)
    return cx.emit("Unsqueeze", [tensor], out, axes=axes)


def squeeze(cx: Converter, tensor: str, axes: list[int] | None, out: str) -> str:
    """``tensor`` without the size-1 axes ``axes`` (all of them for None)."""
    if axes is None:
        return cx.emit("Squeeze", [tensor], out)
    if cx.opset >= 13:
        return cx.emit("Squeeze", [tensor, cx.ints(axes, f"{out}/axes")], out)
    return cx.emit("Squeeze", [tensor], out, axes=axes)


@handles("Squeeze")
def convert_squeeze(cx: Converter, node: UffNode) -> None:
    x = cx.tensor(node.inputs[0])
    axes = node.fields.get("axes") or node.fields.get("axis")
    if isinstance(axes, int):
        axes = [axes]
    if not axes:
        dims = cx.dims(x)
        axes = None if dims is None else [i for i, d in enumerate(dims) if d == 1]
    squeeze(cx, x, axes, node.name)


@handles("ExpandDims")
def convert_expand_dims(cx: Converter, node: UffNode) -> None:
    if "axis" in node.fields:
        axis = _axis_field(node)
    else:
        axis = int(cx.const_input(node, 1, "axis").reshape(-1)[0])
    unsqueeze(cx, cx.tensor(node.inputs[0]), [axis], node.name, out=node.name)


def _mask_bits(node: UffNode, name: str) -> int:
    value = node.fields.get(name, 0)
    return int(value) if isinstance(value, int) else 0


@handles("StridedSlice")
def convert_strided_slice(cx: Converter, node: UffNode) -> None:
    begin = cx.const_input(node, 1, "begin").astype(np.int64).reshape(-1)
    end = cx.const_input(node, 2, "end").astype(np.int64).reshape(-1)
    strides = (
        cx.const_input(node, 3, "strides").astype(np.int64).reshape(-1)
        if len(node.inputs) > 3
        else np.ones_like(begin)
    )
    for unsupported in ("ellipsis_mask", "new_axis_mask"):
        if _mask_bits(node, unsupported):
            raise NotConvertible(f"uses {unsupported} (not supported)")
    begin_mask, end_mask = _mask_bits(node, "begin_mask"), _mask_bits(node, "end_mask")
    shrink = _mask_bits(node, "shrink_axis_mask")
    starts, ends, steps, shrunk = [], [], [], []
    for axis, (b, e, s) in enumerate(
        zip(begin.tolist(), end.tolist(), strides.tolist(), strict=True)
    ):
        if s == 0:
            raise NotConvertible(f"has stride 0 on axis {axis}")
        if shrink >> axis & 1:
            starts.append(b)
            ends.append(INT64_MAX if b == -1 else b + 1)
            steps.append(1)
            shrunk.append(axis)
            continue
        if begin_mask >> axis & 1:
            b = 0 if s > 0 else INT64_MAX
        if end_mask >> axis & 1:
            e = INT64_MAX if s > 0 else INT64_MIN
        starts.append(b)
        ends.append(e)
        steps.append(s)
    axes = list(range(len(starts)))
    sliced = cx.emit(
        "Slice",
        [
            cx.tensor(node.inputs[0]),
            cx.ints(starts, f"{node.name}/starts"),
            cx.ints(ends, f"{node.name}/ends"),
            cx.ints(axes, f"{node.name}/axes"),
            cx.ints(steps, f"{node.name}/steps"),
        ],
        cx.graph.fresh(f"{node.name}/slice") if shrunk else node.name,
    )
    if shrunk:
        squeeze(cx, sliced, shrunk, node.name)


@handles("Shape")
def convert_shape(cx: Converter, node: UffNode) -> None:
    # TensorFlow's Shape is int32 unless asked otherwise (the UFF keeps no out_type).
    out_type = node.fields.get("out_type", np.dtype(np.int32))
    shape = cx.step("Shape", [cx.tensor(node.inputs[0])], f"{node.name}/int64")
    cx.emit("Cast", [shape], node.name, to=helper.np_dtype_to_tensor_dtype(np.dtype(out_type)))


def pad_constant(cx: Converter, node: UffNode, mode: str, value: str | None = None) -> None:
    """Pad input 0 by the constant ``[rank, 2]`` paddings of input 1."""
    paddings = cx.const_input(node, 1, "paddings").astype(np.int64)
    if paddings.ndim != 2 or paddings.shape[1] != 2:
        raise NotConvertible(f"has paddings of shape {list(paddings.shape)}, not [rank, 2]")
    pads = cx.ints([*paddings[:, 0].tolist(), *paddings[:, 1].tolist()], f"{node.name}/pads")
    inputs = [cx.tensor(node.inputs[0]), pads] + ([value] if value else [])
    cx.emit("Pad", inputs, node.name, mode=mode)


@handles("Pad")
def convert_pad(cx: Converter, node: UffNode) -> None:
    pad_constant(cx, node, "constant")


@handles("Gather", "GatherV2")
def convert_gather(cx: Converter, node: UffNode) -> None:
    axis = node.fields.get("axis", 0)
    params, indices = cx.inputs(node)[:2]
    cx.emit("Gather", [params, indices], node.name, axis=int(axis) if isinstance(axis, int) else 0)
