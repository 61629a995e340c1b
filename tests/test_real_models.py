"""The real-model sweep: OCR, voice-activity and MediaPipe models from pinned PyPI wheels.

``tools/fetch_models.py`` fetches them (``.ci/run`` does); without them these tests skip. What
is checked, through the command line as a user runs it (in two worker processes):

- with no flags, every model whose only dynamic axis is the batch builds, and every other model
  fails with one message naming its other dynamic axes and an ``--input`` line; no traceback;
- with the shapes a user gives (``SHAPE_FLAGS``), trtimport builds every model, strictly more
  than the bare TensorRT parser (the voice-activity detectors with ``If`` fail there);
- the TFLite models' ONNX gives TensorFlow Lite's interpreter's outputs.

The measured table (bare parser, no flags, shapes, fp16 error, time) is in
docs/performance.md; ``benchmarks/real_models.py`` makes it.
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from node_case_build import build_bare, silence_output
from traceback_sweep import CliOutcome, cli_outcome

sys.path.insert(0, str(REPO / "tools"))
from fetch_models import DEFAULT_DEST, SHAPE_FLAGS, model_files

pytest.importorskip("tensorrt_rtx")

MODELS = model_files(DEFAULT_DEST)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(p.is_file() for p in MODELS.values()),
        reason="real models absent: run python tools/fetch_models.py",
    ),
]
#: Models whose only dynamic axis is the batch (or none): they build with no flags.
BATCH_ONLY = {
    "silero_vad_16k_sequence.onnx",
    "silero_vad_openvino_16k.onnx",
    "face_detection_short_range.tflite",
    "palm_detection_lite.tflite",
    "hand_landmark_lite.tflite",
    "selfie_segmentation.tflite",
}


def _run_all(jobs: list[tuple[str, ...]]) -> list[CliOutcome]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context, initializer=silence_output) as pool:
        return list(pool.map(cli_outcome, jobs))


def _shapes(flags: list[str]) -> dict[str, tuple[int, ...]]:
    from trtimport.core.options import parse_input_spec

    pairs = zip(flags[::2], flags[1::2], strict=True)
    return dict(parse_input_spec(value) for flag, value in pairs if flag == "--input")


#: One target keeps the builds short (a portable build compiles for three); both sides use it.
TARGET = ("sm86",)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[CliOutcome]]:
    """Every model with no flags (TFLite ones keeping their ONNX), then with shapes."""
    out = tmp_path_factory.mktemp("sweep")
    target = ["--target", TARGET[0]]
    jobs = [
        (str(p), *target, "-o", str(out / f"{n}.engine"), "--save-onnx", str(out / f"{n}.onnx"))
        for n, p in MODELS.items()
    ]
    jobs += [
        (str(MODELS[n]), *flags, *target, "-o", str(out / f"{n}.shapes.engine"))
        for n, flags in SHAPE_FLAGS.items()
    ]
    return out, _run_all(jobs)


def test_no_flags_and_with_shapes_against_the_bare_parser(
    sweep: tuple[Path, list[CliOutcome]],
) -> None:
    _, outcomes = sweep
    tracebacks = [o.traceback for o in outcomes if o.traceback]
    assert not tracebacks, "\n\n".join(tracebacks)
    plain, shaped = outcomes[: len(MODELS)], outcomes[len(MODELS) :]
    built = {Path(o.args[0]).name for o in plain if o.code == 0}
    assert built == BATCH_ONLY
    for o in plain:
        if o.code != 0:
            assert o.code == 1 and "other than the batch" in o.output, o.output
            assert o.output.count("error:") == 1 and "--input " in o.output, o.output
    assert [o.code for o in shaped] == [0] * len(shaped), [o.output for o in shaped if o.code]
    # The bare parser with the same shapes, on the ONNX models.
    bare = {
        n: build_bare(str(MODELS[n]), _shapes(SHAPE_FLAGS.get(n, [])), {}, TARGET).built
        for n in MODELS
        if n.endswith(".onnx")
    }
    ours = {n: n in BATCH_ONLY or n in SHAPE_FLAGS for n in bare}
    print(f"\nbare parser builds {sum(bare.values())} of {len(bare)} ONNX models, trtimport all")
    assert all(ours.values()) and sum(bare.values()) < len(bare)
    assert not bare["silero_vad_16k_op15.onnx"] and not bare["silero_vad_half.onnx"]


def test_tflite_models_give_the_interpreters_outputs(
    sweep: tuple[Path, list[CliOutcome]],
) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    tf = pytest.importorskip("tensorflow")
    out, _ = sweep
    names = [n for n in MODELS if n.endswith(".tflite")]
    for name in names:
        interpreter = tf.lite.Interpreter(model_path=str(MODELS[name]))
        interpreter.allocate_tensors()
        (detail,) = interpreter.get_input_details()
        # A bright ellipse on a dark, noisy background: the segmentation mask is not all 0.
        x = np.random.default_rng(0).random(detail["shape"], np.float32) * 0.1
        h, w = detail["shape"][1:3]
        yy, xx = np.mgrid[:h, :w]
        x[0][((yy - h / 2) / (h / 3)) ** 2 + ((xx - w / 2) / (w / 5)) ** 2 < 1] += 0.7
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()
        want = {
            d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()
        }
        session = onnxruntime.InferenceSession(
            str(out / f"{name}.onnx"), providers=["CPUExecutionProvider"]
        )
        got = session.run(None, {session.get_inputs()[0].name: x})
        for output, value in zip(session.get_outputs(), got, strict=True):
            ref = want[output.name]
            scale = max(1.0, float(np.abs(ref).max()))
            assert np.abs(value - ref).max() <= 5e-4 * scale, (name, output.name)
