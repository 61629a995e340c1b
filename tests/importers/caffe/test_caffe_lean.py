"""The Caffe path on big models: no copy of the weights, no whole model in memory, no onnx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from peak_memory import python_peak

from trtimport.core.options import ImportOptions
from trtimport.importers.caffe.convert import caffe_to_onnx
from trtimport.importers.caffe.make_weights import make_caffe_weights
from trtimport.importers.caffe.parse import load_caffe
from trtimport.onnxtools.external_data import external_data_references
from trtimport.pipeline import convert
from trtimport.populate import import_model

#: One 2048x4096 InnerProduct: 32 MiB of weights, made in a fraction of a second.
PROTOTXT = """\
name: "wide"
input: "data"
input_shape { dim: 1 dim: 4096 }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
        inner_product_param { num_output: 2048 } }
layer { name: "relu" type: "ReLU" bottom: "fc" top: "fc" }
"""


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(prototxt, caffemodel) of the net above, seeded random weights."""
    folder = tmp_path_factory.mktemp("wide")
    prototxt = folder / "wide.prototxt"
    prototxt.write_text(PROTOTXT)
    caffemodel = folder / "wide.caffemodel"
    make_caffe_weights(prototxt, caffemodel)
    return prototxt, caffemodel


def test_the_parser_reads_the_weights_from_the_caffemodel(wide: tuple[Path, Path]) -> None:
    pytest.importorskip("tensorrt_rtx")
    prototxt, caffemodel = wide
    options = ImportOptions(weights=caffemodel)
    with import_model(prototxt, options=options, backend="tensorrt_rtx") as imported:
        assert imported.onnx_path is not None
        assert imported.onnx_path.stat().st_size < 4096  # the weights were not copied
        references = external_data_references(imported.onnx_path) or []
        assert {n for n, _ in references} == {"fc/W", "fc/b"}
        (location,) = {location for _, location in references}
        link = imported.onnx_path.parent / location
        assert link.is_symlink() and link.resolve() == caffemodel.resolve()
        assert imported.num_layers >= 2


def test_saved_onnx_is_the_standalone_conversion(tmp_path: Path, wide: tuple[Path, Path]) -> None:
    pytest.importorskip("tensorrt_rtx")
    prototxt, caffemodel = wide
    reference = tmp_path / "reference.onnx"
    caffe_to_onnx(load_caffe(prototxt, caffemodel), reference)
    saved = tmp_path / "saved.onnx"
    result = convert(
        prototxt,
        import_options=ImportOptions(weights=caffemodel),
        save_onnx_to=saved,
        build=False,
        backend="tensorrt_rtx",
    )
    assert result.files_written == [saved]
    assert saved.read_bytes() == reference.read_bytes()


def test_conversion_holds_no_copy_of_the_weights(tmp_path: Path, wide: tuple[Path, Path]) -> None:
    pytest.importorskip("tensorrt_rtx")
    prototxt, caffemodel = wide

    def run() -> None:
        convert(
            prototxt,
            import_options=ImportOptions(weights=caffemodel),
            save_onnx_to=tmp_path / "saved.onnx",
            build=False,
            backend="tensorrt_rtx",
        )

    peak = python_peak(run)
    assert peak < caffemodel.stat().st_size / 8, f"peak {peak} bytes of Python allocations"


def test_converting_imports_no_onnx(wide: tuple[Path, Path], tmp_path: Path) -> None:
    prototxt, caffemodel = wide
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from trtimport.importers.caffe.convert import caffe_to_onnx\n"
        "from trtimport.importers.caffe.parse import load_caffe\n"
        f"caffe_to_onnx(load_caffe(Path({str(prototxt)!r}), Path({str(caffemodel)!r})), "
        f"Path({str(tmp_path / 'x.onnx')!r}))\n"
        "print('onnx' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_command_imports_no_onnx(wide: tuple[Path, Path], tmp_path: Path) -> None:
    """``trtimport NET --save-onnx X --no-engine``, the command users type, as in-process:
    importing the ``onnx`` package (and ml_dtypes) cost 0.7 s of a 1.7 s run on VGG16."""
    pytest.importorskip("tensorrt_rtx")
    prototxt, caffemodel = wide
    out = tmp_path / "wide.onnx"
    argv = [str(prototxt), "--weights", str(caffemodel), "--save-onnx", str(out), "--no-engine"]
    code = (
        "import sys\n"
        "from trtimport.cli import main\n"
        f"code = main({argv!r} + ['-q'])\n"
        "print(code, 'onnx' in sys.modules, 'ml_dtypes' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "False", "False"], done.stderr
    assert out.stat().st_size > caffemodel.stat().st_size // 2
