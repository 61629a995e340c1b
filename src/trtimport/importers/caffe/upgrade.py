"""Bring legacy Caffe nets to the current form, and keep only the layers a TEST net runs.

Caffe has had three layer formats: V0 (``layers { layer { type: "conv" ... } }``, every
parameter flat), V1 (``layers { type: CONVOLUTION convolution_param { ... } }``, an enum type)
and V2 (``layer { type: "Convolution" ... }``). Everything downstream works on V2 only.
"""

from __future__ import annotations

from trtimport.errors import ModelParseError
from trtimport.importers.caffe.proto import caffe_pb2

V1 = caffe_pb2.V1LayerParameter

#: V1 enum value -> V2 type string.
V1_TYPE_NAMES: dict[int, str] = {
    V1.NONE: "",
    V1.ABSVAL: "AbsVal",
    V1.ACCURACY: "Accuracy",
    V1.ARGMAX: "ArgMax",
    V1.BNLL: "BNLL",
    V1.CONCAT: "Concat",
    V1.CONTRASTIVE_LOSS: "ContrastiveLoss",
    V1.CONVOLUTION: "Convolution",
    V1.DATA: "Data",
    V1.DECONVOLUTION: "Deconvolution",
    V1.DROPOUT: "Dropout",
    V1.DUMMY_DATA: "DummyData",
    V1.EUCLIDEAN_LOSS: "EuclideanLoss",
    V1.ELTWISE: "Eltwise",
    V1.EXP: "Exp",
    V1.FLATTEN: "Flatten",
    V1.HDF5_DATA: "HDF5Data",
    V1.HDF5_OUTPUT: "HDF5Output",
    V1.HINGE_LOSS: "HingeLoss",
    V1.IM2COL: "Im2col",
    V1.IMAGE_DATA: "ImageData",
    V1.INFOGAIN_LOSS: "InfogainLoss",
    V1.INNER_PRODUCT: "InnerProduct",
    V1.LRN: "LRN",
    V1.MEMORY_DATA: "MemoryData",
    V1.MULTINOMIAL_LOGISTIC_LOSS: "MultinomialLogisticLoss",
    V1.MVN: "MVN",
    V1.POOLING: "Pooling",
    V1.POWER: "Power",
    V1.RELU: "ReLU",
    V1.SIGMOID: "Sigmoid",
    V1.SIGMOID_CROSS_ENTROPY_LOSS: "SigmoidCrossEntropyLoss",
    V1.SILENCE: "Silence",
    V1.SOFTMAX: "Softmax",
    V1.SOFTMAX_LOSS: "SoftmaxWithLoss",
    V1.SPLIT: "Split",
    V1.SLICE: "Slice",
    V1.TANH: "TanH",
    V1.WINDOW_DATA: "WindowData",
    V1.THRESHOLD: "Threshold",
    V1.IMAGE_SEG_DATA: "ImageSegData",  # DeepLab v1
    V1.SEG_ACCURACY: "SegAccuracy",
    V1.INTERP: "Interp",
    V1.MAT_WRITE: "MatWrite",
}

#: V0 type string -> V2 type string.
V0_TYPE_NAMES: dict[str, str] = {
    "accuracy": "Accuracy",
    "bnll": "BNLL",
    "concat": "Concat",
    "conv": "Convolution",
    "data": "Data",
    "dropout": "Dropout",
    "euclidean_loss": "EuclideanLoss",
    "flatten": "Flatten",
    "hdf5_data": "HDF5Data",
    "hdf5_output": "HDF5Output",
    "im2col": "Im2col",
    "images": "ImageData",
    "infogain_loss": "InfogainLoss",
    "innerproduct": "InnerProduct",
    "lrn": "LRN",
    "multinomial_logistic_loss": "MultinomialLogisticLoss",
    "pool": "Pooling",
    "relu": "ReLU",
    "sigmoid": "Sigmoid",
    "softmax": "Softmax",
    "softmax_loss": "SoftmaxWithLoss",
    "split": "Split",
    "tanh": "TanH",
    "window_data": "WindowData",
}

