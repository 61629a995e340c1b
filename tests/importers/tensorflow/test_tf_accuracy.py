"""Every test model in every format: trtimport's ONNX against TensorFlow's own outputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from trtimport import BuildOptions, ImportOptions, convert

from .tf_models import FORMATS, INPUT_SHAPES, REQUIRES_TF, SavedFiles, relative_error

pytestmark = [
    pytest.mark.tf,
    REQUIRES_TF,
    # Keras 3.15 converts TensorFlow tensors with np.array(x, copy=False) internally.
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

TOLERANCE = 1e-4
EXPECTED_FORMAT = {
    "saved_model": "tensorflow",
    "frozen_pb": "tensorflow",
    "keras": "keras",
    "h5": "keras",
    "tflite": "tflite",
}


def run_onnx(path: Path, x: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """Output names and values of onnxruntime on the ONNX file."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return names, session.run(None, {session.get_inputs()[0].name: x})


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("model", list(INPUT_SHAPES))
def test_converted_model_matches_tensorflow(
    tf_saved: Callable[[str], SavedFiles], tmp_path: Path, model: str, fmt: str
) -> None:
    """Convert with auto-detection, build an engine, compare onnxruntime with TensorFlow."""
    saved = tf_saved(model)
    name = saved.input_names[fmt]
    onnx_path = tmp_path / "model.onnx"
    engine = tmp_path / "model.engine"
    result = convert(
        saved.paths[fmt],
        engine,
        import_options=ImportOptions(input_shapes={name: saved.x.shape}),
        build_options=BuildOptions(progress=False),
        save_onnx_to=onnx_path,
    )
    assert result.format == EXPECTED_FORMAT[fmt]
    assert engine.stat().st_size > 0 and onnx_path.is_file()
    names, actual = run_onnx(onnx_path, saved.x)
    expected = saved.expected_outputs(fmt, names)
    assert len(actual) == len(expected)
    errors = [relative_error(a, e) for a, e in zip(actual, expected, strict=True)]
    print(f"{model} {fmt}: max relative error {max(errors):.2e}")
    assert max(errors) <= TOLERANCE
