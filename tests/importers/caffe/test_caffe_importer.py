"""The Caffe importer plugin: detection, pairing, CLI errors, names, reference runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import trtimport
from trtimport.core.options import ImportOptions
from trtimport.errors import OutputMarkingError, UsageError
from trtimport.importers.caffe import CaffeImporter
from trtimport.importers.caffe.convert import caffe_to_onnx
from trtimport.importers.caffe.parse import load_caffe

REPO = Path(__file__).resolve().parents[3]
MNIST = REPO / "examples" / "mnist"
DATA = REPO / "tests" / "data" / "caffe"


def test_importing_the_plugin_loads_nothing_heavy() -> None:
    code = (
        "import sys, trtimport.importers.caffe\n"
        "heavy = ('cv2', 'onnxruntime', 'tensorrt', 'tensorrt_rtx', 'onnx', 'google.protobuf')\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_formats_lists_caffe(cli) -> None:  # type: ignore[no-untyped-def]
    done = cli("formats")
    assert done.returncode == 0 and "caffe" in done.stdout


def test_detects_both_files() -> None:
    importer = CaffeImporter()
    for path in (MNIST / "lenet.prototxt", MNIST / "lenet.caffemodel"):
        assert importer.detect(path, path.read_bytes()[:4096])
    assert importer.related_files(MNIST / "lenet.caffemodel", ImportOptions()) == [
        MNIST / "lenet.prototxt",
        MNIST / "lenet.caffemodel",
    ]


def test_prototxt_without_weights_says_what_to_do(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    done = cli(str(MNIST / "lenet.prototxt"), "-o", str(tmp_path / "x.engine"))
    assert done.returncode == 1
    assert "--weights" in done.stderr and "trtimport caffe make-weights" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.engine").exists()


def test_caffemodel_with_another_caffemodel_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    options = ImportOptions(weights=MNIST / "lenet.caffemodel")
    with pytest.raises(UsageError, match="pass the deploy prototxt as the model"):
        CaffeImporter().related_files(MNIST / "lenet.caffemodel", options)


def test_unsupported_layers_through_the_cli(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # MobileNet-SSD with its head swapped for a layer type that has no converter.
    prototxt = tmp_path / "ssd.prototxt"
    text = (DATA / "MobileNet-SSD.prototxt").read_text()
    prototxt.write_text(text.replace('type: "DetectionOutput"', 'type: "PSROIPooling"'))
    weights = tmp_path / "ssd.caffemodel"
    made = cli("caffe", "make-weights", str(prototxt), "-o", str(weights))
    assert made.returncode == 0, made.stderr
    done = cli(str(prototxt), "--weights", str(weights), "-o", str(tmp_path / "ssd.engine"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"layer 'detection_out' (PSROIPooling, {prototxt}:3080)" in done.stderr
    assert "trtimport_register_caffe_layers" in done.stderr
    assert not (tmp_path / "ssd.engine").exists()


def test_onnx_names_are_caffe_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = trtimport.convert(
        MNIST / "lenet.caffemodel",
        save_onnx_to=tmp_path / "lenet.onnx",
        import_options=ImportOptions(outputs=["ip1/ip1", "ip1", "prob"]),
        build=False,
    )
    assert [t.name for t in result.outputs] == ["ip1/ip1", "ip1", "prob"]
    graph = onnx.load(str(tmp_path / "lenet.onnx")).graph
    layers = {layer.name for layer in load_caffe(MNIST / "lenet.prototxt", None).net.layer}
    assert layers - {"data"} <= {node.name for node in graph.node}
    produced = {o for node in graph.node for o in node.output}
    assert {"conv1", "pool1", "conv2", "pool2", "ip1/ip1", "ip1", "ip2", "prob"} <= produced


def test_unknown_output_lists_tensor_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = load_caffe(MNIST / "lenet.prototxt", MNIST / "lenet.caffemodel")
    with pytest.raises(OutputMarkingError, match=r"'conv9'.*ip1/ip1"):
        caffe_to_onnx(model, tmp_path / "x.onnx", outputs=["conv9"])


def test_opset_outside_the_supported_range(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = load_caffe(MNIST / "lenet.prototxt", MNIST / "lenet.caffemodel")
    with pytest.raises(UsageError, match="--opset 9"):
        caffe_to_onnx(model, tmp_path / "x.onnx", opset=9)


@pytest.mark.parametrize("opset", [13, 18, 21])
def test_other_opsets_give_the_same_numbers(tmp_path, opset) -> None:  # type: ignore[no-untyped-def]
    """MVN and Reduction use the ops whose spelling changed in opset 18 (axes as an input)."""
    import onnxruntime as ort

    proto = tmp_path / "net.prototxt"
    proto.write_text(
        'input: "x"\ninput_shape { dim: 1 dim: 3 dim: 4 dim: 4 }\n'
        'layer { name: "mvn" type: "MVN" bottom: "x" top: "m" }\n'
        'layer { name: "red" type: "Reduction" bottom: "m" top: "r" '
        "reduction_param { operation: SUMSQ axis: 1 } }\n"
    )
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 4)).astype(np.float32)
    got = []
    for o in (17, opset):
        conversion = caffe_to_onnx(load_caffe(proto, None), tmp_path / f"{o}.onnx", opset=o)
        assert onnx.load(str(conversion.path)).opset_import[0].version == o
        session = ort.InferenceSession(str(conversion.path), providers=["CPUExecutionProvider"])
        got.append(session.run(["r"], {"x": x})[0])
    np.testing.assert_allclose(got[0], got[1], rtol=1e-6)


def test_reference_runner_is_opencv() -> None:
    runner = CaffeImporter().reference_runner(MNIST / "lenet.caffemodel", ImportOptions())
    assert runner is not None and runner.name == "opencv"
    with np.load(MNIST / "digits.npz", allow_pickle=False) as data:
        image = data["images"][:1].astype(np.float32)[:, None] * 0.00390625
        label = int(data["labels"][0])
    out = runner.infer({"data": image}, ["ip1/ip1", "prob"])
    assert int(out["prob"].argmax()) == label
    assert (out["ip1/ip1"] < 0).any()  # the value before relu1 (fusion is off)
