"""Every builder helper, exported and run by onnxruntime, against the same net written in ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(7)


def _weights() -> dict[str, np.ndarray]:
    def r(*shape: int) -> np.ndarray:
        return RNG.standard_normal(shape).astype(np.float32)

    return {
        "c/w": r(4, 3, 3, 3),
        "c/b": r(4),
        "g/w": r(4, 2, 3, 3),
        "bn/mean": r(4),
        "bn/var": np.abs(r(4)) + 0.5,
        "bn/gamma": r(4),
        "bn/beta": r(4),
        "d/w": r(4, 2, 2, 2),
        "d/b": r(2),
        "s/s": r(6),
        "s/b": r(6),
        "fc/w": r(10, 384),
        "fc/b": r(10),
    }


SCRIPT = """\
from trtimport.netbuild import NetBuilder


def build_network(network, weights, trt):
    nb = NetBuilder(network, weights, trt)
    x = nb.input("x", (1, 3, 8, 8))
    c = nb.conv(x, 4, 3, kernel="c/w", bias="c/b", padding=1, name="conv")
    g = nb.conv(c, 4, 3, kernel="g/w", groups=2, dilation=2, padding=2, name="gconv")
    b = nb.batch_norm(g, mean="bn/mean", var="bn/var", gamma="bn/gamma", beta="bn/beta",
                      eps=1e-3, name="bn")
    a = nb.activation(b, "leaky_relu", alpha=0.1, name="act")
    p = nb.pool(a, "max", 2, stride=2, name="pool")
    d = nb.deconv(p, 2, 2, kernel="d/w", bias="d/b", stride=2, name="deconv")
    ap = nb.pool(d, "avg", 3, stride=1, padding=1, name="avgpool")
    cat = nb.concat([ap, c], axis=1, name="cat")
    s = nb.scale(cat, scale="s/s", shift="s/b", name="scale")
    e = nb.elementwise(s, cat, "prod", name="mul")
    r = nb.reshape(e, (1, 6, 64), name="reshape")
    f = nb.fully_connected(e, 10, weight="fc/w", bias="fc/b", name="fc")
    nb.mark_output(nb.softmax(f, axis=1, name="prob"))
    nb.mark_output(r)
"""


def _reference(w: dict[str, np.ndarray]) -> bytes:
    import onnx
    from onnx import helper, numpy_helper

    h = helper.make_node
    nodes = [
        h("Conv", ["x", "c/w", "c/b"], ["conv"], pads=[1, 1, 1, 1]),
        h("Conv", ["conv", "g/w"], ["gconv"], group=2, dilations=[2, 2], pads=[2, 2, 2, 2]),
        h(
            "BatchNormalization",
            ["gconv", "bn/gamma", "bn/beta", "bn/mean", "bn/var"],
            ["bn"],
            epsilon=1e-3,
        ),
        h("LeakyRelu", ["bn"], ["act"], alpha=0.1),
        h("MaxPool", ["act"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
        h("ConvTranspose", ["pool", "d/w", "d/b"], ["deconv"], strides=[2, 2]),
        h(
            "AveragePool",
            ["deconv"],
            ["avgpool"],
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            count_include_pad=0,
        ),
        h("Concat", ["avgpool", "conv"], ["cat"], axis=1),
        h("Mul", ["cat", "s4"], ["scaled"]),
        h("Add", ["scaled", "b4"], ["scale"]),
        h("Mul", ["scale", "cat"], ["mul"]),
        h("Reshape", ["mul", "shape"], ["reshape"]),
        h("Flatten", ["mul"], ["flat"]),
        h("Gemm", ["flat", "fc/w", "fc/b"], ["fc"], transB=1),
        h("Softmax", ["fc"], ["prob"], axis=1),
    ]
    inits = {k: v for k, v in w.items() if not k.startswith("s/")}
    inits["s4"] = w["s/s"].reshape(1, 6, 1, 1)
    inits["b4"] = w["s/b"].reshape(1, 6, 1, 1)
    inits["shape"] = np.array([1, 6, 64], np.int64)
    graph = helper.make_graph(
        nodes,
        "reference",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [
            helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
            for n in ("prob", "reshape")
        ],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_every_helper_matches_plain_onnx(tmp_path: Path) -> None:
    """conv (groups, dilation), batch norm, activation, pools, deconv, concat, scale,
    elementwise, reshape, fully connected and softmax compute what the ONNX ops do."""
    from trtimport.core.options import ImportOptions
    from trtimport.export.writer import export_network_onnx
    from trtimport.populate import import_model

    w = _weights()
    np.savez(tmp_path / "w.npz", **w)
    (tmp_path / "net.py").write_text(SCRIPT)
    with import_model(
        tmp_path / "net.py", options=ImportOptions(weights=tmp_path / "w.npz")
    ) as imp:
        names = {imp.network.get_layer(i).name for i in range(imp.network.num_layers)}
        exported = export_network_onnx(imp.network, tmp_path / "net.onnx", imp.backend)
    assert {"conv", "gconv", "bn", "act", "pool", "deconv", "avgpool", "cat", "scale"} <= names
    x = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
    got = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"]).run(
        ["prob", "reshape"], {"x": x}
    )
    want = ort.InferenceSession(_reference(w), providers=["CPUExecutionProvider"]).run(
        ["prob", "reshape"], {"x": x}
    )
    for g, r in zip(got, want, strict=True):
        assert g.shape == r.shape
        assert np.max(np.abs(g - r)) / np.max(np.abs(r)) <= 1e-5


def test_unknown_activation_is_a_usage_error(tmp_path: Path) -> None:
    """A typo in a helper argument names the valid choices."""
    from trtimport.core.backend import get_backend
    from trtimport.errors import UsageError
    from trtimport.importers.script.weights import Weights
    from trtimport.netbuild import NetBuilder

    trt = get_backend().trt
    network = trt.Builder(trt.Logger()).create_network(0)
    nb = NetBuilder(network, Weights({}), trt)
    x = nb.input("x", (1, 2, 4, 4))
    with pytest.raises(UsageError, match="unknown activation 'rellu'; use one of relu"):
        nb.activation(x, "rellu", name="a")
