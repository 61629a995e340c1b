"""INT8 calibration methods x data: top-1 agreement with fp32 and relative error.

    python benchmarks/int8_methods.py [--ocr-cls PATH.onnx] [--json OUT.json]

Every case is an fp32 ONNX model, a calibration set and a separate evaluation set. The model
is calibrated once per case (``collect_histograms``), every method turns the same histograms
into ranges (``ranges_from``), and the Q/DQ model (``insert_qdq``, the layers trtimport
quantizes for tensorrt_rtx) runs on ONNX Runtime's CPU provider, which executes Q/DQ Conv and
Gemm in int8. Top-1 agreement: the share of evaluation images whose arg-max output is the
same as fp32's; relative error: max |int8 - fp32| / max |fp32| over that output and images.

Cases (synthetic data from tools/synthetic_images.py, several seeds where named):

- LeNet (Caffe, real weights) on real MNIST digits (200 calibration, 800 evaluation);
- the same LeNet on sparse bar images, 64 calibration / 256 evaluation images, seeds 0-4
  (each seed's calibration and evaluation sets are disjoint draws);
- MTCNN-ONet and MTCNN-RNet (Caffe, real weights) on photograph-like images, preprocessed as
  MTCNN is ((x - 127.5) / 128), top-1 of the face/no-face output;
- CIFAR10-quick (Caffe, seeded random weights from ``trtimport caffe make-weights``) on
  photograph-like images, mean 128 subtracted;
- with ``--ocr-cls``: PaddleOCR's text-direction classifier (a real ONNX model,
  ch_ppocr_mobile_v2.0_cls_infer.onnx) on photograph-like 3x48x192 images ((x/255 - 0.5)/0.5).

Not part of the test suite (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from synthetic_images import natural_like, sparse_bars  # noqa: E402

CAFFE = REPO / "tests" / "data" / "caffe"
MNIST = REPO / "examples" / "mnist"
SPARSE_SEEDS = range(5)

#: (label, method, percentile, clip_inputs)
VARIANTS = [
    ("max", "max", 99.99, False),
    ("percentile 99.99", "percentile", 99.99, False),
    ("percentile 99.9", "percentile", 99.9, False),
    ("entropy", "entropy", 99.99, False),
    ("entropy, inputs clipped too (the old default)", "entropy", 99.99, True),
    ("mse", "mse", 99.99, False),
]


@dataclass
class Case:
    """One model with its calibration and evaluation data."""

    name: str
    model: Path
    calib: np.ndarray
    evaluate: np.ndarray
    output: int = 0


def _caffe_onnx(stem: str, work: Path, prototxt: Path | None = None) -> Path:
    from trtimport import convert
    from trtimport.core.options import ImportOptions

    prototxt = prototxt or CAFFE / f"{stem}.prototxt"
    weights = CAFFE / "weights" / f"{stem}.caffemodel"
    if not weights.is_file():
        from trtimport.importers.caffe.make_weights import make_caffe_weights

        weights = work / f"{stem}.caffemodel"
        make_caffe_weights(prototxt, weights, seed=0)
    dest = work / f"{stem}.onnx"
    convert(prototxt, import_options=ImportOptions(weights=weights), save_onnx_to=dest, build=False)
    return dest


def cases(work: Path, ocr_cls: Path | None) -> list[Case]:
    """Every model and data case of the table."""
    with np.load(MNIST / "digits.npz", allow_pickle=False) as data:
        digits = data["images"].astype(np.float32)[:, None] / 256
    lenet = _caffe_onnx("LeNet", work, MNIST / "lenet.prototxt")
    found = [Case("LeNet, real MNIST digits", lenet, digits[:200], digits[200:])]
    for seed in SPARSE_SEEDS:
        found.append(
            Case(
                f"LeNet, sparse bar images (seed {seed})",
                lenet,
                sparse_bars(64, seed),
                sparse_bars(256, 1000 + seed),
            )
        )

    def mtcnn(x: np.ndarray) -> np.ndarray:
        return ((x - 127.5) / 128).astype(np.float32)

    for stem, size, output in (("MTCNN-ONet", 48, 2), ("MTCNN-RNet", 24, 1)):
        model = _caffe_onnx(stem, work)
        shape = (3, size, size)
        found.append(
            Case(
                f"{stem}, photograph-like images",
                model,
                mtcnn(natural_like(64, 0, shape)),
                mtcnn(natural_like(256, 1, shape)),
                output,
            )
        )
    cifar = _caffe_onnx("CIFAR10-quick", work)
    found.append(
        Case(
            "CIFAR10-quick (random weights), photograph-like images",
            cifar,
            natural_like(64, 0, (3, 32, 32)) - 128,
            natural_like(256, 1, (3, 32, 32)) - 128,
        )
    )
    if ocr_cls is not None:

        def ocr(x: np.ndarray) -> np.ndarray:
            return ((x / 255 - 0.5) / 0.5).astype(np.float32)

        found.append(
            Case(
                "PP-OCR text-direction classifier (ONNX), photograph-like images",
                _fixed_batch(ocr_cls, work, (1, 3, 48, 192)),
                ocr(natural_like(64, 0, (3, 48, 192))),
                ocr(natural_like(256, 1, (3, 48, 192))),
            )
        )
    return found


def _fixed_batch(path: Path, work: Path, shape: tuple[int, ...]) -> Path:
    """A copy of a one-input model with that input's shape fixed (calibration batches)."""
    import onnx

    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, shape, strict=True):
        dim.Clear()
        dim.dim_value = value
    dest = work / path.name
    onnx.save(model, str(dest))
    return dest


