"""Write small UFF files for tests: by hand (:class:`UffWriter`) or from a TensorFlow graph
(:func:`graphdef_to_uff`), with trtimport's own schema.

:func:`graphdef_to_uff` writes what NVIDIA's ``uff`` converter wrote for each TensorFlow op: the
same op names, fields and dimension orders (``N+C`` data, ``+CK`` kernels), SAME padding as
``implicit_padding``, a symmetric zero ``Pad`` before a VALID conv or pool folded into its
``padding``, Identity nodes skipped, and ops it had no mapping for written as ``_`` + the
TensorFlow op with the node's attributes as fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trtimport.importers.uff.model import ORDER_ANY_RANK, ORDER_DECREMENT, ORDER_INCREMENT
from trtimport.importers.uff.proto import uff_schema_pb2

_DTYPE_CODES = {
    np.dtype(np.int8): 0x10008,
    np.dtype(np.int16): 0x10010,
    np.dtype(np.int32): 0x10020,
    np.dtype(np.int64): 0x10040,
    np.dtype(np.float16): 0x20010,
    np.dtype(np.float32): 0x20020,
}
#: The canonical order strings an order spec is written against.
_CANONICAL = ("NC+", "KC+", "NC", "KC")


def order_values(spec: str) -> list[int]:
    """The order list for a spec such as ``N+C`` (NHWC) or ``+CK`` (HWIO)."""
    key = set(spec.replace("-", "+"))
    canonical = next(c for c in _CANONICAL if set(c) == key)
    table: dict[str, list[int]] = {}
    for index, char in enumerate(canonical):
        if char == "+":
            table["+"] = [index, ORDER_INCREMENT]
            table["-"] = [ORDER_DECREMENT, index]
        else:
            table[char] = [index]
    return [v for char in spec for v in table[char]]


def data(value: Any) -> uff_schema_pb2.Data:
    """A ``Data`` message for a Python value."""
    if isinstance(value, uff_schema_pb2.Data):
        return value
    if isinstance(value, bool):
        return uff_schema_pb2.Data(b=value)
    if isinstance(value, (int, np.integer)):
        return uff_schema_pb2.Data(i=int(value))
    if isinstance(value, (float, np.floating)):
        return uff_schema_pb2.Data(d=float(value))
    if isinstance(value, str):
        return uff_schema_pb2.Data(s=value)
    if isinstance(value, bytes):
        return uff_schema_pb2.Data(blob=value)
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        code = _DTYPE_CODES.get(np.dtype(value), _DTYPE_CODES[np.dtype(np.int8)])  # bool: int8
        return uff_schema_pb2.Data(dtype=code)  # type: ignore[arg-type]
    if isinstance(value, (list, tuple)):
        items = list(value)
        if all(isinstance(v, bool) for v in items) and items:
            return uff_schema_pb2.Data(b_list=uff_schema_pb2.Bools(val=items))
        if all(isinstance(v, (int, np.integer)) for v in items):
            return uff_schema_pb2.Data(i_list=uff_schema_pb2.Int64s(val=[int(v) for v in items]))
        if all(isinstance(v, (int, float, np.number)) for v in items):
            return uff_schema_pb2.Data(d_list=uff_schema_pb2.Doubles(val=[float(v) for v in items]))
        if all(isinstance(v, str) for v in items):
            return uff_schema_pb2.Data(s_list=uff_schema_pb2.Strings(val=items))
    raise TypeError(f"no UFF data for {value!r}")


class UffWriter:
    """Builds a UFF MetaGraph node by node."""

    def __init__(self) -> None:
        self.nodes: list[uff_schema_pb2.Node] = []
        self.refs: dict[str, uff_schema_pb2.Data] = {}
        self.custom = False

    def node(self, name: str, op: str, inputs: list[str] = (), **fields: Any) -> None:  # type: ignore[assignment]
        """Add a node; fields set to None are left out."""
        message = uff_schema_pb2.Node(id=name, operation=op, inputs=list(inputs))
        for key, value in fields.items():
            if value is not None:
                message.fields.add(key=key, value=data(value))
        if op.startswith("_"):
            self.custom = True
        self.nodes.append(message)

    def orders(self, *specs: str) -> uff_schema_pb2.Data:
        """A reference to the orders of ``specs`` (one per input), as the converter names it."""
        key = "orders_" + "_".join(specs)
        listing = uff_schema_pb2.DimOrdersList()
        for spec in specs:
            entry = listing.val.add().orders.add()
            entry.key = ORDER_ANY_RANK  # type: ignore[assignment]
            entry.value.val.extend(order_values(spec))
        self.refs[key] = uff_schema_pb2.Data(dim_orders_list=listing)
        return uff_schema_pb2.Data(ref=key)

    def input(self, name: str, shape: list[int], dtype: Any = np.float32) -> None:
        """An Input node (an empty shape, as TensorRT 3 era files have, is allowed)."""
        self.node(name, "Input", dtype=np.dtype(dtype), shape=list(shape))

    def const(self, name: str, array: np.ndarray) -> None:
        """A Const node whose values are a referenced blob."""
        array = np.array(array, order="C")  # (ascontiguousarray would make scalars 1-D)
        if array.dtype == np.bool_:  # UFF has no boolean type
            array = array.astype(np.int8)
        key = f"weights_{name}"
        self.refs[key] = uff_schema_pb2.Data(blob=array.tobytes())
        self.node(
            name,
            "Const",
            dtype=array.dtype,
            shape=list(array.shape),
            values=uff_schema_pb2.Data(ref=key),
        )

    def mark_output(self, name: str) -> None:
        """A MarkOutput node for ``name``."""
        self.node(
            f"MarkOutput_{sum(n.operation == 'MarkOutput' for n in self.nodes)}",
            "MarkOutput",
            [name],
        )

    def serialize(self) -> bytes:
        """The file's bytes (nodes written outputs first, as the converter does)."""
        meta = uff_schema_pb2.MetaGraph(version=1, descriptor_core_version=1)
        meta.descriptors.add(id="tensorflow_extension", version=1)
        if self.custom:
            meta.descriptors.add(id="custom", version=1)
        meta.graphs.add(id="main", nodes=list(reversed(self.nodes)))
        for key, value in self.refs.items():
            meta.referenced_data.add(key=key, value=value)
        return meta.SerializeToString()

    def write(self, path: Path) -> Path:
        """Write the file; returns ``path``."""
        path.write_bytes(self.serialize())
        return path


