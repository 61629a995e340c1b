"""``--precision fp16 --max-error E`` on the shared Caffe models and real ONNX models.

    python benchmarks/fp16_max_error.py [--bound 1e-3] [--onnx PATH:INPUT:1x3x640x640 ...]
        [--only LeNet,MTCNN-ONet]

Each model goes through ``trtimport.convert`` (the Caffe importer for the prototxts in
tests/data/caffe, with their real weights where the repository has them and seeded random
weights from ``trtimport caffe make-weights --seed 0`` otherwise; the ONNX importer for
``--onnx``, with the input shape given), without building an engine. The table row: the
relative error of plain fp16 (max |fp16 - fp32| / max |fp32|, worst output, on the seeded
N(0, 1) samples --max-error uses), the error after --max-error, the nodes it kept in fp32 out
and the wall time of the rewrite and its checks (``lower_model``, the library API). Not part of the
test suite (the tests check the bound on every Caffe model).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAFFE = REPO / "tests" / "data" / "caffe"
#: SSD's DetectionOutput has no ONNX mapping: that net is checked up to the layer's inputs.
OUTPUTS = {"MobileNet-SSD": ["mbox_loc", "mbox_conf_flatten", "mbox_priorbox"]}


def _caffe(stem: str, work: Path) -> tuple[Path, dict[str, object]]:
    from trtimport.importers.caffe.make_weights import make_caffe_weights

    prototxt = CAFFE / f"{stem}.prototxt"
    weights = CAFFE / "weights" / f"{stem}.caffemodel"
    if not weights.is_file():
        weights = work / f"{stem}.caffemodel"
        make_caffe_weights(prototxt, weights, seed=0)
    return prototxt, {"weights": weights, "outputs": OUTPUTS.get(stem, [])}


def measure(model: Path, options: dict[str, object], bound: float, work: Path) -> dict[str, object]:
    """fp32 ONNX from the importer, then the fp16 rewrite with --max-error (the library API)."""
    import onnx

    from trtimport import convert
    from trtimport.core.options import ImportOptions, PrecisionOptions
    from trtimport.onnxtools.passes.lowering import lower_model

    fp32 = work / "fp32.onnx"
    import_options = ImportOptions(**options)  # type: ignore[arg-type]
    convert(model, import_options=import_options, save_onnx_to=fp32, build=False)
    start = time.perf_counter()
    _, notes, report = lower_model(
        onnx.load(str(fp32)),
        PrecisionOptions("fp16", max_error=bound),
        "tensorrt_rtx",
        work,
        work / "unused.calib.json",
        import_options.input_shapes,
    )
    assert report is not None and report.error is not None
    return {
        "seconds": time.perf_counter() - start,
        "error_before": report.error_before,
        "error": report.error,
        "kept": len(report.kept),
        "trials": report.trials,
        "fp16": next(n for n in notes if n.startswith("--precision")),
    }


def main() -> None:
    """Measure and print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bound", type=float, default=1e-3)
    parser.add_argument("--onnx", action="append", default=[], metavar="PATH:INPUT:SHAPE")
    parser.add_argument("--only", help="comma-separated Caffe model names ('' for none)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from trtimport.core.options import parse_shape

    every = [p.stem for p in sorted(CAFFE.glob("*.prototxt"))]
    stems = every if args.only is None else [x for x in args.only.split(",") if x]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        jobs: list[tuple[str, Path, dict[str, object]]] = []
        for stem in stems:
            model, options = _caffe(stem, work)
            jobs.append((f"{stem} (Caffe)", model, options))
        for spec in args.onnx:
            path, name, shape = spec.rsplit(":", 2)
            jobs.append(
                (
                    f"{Path(path).stem} (ONNX)",
                    Path(path),
                    {"input_shapes": {name: parse_shape(shape)}},
                )
            )
        for label, model, options in jobs:
            rows[label] = measure(model, options, args.bound, work)
            print(label, rows[label], file=sys.stderr, flush=True)
    print(
        f"| model | fp16 error | with --max-error {args.bound:g} | nodes kept in fp32 | "
        "trial rewrites | seconds |"
    )
    print("|---|---|---|---|---|---|")
    for label, row in rows.items():
        print(
            f"| {label} | {row['error_before']:.1e} | {row['error']:.1e} | {row['kept']} | "
            f"{row['trials']} | {row['seconds']:.0f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
