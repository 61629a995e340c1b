"""A ResNet-50-shaped ONNX model (25.5 M random float32 weights, 1x3x224x224) for benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from trtimport.onnxtools.graph import GraphBuilder


class _Graph:
    """A :class:`GraphBuilder` whose names come from one counter (``w1``, ``conv2``...)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.graph = GraphBuilder()
        self.count = 0

    def name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}{self.count}"

    def weight(self, *shape: int) -> str:
        name = self.name("w")
        scale = np.sqrt(2.0 / max(1, int(np.prod(shape[1:]))))
        data = (self.rng.standard_normal(shape, dtype=np.float32) * scale).astype(np.float32)
        self.graph.initializers[name] = data
        return name

    def op(self, kind: str, inputs: list[str], out: str | None = None, **attrs: object) -> str:
        name = self.name(kind.lower())
        return self.graph.node(kind, inputs, [out or name], name=name, **attrs)[0]

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, relu: bool = True) -> str:
        w, b = self.weight(cout, cin, k, k), self.weight(cout)
        pad = k // 2
        y = self.op(
            "Conv", [x, w, b], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4
        )
        return self.op("Relu", [y]) if relu else y

    def bottleneck(self, x: str, cin: int, width: int, stride: int) -> str:
        cout = width * 4
        y = self.conv(x, cin, width, 1)
        y = self.conv(y, width, width, 3, stride)
        y = self.conv(y, width, cout, 1, relu=False)
        skip = self.conv(x, cin, cout, 1, stride, relu=False) if stride != 1 or cin != cout else x
        return self.op("Relu", [self.op("Add", [y, skip])])


def resnet50(seed: int = 0) -> onnx.ModelProto:
    """The model: stem, 3-4-6-3 bottleneck stages, global pool, 1000-way classifier."""
    g = _Graph(seed)
    x = g.conv("input", 3, 64, 7, 2)
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            x = g.bottleneck(x, cin, width, stride if i == 0 else 1)
            cin = width * 4
    x = g.op("GlobalAveragePool", [x])
    x = g.op("Flatten", [x], axis=1)
    fc_w, fc_b = g.weight(2048, 1000), g.weight(1000)
    g.op("Gemm", [x, fc_w, fc_b], out="logits")
    g.graph.add_input("input", (1, 3, 224, 224))
    g.graph.add_output("logits", (1, 1000))
    graph = onnx.GraphProto.FromString(g.graph.graph("resnet50_random"))
    graph.initializer.extend(numpy_helper.from_array(a, n) for n, a in g.graph.initializers.items())
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def write(path: Path) -> Path:
    """Write the model to ``path``; returns the path."""
    model = resnet50()
    onnx.save(model, str(path))
    return path


def parameter_count(model: onnx.ModelProto) -> int:
    """Number of weights in the model's initializers."""
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer)