def _runner(path: Path) -> Callable[[np.ndarray], list[np.ndarray]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x[None]})


def _outputs(path: Path, images: np.ndarray, index: int) -> np.ndarray:
    run = _runner(path)
    return np.stack([run(x)[index].reshape(-1) for x in images])


def measure(case: Case, work: Path) -> dict[str, tuple[float, float]]:
    """(top-1 agreement, relative error) per variant label."""
    import onnx

    from trtimport.onnxtools.passes.calibrate import collect_histograms, model_inputs, ranges_from
    from trtimport.onnxtools.passes.quantize import insert_qdq, plan_quantization

    model = onnx.load(str(case.model))
    plan = plan_quantization(model, "tensorrt_rtx")
    name = model_inputs(model)[0].name
    batches = [{name: x[None]} for x in case.calib]
    hists = collect_histograms(model, plan.activation_tensors, batches, work)
    reference = _outputs(case.model, case.evaluate, case.output)
    scale = float(np.max(np.abs(reference))) or 1.0
    results = {}
    for label, method, percentile, clip_inputs in VARIANTS:
        ranges = ranges_from(hists, method, percentile, clip_inputs=clip_inputs)
        path = work / "int8.onnx"
        onnx.save(insert_qdq(model, plan, ranges), str(path))
        got = _outputs(path, case.evaluate, case.output)
        agreement = float(np.mean(got.argmax(1) == reference.argmax(1)))
        results[label] = (agreement, float(np.max(np.abs(got - reference))) / scale)
    return results


def main() -> None:
    """Measure every case and print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ocr-cls", type=Path, help="ch_ppocr_mobile_v2.0_cls_infer.onnx")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    table: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for case in cases(work, args.ocr_cls):
            table[case.name] = measure(case, work)
            print(case.name, table[case.name], file=sys.stderr, flush=True)
    labels = [v[0] for v in VARIANTS]
    print("| data | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for name, row in table.items():
        cells = [f"{row[x][0]:.1%} / {row[x][1]:.1e}" for x in labels]
        print(f"| {name} | " + " | ".join(cells) + " |")
    worst = {x: min(row[x][0] for row in table.values()) for x in labels}
    print(
        "| **worst top-1 agreement** | " + " | ".join(f"**{worst[x]:.1%}**" for x in labels) + " |"
    )
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
