"""load_caffe and its helpers on the real test models and on hand-written legacy nets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trtimport.errors import ModelParseError, ShapeError, UsageError
from trtimport.importers.caffe.parse import (
    blob_as,
    check_bottoms,
    detect_caffe,
    find_deploy_prototxt,
    load_caffe,
    parse_prototxt_text,
    require_blobs,
)
from trtimport.importers.caffe.proto import caffe_pb2

REPO = Path(__file__).resolve().parents[3]
CAFFE = REPO / "tests" / "data" / "caffe"
WEIGHTS = CAFFE / "weights"
PROTOTXTS = sorted(CAFFE.glob("*.prototxt"))


def _weights_for(prototxt: Path) -> Path | None:
    path = WEIGHTS / f"{prototxt.stem}.caffemodel"
    return path if path.exists() else None


@pytest.mark.parametrize("prototxt", PROTOTXTS, ids=lambda p: p.name)
def test_real_models_load(prototxt: Path) -> None:
    model = load_caffe(prototxt, _weights_for(prototxt))
    check_bottoms(model)
    assert model.input_shapes and all(len(s) == 4 for s in model.input_shapes.values())
    lines = prototxt.read_text().splitlines()
    for layer in model.net.layer:
        assert not layer.blobs
        line = model.layer_lines[layer.name]
        assert lines[line - 1].lstrip().startswith("layer"), (layer.name, line)
        block = "\n".join(lines[line - 1 : line + 3])
        assert f'"{layer.name}"' in block


def test_v1_alexnet_upgrades_to_the_v2_definition() -> None:
    old = load_caffe(CAFFE / "AlexNet-V1-2014.prototxt", None)
    new = load_caffe(CAFFE / "AlexNet.prototxt", None)
    current = {layer.name: layer for layer in new.net.layer}
    assert not old.net.layers
    for layer in old.net.layer:
        upgraded = caffe_pb2.LayerParameter()
        upgraded.CopyFrom(layer)
        reference = caffe_pb2.LayerParameter()
        reference.CopyFrom(current[layer.name])
        upgraded.ClearField("param")
        reference.ClearField("param")
        assert upgraded == reference, layer.name
    assert old.input_shapes == new.input_shapes == {"data": (10, 3, 227, 227)}
    assert any("upgraded 23 legacy" in note for note in old.notes)


V0_NET = """
name: "v0"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }
layers { layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 3 stride: 2 group: 1
                 biasterm: false } bottom: "pad1" top: "conv1" }
layers { layer { name: "pool1" type: "pool" pool: AVE kernelsize: 2 stride: 2 }
         bottom: "conv1" top: "pool1" }
layers { layer { name: "norm1" type: "lrn" local_size: 3 alpha: 0.5 beta: 0.7 }
         bottom: "pool1" top: "norm1" }
