"""Small but real conv nets built with onnx.helper for the precision/quantization tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from trtimport.onnxtools.graph import GraphBuilder


class NetBuilder:
    """Appends nodes and He-initialised weights, named ``base_N`` from one counter, to a
    :class:`GraphBuilder`."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.graph = GraphBuilder()
        self.count = 0

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, value: np.ndarray, base: str = "w") -> str:
        name = self.name(base)
        self.graph.initializers[name] = np.asarray(value)
        return name

    def op(self, op: str, inputs: list[str], n_out: int = 1, **attrs: object) -> str:
        outs = [self.name(op.lower()) for _ in range(n_out)]
        self.graph.node(op, inputs, outs, name=self.name(op), **attrs)
        return outs[0]

    def conv(self, x: str, cin: int, cout: int, k: int = 3, stride: int = 1, group: int = 1) -> str:
        fan_in = cin // group * k * k
        w = self.rng.normal(0, np.sqrt(2 / fan_in), (cout, cin // group, k, k)).astype(np.float32)
        b = self.rng.normal(0, 0.05, cout).astype(np.float32)
        pad = k // 2
        return self.op(
            "Conv", [x, self.const(w), self.const(b, "b")],
            kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=group,
        )  # fmt: skip

    def bn(self, x: str, c: int) -> str:
        r = self.rng
        params = [
            r.uniform(0.5, 1.5, c), r.normal(0, 0.1, c), r.normal(0, 0.1, c), r.uniform(0.5, 2, c)
        ]  # fmt: skip
        names = [self.const(p.astype(np.float32), "bn") for p in params]
        return self.op("BatchNormalization", [x, *names], epsilon=1e-5)

    def gemm(self, x: str, cin: int, cout: int) -> str:
        w = self.rng.normal(0, np.sqrt(2 / cin), (cout, cin)).astype(np.float32)
        b = self.rng.normal(0, 0.05, cout).astype(np.float32)
        return self.op("Gemm", [x, self.const(w), self.const(b, "b")], transB=1)

    def model(
        self, x_shape: list[int | str], out: str | list[str], opset: int = 17
    ) -> onnx.ModelProto:
        g = self.graph
        g.add_input("x", x_shape)  # type: ignore[arg-type]  # str: a named dimension
        for o in [out] if isinstance(out, str) else out:
            g.add_output(o, None)
        graph = onnx.GraphProto.FromString(g.graph("net"))
        graph.initializer.extend(numpy_helper.from_array(a, n) for n, a in g.initializers.items())
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        inferred = onnx.shape_inference.infer_shapes(model).graph.output
        for vi, done in zip(model.graph.output, inferred, strict=True):
            vi.CopyFrom(done)
        onnx.checker.check_model(model)
        return model


def resnet_net(seed: int = 0, batch: int = 1) -> onnx.ModelProto:
    """Conv-BN-ReLU stem, two residual blocks, a strided stage, global pool, FC, softmax."""
    b = NetBuilder(seed)
    x = b.op("Relu", [b.bn(b.conv("x", 3, 16), 16)])
    for _ in range(2):
        y = b.op("Relu", [b.bn(b.conv(x, 16, 16), 16)])
        y = b.bn(b.conv(y, 16, 16), 16)
        x = b.op("Relu", [b.op("Add", [x, y])])
    x = b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = b.op("Relu", [b.conv(x, 16, 32, stride=2)])
    x = b.op("Relu", [b.conv(x, 32, 32, group=32)])
    x = b.op("GlobalAveragePool", [x])
    x = b.op("Flatten", [x], axis=1)
    x = b.op("Softmax", [b.gemm(x, 32, 10)], axis=1)
    return b.model([batch, 3, 32, 32], x)


def normalisation_net(seed: int = 1) -> onnx.ModelProto:
    """InstanceNorm, LRN, a hand-written mean/variance normalisation, Exp/Log, LogSoftmax."""
    b = NetBuilder(seed)
    x = b.op("Relu", [b.conv("x", 3, 8)])
    scale, bias = b.const(np.ones(8, np.float32)), b.const(np.zeros(8, np.float32))
    x = b.op("InstanceNormalization", [x, scale, bias], epsilon=1e-5)
    x = b.op("LRN", [x], size=3, alpha=1e-4, beta=0.75, bias=1.0)
    x = b.conv(x, 8, 8)
    mean = b.op("ReduceMean", [x, b.const(np.array([2, 3], np.int64))], keepdims=1)
    centered = b.op("Sub", [x, mean])
    var = b.op(
        "ReduceMean", [b.op("Mul", [centered, centered]), b.const(np.array([2, 3], np.int64))]
    )
    std = b.op("Sqrt", [b.op("Add", [var, b.const(np.array(1e-5, np.float32))])])
    x = b.op("Div", [centered, std])
    x = b.op(
        "Log", [b.op("Add", [b.op("Exp", [b.op("Tanh", [x])]), b.const(np.array(1.0, np.float32))])]
    )
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    x = b.op("LogSoftmax", [b.gemm(x, 8, 5)], axis=1)
    return b.model([1, 3, 16, 16], x, opset=18)


def mlp_net(seed: int = 2) -> onnx.ModelProto:
    """Flatten, MatMul with a constant weight, LayerNormalization, ReduceSum, Softmax, Pow."""
    b = NetBuilder(seed)
    x = b.op("Flatten", ["x"], axis=1)
    w = b.rng.normal(0, np.sqrt(2 / 48), (48, 32)).astype(np.float32)
    x = b.op("Relu", [b.op("MatMul", [x, b.const(w)])])
    gamma, beta = b.const(np.ones(32, np.float32)), b.const(np.zeros(32, np.float32))
    x = b.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-5)
    x = b.gemm(x, 32, 16)
    s = b.op(
        "ReduceSum",
        [b.op("Pow", [x, b.const(np.array(2.0, np.float32))]), b.const(np.array([1], np.int64))],
    )
    y = b.op("Softmax", [x], axis=-1)
    return b.model([1, 3, 4, 4], [y, s])


NETS = {"resnet": resnet_net, "normalisation": normalisation_net, "mlp": mlp_net}


def lenet_from_caffe(
    prototxt: str, caffemodel: str, batch: int = 1, opset: int = 17
) -> onnx.ModelProto:
    """Caffe's MNIST LeNet as ONNX, with the real weights read by OpenCV's Caffe importer.

    The Reshape before ``ip1`` bakes the batch in, as exporters of fixed-batch models do.
    """
    import cv2

    net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)

    def blobs(layer: str) -> list[np.ndarray]:
        return [np.asarray(b, np.float32) for b in net.getLayer(net.getLayerId(layer)).blobs]

    b = NetBuilder(0)
    x = "x"
    for layer in ("conv1", "conv2"):
        w, bias = blobs(layer)
        x = b.op(
            "Conv", [x, b.const(w), b.const(bias.reshape(-1), "b")], kernel_shape=list(w.shape[2:])
        )
        x = b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = b.op("Reshape", [x, b.const(np.array([batch, 800], np.int64), "shape")])
    for layer in ("ip1", "ip2"):
        w, bias = blobs(layer)
        x = b.op("Gemm", [x, b.const(w), b.const(bias.reshape(-1), "b")], transB=1)
        if layer == "ip1":
            x = b.op("Relu", [x])
    x = b.op("Softmax", [x], axis=1)
    return b.model([batch, 1, 28, 28], x, opset=opset)
