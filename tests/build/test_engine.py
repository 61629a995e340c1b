"""The sidecar schema: what make_sidecar writes, import_options_of reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtimport.build.engine import TensorInfo, import_options_of, make_sidecar
from trtimport.core.options import BuildOptions, ImportOptions, PrecisionOptions
from trtimport.importers.tensorflow.options import TensorFlowOptions


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
        importer_options={"tensorflow": TensorFlowOptions(inputs_as_nchw=("x",))},
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
    assert sidecar["import_options"]["importer_options"] == {
        "tensorflow": {"inputs_as_nchw": ["x"]}
    }
    back = import_options_of(sidecar, weights)
    # The importer's options come back as the recorded mapping and become typed when read.
    assert back.importer_options_for(TensorFlowOptions) == TensorFlowOptions(("x",))
    typed = {"tensorflow": back.importer_options_for(TensorFlowOptions)}
    assert ImportOptions(**{**vars(back), "importer_options": typed}) == ImportOptions(
        **{**vars(options), "weights": weights}
    )


def test_nodes_kept_by_max_error_are_kept_again_without_a_search(tmp_path: Path) -> None:
    """A re-import (refit) of a --max-error engine gives the same graph: same kept nodes."""
    pytest.importorskip("tensorrt_rtx")
    from trtimport.core.backend import get_backend

    options = ImportOptions(precision=PrecisionOptions("fp16", keep_fp32=("fc*",), max_error=1e-3))
    sidecar = make_sidecar(
        backend=get_backend(),
        source=tmp_path / "m.onnx",
        format="onnx",
        file_hashes=[],
        import_options=options,
        build_options=BuildOptions(),
        builder_threads=1,
        targets=[],
        shape_tensor_inputs=[],
        inputs=[],
        outputs=[],
        layers=1,
        seconds=1.0,
        rewrites={
            "precision": {"keep_fp32": ["fc1", "fc2"], "kept_for_error": ["conv3", "fc2_relu"]}
        },
    )
    assert sidecar["rewrites"]["precision"]["kept_for_error"] == ["conv3", "fc2_relu"]
    back = import_options_of(sidecar).precision
    assert back.keep_fp32 == ("fc1", "fc2", "conv3", "fc2_relu") and back.max_error is None
    assert back.precision == "fp16"


def test_sidecars_from_before_typed_options_keep_their_inputs_as_nchw() -> None:
    """Engines built when ``--inputs-as-nchw`` travelled in ``extra`` still refit the same."""
    old = {
        "source": {"format": "tensorflow"},
        "import_options": {"extra": {"inputs_as_nchw": ["x"]}},
    }
    back = import_options_of(old)
    assert back.importer_options_for(TensorFlowOptions).inputs_as_nchw == ("x",)
    assert import_options_of({"import_options": {"extra": {}}}).importer_options == {}