#: V1 per-layer parameter fields; each has a same-named field in LayerParameter.
_V1_PARAM_FIELDS = [
    f.name
    for f in V1.DESCRIPTOR.fields
    if f.name.endswith("_param") and f.name in caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
]


def upgrade_net(net: caffe_pb2.NetParameter, source: str) -> int:
    """Rewrite ``net`` in place so that all its layers are V2 ``layer`` entries.

    Returns how many legacy entries were upgraded. ``source`` names the file in errors.
    """
    if not net.layers:
        return 0
    if net.layer:
        raise ModelParseError(
            f"{source}: mixes the current `layer` and the legacy `layers` lists; use one of them"
        )
    legacy = list(net.layers)
    if any(entry.HasField("layer") for entry in legacy):
        legacy = _fold_v0_padding(legacy, source)
    for entry in legacy:
        layer = net.layer.add()
        if entry.HasField("layer"):
            _upgrade_v0(entry, layer, source)
        else:
            _upgrade_v1(entry, layer, source)
    net.ClearField("layers")
    return len(legacy)


def _upgrade_v1(
    entry: caffe_pb2.V1LayerParameter, layer: caffe_pb2.LayerParameter, source: str
) -> None:
    layer.name = entry.name
    layer.bottom.extend(entry.bottom)
    layer.top.extend(entry.top)
    layer.include.extend(entry.include)
    layer.exclude.extend(entry.exclude)
    layer.loss_weight.extend(entry.loss_weight)
    layer.blobs.extend(entry.blobs)
    if entry.type not in V1_TYPE_NAMES:
        raise ModelParseError(f"{source}: layer '{entry.name}' has unknown V1 type {entry.type}")
    layer.type = V1_TYPE_NAMES[entry.type]
    for name in _V1_PARAM_FIELDS:
        if entry.HasField(name):
            getattr(layer, name).CopyFrom(getattr(entry, name))
    # blobs_lr / weight_decay are training settings and are deliberately not carried over.
    for i, param_name in enumerate(entry.param):
        while len(layer.param) <= i:
            layer.param.add()
        layer.param[i].name = param_name


def _fold_v0_padding(
    entries: list[caffe_pb2.V1LayerParameter], source: str
) -> list[caffe_pb2.V1LayerParameter]:
    """Drop V0 ``padding`` layers, moving their padding into the conv/pool layer they feed."""
    producer_of_padding: dict[str, caffe_pb2.V1LayerParameter] = {}
    kept: list[caffe_pb2.V1LayerParameter] = []
    for entry in entries:
        if entry.layer.type == "padding":
            if len(entry.bottom) != 1 or len(entry.top) != 1:
                raise ModelParseError(
                    f"{source}: V0 padding layer '{entry.layer.name}' must have one bottom and "
                    "one top"
                )
            producer_of_padding[entry.top[0]] = entry
            continue
        entry = _copy(entry)
        for i, bottom in enumerate(entry.bottom):
            pad = producer_of_padding.get(bottom)
            if pad is None:
                continue
            if entry.layer.type not in ("conv", "pool"):
                raise ModelParseError(
                    f"{source}: V0 padding layer '{pad.layer.name}' feeds '{entry.layer.name}' "
                    f"({entry.layer.type}); only conv and pool layers can absorb padding"
                )
            entry.layer.pad = pad.layer.pad
            entry.bottom[i] = pad.bottom[0]
        kept.append(entry)
    return kept


def _copy(entry: caffe_pb2.V1LayerParameter) -> caffe_pb2.V1LayerParameter:
    copy = caffe_pb2.V1LayerParameter()
    copy.CopyFrom(entry)
    return copy


