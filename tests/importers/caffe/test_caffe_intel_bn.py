"""Intel Caffe's BatchNorm fields and quantization_param.

BatchNorm is checked against a numpy transcription of Intel's MKL-DNN BatchNorm forward at test
time (``MKLDNNBatchNormLayer``: blobs mean, variance, factor, then scale and shift; stored
statistics divided by the factor, or each group of ``stats_batch_size`` images' own statistics
when ``use_global_stats: false``; a ReLU post-op), and against OpenCV 4.14 where OpenCV runs the
same arithmetic (NVCaffe's ``scale_bias`` is the same blob layout).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from caffe_harness import close, fork_and_opencv, layer, net_text, rng, run
from test_layers_conv import conv_ref

from trtimport.errors import TrtImportError, UnsupportedLayerError
from trtimport.importers.caffe.convert import caffe_to_onnx
from trtimport.importers.caffe.make_weights import make_caffe_weights
from trtimport.importers.caffe.parse import load_caffe

C = 4


def intel_batch_norm(
    x: np.ndarray,
    blobs: list[np.ndarray],
    *,
    eps: float = 1e-5,
    use_global_stats: bool = True,
    bias_term: bool = True,
    relu: bool = False,
    stats_batch_size: int = 0,
) -> np.ndarray:
    """MKLDNNBatchNormLayer::Forward_cpu at TEST, written out per channel and per image group."""
    n, c = x.shape[:2]
    flat = x.reshape(n, c, -1).astype(np.float64)
    scale = blobs[3] if len(blobs) > 3 else np.ones(c)
    shift = blobs[4] if len(blobs) > 4 and bias_term else np.zeros(c)
    group = stats_batch_size if (not use_global_stats and stats_batch_size > 0) else n
    out = np.empty_like(flat)
    for start in range(0, n, group):
        part = flat[start : start + group]
        for ch in range(c):
            if use_global_stats:
                factor = 0.0 if blobs[2][0] == 0 else 1.0 / blobs[2][0]
                mean, var = blobs[0][ch] * factor, blobs[1][ch] * factor
            else:
                mean = part[:, ch].mean()
                var = ((part[:, ch] - mean) ** 2).mean()
            y = scale[ch] * (part[:, ch] - mean) / np.sqrt(var + eps) + shift[ch]
            out[start : start + group, ch] = np.maximum(y, 0) if relu else y
    return out.reshape(x.shape)


def _blobs(count: int, seed: int = 40) -> list[np.ndarray]:
    r = rng(seed)
    blobs = [r.standard_normal(C), r.uniform(0.5, 2, C), np.array([0.8])]
    return [*blobs, r.uniform(0.5, 1.5, C), r.standard_normal(C)][:count]


X = rng(41).standard_normal((4, C, 3, 5)) * 2 + 0.5


@pytest.mark.parametrize(
    ("fields", "count", "bias_term", "relu"),
    [
        ("", 5, True, False),  # use_weight_bias is Intel's default
        ("use_weight_bias: true bias_term: true", 5, True, False),
        ("use_weight_bias: true bias_term: false", 4, False, False),
        ("relu: true engine: MKLDNN", 5, True, True),
        ("use_weight_bias: false relu: true", 3, True, True),
    ],
)
def test_intel_layout_with_stored_statistics(
    tmp_path: Path, fields: str, count: int, bias_term: bool, relu: bool
) -> None:
    blobs = _blobs(count)
    params = f"batch_norm_param {{ eps: 0.001 {fields} }}"
    out = run(
        tmp_path, net_text(layer("BatchNorm", params), {"x": X.shape}), {"x": X}, {"L": blobs}
    )
    close(out["y"], intel_batch_norm(X, blobs, eps=1e-3, bias_term=bias_term, relu=relu))


@pytest.mark.parametrize(
    ("fields", "net_head", "group"),
    [
        ("", "", 0),  # BVLC and Intel: the whole batch's statistics
        ("stats_batch_size: 2", "", 2),
        ("stats_batch_size: 2", "bn_stats_batch_size: 1\n", 1),  # the net's value wins
        ("stats_batch_size: 4", "", 4),
    ],
)
def test_batch_statistics_at_test_time(
    tmp_path: Path, fields: str, net_head: str, group: int
) -> None:
    blobs = _blobs(5, seed=42)
    params = f"batch_norm_param {{ use_global_stats: false eps: 0.01 {fields} }}"
    text = net_head + net_text(layer("BatchNorm", params), {"x": X.shape})
    out = run(tmp_path, text, {"x": X}, {"L": blobs})
    expected = intel_batch_norm(X, blobs, eps=0.01, use_global_stats=False, stats_batch_size=group)
    close(out["y"], expected)


def test_caffe_engine_ignores_stats_batch_size(tmp_path: Path) -> None:
    """Intel's own (CAFFE) engine BatchNorm does not read stats_batch_size."""
    params = 'batch_norm_param { use_global_stats: false stats_batch_size: 2 } engine: "CAFFE"'
    out = run(
        tmp_path, net_text(layer("BatchNorm", params), {"x": X.shape}), {"x": X}, {"L": _blobs(3)}
    )
    close(out["y"], intel_batch_norm(X, _blobs(3), use_global_stats=False))


