"""The committed Caffe stubs match caffe.proto, and every shipped prototxt parses against it."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from protoc_child import compile_proto

from trtimport.importers.caffe.proto import caffe_pb2, regen

REPO = Path(__file__).resolve().parents[3]
PROTOTXTS = sorted(
    [
        *(REPO / "tests" / "data" / "caffe").glob("*.prototxt"),
        *(REPO / "examples" / "mnist").glob("*.prototxt"),
    ]
)


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    for generated in compile_proto(regen.PROTO_FILE, tmp_path):
        committed = regen.PROTO_DIR / generated.name
        assert generated.read_bytes() == committed.read_bytes(), (
            f"{committed.name} is stale: run `python -m trtimport.importers.caffe.proto.regen`"
        )


def test_there_are_prototxts_to_check() -> None:
    assert len(PROTOTXTS) >= 16


@pytest.mark.parametrize("path", PROTOTXTS, ids=lambda p: p.name)
def test_real_prototxt_parses(path: Path) -> None:
    net = caffe_pb2.NetParameter()
    text_format.Parse(path.read_text(), net)
    assert len(net.layer) + len(net.layers) > 0


def test_bvlc_field_numbers() -> None:
    """Spot-check wire numbers that real caffemodels depend on."""
    layer = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
    assert layer["blobs"].number == 7
    assert layer["convolution_param"].number == 106
    assert layer["batch_norm_param"].number == 139
    assert layer["input_param"].number == 143
    assert layer["clip_param"].number == 148
    assert layer["prior_box_param"].number == 203
    assert layer["norm_param"].number == 206
    net = caffe_pb2.NetParameter.DESCRIPTOR.fields_by_name
    assert (net["layer"].number, net["layers"].number, net["input_dim"].number) == (100, 2, 4)
    blob = caffe_pb2.BlobProto.DESCRIPTOR.fields_by_name
    assert (blob["data"].number, blob["double_data"].number, blob["shape"].number) == (5, 8, 7)
    v1 = caffe_pb2.V1LayerParameter
    assert v1.DESCRIPTOR.fields_by_name["blobs"].number == 6
    assert v1.DECONVOLUTION == 39 and v1.INNER_PRODUCT == 14


def test_fork_layer_params_parse() -> None:
    text = """
    layer { name: "p" type: "PriorBox" bottom: "a" bottom: "b" top: "p"
      prior_box_param { min_size: 30 max_size: 60 aspect_ratio: 2 flip: true clip: false
                        variance: 0.1 variance: 0.2 step: 8 offset: 0.5 } }
    layer { name: "d" type: "DetectionOutput" bottom: "l" bottom: "c" bottom: "p" top: "d"
      detection_output_param { num_classes: 21 nms_param { nms_threshold: 0.45 top_k: 100 }
                               code_type: CENTER_SIZE keep_top_k: 100 confidence_threshold: 0.25 } }
    layer { name: "n" type: "Normalize" bottom: "x" top: "n"
      norm_param { across_spatial: false channel_shared: false scale_filler { value: 20 } } }
    layer { name: "pe" type: "Permute" bottom: "x" top: "pe" permute_param { order: 0 order: 2 } }
    layer { name: "s" type: "ShuffleChannel" bottom: "x" top: "s"
      shuffle_channel_param { group: 3 } }
    layer { name: "i" type: "Interp" bottom: "x" top: "i" interp_param { zoom_factor: 2 } }
    layer { name: "u" type: "Upsample" bottom: "x" top: "u" upsample_param { scale: 2 } }
    layer { name: "b" type: "BN" bottom: "x" top: "b" bn_param { eps: 1e-5 } }
    layer { name: "b2" type: "BN" bottom: "x" top: "b2" bn_param { bn_mode: INFERENCE } }
    layer { name: "r" type: "ReLU6" bottom: "x" top: "r" }
    layer { name: "dw" type: "ConvolutionDepthwise" bottom: "x" top: "dw"
      convolution_param { num_output: 8 group: 8 kernel_size: 3 } }
    layer { name: "roi" type: "ROIPooling" bottom: "x" bottom: "r" top: "roi"
      roi_pooling_param { pooled_h: 7 pooled_w: 7 spatial_scale: 0.0625 } }
    layer { name: "ax" type: "Axpy" bottom: "a" bottom: "x" bottom: "y" top: "ax" }
    """
    net = caffe_pb2.NetParameter()
    text_format.Parse(text, net)
    assert net.layer[0].prior_box_param.variance == pytest.approx([0.1, 0.2])
    assert net.layer[1].detection_output_param.nms_param.top_k == 100
    assert net.layer[8].bn_param.bn_mode == caffe_pb2.BNParameter.INFERENCE
    # A binary round trip keeps every fork parameter.
    again = caffe_pb2.NetParameter.FromString(net.SerializeToString())
    assert again == net
