"""Every problem of a net in one message, structure before weights (through the CLI and the API)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtimport.errors import UnsupportedLayerError
from trtimport.importers.caffe.convert import check_caffe
from trtimport.importers.caffe.parse import load_caffe

BROKEN = """name: "broken"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer {
  name: "conv"
  type: "Convolution"
  bottom: "data"
  top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 sparsity { level: 2 } }
}
layer {
  name: "pool"
  type: "Pooling"
  bottom: "conv"
  top: "pool"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 warp_mode: "x" }
}
layer {
  name: "pool2"
  type: "Pooling"
  bottom: "pool"
  top: "pool2"
  pooling_param { pool: MAX kernel_size: 2 warp_mode: "y" }
}
layer {
  name: "big"
  type: "Convolution"
  bottom: "pool2"
  top: "big"
  convolution_param { num_output: 2 kernel_size: 9 }
}
layer {
  name: "proposal"
  type: "Python"
  bottom: "pool"
  top: "rois"
  python_param { module: "rpn.proposal_layer" layer: "ProposalLayer" }
}
layer { name: "magic" type: "Magic" bottom: "pool" top: "magic" }
"""


def test_every_problem_is_reported_at_once_before_weights(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    prototxt = tmp_path / "broken.prototxt"
    prototxt.write_text(BROKEN)
    result = cli(str(prototxt), "-o", str(tmp_path / "m.engine"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    message = result.stderr
    assert f"{prototxt}:9:52: unknown field 'sparsity' in ConvolutionParameter" in message
    assert f"{prototxt}:16:54: unknown field 'warp_mode' in PoolingParameter" in message
    assert "also at line(s) 23" in message  # the same field again: one entry, every line
    assert f"layer 'proposal' (Python, {prototxt}:32)" in message
    assert "rpn.proposal_layer.ProposalLayer" in message
    assert "converts as the built-in Proposal layer, but its param_str has no 'feat_stride'" in (
        message
    )
    assert f"layer 'magic' (Magic, {prototxt}:39)" in message
    assert f"layer 'big' (Convolution, {prototxt}:25)" in message and "does not fit" in message
    assert "make-weights" not in message  # weights come after the structure
    assert not (tmp_path / "m.engine").exists()


def test_a_sound_prototxt_alone_is_checked_then_asks_for_weights(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = BROKEN.split('layer {\n  name: "pool2"')[0].replace(" sparsity { level: 2 }", "")
    prototxt = tmp_path / "sound.prototxt"
    prototxt.write_text(text.replace(' warp_mode: "x"', ""))
    result = cli(str(prototxt), "-o", str(tmp_path / "m.engine"))
    assert result.returncode == 1
    assert "the structure is fine, but 1 layer(s) need weights (conv)" in result.stderr
    assert f"trtimport caffe make-weights {prototxt}" in result.stderr


def test_check_caffe_records_the_blobs_converters_ask_for(tmp_path: Path) -> None:
    prototxt = tmp_path / "broken.prototxt"
    prototxt.write_text(BROKEN)
    model = load_caffe(prototxt, None)
    with pytest.raises(UnsupportedLayerError):
        check_caffe(model)
    assert model.requested_blobs["conv"] == {0: (4, 3, 3, 3), 1: (4,)}
