"""Train/test prototxts (``train_val.prototxt``) made into the deploy net they imply.

After Caffe's TEST-phase rules have left out the training-only layers (``include``/``exclude``
with ``phase``, ``stage``, levels): loss and accuracy layers are dropped (what they consumed and
nothing else does becomes an output), and data layers become graph inputs whose shape comes
from their parameters — batch size, crop size or resize size, colour or mean values for the
channels — or from ``--input``. Nothing of the data transformation (mean, scale, mirror) is
kept: a deploy net takes the transformed data, and so does the converted one. Every change is
said in a note.
"""

from __future__ import annotations

from typing import Any

from trtimport.importers.caffe import pyfasterrcnn
from trtimport.importers.caffe.proto import caffe_pb2

Shape = tuple[int, ...]

#: Layers that read a dataset and produce the net's input blobs.
DATA_LAYERS = frozenset(
    {
        "Data",
        "ImageData",
        "DenseImageData",
        "HDF5Data",
        "MemoryData",
        "WindowData",
        "AnnotatedData",
        "DummyData",
        "VideoData",
        "ImageSegData",  # DeepLab: data, label map, data_dim (each image's height, width)
    }
)
#: Layers that only score training or evaluation (besides every type ending in "Loss").
#: DeepLab's MatWrite saves its bottom to .mat files for post-processing: an output, too.
SCORING_LAYERS = frozenset(
    {"Accuracy", "DetectionEvaluate", "HDF5Output", "SegAccuracy", "MatWrite", "EvalDetection"}
)


#: Data layers reading a list of image files (``is_color``, ``new_height``/``new_width``).
IMAGE_LISTS = ("ImageData", "DenseImageData", "ImageSegData")


def is_data_layer(layer: caffe_pb2.LayerParameter) -> bool:
    """A dataset reader: the known data types, and Python layers without bottoms."""
    return layer.type in DATA_LAYERS or (layer.type == "Python" and not layer.bottom)


def is_scoring_layer(layer: caffe_pb2.LayerParameter) -> bool:
    """A loss or accuracy layer: it scores outputs against labels and feeds nothing at test time."""
    return layer.type.endswith("Loss") or layer.type in SCORING_LAYERS


def to_deploy(net: caffe_pb2.NetParameter, source: str) -> list[str]:
    """Drop scoring layers and turn data layers into ``Input`` layers, in place; the notes.

    A data top whose shape the parameters do not imply gets an empty shape, which conversion
    reports (with the ``--input`` to give) unless ``--input`` names it.
    """
    notes = pyfasterrcnn.drop_training_layers(net, source)
    scoring = [layer for layer in net.layer if is_scoring_layer(layer)]
    if scoring:
        kept = [layer for layer in net.layer if not is_scoring_layer(layer)]
        consumed = {b for layer in kept for b in layer.bottom}
        outputs = list(
            dict.fromkeys(b for layer in scoring for b in layer.bottom if b not in consumed)
        )
        # A data layer's label top is no output: nothing is left to read it.
        produced = {t for layer in kept if not is_data_layer(layer) for t in layer.top}
        outputs = [b for b in outputs if b in produced]
        listing = ", ".join(f"{layer.name} ({layer.type})" for layer in scoring)
        notes.append(
            f"{source}: dropped {len(scoring)} loss/accuracy layer(s): {listing}"
            + (
                f"; the net's outputs include what they read: {', '.join(outputs)}"
                if outputs
                else ""
            )
        )
        _replace_layers(net, kept)
    if not any(is_data_layer(layer) for layer in net.layer):
        return notes
    notes += _drop_silenced(net, source)
    consumed = {b for layer in net.layer for b in layer.bottom}
    layers = []
    for layer in net.layer:
        if not is_data_layer(layer):
            layers.append(layer)
            continue
        tops = [t for t in layer.top if t in consumed]
        if not tops:
            notes.append(f"{source}: dropped the data layer '{layer.name}' (nothing reads it)")
            continue
        unread = [t for t in layer.top if t not in consumed]
        implied = implied_shapes(layer)
        replacement = caffe_pb2.LayerParameter(name=layer.name, type="Input", top=tops)
        said = []
        for top in tops:
            shape = implied.get(top, ())
            replacement.input_param.shape.add(dim=shape)
            said.append(f"'{top}' {'x'.join(map(str, shape)) if shape else '(shape from --input)'}")
        layers.append(replacement)
        notes.append(
            f"{source}: the data layer '{layer.name}' ({layer.type}) became the input(s) "
            f"{', '.join(said)}; its data transformation is not part of the net"
            + (f"; {', '.join(unread)}: read by nothing, left out" if unread else "")
            + pyfasterrcnn.data_note(layer)
        )
    _replace_layers(net, layers)
    return notes


