"""The real-model sweep: what the bare TensorRT parser and trtimport make of real models.

For each model fetched by ``tools/fetch_models.py`` (OCR, voice-activity detection, MediaPipe
TFLite), one row:

- bare: the few lines a TensorRT user writes (parse, fix input shapes, build), with the
  shapes of ``SHAPE_FLAGS``; a TFLite file first goes through ``tf2onnx.convert.from_tflite``;
- no flags: ``trtimport MODEL``;
- shapes: ``trtimport MODEL`` with ``SHAPE_FLAGS`` (fixed shapes, pinned inputs);
- fp16 error: the largest absolute output difference between the model's own runtime (ONNX
  Runtime, TFLite's interpreter) and trtimport's fp16-rewritten ONNX (``verify --precision
  fp16``, on the CPU);
- time: seconds of the "shapes" command, in this process.

Usage: python benchmarks/real_models.py [--models DIR] [--only NAME,…] [--json]
Prints a Markdown table (docs/performance.md has the measured one).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from fetch_models import DEFAULT_DEST, SHAPE_FLAGS, model_files  # noqa: E402


def _input_shapes(flags: list[str]) -> dict[str, tuple[int, ...]]:
    from trtimport.core.options import parse_input_spec

    pairs = zip(flags[::2], flags[1::2], strict=True)
    return dict(parse_input_spec(value) for flag, value in pairs if flag == "--input")


def _onnx_for_bare(path: Path, folder: Path) -> Path:
    if path.suffix != ".tflite":
        return path
    from trtimport.importers.tensorflow.convert import import_tensorflow

    import_tensorflow()
    import tf2onnx

    model, _ = tf2onnx.convert.from_tflite(str(path), opset=17)
    out = folder / f"{path.stem}.onnx"
    out.write_bytes(model.SerializeToString())
    return out


def bare(path: Path, flags: list[str], folder: Path) -> str:
    """``ok`` or where the bare parser and builder stopped."""
    import tensorrt_rtx as trt

    try:
        onnx_path = _onnx_for_bare(path, folder)
    except Exception as err:  # tf2onnx raises many types; the row records it
        return f"tf2onnx: {type(err).__name__}"
    logger = trt.Logger(trt.Logger.INTERNAL_ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        return "parse error"
    shapes = _input_shapes(flags)
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if tensor.name in shapes:
            tensor.shape = shapes[tensor.name]
    config = builder.create_builder_config()
    try:
        built = builder.build_serialized_network(network, config) is not None
    except (RuntimeError, TypeError, ValueError):
        built = False
    return "ok" if built else "build error"


def cli(args: list[str]) -> tuple[int, str, float]:
    """``trtimport ARGS`` in this process: (exit code, first line of its error, seconds)."""
    from trtimport.cli import main

    err = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(args)
    seconds = time.perf_counter() - start
    first = next((line for line in err.getvalue().splitlines() if line.startswith("error")), "")
    return code, first.replace(f"error: {args[0]}: ", ""), seconds


def fp16_error(path: Path, flags: list[str]) -> float | None:
    """Largest |fp16 ONNX - reference| over the outputs, or None when it cannot be measured."""
    from trtimport import ImportOptions, TrtImportError
    from trtimport.core.options import parse_input_values_spec
    from trtimport.verify.verify import verify_model

    pairs = list(zip(flags[::2], flags[1::2], strict=True))
    values = dict(parse_input_values_spec(v) for f, v in pairs if f == "--input-values")
    options = ImportOptions(
        input_shapes=_input_shapes(flags), input_values=values, precision="fp16"
    )
    try:
        report = verify_model(path, import_options=options, runtime="onnxruntime")
    except TrtImportError:
        return None
    errors = [o.as_dict().get("max_abs") for c in report.candidates for o in c.outputs]
    numbers = [float(e) for e in errors if e is not None]
    return max(numbers) if numbers else None


def sweep(folder: Path, only: list[str]) -> list[dict[str, Any]]:
    """One row per model present in ``folder``."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="trtimport-sweep-") as tmp:
        out = Path(tmp)
        for name, path in model_files(folder).items():
            if not path.is_file() or (only and name not in only):
                continue
            flags = SHAPE_FLAGS.get(name, [])
            engine = str(out / "model.engine")
            no_flags, no_flags_error, _ = cli([str(path), "-o", engine, "-q"])
            shaped, shaped_error, seconds = cli([str(path), *flags, "-o", engine, "-q"])
            rows.append(
                {
                    "model": name,
                    "bare": bare(path, flags, out),
                    "no_flags": "ok" if no_flags == 0 else no_flags_error,
                    "shapes": "ok" if shaped == 0 else shaped_error,
                    "fp16_max_abs_error": fp16_error(path, flags),
                    "seconds": round(seconds, 2),
                }
            )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""

    def short(text: str) -> str:
        return "builds" if text == "ok" else text.replace("|", "/")[:70]

    lines = [
        "| model | bare parser (shapes) | trtimport, no flags | trtimport, shapes | fp16 error "
        "| s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        fp16 = "n/a" if r["fp16_max_abs_error"] is None else f"{r['fp16_max_abs_error']:.2g}"
        lines.append(
            f"| {r['model']} | {short(r['bare'])} | {short(r['no_flags'])} | "
            f"{short(r['shapes'])} | {fp16} | {r['seconds']} |"
        )
    built = {k: sum(r[k] == "ok" for r in rows) for k in ("bare", "no_flags", "shapes")}
    lines.append(
        f"\nbuilt: bare {built['bare']}, trtimport no flags {built['no_flags']}, "
        f"trtimport shapes {built['shapes']} of {len(rows)}"
    )
    return "\n".join(lines)


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=DEFAULT_DEST)
    parser.add_argument("--only", default="", help="comma-separated file names")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = sweep(args.models, [n for n in args.only.split(",") if n])
    print(json.dumps(rows, indent=2) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
