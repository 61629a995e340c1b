"""TensorFlow importer behaviour that needs no TensorFlow: detection, startup, missing deps."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from trtimport.core.files import read_head
from trtimport.importers.tensorflow.detect import (
    looks_like_graphdef,
    looks_like_keras_zip,
    looks_like_tflite,
)
from trtimport.importers.tensorflow.names import apply_user_names, spellings
from trtimport.importers.tensorflow.options import TensorFlowOptions
from trtimport.plugins.manager import load_plugins

REPO = Path(__file__).resolve().parents[3]
#: A GraphDef holding one NodeDef {name: "input", op: "Placeholder"}.
GRAPHDEF = b"\x0a\x14\x0a\x05input\x12\x0bPlaceholder"
TFLITE_HEAD = b"\x1c\x00\x00\x00TFL3" + bytes(56)


def detected(path: Path) -> list[str]:
    """Names of every importer whose content check claims ``path``."""
    head = read_head(path)
    plugins = load_plugins()
    return sorted(n for n, e in plugins.importers.items() if e.importer.detect(path, head))


def test_graphdef_detected_by_content(tmp_path: Path) -> None:
    pb = tmp_path / "frozen.pb"
    pb.write_bytes(GRAPHDEF)
    assert detected(pb) == ["tensorflow"]
    renamed = tmp_path / "frozen.bin"
    renamed.write_bytes(GRAPHDEF)
    assert looks_like_graphdef(renamed, GRAPHDEF)


def test_caffemodel_and_onnx_are_not_graphdefs(tmp_path: Path) -> None:
    caffemodel = REPO / "examples" / "mnist" / "lenet.caffemodel"
    assert not looks_like_graphdef(caffemodel, read_head(caffemodel))
    # Same bytes under a neutral name: the content check alone must say no.
    copy = tmp_path / "weights.bin"
    copy.write_bytes(caffemodel.read_bytes())
    assert not looks_like_graphdef(copy, read_head(copy))
    onnx_like = tmp_path / "m.pb"
    onnx_like.write_bytes(b"\x08\x08\x12\x07tf2onnx")
    assert not looks_like_graphdef(onnx_like, read_head(onnx_like))


def test_tflite_and_keras_zip_detection(tmp_path: Path) -> None:
    tflite = tmp_path / "model.bin"
    tflite.write_bytes(TFLITE_HEAD)
    assert looks_like_tflite(tflite, read_head(tflite))
    archive = tmp_path / "model.keras"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("metadata.json", "{}")
    assert looks_like_keras_zip(archive, read_head(archive))
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("config.json", "{}")
    assert not looks_like_keras_zip(other, read_head(other))


def test_saved_model_folder_and_its_pb_detected(tmp_path: Path) -> None:
    folder = tmp_path / "exported"
    folder.mkdir()
    # A SavedModel proto starts like an ONNX ModelProto (field 1 varint, then field 2).
    (folder / "saved_model.pb").write_bytes(b"\x08\x01\x12\x00")
    assert detected(folder) == ["tensorflow"]
    plugins = load_plugins()
    assert plugins.hook.trtimport_detect_format(path=folder / "saved_model.pb") == "tensorflow"


def test_tensorflow_names() -> None:
    assert spellings("input:1") == ["input:1"]
    assert spellings("input:0") == ["input:0", "input"]
    assert spellings("scope/x") == ["scope/x", "scope/x:0"]


def test_user_names_rename_onnx_tensors() -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x:0"], ["y:0"], name="relu")],
        "g",
        [helper.make_tensor_value_info("x:0", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y:0", TensorProto.FLOAT, [1, 2])],
    )
    model = helper.make_model(graph)
    apply_user_names(model, ["x", "y:0", "missing"])
    assert [v.name for v in model.graph.input] == ["x"]
    assert list(model.graph.node[0].input) == ["x"]
    assert [v.name for v in model.graph.output] == ["y:0"]
    onnx.checker.check_model(model)
    assert np.dtype("float32")  # numpy is a core dependency


def _env() -> dict[str, str]:
    """The environment with this checkout's sources first (tests may run from a source tree)."""
    path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


#: Makes TensorFlow and tf2onnx unimportable in the child process (as if not installed).
WITHOUT_TF = (
    "import sys\n"
    "sys.modules['tensorflow'] = None\n"
    "sys.modules['tf2onnx'] = None\n"
    "from trtimport.cli import main\n"
)


def test_formats_and_convert_without_tensorflow(tmp_path: Path) -> None:
    model = tmp_path / "model.tflite"
    model.write_bytes(TFLITE_HEAD)
    formats = _run(WITHOUT_TF + "sys.exit(main(['formats']))", tmp_path)
    assert formats.returncode == 0, formats.stderr
    for name in ("tensorflow", "keras", "tflite"):
        line = next(x for x in formats.stdout.splitlines() if x.startswith(name + " "))
        assert "needs `pip install trtimport[tf]`" in line
    assert ".tflite" in formats.stdout and ".keras" in formats.stdout
    converted = _run(WITHOUT_TF + f"sys.exit(main([{str(model)!r}]))", tmp_path)
    assert converted.returncode == 1
    assert "Traceback" not in converted.stderr
    assert "pip install trtimport[tf]" in converted.stderr
    assert list(tmp_path.iterdir()) == [model]


@pytest.mark.parametrize("args", [["formats"], ["--help"]])
def test_startup_does_not_import_tensorflow(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "trtimport", *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    heavy = [m for m in imported if m.split(".")[0] in ("tensorflow", "tf2onnx", "keras")]
    assert heavy == []
    if args == ["formats"]:
        assert "trtimport.importers.tensorflow.detect" in imported


def test_inputs_as_nchw_flag_goes_to_import_options() -> None:
    from trtimport.cli import build_parser
    from trtimport.cli.common import import_options

    args = build_parser().parse_args(
        ["convert", "m.pb", "--inputs-as-nchw", "a:0,b", "--inputs-as-nchw", "c"]
    )
    typed = import_options(args).importer_options_for(TensorFlowOptions)
    assert typed == TensorFlowOptions(inputs_as_nchw=("a:0", "b", "c"))
    plain = build_parser().parse_args(["convert", "m.pb"])
    assert import_options(plain).importer_options == {}


@pytest.mark.parametrize(("size_in", "size_out"), [(7, 10), (10, 7), (5, 15), (12, 5)])
def test_nearest_resize_rewrite_picks_the_same_pixels(size_in: int, size_out: int) -> None:
    """half_pixel + round_prefer_ceil == tf_half_pixel_for_nn + floor, per onnxruntime."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from trtimport.importers.tensorflow.checks import rewrite_nearest_resize

    sizes = helper.make_tensor("sizes", TensorProto.INT64, [4], [1, 1, size_out, size_out + 1])
    node = helper.make_node(
        "Resize",
        ["x", "", "", "sizes"],
        ["y"],
        mode="nearest",
        coordinate_transformation_mode="tf_half_pixel_for_nn",
        nearest_mode="floor",
    )
    graph = helper.make_graph(
        [node],
        "resize",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, size_in, size_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [sizes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.arange(size_in * size_in, dtype=np.float32).reshape(1, 1, size_in, size_in)

    def run(m: onnx.ModelProto) -> np.ndarray:
        session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x})[0]

    before = run(model)
    assert rewrite_nearest_resize(model) == 1
    modes = {a.name: a.s for a in model.graph.node[0].attribute if a.type == a.STRING}
    assert modes["coordinate_transformation_mode"] == b"half_pixel"
    np.testing.assert_array_equal(run(model), before)
