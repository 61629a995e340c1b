"""Write a VGG16-shaped UFF file (about 553 MB of float32 weights) without holding its weights.

``python benchmarks/big_uff.py FOLDER`` writes ``FOLDER/vgg16.uff``: what NVIDIA's ``uff``
converter wrote for a TensorFlow VGG16 in NHWC: 13 ``Conv`` nodes (3x3 kernels stored HWIO,
orders ``N+C`` and ``+CK``, SAME padding) each followed by a bias ``Binary add`` and a ReLU
``Activation``, five 2x2 max ``Pool`` nodes, a ``Reshape`` to 1x25088 and three
``FullyConnected`` nodes (weights stored CK, as ``tf.matmul`` keeps them) with biases, the last
followed by a ``Softmax``; input ``input`` 1x224x224x3. Weights are seeded He-uniform values, so
the activations stay finite. The graph is encoded with trtimport's UFF schema; each weight's
``referenced_data`` entry is written at the protobuf wire level, its values generated and
written a few MiB at a time, so the script needs little memory.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from trtimport.importers.uff.model import ORDER_ANY_RANK, ORDER_INCREMENT
from trtimport.importers.uff.proto import uff_schema_pb2 as uff
from trtimport.onnxtools.protowire import encode_varint

#: (output channels of each conv) per block; a 2x2 max pool ends every block.
BLOCKS = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
FC = [4096, 4096, 1000]
SIDE = 224
FLOAT32 = uff.DT_FLOAT32
INT32 = uff.DT_INT32
#: Order lists: NHWC data ``N+C``, HWIO kernels ``+CK``, NC data and CK weights.
ORDERS = {
    "N+C": [0, 2, ORDER_INCREMENT, 1],
    "+CK": [2, ORDER_INCREMENT, 1, 0],
    "NC": [0, 1],
    "CK": [1, 0],
}
MetaGraph = uff.MetaGraph
_MAIN_GRAPH, _REFERENCED = 4, 5


def _orders(*specs: str) -> Any:
    listing = uff.DimOrdersList()
    for spec in specs:
        entry = listing.val.add().orders.add()
        entry.key = ORDER_ANY_RANK
        entry.value.val.extend(ORDERS[spec])
    return uff.Data(dim_orders_list=listing)


def _len_key(number: int, length: int) -> bytes:
    return encode_varint(number << 3 | 2) + encode_varint(length)


class _Graph:
    """Nodes, and the weights each Const node refers to (written after the graph)."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.weights: list[tuple[str, tuple[int, ...], float]] = []
        self.small: dict[str, Any] = {
            "orders_N+C": _orders("N+C"),
            "orders_N+C_+CK": _orders("N+C", "+CK"),
            "orders_NC_CK": _orders("NC", "CK"),
        }

    def node(self, name: str, op: str, inputs: list[str], **fields: Any) -> str:
        message = uff.Node(id=name, operation=op, inputs=inputs)
        for key, value in fields.items():
            message.fields.add(key=key, value=value)
        self.nodes.append(message)
        return name

    def weight(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        """A float32 Const node whose values are seeded uniform in ±sqrt(6 / fan_in)."""
        key = f"weights_{name}"
        self.weights.append((key, shape, float(np.sqrt(6.0 / fan_in))))
        dims = uff.Int64s(val=list(shape))
        return self.node(
            name,
            "Const",
            [],
            dtype=uff.Data(dtype=FLOAT32),
            shape=uff.Data(i_list=dims),
            values=uff.Data(ref=key),
        )


def vgg16_graph() -> _Graph:
    """The nodes of the net; the weights are listed, not made."""
    g = _Graph()
    ref = {k: uff.Data(ref=k) for k in g.small}
    x = g.node(
        "input",
        "Input",
        [],
        dtype=uff.Data(dtype=FLOAT32),
        shape=uff.Data(i_list=uff.Int64s(val=[1, SIDE, SIDE, 3])),
    )
    channels = 3
    for b, block in enumerate(BLOCKS, 1):
        for c, out in enumerate(block, 1):
            name = f"block{b}_conv{c}"
            w = g.weight(f"{name}/kernel", (3, 3, channels, out), 9 * channels)
            bias = g.weight(f"{name}/bias", (out,), 9 * channels)
            conv = g.node(
                f"{name}/Conv2D",
                "Conv",
                [x, w],
                strides=uff.Data(i_list=uff.Int64s(val=[1, 1])),
                implicit_padding=uff.Data(s="same"),
                inputs_orders=ref["orders_N+C_+CK"],
            )
            added = g.node(f"{name}/BiasAdd", "Binary", [conv, bias], func=uff.Data(s="add"))
            x = g.node(f"{name}/Relu", "Activation", [added], func=uff.Data(s="relu"))
            channels = out
        x = g.node(
            f"block{b}_pool/MaxPool",
            "Pool",
            [x],
            func=uff.Data(s="max"),
            kernel=uff.Data(i_list=uff.Int64s(val=[2, 2])),
            strides=uff.Data(i_list=uff.Int64s(val=[2, 2])),
            inputs_orders=ref["orders_N+C"],
        )
    flat = (SIDE // 32) ** 2 * channels
    g.small["weights_flatten/shape"] = uff.Data(blob=np.array([-1, flat], "<i4").tobytes())
    shape = g.node(
        "flatten/shape",
        "Const",
        [],
        dtype=uff.Data(dtype=INT32),
        shape=uff.Data(i_list=uff.Int64s(val=[2])),
        values=uff.Data(ref="weights_flatten/shape"),
    )
    x = g.node("flatten/Reshape", "Reshape", [x, shape])
    width = flat
    for i, out in enumerate(FC, 1):
        name = f"fc{i}"
        w = g.weight(f"{name}/kernel", (width, out), width)
        bias = g.weight(f"{name}/bias", (out,), width)
        mm = g.node(f"{name}/MatMul", "FullyConnected", [x, w], inputs_orders=ref["orders_NC_CK"])
        x = g.node(f"{name}/BiasAdd", "Binary", [mm, bias], func=uff.Data(s="add"))
        if i < len(FC):
            x = g.node(f"{name}/Relu", "Activation", [x], func=uff.Data(s="relu"))
        width = out
    x = g.node(
        "predictions/Softmax",
        "Softmax",
        [x],
        axis=uff.Data(i=0),
        inputs_orders=ref["orders_N+C"],
    )
    g.node("MarkOutput_0", "MarkOutput", [x])
    return g


def _write_weight(out: BinaryIO, key: str, shape: tuple[int, ...], scale: float, rng: Any) -> None:
    """One ``referenced_data`` entry: ``KeyedData { key, value: Data { blob } }``."""
    count = int(np.prod(shape))
    blob = 4 * count
    key_field = _len_key(1, len(key)) + key.encode()
    data_body = len(_len_key(9, blob)) + blob
    entry_body = len(key_field) + len(_len_key(2, data_body)) + data_body
    out.write(_len_key(_REFERENCED, entry_body) + key_field)
    out.write(_len_key(2, data_body) + _len_key(9, blob))
    chunk = 1 << 20  # values per write: 4 MiB
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        values = (rng.random(n, np.float32) * 2 - 1) * np.float32(scale)
        out.write(values.astype("<f4").tobytes())


def write_big_uff(folder: Path) -> Path:
    """Write ``folder/vgg16.uff``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vgg16.uff"
    g = vgg16_graph()
    meta = MetaGraph(version=1, descriptor_core_version=1)
    meta.descriptors.add(id="tensorflow_extension", version=1)
    meta.graphs.add(id="main", nodes=list(reversed(g.nodes)))
    for key, value in g.small.items():
        meta.referenced_data.add(key=key, value=value)
    rng = np.random.default_rng(0)
    with path.open("wb") as out:
        out.write(meta.SerializeToString())
        for key, shape, scale in g.weights:
            _write_weight(out, key, shape, scale, rng)
    return path


def main() -> None:
    """Command line: the folder."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    path = write_big_uff(args.folder)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