def _name(tensor: str) -> str:
    return tensor.lstrip("^").split(":")[0]


def _attr(value: Any) -> Any:
    """A TensorFlow attribute as the converter wrote it into a custom node's fields."""
    kind = value.WhichOneof("value")
    if kind == "s":
        return str(value.s)  # the converter wrote str(bytes): "b'NHWC'"
    if kind == "type":
        import tensorflow as tf

        return np.dtype(tf.as_dtype(value.type).as_numpy_dtype)
    if kind == "list":
        return list(value.list.i) or [float(f) for f in value.list.f] or None
    if kind in ("i", "f", "b"):
        return getattr(value, kind)
    return None


def graphdef_to_uff(
    graph_def: Any, outputs: list[str], writer: UffWriter | None = None
) -> UffWriter:
    """Convert a frozen TensorFlow GraphDef to UFF the way NVIDIA's converter did."""
    import tensorflow as tf

    nodes = {n.name: n for n in graph_def.node}
    writer = writer or UffWriter()
    done: set[str] = set()

    def real(name: str) -> str:
        while nodes[name].op == "Identity":
            name = _name(nodes[name].input[0])
        return name

    def value(name: str) -> np.ndarray:
        return tf.make_ndarray(nodes[real(name)].attr["value"].tensor)

    def fmt(node: Any) -> str:
        return node.attr["data_format"].s.decode() or "NHWC"

    def visit(name: str) -> None:
        if name in done:
            return
        done.add(name)
        node = nodes[name]
        inputs = [real(_name(i)) for i in node.input if not i.startswith("^")]
        fed = _convert(writer, node, inputs, value, fmt, nodes)
        for i in fed:
            visit(i)

    for out in outputs:
        visit(out)
    for out in outputs:
        writer.mark_output(out)
    return writer