def test_intel_layout_matches_opencv(tmp_path: Path) -> None:
    """Intel's five-blob BatchNorm + its fused ReLU against OpenCV running NVCaffe's scale_bias
    (the same blobs) followed by a ReLU layer, on one caffemodel from make-weights."""
    head = 'input: "x"\ninput_shape { dim: 1 dim: 3 dim: 6 dim: 6 }\n'
    conv = (
        'layer { name: "c" type: "Convolution" bottom: "x" top: "c" '
        "convolution_param { num_output: 4 kernel_size: 3 } }\n"
    )
    intel = (
        head
        + conv
        + (
            'layer { name: "bn" type: "BatchNorm" bottom: "c" top: "y" batch_norm_param '
            "{ use_weight_bias: true bias_term: true relu: true filler { value: 1 } "
            "bias_filler { value: 0 } engine: MKLDNN } }\n"
        )
    )
    plain = (
        head
        + conv
        + (
            'layer { name: "bn" type: "BatchNorm" bottom: "c" top: "b" '
            "batch_norm_param { scale_bias: true } }\n"
            'layer { name: "r" type: "ReLU" bottom: "b" top: "y" }\n'
        )
    )
    x = rng(43).standard_normal((1, 3, 6, 6))
    ours, reference = fork_and_opencv(tmp_path, intel, plain, x, "y", opencv_output="r", seed=3)
    assert (reference == 0).any() and (reference > 0).any()  # the ReLU does something
    close(ours, reference)


def test_make_weights_writes_intel_blobs(tmp_path: Path) -> None:
    text = net_text(
        layer("BatchNorm", "batch_norm_param { use_weight_bias: true bias_term: false }"),
        {"x": (1, C, 2, 2)},
    )
    (tmp_path / "n.prototxt").write_text(text)
    weights = make_caffe_weights(tmp_path / "n.prototxt", tmp_path / "w.caffemodel", seed=1)
    blobs = load_caffe(None, weights.path).weights["L"]
    assert [b.size for b in blobs] == [C, C, 1, C]
    caffe_to_onnx(load_caffe(tmp_path / "n.prototxt", weights.path), tmp_path / "n.onnx")


@pytest.mark.parametrize(
    ("params", "count", "match"),
    [
        ("batch_norm_param { engine: CAFFE }", 5, "blob order is unknown"),
        ('batch_norm_param { } engine: "CAFFE"', 4, "blob order is unknown"),
        ("batch_norm_param { bias_term: false }", 5, "bias_term: false but"),
    ],
)
def test_ambiguous_intel_blobs_are_refused(
    tmp_path: Path, params: str, count: int, match: str
) -> None:
    text = net_text(layer("BatchNorm", params), {"x": X.shape})
    with pytest.raises(UnsupportedLayerError, match=match):
        run(tmp_path, text, {"x": X}, {"L": _blobs(count)})


QUANTIZED = (
    "convolution_param { num_output: 4 kernel_size: 3 pad: 1 } "
    "quantization_param { bw_layer_in: 8 bw_layer_out: 8 bw_params: 8 "
    "scale_in: 8.51 scale_out: 7.53 scale_params: 120 scale_params: 95.5 "
    "scale_params: 101 scale_params: 88 }"
)
XQ = rng(44).standard_normal((1, 3, 6, 6))
WQ = [rng(45).standard_normal((4, 3, 3, 3)), rng(46).standard_normal(4)]


@pytest.mark.parametrize("engine", ["", "MKLDNN", "MKLDNN:CPU", "MKL2017"])
def test_quantized_convolution_is_refused(tmp_path: Path, engine: str) -> None:
    head = f'engine: "{engine}"\n' if engine else ""
    text = head + net_text(layer("Convolution", QUANTIZED), {"x": XQ.shape})
    with pytest.raises(UnsupportedLayerError, match=r'INT8 .*add engine: "CAFFE"'):
        run(tmp_path, text, {"x": XQ}, {"L": WQ})