def _upgrade_v0(
    entry: caffe_pb2.V1LayerParameter, layer: caffe_pb2.LayerParameter, source: str
) -> None:
    v0 = entry.layer
    layer.name = v0.name
    layer.bottom.extend(entry.bottom)
    layer.top.extend(entry.top)
    layer.blobs.extend(v0.blobs)
    if v0.type not in V0_TYPE_NAMES:
        raise ModelParseError(f"{source}: layer '{v0.name}' has unknown V0 type '{v0.type}'")
    layer.type = V0_TYPE_NAMES[v0.type]
    kind = layer.type
    if kind == "Convolution":
        conv = layer.convolution_param
        conv.num_output = v0.num_output
        conv.bias_term = v0.biasterm
        if v0.HasField("pad"):
            conv.pad.append(v0.pad)
        if v0.HasField("kernelsize"):
            conv.kernel_size.append(v0.kernelsize)
        if v0.HasField("stride"):
            conv.stride.append(v0.stride)
        if v0.HasField("group"):
            conv.group = v0.group
        _copy_fillers(v0, conv)
    elif kind == "InnerProduct":
        ip = layer.inner_product_param
        ip.num_output = v0.num_output
        ip.bias_term = v0.biasterm
        _copy_fillers(v0, ip)
    elif kind == "Pooling":
        pool = layer.pooling_param
        pool.pool = caffe_pb2.PoolingParameter.PoolMethod.Value(
            caffe_pb2.V0LayerParameter.PoolMethod.Name(v0.pool)
        )
        for name in ("pad", "stride"):
            if v0.HasField(name):
                setattr(pool, name, getattr(v0, name))
        if v0.HasField("kernelsize"):
            pool.kernel_size = v0.kernelsize
    elif kind == "Dropout":
        if v0.HasField("dropout_ratio"):
            layer.dropout_param.dropout_ratio = v0.dropout_ratio
    elif kind == "LRN":
        lrn = layer.lrn_param
        for name in ("local_size", "alpha", "beta", "k"):
            if v0.HasField(name):
                setattr(lrn, name, getattr(v0, name))
    elif kind == "Concat":
        if v0.HasField("concat_dim"):
            layer.concat_param.concat_dim = v0.concat_dim
    elif kind == "Data" and v0.HasField("source"):
        layer.data_param.source = v0.source
        layer.data_param.batch_size = v0.batchsize
    elif kind == "HDF5Output" and v0.HasField("hdf5_output_param"):
        layer.hdf5_output_param.CopyFrom(v0.hdf5_output_param)


def _copy_fillers(
    v0: caffe_pb2.V0LayerParameter,
    param: caffe_pb2.ConvolutionParameter | caffe_pb2.InnerProductParameter,
) -> None:
    if v0.HasField("weight_filler"):
        param.weight_filler.CopyFrom(v0.weight_filler)
    if v0.HasField("bias_filler"):
        param.bias_filler.CopyFrom(v0.bias_filler)


def _rule_met(rule: caffe_pb2.NetStateRule, state: caffe_pb2.NetState) -> bool:
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    return all(s in stages for s in rule.stage) and not any(s in stages for s in rule.not_stage)


def test_phase_mask(net: caffe_pb2.NetParameter) -> list[bool]:
    """Per layer: whether a TEST-phase net instantiates it (its include/exclude rules).

    The state is the net's own ``state`` with the phase forced to TEST.
    """
    state = caffe_pb2.NetState()
    state.CopyFrom(net.state)
    state.phase = caffe_pb2.TEST
    mask = []
    for layer in net.layer:
        if layer.include:
            mask.append(any(_rule_met(rule, state) for rule in layer.include))
        else:
            mask.append(not any(_rule_met(rule, state) for rule in layer.exclude))
    return mask


def filter_test_phase(net: caffe_pb2.NetParameter) -> list[str]:
    """Remove the layers a TEST-phase net would not instantiate (include/exclude rules).

    The state is the net's own ``state`` with the phase forced to TEST. Returns the names of the
    removed layers.
    """
    kept: list[caffe_pb2.LayerParameter] = []
    removed: list[str] = []
    for layer, active in zip(net.layer, test_phase_mask(net), strict=True):
        if active:
            kept.append(layer)
        else:
            removed.append(layer.name)
    if removed:
        layers = [caffe_pb2.LayerParameter.FromString(x.SerializeToString()) for x in kept]
        del net.layer[:]
        net.layer.extend(layers)
    return removed
