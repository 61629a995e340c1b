"""The mse method, graph inputs that are never clipped, and the default method on sparse images."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from trtimport.core.choices import DEFAULT_CALIB_METHOD
from trtimport.onnxtools.passes.calib_mse import mse_amax
from trtimport.onnxtools.passes.calibrate import collect_histograms, ranges_from

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("trtimport.importers.caffe")

REPO = Path(__file__).resolve().parents[3]
MNIST = REPO / "examples" / "mnist"
sys.path.insert(0, str(REPO / "tools"))

from synthetic_images import sparse_bars  # noqa: E402


def _round_trip_mse(values: np.ndarray, amax: float) -> float:
    scale = amax / 127
    return float(np.mean((values - np.clip(np.rint(values / scale), -127, 127) * scale) ** 2))


def test_mse_threshold_beats_other_thresholds_on_the_data_itself() -> None:
    rng = np.random.default_rng(0)
    values = np.abs(np.concatenate([rng.laplace(0, 1, 200_000), rng.uniform(20, 40, 3)]))
    top = float(values.max())
    hist, _ = np.histogram(values, bins=2048, range=(0, top))
    chosen = mse_amax(hist, top)
    assert chosen < 0.9 * top  # clips the three outliers
    best = _round_trip_mse(values, chosen)
    for other in (top, top / 2, top / 8, top / 32):
        assert best <= _round_trip_mse(values, other) * 1.01


def test_mse_keeps_a_dense_range() -> None:
    rng = np.random.default_rng(0)
    uniform = rng.uniform(0, 1, 100_000)
    hist, _ = np.histogram(uniform, bins=2048, range=(0, 1))
    assert mse_amax(hist, 1.0) > 0.95
    assert mse_amax(np.zeros(2048), 3.0) == 3.0


@pytest.fixture(scope="module")
def lenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Caffe LeNet converted by trtimport (fp32 ONNX)."""
    from trtimport import convert
    from trtimport.core.options import ImportOptions

    dest = tmp_path_factory.mktemp("lenet") / "lenet.onnx"
    convert(
        MNIST / "lenet.prototxt",
        import_options=ImportOptions(weights=MNIST / "lenet.caffemodel"),
        save_onnx_to=dest,
        build=False,
    )
    return dest


def test_graph_input_keeps_its_largest_value_unless_asked(lenet: Path, tmp_path: Path) -> None:
    model = onnx.load(str(lenet))
    batches = [{"data": x[None]} for x in sparse_bars(32, seed=11)]
    hists = collect_histograms(model, ["data", "pool1"], batches, tmp_path)
    for method in ("entropy", "mse", "percentile"):
        assert ranges_from(hists, method, 99.0)["data"] == hists.amax["data"]
    clipped = ranges_from(hists, "percentile", 95.0, clip_inputs=True)
    assert clipped["data"] < 0.8 * hists.amax["data"]  # the ink is rare: clipping cuts it
    assert ranges_from(hists, "percentile", 99.0)["pool1"] < hists.amax["pool1"]


@pytest.mark.parametrize("seed", [21, 22])
def test_default_int8_lenet_agrees_with_fp32_on_sparse_images(
    lenet: Path, tmp_path: Path, seed: int
) -> None:
    """The issue's case: 64 sparse calibration images, 256 more of the kind to evaluate."""
    from trtimport import convert
    from trtimport.core.options import ImportOptions, PrecisionOptions

    calib = tmp_path / "calib.npz"
    np.savez(calib, x=sparse_bars(64, seed))
    int8 = tmp_path / "int8.onnx"
    convert(
        lenet,
        import_options=ImportOptions(
            precision=PrecisionOptions(int8=True, calib_data=calib, calib_cache=tmp_path / "c.json")
        ),
        save_onnx_to=int8,
        build=False,
    )
    images = sparse_bars(256, seed + 500)

    def top1(path: Path) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.array([session.run(None, {"data": x[None]})[0].argmax() for x in images])

    agreement = float(np.mean(top1(lenet) == top1(int8)))
    print(f"default ({DEFAULT_CALIB_METHOD}) INT8 LeNet, sparse images: {agreement:.1%}")
    assert agreement >= 0.97
