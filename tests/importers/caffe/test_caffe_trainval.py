"""train_val prototxts: TEST-phase rules, loss/accuracy layers dropped, data layers as inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from trtimport.errors import TrtImportError
from trtimport.importers.caffe.convert import caffe_to_onnx, check_caffe
from trtimport.importers.caffe.inputs import override_input_shapes
from trtimport.importers.caffe.parse import load_caffe

REPO = Path(__file__).resolve().parents[3]
CAFFE = REPO / "tests" / "data" / "caffe"


def _graph(path: Path) -> tuple[list[bytes], dict[str, np.ndarray], list[bytes], list[bytes]]:
    graph = onnx.load(str(path)).graph
    return (
        [n.SerializeToString() for n in graph.node],
        {i.name: numpy_helper.to_array(i) for i in graph.initializer},
        [i.SerializeToString() for i in graph.input],
        [o.SerializeToString() for o in graph.output],
    )


def test_train_test_prototxt_converts_to_the_deploy_graph(tmp_path: Path) -> None:
    """BVLC's lenet_train_test.prototxt with LeNet's real weights gives lenet.prototxt's graph."""
    weights = CAFFE / "weights" / "LeNet.caffemodel"
    deploy = load_caffe(CAFFE / "LeNet.prototxt", weights)
    caffe_to_onnx(deploy, tmp_path / "deploy.onnx", outputs=["ip2"])  # deploy adds a Softmax
    train = load_caffe(CAFFE / "train_val" / "LeNet-train_test.prototxt", weights)
    train.notes += override_input_shapes(train, {"data": (64, 1, 28, 28)})
    conversion = caffe_to_onnx(train, tmp_path / "train.onnx")
    assert conversion.outputs == {"ip2": (64, 10)}
    nodes, inits, inputs, outputs = _graph(tmp_path / "train.onnx")
    d_nodes, d_inits, d_inputs, d_outputs = _graph(tmp_path / "deploy.onnx")
    assert (nodes, inputs, outputs) == (d_nodes, d_inputs, d_outputs)
    assert inits.keys() == d_inits.keys()
    assert all(np.array_equal(inits[k], d_inits[k]) for k in inits)
    notes = "\n".join(train.notes)
    assert "left out 1 layers that a TEST net does not run" in notes
    assert "dropped 2 loss/accuracy layer(s): accuracy (Accuracy), loss (SoftmaxWithLoss)" in notes
    assert "the net's outputs include what they read: ip2\n" in notes
    assert "the data layer 'mnist' (Data) became the input(s) 'data' (shape from --input)" in notes


def test_a_data_layer_without_a_shape_asks_for_input(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        str(CAFFE / "train_val" / "LeNet-train_test.prototxt"), "-o", str(tmp_path / "l.engine")
    )
    assert result.returncode == 1
    assert "no shape for data" in result.stderr and "--input data:NxCxHxW" in result.stderr
    assert "LeNet-train_test.prototxt:19" in result.stderr  # the TEST-phase data layer's line


def test_an_input_layer_without_shape_takes_it_from_input(tmp_path: Path) -> None:
    """Caffe's Input layer without a shape defers to reshaping; --input gives it."""
    prototxt = tmp_path / "deferred.prototxt"
    prototxt.write_text(
        'layer { name: "data" type: "Input" top: "data" }\n'
        'layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"\n'
        "  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n"
    )
    model = load_caffe(prototxt, None)
    with pytest.raises(TrtImportError, match=r"deferred.prototxt:1\): no shape for data"):
        check_caffe(model)
    override_input_shapes(model, {"data": (1, 3, 9, 9)})
    assert check_caffe(model) == {"pool": (1, 3, 5, 5)}


TRAIN_VAL = """name: "forked"
state { stage: "deploy-ish" }
layer { name: "train_data" type: "ImageData" top: "data" top: "label"
  include { phase: TRAIN }
  image_data_param { source: "train.txt" batch_size: 32 new_height: 40 new_width: 48 } }
layer { name: "test_data" type: "ImageData" top: "data" top: "label"
  include { phase: TEST }
  image_data_param { source: "val.txt" batch_size: 2 new_height: 20 new_width: 24
                     is_color: false } }
layer { name: "seg" type: "DenseImageData" top: "seg" top: "seg_label"
  dense_image_data_param { source: "s.txt" batch_size: 3 crop_height: 8 crop_width: 6 } }
layer { name: "ssd" type: "AnnotatedData" top: "ssd" top: "boxes"
  transform_param { mean_value: 104 mean_value: 117 mean_value: 123
                    resize_param { height: 10 width: 12 } }
  data_param { batch_size: 4 } }
layer { name: "py" type: "Python" top: "py" top: "py_label"
  python_param { module: "my_data.layer" layer: "ListData" } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 2 kernel_size: 3 } }
layer { name: "only_in_stage" type: "ReLU" bottom: "conv" top: "relu_stage"
  include { phase: TEST stage: "deploy-ish" } }
layer { name: "not_in_stage" type: "ReLU" bottom: "conv" top: "relu_other"
  exclude { stage: "deploy-ish" } }
layer { name: "seg_relu" type: "ReLU" bottom: "seg" top: "seg_relu" }
layer { name: "ssd_relu" type: "ReLU" bottom: "ssd" top: "ssd_relu" }
layer { name: "py_relu" type: "ReLU" bottom: "py" top: "py_relu" }
layer { name: "smooth" type: "SmoothL1Loss" bottom: "py_relu" bottom: "py_label" top: "l1"
  smooth_l1_loss_param { sigma: 3 } }
layer { name: "seg_loss" type: "SoftmaxWithLoss" bottom: "seg_relu" bottom: "seg_label" top: "sl" }
layer { name: "acc" type: "Accuracy" bottom: "relu_stage" bottom: "label" top: "acc" }
"""


def test_data_layers_become_inputs_with_the_shapes_their_parameters_imply(tmp_path: Path) -> None:
    prototxt = tmp_path / "train_val.prototxt"
    prototxt.write_text(TRAIN_VAL)
    model = load_caffe(prototxt, None)
    assert model.input_shapes == {
        "data": (2, 1, 20, 24),  # the TEST ImageData: gray, new_height x new_width
        "seg": (3, 3, 8, 6),  # SegNet's DenseImageData crop
        "ssd": (4, 3, 10, 12),  # SSD's resize_param, channels from the mean values
        "py": (),  # a Python data layer: --input
    }
    assert [layer.name for layer in model.net.layer if layer.type != "Input"] == [
        "conv",
        "only_in_stage",
        "seg_relu",
        "ssd_relu",
        "py_relu",
    ]
    with pytest.raises(TrtImportError, match=r"no shape for py .*--input py:NxCxHxW"):
        check_caffe(model)
    override_input_shapes(model, {"py": (1, 5)})
    outputs = check_caffe(model)
    assert outputs == {
        "relu_stage": (2, 2, 18, 22),
        "seg_relu": (3, 3, 8, 6),
        "ssd_relu": (4, 3, 10, 12),
        "py_relu": (1, 5),
    }
