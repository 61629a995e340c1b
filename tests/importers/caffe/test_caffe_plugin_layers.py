"""Custom Caffe layer converters from plugins, registered on a fresh manager per test."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from caffe_harness import close, layer, net_text, rng

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))

import fake_caffe_layers

import trtimport
from trtimport.errors import PluginLoadError, UnsupportedLayerError
from trtimport.importers.caffe.convert import caffe_to_onnx
from trtimport.importers.caffe.parse import load_caffe
from trtimport.importers.caffe.proto import caffe_pb2
from trtimport.importers.caffe.registry import build_registry
from trtimport.plugins.manager import load_plugins

TEXT = net_text(
    layer("Mish", "", ("x",), ("m",), name="mish1") + layer("ReLU", "", ("m",), ("m",), name="r"),
    {"x": (1, 3, 4, 4)},
)


def _model(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "mish.prototxt"
    path.write_text(TEXT)
    return load_caffe(path, None)


def test_without_the_plugin_the_layer_is_unsupported(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnsupportedLayerError, match=r"layer 'mish1' \(Mish, .*mish.prototxt:3\)"):
        caffe_to_onnx(_model(tmp_path), tmp_path / "m.onnx", plugins=load_plugins())


def test_plugin_converter_converts_and_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    plugins = load_plugins(extra_plugins=[fake_caffe_layers.MishPlugin()])
    conversion = caffe_to_onnx(_model(tmp_path), tmp_path / "m.onnx", plugins=plugins)
    x = rng(70).standard_normal((1, 3, 4, 4)).astype(np.float32)
    session = ort.InferenceSession(str(conversion.path), providers=["CPUExecutionProvider"])
    (y,) = session.run(["m"], {"x": x})
    close(y, np.maximum(x * np.tanh(np.log1p(np.exp(x))), 0))


def test_plugin_converter_through_the_pipeline_builds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    prototxt = tmp_path / "mish.prototxt"
    prototxt.write_text(TEXT)
    weights = tmp_path / "mish.caffemodel"
    plugins = load_plugins(extra_plugins=[fake_caffe_layers.MishPlugin()])
    stored = caffe_pb2.NetParameter(name="mish")
    stored.layer.add(name="mish1", type="Mish")  # a layer without weight blobs
    weights.write_bytes(stored.SerializeToString())
    result = trtimport.convert(
        prototxt,
        tmp_path / "m.engine",
        plugins=plugins,
        import_options=trtimport.ImportOptions(weights=weights),
        build_options=trtimport.BuildOptions(progress=False),
    )
    assert [t.name for t in result.outputs] == ["m"] and result.engine_bytes


def test_registering_a_builtin_type_again_names_both_plugins() -> None:
    plugins = load_plugins(extra_plugins=[fake_caffe_layers.ReluOverridePlugin()])
    with pytest.raises(PluginLoadError) as info:
        build_registry(plugins)
    message = str(info.value)
    assert "'ReLU' is registered twice" in message
    assert "trtimport.importers.caffe" in message and "ReluOverridePlugin" in message


def test_two_plugins_registering_one_type_is_an_error() -> None:
    plugins = load_plugins(
        extra_plugins=[fake_caffe_layers.MishPlugin(), fake_caffe_layers.BrokenConverterPlugin()]
    )
    with pytest.raises(PluginLoadError, match=r"'Mish' is registered twice.*MishPlugin"):
        build_registry(plugins)


def test_a_failing_plugin_converter_is_reported_with_its_plugin(tmp_path) -> None:  # type: ignore[no-untyped-def]
    plugins = load_plugins(extra_plugins=[fake_caffe_layers.BrokenConverterPlugin()])
    with pytest.raises(PluginLoadError, match=r"BrokenConverterPlugin.*'mish1'.*ZeroDivisionError"):
        caffe_to_onnx(_model(tmp_path), tmp_path / "m.onnx", plugins=plugins)
    assert not (tmp_path / "m.onnx").exists()


def test_a_converter_must_return_one_shape_per_top(tmp_path) -> None:  # type: ignore[no-untyped-def]
    plugins = load_plugins(extra_plugins=[fake_caffe_layers.ShapelessConverterPlugin()])
    with pytest.raises(PluginLoadError, match=r"returned 0 shapes for the 1 tops of layer 'mish1'"):
        caffe_to_onnx(_model(tmp_path), tmp_path / "m.onnx", plugins=plugins)