@pytest.mark.parametrize(
    "where",
    ['engine: "CAFFE"\n', "layer", "dilated"],
)
def test_quantization_param_without_effect(tmp_path: Path, where: str) -> None:
    """Intel's own engine ignores quantization_param; so does a dilated convolution that an
    engine string would put on MKL-DNN (Intel's factory falls back to CAFFE)."""
    params, dilation = QUANTIZED, 1
    if where == "layer":
        params += ' engine: "CAFFE"'
    if where == "dilated":
        params = params.replace("pad: 1", "pad: 2 dilation: 2")
        dilation = 2
    head = where if where.startswith("engine") else ""
    text = head + net_text(layer("Convolution", params), {"x": XQ.shape})
    out = run(tmp_path, text, {"x": XQ}, {"L": WQ})["y"]
    close(out, conv_ref(XQ, WQ[0], WQ[1], (1, 1), (dilation,) * 2, (dilation,) * 2, 1))


def test_quantization_param_on_other_layers_changes_nothing(tmp_path: Path) -> None:
    """Only Intel's MKL-DNN convolution reads it (its pooling just forwards what it gets)."""
    params = (
        "pooling_param { pool: MAX kernel_size: 2 stride: 2 } quantization_param { bw_layer_in: 8 }"
    )
    x = rng(47).standard_normal((1, 2, 4, 4))
    out = run(tmp_path, net_text(layer("Pooling", params), {"x": x.shape}), {"x": x})["y"]
    close(out, x.reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5)))


MULTINODE_NET = """name: "mn"
multinode { model_parallel { layer_from: "c1" layer_to: "fc" num_nodes: 2 model_parts: 2 }
  compress_layer_type_list { layer_type: "Convolution" } }
compile_net_state { bn_scale_merge: false }
layer { name: "data" type: "Input" top: "x" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "c1" type: "Convolution" bottom: "x" top: "c1"
  multinode { num_nodes: 2 model_parts: 2 }
  mn_grad_compress_param { param_grad_compress_enable: true param_grad_compress_enable: false }
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "msra" scale: 2 } } }
layer { name: "r1" type: "ReLU" bottom: "c1" top: "c1" relu_param { fuse: true } }
layer { name: "a" type: "MnActivation" bottom: "c1" top: "a"
  mn_activation_param { num_nodes_in: 2 num_nodes_out: 1 model_parts_in: 2 need_reduce: true } }
layer { name: "fc" type: "InnerProduct" bottom: "a" top: "fc"
  inner_product_param { num_output: 5 } }
"""


def test_multinode_fields_are_known(tmp_path: Path) -> None:
    """The schema knows Intel's multinode, compile and training-only fields (no unknown-field
    problem); an MnActivation layer is still a layer type without a converter, named as such."""
    (tmp_path / "mn.prototxt").write_text(MULTINODE_NET)
    model = load_caffe(tmp_path / "mn.prototxt", None)
    assert model.problems == []
    with pytest.raises(UnsupportedLayerError) as err:
        caffe_to_onnx(model, tmp_path / "mn.onnx")
    assert "MnActivation" in str(err.value) and "unknown field" not in str(err.value)


def test_multinode_fields_change_nothing(tmp_path: Path) -> None:
    """Without its MnActivation layer the net gives what OpenCV gives for it without them."""
    intel = MULTINODE_NET.replace(ACTIVATION, "").replace('bottom: "a"', 'bottom: "c1"')
    assert "MnActivation" not in intel
    x = rng(48).standard_normal((1, 3, 8, 8))
    close(*fork_and_opencv(tmp_path, intel, PLAIN_NET, x, "fc", seed=2))


ACTIVATION = """layer { name: "a" type: "MnActivation" bottom: "c1" top: "a"
  mn_activation_param { num_nodes_in: 2 num_nodes_out: 1 model_parts_in: 2 need_reduce: true } }
"""
PLAIN_NET = """name: "mn"
layer { name: "data" type: "Input" top: "x" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "c1" type: "Convolution" bottom: "x" top: "c1"
  convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "r1" type: "ReLU" bottom: "c1" top: "c1" }
layer { name: "fc" type: "InnerProduct" bottom: "c1" top: "fc"
  inner_product_param { num_output: 5 } }
"""


def test_intel_filler_field_7_in_binary_is_not_scale_bias() -> None:
    """Intel's BatchNorm `filler` is field 7, a message; NVCaffe's scale_bias (7 here) is a bool.
    A caffemodel written by Intel Caffe still parses: the mismatched wire type is kept aside as
    an unknown field and scale_bias stays unset, while Intel's own fields read as they were."""
    from trtimport.importers.caffe.proto import caffe_pb2

    filler = caffe_pb2.FillerParameter(value=1.0).SerializeToString()
    use_weight_bias_false = bytes([5 << 3, 0])
    param = caffe_pb2.BatchNormParameter()
    param.ParseFromString(bytes([7 << 3 | 2, len(filler)]) + filler + use_weight_bias_false)
    assert not param.HasField("scale_bias")
    assert param.HasField("use_weight_bias") and not param.use_weight_bias


