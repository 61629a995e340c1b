"""Precision and INT8 on the shared Caffe models, through the Caffe importer's public API.

These activate once the Caffe importer (``trtimport.importers.caffe``) is merged; until then the
same code paths are tested on ONNX nets in test_precision.py / test_quantize.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest

pytest.importorskip("trtimport.importers.caffe")
ort = pytest.importorskip("onnxruntime")

from trtimport import convert  # noqa: E402
from trtimport.core.options import BuildOptions, ImportOptions, PrecisionOptions  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
CAFFE = REPO / "tests" / "data" / "caffe"
MNIST = REPO / "examples" / "mnist"
#: The nets whose ``--max-error`` search takes seconds: they run in every test run. The others
#: (the search re-runs ONNX Runtime on nets of 3-138 M weights: 1-12 minutes each on 2 cores)
#: run with TRTIMPORT_PRECISION_ALL_NETS=1, as for the figures in docs/precision.md.
QUICK = {"LeNet", "CIFAR10-quick", "MTCNN-PNet", "MTCNN-RNet", "MTCNN-ONet"}
ALL_NETS = bool(os.environ.get("TRTIMPORT_PRECISION_ALL_NETS"))
RTOL = 1e-2
BOUND = 1e-3
#: SSD's DetectionOutput has no ONNX mapping: that net is checked up to the layer's inputs.
OUTPUTS = {"MobileNet-SSD": ["mbox_loc", "mbox_conf_flatten", "mbox_priorbox"]}


def _models() -> list[object]:
    params = []
    for path in sorted(CAFFE.glob("*.prototxt")):
        marks = []
        if path.stem not in QUICK:
            marks = [
                pytest.mark.slow,
                pytest.mark.skipif(not ALL_NETS, reason="set TRTIMPORT_PRECISION_ALL_NETS=1"),
            ]
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def _weights(prototxt: Path, tmp_path: Path, cli) -> Path:  # type: ignore[no-untyped-def]
    real = CAFFE / "weights" / f"{prototxt.stem}.caffemodel"
    if real.is_file():
        return real
    dest = tmp_path / f"{prototxt.stem}.caffemodel"
    proc = cli("caffe", "make-weights", str(prototxt), "-o", str(dest), "--seed", "0")
    assert proc.returncode == 0, proc.stderr
    return dest


def _run(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@pytest.mark.parametrize("prototxt", _models())
def test_caffe_model_fp16_max_error_1e3_holds_and_builds(
    prototxt: Path,
    tmp_path: Path,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    """``--precision fp16 --max-error 1e-3``: the bound holds on the samples it was checked on
    (and on ONNX Runtime's run of the saved model), plain fp16 is within 1e-2, the engine
    builds."""
    import json

    from trtimport.onnxtools.passes.lowering import relative_error, sample_batches

    pytest.importorskip("tensorrt_rtx")
    weights = _weights(prototxt, tmp_path, cli)
    fp32_onnx, fp16_onnx = tmp_path / "fp32.onnx", tmp_path / "fp16.onnx"
    outputs = OUTPUTS.get(prototxt.stem, [])
    convert(
        prototxt,
        import_options=ImportOptions(weights=weights, outputs=outputs),
        save_onnx_to=fp32_onnx,
        build=False,
    )
    engine = tmp_path / "fp16.engine"
    precision = PrecisionOptions("fp16", max_error=BOUND)
    convert(
        prototxt,
        engine,
        import_options=ImportOptions(weights=weights, outputs=outputs, precision=precision),
        build_options=BuildOptions(progress=False),
        save_onnx_to=fp16_onnx,
        backend="tensorrt_rtx",
    )
    assert engine.stat().st_size > 0
    guard = json.loads(engine.with_name("fp16.engine.json").read_text())["rewrites"]["precision"]
    model = onnx.load(str(fp32_onnx), load_external_data=False)
    batches, _ = sample_batches(model, precision)
    reference = [_run(fp32_onnx, b) for b in batches]
    # ONNX Runtime runs many fp16 ops in fp32, so its error is at most the simulated one
    # --max-error measures (fp16 rounding of every lowered tensor); both must meet the bound.
    on_ort = relative_error(reference, [_run(fp16_onnx, b) for b in batches])
    rng = np.random.default_rng(1)
    unseen = {k: rng.normal(0, 1, v.shape).astype(np.float32) for k, v in batches[0].items()}
    unseen_error = relative_error([_run(fp32_onnx, unseen)], [_run(fp16_onnx, unseen)])
    print(
        f"{prototxt.stem}: fp16 relative error {guard['error_before']:.2e}; with --max-error "
        f"{BOUND:g} {guard['error']:.2e} ({len(guard['kept_for_error'])} node(s) kept in "
        f"fp32; {on_ort:.2e} run on ONNX Runtime, {unseen_error:.2e} on an unseen input)"
    )
    assert guard["error_before"] < RTOL
    assert guard["error"] <= BOUND and on_ort <= BOUND
    assert unseen_error < RTOL


def test_caffe_lenet_int8_agrees_with_fp32(tmp_path: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    with np.load(MNIST / "digits.npz", allow_pickle=False) as data:
        images = data["images"].astype(np.float32)[:, None] / 256
    calib = tmp_path / "calib.npz"
    np.savez(calib, data=images[:200])
    prototxt, weights = MNIST / "lenet.prototxt", MNIST / "lenet.caffemodel"
    fp32_onnx, int8_onnx = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    convert(
        prototxt, import_options=ImportOptions(weights=weights), save_onnx_to=fp32_onnx, build=False
    )
    convert(
        prototxt,
        tmp_path / "lenet-int8.engine",
        import_options=ImportOptions(
            weights=weights, precision=PrecisionOptions(int8=True, calib_data=calib)
        ),
        build_options=BuildOptions(progress=False),
        save_onnx_to=int8_onnx,
        backend="tensorrt_rtx",
    )

    def top1(path: Path) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return np.array([session.run(None, {name: x[None]})[0].argmax() for x in images[200:]])

    agreement = float(np.mean(top1(fp32_onnx) == top1(int8_onnx)))
    print(f"Caffe LeNet INT8: top-1 agrees with fp32 on {agreement:.2%} of 800 test digits")
    assert agreement >= 0.99


@pytest.mark.parametrize(
    ("prototxt", "weights"),
    [
        (MNIST / "lenet.prototxt", MNIST / "lenet.caffemodel"),
        (CAFFE / "MTCNN-ONet.prototxt", CAFFE / "weights" / "MTCNN-ONet.caffemodel"),
    ],
    ids=["LeNet", "MTCNN-ONet"],
)
def test_caffe_model_with_dynamic_batch_builds_two_profiles(
    prototxt: Path, weights: Path, tmp_path: Path
) -> None:
    pytest.importorskip("tensorrt_rtx")
    import json

    engine, saved = tmp_path / "dyn.engine", tmp_path / "dyn.onnx"
    result = convert(
        prototxt,
        engine,
        import_options=ImportOptions(weights=weights, batch=(1, 1, 1), more_batches=[(2, 8, 32)]),
        build_options=BuildOptions(progress=False),
        save_onnx_to=saved,
        backend="tensorrt_rtx",
    )
    assert result.inputs[0].shape[0] == -1
    profiles = json.loads(engine.with_name("dyn.engine.json").read_text())["profiles"]
    rest = list(result.inputs[0].shape[1:])
    assert [p[result.inputs[0].name]["max"] for p in profiles] == [[1, *rest], [32, *rest]]
    session = ort.InferenceSession(str(saved), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(0, 1, [5, *rest]).astype(np.float32)
    name = session.get_inputs()[0].name
    together = session.run(None, {name: x})
    alone = [session.run(None, {name: x[i : i + 1]}) for i in range(5)]
    for k, out in enumerate(together):
        np.testing.assert_allclose(out, np.concatenate([a[k] for a in alone]), atol=1e-5)