def _spatial(values: list[int], data_format: str) -> list[int]:
    return values[2:] if data_format == "NCHW" else values[1:3]


def _convert(
    w: UffWriter, node: Any, inputs: list[str], value: Any, fmt: Any, nodes: Any
) -> list[str]:
    """Write one TensorFlow node; returns the inputs the UFF node reads (to convert next)."""
    op, name, attr = node.op, node.name, node.attr
    order = {"NHWC": "N+C", "NCHW": "NC+"}
    binary = {
        "Add": "add",
        "Sub": "sub",
        "Mul": "mul",
        "RealDiv": "div",
        "Minimum": "min",
        "Maximum": "max",
    }
    unary = {
        "Rsqrt": "rsqrt",
        "Square": "square",
        "Exp": "exp",
        "Neg": "neg",
        "Abs": "abs",
        "Sqrt": "sqrt",
        "Log": "log",
    }
    activation = {
        "Relu": "relu",
        "Relu6": "relu6",
        "Tanh": "tanh",
        "Sigmoid": "sigmoid",
        "Elu": "elu",
    }
    reduce = {"Mean": "mean", "Sum": "sum", "Max": "max", "Min": "min", "Prod": "prod"}
    if op == "Placeholder":
        shape = [d.size for d in attr["shape"].shape.dim]
        w.input(name, shape)
        return []
    if op == "Const":
        w.const(name, value(name))
        return []
    if op == "Identity":
        w.node(name, "Identity", inputs[:1])
        return inputs[:1]
    if op in binary:
        w.node(name, "Binary", inputs[:2], func=binary[op])
        return inputs[:2]
    if op == "BiasAdd":
        bias = value(inputs[1])
        if fmt(node) == "NCHW":
            bias = bias.reshape(-1, 1, 1)
        w.const(inputs[1], bias)
        w.node(name, "Binary", inputs[:2], func="add")
        return inputs[:1]
    if op in unary:
        w.node(name, "Unary", inputs[:1], func=unary[op])
        return inputs[:1]
    if op in activation:
        w.node(name, "Activation", inputs[:1], func=activation[op])
        return inputs[:1]
    if op == "Softmax":
        w.node(name, "Softmax", inputs[:1], axis=0, inputs_orders=w.orders("NC+"))
        return inputs[:1]
    if op in ("Conv2D", "DepthwiseConv2dNative", "MaxPool", "AvgPool"):
        data_format = fmt(node)
        strides = _spatial(list(attr["strides"].list.i), data_format)
        fields: dict[str, Any] = {}
        source = inputs[0]
        padding = None
        if attr["padding"].s == b"SAME":
            fields["implicit_padding"] = "same"
        elif nodes[source].op == "Pad":
            pads = value(nodes[source].input[1])
            if (pads[:, 0] == pads[:, 1]).all():
                padding = _spatial(pads[:, 0].tolist(), data_format)
                source = _name(nodes[source].input[0])
        if op in ("MaxPool", "AvgPool"):
            w.node(
                name,
                "Pool",
                [source],
                func="max" if op == "MaxPool" else "avg",
                kernel=_spatial(list(attr["ksize"].list.i), data_format),
                strides=strides,
                padding=padding,
                inputs_orders=w.orders(order[data_format]),
                **fields,
            )
            return [source]
        groups = int(value(inputs[1]).shape[2]) if op == "DepthwiseConv2dNative" else None
        dilations = list(attr["dilations"].list.i)
        w.node(
            name,
            "Conv",
            [source, inputs[1]],
            strides=strides,
            padding=padding,
            dilation=_spatial(dilations, data_format) if dilations else None,
            number_groups=groups,
            inputs_orders=w.orders(order[data_format], "+CK"),
            **fields,
        )
        return [source, inputs[1]]
    if op == "Conv2DBackpropInput":
        data_format = fmt(node)
        fields = {"implicit_padding": "same"} if attr["padding"].s == b"SAME" else {}
        w.node(
            name,
            "ConvTranspose",
            [inputs[2], inputs[1], inputs[0]],
            strides=_spatial(list(attr["strides"].list.i), data_format),
            inputs_orders=w.orders(order[data_format], "+KC"),
            **fields,
        )
        return [inputs[2], inputs[1], inputs[0]]
    if op == "FusedBatchNorm":
        w.node(
            name,
            "BatchNorm",
            inputs[:5],
            epsilon=float(attr["epsilon"].f),
            inputs_orders=w.orders(order[fmt(node)]),
        )
        return inputs[:5]
    if op == "MatMul":
        lhs = "CN" if attr["transpose_a"].b else "NC"
        rhs = "KC" if attr["transpose_b"].b else "CK"
        w.node(name, "FullyConnected", inputs[:2], inputs_orders=w.orders(lhs, rhs))
        return inputs[:2]
    if op in reduce:
        w.node(
            name,
            "Reduce",
            inputs[:1],
            func=reduce[op],
            axes=[int(a) for a in np.ravel(value(inputs[1]))],
            keepdims=attr["keep_dims"].b,
        )
        return inputs[:1]
    if op == "Reshape":
        w.node(name, "Reshape", inputs[:2])
        return inputs[:2]
    if op == "Transpose":
        w.node(name, "Transpose", inputs[:1], permutation=value(inputs[1]).tolist())
        return inputs[:1]
    if op == "ConcatV2":
        w.node(name, "Concat", inputs[:-1], axis=int(value(inputs[-1])))
        return inputs[:-1]
    if op == "Pack":
        w.node(name, "Stack", inputs, axis=int(attr["axis"].i))
        return inputs
    if op == "Squeeze":
        w.node(name, "Squeeze", inputs[:1], axes=list(attr["squeeze_dims"].list.i))
        return inputs[:1]
    if op == "ExpandDims":
        w.node(name, "ExpandDims", inputs[:1], axis=int(value(inputs[1])))
        return inputs[:1]
    if op == "StridedSlice":
        w.node(
            name,
            "StridedSlice",
            inputs[:4],
            begin_mask=attr["begin_mask"].i,
            end_mask=attr["end_mask"].i,
            shrink_axis_mask=attr["shrink_axis_mask"].i,
        )
        return inputs[:4]
    if op == "Shape":
        w.node(name, "Shape", inputs[:1])
        return inputs[:1]
    if op == "Pad":
        w.node(name, "Pad", inputs[:2])
        return inputs[:2]
    if op == "GatherV2":
        w.node(name, "GatherV2", inputs[:2], axis=int(value(inputs[2])))
        return inputs[:2]
    if op in ("ArgMax", "ArgMin"):
        w.node(name, op, inputs[:1], axis=int(value(inputs[1])))
        return inputs[:1]
    if op == "LRN":
        w.node(
            name,
            "LRN",
            inputs[:1],
            window_size=int(attr["depth_radius"].i),
            alpha=float(attr["alpha"].f),
            beta=float(attr["beta"].f),
            k=float(attr["bias"].f),
            inputs_orders=w.orders("NC+"),
        )
        return inputs[:1]
    fields = {k: _attr(v) for k, v in attr.items() if k not in ("T", "_output_shapes")}
    w.node(name, "_" + op, inputs, **fields)
    return inputs