layers { layer { name: "fc" type: "innerproduct" num_output: 10 } bottom: "norm1" top: "fc" }
layers { layer { name: "prob" type: "softmax" } bottom: "fc" top: "prob" }
"""


def test_v0_net_upgrades_and_folds_padding(tmp_path: Path) -> None:
    path = tmp_path / "v0.prototxt"
    path.write_text(V0_NET)
    model = load_caffe(path, None)
    names = [(layer.name, layer.type) for layer in model.net.layer]
    assert names == [
        ("conv1", "Convolution"),
        ("pool1", "Pooling"),
        ("norm1", "LRN"),
        ("fc", "InnerProduct"),
        ("prob", "Softmax"),
    ]
    conv = model.net.layer[0]
    assert list(conv.bottom) == ["data"]
    p = conv.convolution_param
    assert (list(p.pad), list(p.kernel_size), list(p.stride), p.num_output, p.bias_term) == (
        [2],
        [3],
        [2],
        4,
        False,
    )
    pool = model.net.layer[1].pooling_param
    assert (pool.pool, pool.kernel_size, pool.stride) == (caffe_pb2.PoolingParameter.AVE, 2, 2)
    assert model.net.layer[2].lrn_param.local_size == 3
    assert model.layer_lines["conv1"] == 6
    check_bottoms(model)


def test_input_shapes_from_every_declaration(tmp_path: Path) -> None:
    path = tmp_path / "n.prototxt"
    path.write_text(
        'input: "a" input_shape { dim: 1 dim: 2 }\n'
        'input: "b" input_shape { dim: 3 }\n'
        'layer { name: "in" type: "Input" top: "c" top: "d"\n'
        "  input_param { shape { dim: 2 dim: 5 } } }\n"
    )
    model = load_caffe(path, None)
    assert model.input_shapes == {"a": (1, 2), "b": (3,), "c": (2, 5), "d": (2, 5)}
    path.write_text('input: "a" input: "b" input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 4\n')
    with pytest.raises(ModelParseError, match="2 input"):
        load_caffe(path, None)


def test_training_caffemodel_supplies_deploy_weights_by_name() -> None:
    model = load_caffe(CAFFE / "MTCNN-RNet.prototxt", WEIGHTS / "MTCNN-RNet.caffemodel")
    reference = caffe_pb2.NetParameter.FromString((WEIGHTS / "MTCNN-RNet.caffemodel").read_bytes())
    stored = {layer.name: layer for layer in reference.layer}
    for layer in model.net.layer:
        if stored.get(layer.name) is not None and stored[layer.name].blobs:
            first = np.asarray(stored[layer.name].blobs[0].data, np.float32)
            np.testing.assert_array_equal(model.weights[layer.name][0].ravel(), first)
    assert "slicer_label" not in model.weights  # training-only layers are not carried over
    assert any("conv5-3" in note for note in model.notes)


def test_caffemodel_alone_is_the_net_with_test_phase_filtering() -> None:
    model = load_caffe(None, REPO / "examples" / "mnist" / "lenet.caffemodel")
    names = [layer.name for layer in model.net.layer]
    assert "mnist" not in names  # the TRAIN-only Data layer
    assert names[:2] == ["conv1", "pool1"]
    assert model.layer_lines["conv1"] == 0
    assert model.weights["conv1"][0].shape == (20, 1, 5, 5)


def test_phase_rules_in_a_prototxt(tmp_path: Path) -> None:
    path = tmp_path / "train_val.prototxt"
    path.write_text(
        'layer { name: "train" type: "Data" top: "data" include { phase: TRAIN } }\n'
        'layer { name: "test" type: "Input" top: "data" include { phase: TEST }\n'
        "  input_param { shape { dim: 1 dim: 1 } } }\n"
        'layer { name: "drop" type: "Dropout" bottom: "data" top: "data"\n'
        "  exclude { phase: TEST } }\n"
        'layer { name: "staged" type: "ReLU" bottom: "data" top: "data"\n'
        '  include { stage: "deploy" } }\n'
    )
    model = load_caffe(path, None)
    assert [layer.name for layer in model.net.layer] == ["test"]
    assert model.layer_lines == {"test": 2}


def _net(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deploy.prototxt"
    path.write_text(text)
    return path


CONV_NET = (
    'input: "data" input_shape { dim: 1 dim: 2 dim: 4 dim: 4 }\n'
    'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"\n'
    "  convolution_param { num_output: 3 kernel_size: 1 } }\n"
    'layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"\n'
    "  inner_product_param { num_output: 2 } }\n"
)


def _weights(tmp_path: Path, blobs: dict[str, list[tuple[tuple[int, ...], bool]]]) -> Path:
    net = caffe_pb2.NetParameter()
    for name, specs in blobs.items():
        layer = net.layer.add(name=name)
        for shape, legacy in specs:
            blob = layer.blobs.add()
            if legacy:
                blob.num, blob.channels, blob.height, blob.width = shape
            else:
                blob.shape.dim.extend(shape)
            blob.data.extend(np.arange(np.prod(shape), dtype=np.float32))
    path = tmp_path / "w.caffemodel"
    path.write_bytes(net.SerializeToString())
    return path


def test_require_blobs_and_blob_as(tmp_path: Path) -> None:
    weights = _weights(
        tmp_path,
        {"conv": [((3, 2, 1, 1), False), ((3,), False)], "fc": [((1, 1, 2, 48), True)]},
    )
    model = load_caffe(_net(tmp_path, CONV_NET), weights)
    assert len(require_blobs(model, "conv", (1, 2))) == 2
    assert blob_as(model, "fc", 0, (2, 48)).shape == (2, 48)  # legacy 4-D matches
    with pytest.raises(ShapeError) as info:
        blob_as(model, "conv", 0, (3, 4, 1, 1))
    message = str(info.value)
    assert "layer 'conv' (Convolution" in message and "deploy.prototxt:2" in message
    assert "[3, 2, 1, 1]" in message and "expected [3, 4, 1, 1]" in message
    with pytest.raises(ShapeError, match=r"needs 2 weight blob\(s\) but .* has 1"):
        require_blobs(model, "fc", 2)


def test_missing_weights_name_the_layer(tmp_path: Path) -> None:
    weights = _weights(tmp_path, {"conv": [((3, 2, 1, 1), False)]})
    model = load_caffe(_net(tmp_path, CONV_NET), weights)
    with pytest.raises(ModelParseError) as info:
        require_blobs(model, "fc", (1, 2))
    message = str(info.value)
    assert "layer 'fc' (InnerProduct" in message and "deploy.prototxt:4" in message
    assert "1 or 2 weight blob(s) but has none" in message and "w.caffemodel" in message
    no_weights = load_caffe(_net(tmp_path, CONV_NET), None)
    with pytest.raises(ModelParseError, match="make-weights"):
        require_blobs(no_weights, "conv", 2)


def test_check_bottoms_reports_every_problem(tmp_path: Path) -> None:
    path = _net(
        tmp_path,
        'input: "data" input_dim: 1 input_dim: 1 input_dim: 2 input_dim: 2\n'
        'layer { name: "a" type: "ReLU" bottom: "b_out" top: "a_out" }\n'
        'layer { name: "b" type: "ReLU" bottom: "a_out" top: "b_out" }\n'
        'layer { name: "c" type: "Concat" bottom: "data" bottom: "nowhere" top: "c" }\n',
    )
    model = load_caffe(path, None)
    with pytest.raises(ModelParseError) as info:
        check_bottoms(model)
    err = info.value
    assert len(err.problems) == 2
    assert "layer 'a' (ReLU," in err.problems[0] and "only produced later" in err.problems[0]
    assert "deploy.prototxt:3" in err.problems[0]
    assert "'nowhere' is not produced" in err.problems[1] and "deploy.prototxt:4" in err.problems[1]


def test_syntax_error_has_file_line_col_and_layer(tmp_path: Path) -> None:
    path = _net(tmp_path, 'name: "n"\nlayer {\n  name: "conv"\n  type "Convolution"\n}\n')
    with pytest.raises(ModelParseError) as info:
        load_caffe(path, None)
    message = str(info.value)
    assert message.startswith(f"{path}:4:")
    assert "layer 'conv' starting at line 2" in message


def test_unknown_fork_field_says_what_to_do(tmp_path: Path) -> None:
    path = _net(
        tmp_path,
        'layer {\n  name: "sp"\n  type: "Sparse"\n  sparse_param { ratio: 20 }\n}\n',
    )
    with pytest.raises(ModelParseError) as info:
        parse_prototxt_text(path.read_text(), str(path))
    message = str(info.value)
    assert f"{path}:4:3: unknown field 'sparse_param' in LayerParameter" in message
    assert "layer 'sp'" in message and "Caffe fork" in message
    assert "trtimport_register_caffe_layers" in message and "Remove the field" in message


def test_detect_caffe_by_content(tmp_path: Path) -> None:
    def head(path: Path) -> bytes:
        return path.read_bytes()[:4096]

    assert detect_caffe(CAFFE / "VGG16.prototxt", head(CAFFE / "VGG16.prototxt")) == "prototxt"
    model = WEIGHTS / "LeNet.caffemodel"
    assert detect_caffe(model, head(model)) == "caffemodel"
    v1 = caffe_pb2.NetParameter()
    v1.layers.add(name="conv", type=caffe_pb2.V1LayerParameter.CONVOLUTION).bottom.append("d")
    assert detect_caffe(Path("x.bin"), v1.SerializeToString()) == "caffemodel"
    onnx = pytest.importorskip("onnx")
    graph = onnx.helper.make_graph([], "g", [], [])
    model_bytes = onnx.helper.make_model(graph).SerializeToString()
    assert detect_caffe(Path("m.onnx"), model_bytes) is None
    graphdef = b"\n\x0f\n\x05input\x12\x06Placeholder"  # a TF GraphDef: node { name op }
    assert detect_caffe(Path("g.pb"), graphdef) is None
    assert detect_caffe(Path("a.txt"), b"hello world\n") is None
    assert detect_caffe(Path("r.bin"), bytes(range(256)) * 4) is None
    assert detect_caffe(Path("n.prototxt"), b'name: "only a name"\n') == "prototxt"


def test_find_deploy_prototxt(tmp_path: Path) -> None:
    model = tmp_path / "net.caffemodel"
    model.write_bytes(b"")
    with pytest.raises(UsageError, match="--weights"):
        find_deploy_prototxt(model)
    (tmp_path / "deploy.prototxt").write_text("")
    path, note = find_deploy_prototxt(model)
    assert path == tmp_path / "deploy.prototxt" and "deploy.prototxt" in note
    (tmp_path / "net.prototxt").write_text("")
    with pytest.raises(UsageError, match="several"):
        find_deploy_prototxt(model)
    (tmp_path / "deploy.prototxt").unlink()
    assert find_deploy_prototxt(model)[0] == tmp_path / "net.prototxt"


def test_layer_lines_ignore_nested_names_and_comments(tmp_path: Path) -> None:
    path = _net(
        tmp_path,
        '# layer { name: "commented" }\n'
        'input: "data" input_dim: 1 input_dim: 1 input_dim: 2 input_dim: 2\n'
        'layer { param { name: "shared_w" } name: "a" type: "ReLU"\n'
        '  bottom: "data" top: "a" }\n'
        "\n"
        'layer < name: "b" type: "ReLU" bottom: "a" top: "b" >\n',
    )
    model = load_caffe(path, None)
    assert model.layer_lines == {"a": 3, "b": 6}
