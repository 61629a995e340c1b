"""Every model in tests/data/caffe/ converts; ONNX Runtime on the ONNX matches OpenCV 4.14 on the
same prototxt and caffemodel (real weights where shipped, seeded random ones otherwise), every
output, max relative error <= 1e-4; the ONNX passes onnx.checker and builds with TensorRT
(``trtimport.convert`` on the ONNX; the Caffe path through it is tested with LeNet below).

Relative error: max|onnx - opencv| / max(max|opencv|, tiny). Softmax outputs of random nets can
saturate, so the logits feeding a final Softmax are compared too.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import trtimport
from trtimport.importers.caffe.convert import caffe_to_onnx, tensor_names
from trtimport.importers.caffe.make_weights import make_caffe_weights
from trtimport.importers.caffe.parse import load_caffe
from trtimport.importers.caffe.reference import OpenCVCaffeRunner

DATA = Path(__file__).resolve().parents[2] / "data" / "caffe"
MODELS = sorted(p.stem for p in DATA.glob("*.prototxt"))
TOLERANCE = 1e-4
#: What DetectionOutput reads: its rows are per image, so the batch test stops before it.
BEFORE_DETECTION = {"MobileNet-SSD": ["mbox_loc", "mbox_conf_flatten", "mbox_priorbox"]}


def rel_error(actual: np.ndarray, reference: np.ndarray) -> float:
    """max|a - b| / max(max|b|, tiny)."""
    scale = max(float(np.abs(reference).max()), np.finfo(np.float32).tiny)
    return float(np.abs(actual - reference.reshape(actual.shape)).max()) / scale


def opencv_deviations(model) -> list[str]:  # type: ignore[no-untyped-def]
    """Features of the net that OpenCV 4.14 computes differently from Caffe (see SOURCES.md)."""
    found = []
    for layer in model.net.layer:
        if layer.type == "LRN" and layer.lrn_param.k != 1.0:
            found.append(f"{layer.name}: LRN k")
        elif layer.type == "Log" and layer.HasField("log_param"):
            found.append(f"{layer.name}: Log base/scale/shift")
        elif layer.type == "Concat" and layer.concat_param.HasField("concat_dim"):
            found.append(f"{layer.name}: Concat concat_dim")
        elif layer.type == "InnerProduct" and layer.inner_product_param.transpose:
            found.append(f"{layer.name}: InnerProduct transpose")
        elif layer.type == "Axpy":
            found.append(f"{layer.name}: Axpy order")
    return found


@functools.cache
def weights_for(name: str, folder: Path) -> Path:
    real = DATA / "weights" / f"{name}.caffemodel"
    if real.is_file():
        return real
    return make_caffe_weights(DATA / f"{name}.prototxt", folder / f"{name}.caffemodel", 0).path


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return tmp_path_factory.mktemp("caffe-weights")


@pytest.mark.parametrize("name", MODELS)
def test_model_matches_opencv_and_builds(name, weights_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    prototxt = DATA / f"{name}.prototxt"
    caffemodel = weights_for(name, weights_dir)
    model = load_caffe(prototxt, caffemodel)
    assert opencv_deviations(model) == []  # else a numpy reference would be needed here
    names = tensor_names(model)
    logits = [  # a saturated softmax would hide errors in its input
        names.bottoms[i][0] for i, kind in enumerate(names.types) if kind == "Softmax"
    ]
    dest = tmp_path / f"{name}.onnx"
    compared = list(dict.fromkeys(names.outputs() + logits))
    conversion = caffe_to_onnx(model, dest, outputs=compared)
    onnx.checker.check_model(str(dest))

    rng = np.random.default_rng(0)
    feeds = {n: rng.uniform(-1, 1, s).astype(np.float32) for n, s in conversion.inputs.items()}
    session = ort.InferenceSession(str(dest), providers=["CPUExecutionProvider"])
    ours = dict(zip(compared, session.run(compared, feeds), strict=True))
    theirs = OpenCVCaffeRunner(prototxt, caffemodel).infer(feeds, compared)
    errors = {n: rel_error(ours[n], theirs[n]) for n in compared}
    print(f"{name}: " + ", ".join(f"{n} {e:.2e}" for n, e in errors.items()))
    assert max(errors.values()) <= TOLERANCE, errors
    assert all(np.abs(theirs[n]).max() > 0 for n in compared)

    result = trtimport.convert(
        dest, tmp_path / f"{name}.engine", build_options=trtimport.BuildOptions(progress=False)
    )
    assert result.engine_bytes
    assert [t.name for t in result.outputs] == compared
    print(f"{name}: {time.perf_counter() - start:.1f} s")


LENET = Path(__file__).resolve().parents[3] / "examples" / "mnist"


def test_real_lenet_classifies_all_digits_like_opencv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with np.load(LENET / "digits.npz", allow_pickle=False) as data:
        images, labels = data["images"], data["labels"]
    batch = (images.astype(np.float32) * 0.00390625)[:, None]  # Caffe's MNIST scale 1/256
    model = load_caffe(LENET / "lenet.prototxt", LENET / "lenet.caffemodel")
    model.input_shapes["data"] = batch.shape  # the graph is batch-agnostic
    conversion = caffe_to_onnx(model, tmp_path / "lenet.onnx")
    session = ort.InferenceSession(str(conversion.path), providers=["CPUExecutionProvider"])
    (ours,) = session.run(["prob"], {"data": batch})
    runner = OpenCVCaffeRunner(LENET / "lenet.prototxt", LENET / "lenet.caffemodel")
    theirs = runner.infer({"data": batch})["prob"]
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    assert rel_error(ours, theirs) <= TOLERANCE
    assert (ours.argmax(1) == labels).sum() >= 990


def test_caffemodel_alone_finds_its_prototxt_and_builds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = trtimport.convert(
        LENET / "lenet.caffemodel",
        tmp_path / "lenet.engine",
        build_options=trtimport.BuildOptions(progress=False),
    )
    assert any("lenet.prototxt" in note for note in result.notes)
    assert [t.name for t in result.outputs] == ["prob"]
    assert result.engine_bytes


@pytest.mark.parametrize("name", ["MobileNet-SSD", "MTCNN-ONet", "SqueezeNet1.1", "CIFAR10-quick"])
def test_graphs_are_batch_agnostic(name, weights_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With the batch dimension made symbolic, a batch of 3 gives each sample's own result."""
    model = load_caffe(DATA / f"{name}.prototxt", weights_for(name, weights_dir))
    conversion = caffe_to_onnx(
        model, tmp_path / "fixed.onnx", outputs=BEFORE_DETECTION.get(name, ())
    )
    proto = onnx.load(str(conversion.path))
    for value in [*proto.graph.input, *proto.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        if dim.dim_value != 1 or value.name != "mbox_priorbox":  # priors have no batch axis
            dim.dim_param = "N"
    onnx.save(proto, str(tmp_path / "dynamic.onnx"))
    session = ort.InferenceSession(
        str(tmp_path / "dynamic.onnx"), providers=["CPUExecutionProvider"]
    )
    ((input_name, shape),) = conversion.inputs.items()
    batch = np.random.default_rng(1).uniform(-1, 1, (3, *shape[1:])).astype(np.float32)
    names = list(conversion.outputs)
    together = session.run(names, {input_name: batch})
    for i in range(3):
        alone = session.run(names, {input_name: batch[i : i + 1]})
        for name_, all_, one in zip(names, together, alone, strict=True):
            part = all_ if name_ == "mbox_priorbox" else all_[i : i + 1]
            assert rel_error(part, one) <= TOLERANCE, name_