def _drop_silenced(net: caffe_pb2.NetParameter, source: str) -> list[str]:
    """Drop ``Silence`` layers and the layers whose results only they read, in place.

    Training nets silence what a stage computes but does not train (py-faster-rcnn's alt_opt
    stages keep the other stage's layers so that their weights are saved): dead at test time.
    """
    layers = list(net.layer)
    removed = {i for i, layer in enumerate(layers) if layer.type == "Silence"}
    if not removed:
        return []
    readers_of: dict[str, set[int]] = {}
    for j, layer in enumerate(layers):
        for bottom in layer.bottom:
            readers_of.setdefault(bottom, set()).add(j)
    readers = [
        {j for t in layer.top for j in readers_of.get(t, ())} - {i}
        for i, layer in enumerate(layers)
    ]
    changed = True
    while changed:
        changed = False
        for i, layer in enumerate(layers):
            if (
                i not in removed
                and not is_data_layer(layer)
                and readers[i]
                and readers[i] <= removed
            ):
                removed.add(i)
                changed = True
    _replace_layers(net, [layer for i, layer in enumerate(layers) if i not in removed])
    listing = ", ".join(layers[i].name for i in sorted(removed))
    return [
        f"{source}: dropped {len(removed)} layer(s) that only Silence layers read, and the "
        f"Silence layers: {listing}"
    ]


def _replace_layers(net: caffe_pb2.NetParameter, layers: list[caffe_pb2.LayerParameter]) -> None:
    copies = [caffe_pb2.LayerParameter.FromString(x.SerializeToString()) for x in layers]
    del net.layer[:]
    net.layer.extend(copies)


def implied_shapes(layer: caffe_pb2.LayerParameter) -> dict[str, Shape]:
    """The NCHW shape a data layer's parameters give its data top (others: none known)."""
    if layer.type == "DummyData":
        return _dummy_shapes(layer)
    if pyfasterrcnn.kind(layer) == pyfasterrcnn.ROI_DATA:
        return pyfasterrcnn.data_shapes(layer)
    if layer.type == "MemoryData":
        p = layer.memory_data_param
        dims = (p.batch_size or 1, p.channels, p.height, p.width)
        return {layer.top[0]: dims} if min(dims) > 0 and layer.top else {}
    size = _spatial(layer)
    channels = _channels(layer)
    if not layer.top or size is None or channels is None:
        return {}
    return {layer.top[0]: (_batch(layer), channels, *size)}


def _param(layer: caffe_pb2.LayerParameter) -> Any:
    name = {
        "Data": "data_param",
        "AnnotatedData": "data_param",
        "ImageData": "image_data_param",
        "ImageSegData": "image_data_param",
        "DenseImageData": "dense_image_data_param",
        "WindowData": "window_data_param",
        "HDF5Data": "hdf5_data_param",
        "VideoData": "video_data_param",  # yjxiong/caffe (TSN)
    }.get(layer.type)
    return getattr(layer, name) if name else None


def _batch(layer: caffe_pb2.LayerParameter) -> int:
    p = _param(layer)
    return int(getattr(p, "batch_size", 0) or 1)


def _spatial(layer: caffe_pb2.LayerParameter) -> tuple[int, int] | None:
    t = layer.transform_param
    if t.crop_size:
        return (t.crop_size, t.crop_size)
    if t.crop_h and t.crop_w:
        return (t.crop_h, t.crop_w)
    p = _param(layer)
    if layer.type == "DenseImageData" and p.crop_height and p.crop_width:
        return (p.crop_height, p.crop_width)
    if layer.type in IMAGE_LISTS and p.new_height and p.new_width:
        return (p.new_height, p.new_width)
    if layer.type == "WindowData" and p.crop_size:
        return (p.crop_size, p.crop_size)
    if t.HasField("resize_param") and t.resize_param.height and t.resize_param.width:
        return (t.resize_param.height, t.resize_param.width)
    return None


def _channels(layer: caffe_pb2.LayerParameter) -> int | None:
    t = layer.transform_param
    if t.force_gray:
        return 1
    if t.force_color:
        return 3
    if layer.type in IMAGE_LISTS:
        return 3 if _param(layer).is_color else 1
    if layer.type == "WindowData":
        return 3
    if len(t.mean_value) > 1:
        return len(t.mean_value)
    return None


def _dummy_shapes(layer: caffe_pb2.LayerParameter) -> dict[str, Shape]:
    p = layer.dummy_data_param
    shapes: list[Shape] = [tuple(s.dim) for s in p.shape]
    if not shapes and p.num:
        shapes = [tuple(d) for d in zip(p.num, p.channels, p.height, p.width, strict=False)]
    if len(shapes) == 1:
        shapes = shapes * len(layer.top)
    return dict(zip(layer.top, shapes, strict=False))
