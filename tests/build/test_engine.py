"""The sidecar schema: what make_sidecar writes, import_options_of reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtimport.build.engine import TensorInfo, import_options_of, make_sidecar
from trtimport.core.options import BuildOptions, ImportOptions, PrecisionOptions


def test_recorded_import_options_come_back_whole(tmp_path: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    from trtimport.core.backend import get_backend

    options = ImportOptions(
        format="onnx",
        input_shapes={"x": (1, 3, 8, 8)},
        input_values={"shape": (2, -1)},
        outputs=["y"],
        opset=17,
        batch=(1, 4, 8),
        more_batches=[(16, 16, 16)],
        precision=PrecisionOptions(
            precision="fp16",
            int8=True,
            calib_data=tmp_path / "calib.npz",
            calib_batches=3,
            calib_method="percentile",
            calib_percentile=99.9,
            calib_cache=tmp_path / "m.calib.json",
        ),
        extra={"inputs_as_nchw": ["x"]},
    )
    sidecar = make_sidecar(
        backend=get_backend(),
        source=tmp_path / "m.onnx",
        format="onnx",
        file_hashes=[],
        import_options=options,
        build_options=BuildOptions(),
        builder_threads=2,
        targets=[],
        shape_tensor_inputs=["shape"],
        inputs=[TensorInfo("x", (1, 3, 8, 8), "float32")],
        outputs=[TensorInfo("y", (1, 10), "float32")],
        layers=3,
        seconds=1.0,
    )
    weights = tmp_path / "new.onnx"
    back = import_options_of(sidecar, weights)
    assert back == ImportOptions(**{**vars(options), "weights": weights})