@pytest.mark.parametrize("scale_bias_term", [True, False])
def test_scale_folded_into_batch_norm_by_intel(tmp_path: Path, scale_bias_term: bool) -> None:
    """Intel Caffe's net compiler moves the blobs of the Scale after a BatchNorm into it and
    drops the Scale, so its caffemodels hold BatchNorm with 5 (or 4) blobs and no Scale."""
    term = "true" if scale_bias_term else "false"
    text = net_text(
        layer("BatchNorm", "batch_norm_param { eps: 0.001 }", ("x",), ("b",), name="bn")
        + layer("Scale", f"scale_param {{ bias_term: {term} }}", ("b",), ("b",), name="sc")
        + layer("ReLU", "", ("b",), ("y",), name="r"),
        {"x": X.shape},
    )
    blobs = _blobs(5 if scale_bias_term else 4, seed=49)
    out = run(tmp_path, text, {"x": X}, {"bn": blobs})
    close(out["y"], intel_batch_norm(X, blobs, eps=1e-3, bias_term=scale_bias_term, relu=True))


def test_a_scale_without_blobs_elsewhere_still_needs_them(tmp_path: Path) -> None:
    text = net_text(
        layer("BatchNorm", "", ("x",), ("b",), name="bn")
        + layer("ReLU", "", ("b",), ("b",), name="r")
        + layer("Scale", "", ("b",), ("y",), name="sc"),
        {"x": X.shape},
    )
    with pytest.raises(TrtImportError, match=r"layer .sc. .Scale.*needs 1 weight blob"):
        run(tmp_path, text, {"x": X}, {"bn": _blobs(5)})


def test_every_quantized_convolution_is_listed_at_once(tmp_path: Path) -> None:
    text = net_text(
        layer("Convolution", QUANTIZED, ("x",), ("y",), name="q1")
        + layer(
            "Convolution",
            QUANTIZED.replace("kernel_size: 3 pad: 1", "kernel_size: 1"),
            ("x",),
            ("z",),
            name="q2",
        ),
        {"x": XQ.shape},
    )
    with pytest.raises(UnsupportedLayerError) as err:
        run(tmp_path, text, {"x": XQ}, {"q1": WQ, "q2": [np.ones((4, 3, 1, 1)), np.zeros(4)]})
    message = str(err.value)
    assert "layer 'q1'" in message and "layer 'q2'" in message
    assert message.count(": quantization_param: Intel Caffe") == 2
    assert "input at scale 8.51, weights" in message
    assert "trtimport_register_caffe_layers" not in message  # Convolution has a converter


def test_intel_batch_norm_builds_with_tensorrt(tmp_path: Path) -> None:
    """Batch statistics in groups, the MKL-DNN layout and the fused ReLU build with TensorRT."""
    import trtimport

    text = net_text(
        layer(
            "BatchNorm",
            "batch_norm_param { use_global_stats: false stats_batch_size: 2 "
            "use_weight_bias: true relu: true }",
            name="bn",
        ),
        {"x": X.shape},
    )
    (tmp_path / "bn.prototxt").write_text(text)
    weights = make_caffe_weights(tmp_path / "bn.prototxt", tmp_path / "bn.caffemodel", seed=4)
    model = load_caffe(tmp_path / "bn.prototxt", weights.path)
    conversion = caffe_to_onnx(model, tmp_path / "bn.onnx")
    result = trtimport.convert(
        conversion.path,
        tmp_path / "bn.engine",
        build_options=trtimport.BuildOptions(progress=False),
    )
    assert result.engine_bytes and [t.name for t in result.outputs] == ["y"]


def test_quantized_net_fails_on_the_command_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    prototxt = tmp_path / "q.prototxt"
    prototxt.write_text(net_text(layer("Convolution", QUANTIZED, name="q1"), {"x": XQ.shape}))
    weights = tmp_path / "q.caffemodel"
    assert cli("caffe", "make-weights", str(prototxt), "-o", str(weights)).returncode == 0
    done = cli(str(prototxt), "--weights", str(weights), "-o", str(tmp_path / "q.engine"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"layer 'q1' (Convolution, {prototxt}:3): quantization_param" in done.stderr
    assert not (tmp_path / "q.engine").exists()
