"""Detection layers: PriorBox (a constant), ROIPooling (ONNX MaxRoiPool), and the layers that
have no mapping (Python), whose error explains how a plugin can supply one.
"""

from __future__ import annotations

import math

import numpy as np

from trtimport.importers.caffe.registry import Converter, LayerContext, Shape

#: Layer types trtimport deliberately does not convert, and why (shown in the error message).
NO_MAPPING: dict[str, str] = {
    "Python": (
        "a Python layer runs arbitrary code from the model's module, which trtimport never "
        "executes, so there is nothing to translate"
    ),
    # eric612/MobileNet-YOLO's YOLOv3 head (its YOLOv2 head converts: yolo_detection_output).
    "Yolov3DetectionOutput": (
        "eric612/MobileNet-YOLO's YOLOv3 head has no converter: it keeps one candidate per box "
        "and class above the threshold and compares all of them in one NMS, an IoU matrix of "
        "(boxes x classes)^2 with no bound in the layer; convert up to its bottoms (--output "
        "with each of those blobs) and decode on the host"
    ),
}


def _prior_aspect_ratios(ratios: list[float], flip: bool) -> list[float]:
    out = [1.0]
    for ar in ratios:
        if any(abs(ar - a) < 1e-6 for a in out):
            continue
        out.append(ar)
        if flip:
            out.append(1.0 / ar)
    return out


def prior_sizes(
    min_sizes: list[float], max_sizes: list[float], aspect_ratios: list[float]
) -> list[tuple[float, float]]:
    """SSD's box sizes (width, height) per cell: per min_size the square, sqrt(min*max), ratios."""
    sizes: list[tuple[float, float]] = []
    for s, min_size in enumerate(min_sizes):
        sizes.append((min_size, min_size))
        if max_sizes:
            side = math.sqrt(min_size * max_sizes[s])
            sizes.append((side, side))
        for ar in aspect_ratios:
            if abs(ar - 1.0) < 1e-6:
                continue
            sizes.append((min_size * math.sqrt(ar), min_size / math.sqrt(ar)))
    return sizes


def prior_boxes(
    layer_hw: tuple[int, int],
    image_hw: tuple[float, float],
    step_hw: tuple[float, float],
    sizes: list[tuple[float, float]],
    offsets: list[tuple[float, float]],
    *,
    clip: bool,
    variance: list[float],
) -> np.ndarray:
    """Prior boxes: 1 x 2 x (H*W*sizes*offsets*4); row 0 the corners, row 1 the variances.

    Per cell, per box size (width, height), per (y, x) offset — OpenCV's order for its several
    offsets; SSD has one offset.
    """
    (lh, lw), (ih, iw), (sh, sw) = layer_hw, image_hw, step_hw
    boxes: list[tuple[float, float, float, float]] = []
    for h in range(lh):
        for w in range(lw):
            for bw, bh in sizes:
                for oy, ox in offsets:
                    cx, cy = (w + ox) * sw, (h + oy) * sh
                    boxes.append(
                        (
                            (cx - bw / 2) / iw,
                            (cy - bh / 2) / ih,
                            (cx + bw / 2) / iw,
                            (cy + bh / 2) / ih,
                        )
                    )
    corners = np.asarray(boxes, dtype=np.float32).reshape(-1)
    if clip:
        corners = np.clip(corners, 0.0, 1.0)
    var = np.asarray(variance if variance else [0.1], dtype=np.float32)
    variances = np.tile(var if var.size == 4 else np.repeat(var, 4), len(boxes))
    return np.stack([corners, variances])[None]


def _box_sizes(ctx: LayerContext) -> list[tuple[float, float]]:
    """Explicit ``width``/``height`` pairs (OpenCV's fields), or SSD's sizes from min_size."""
    p = ctx.layer.prior_box_param
    if len(p.width) or len(p.height):
        if len(p.width) != len(p.height):
            raise ctx.shape_error(f"{len(p.width)} width values for {len(p.height)} height")
        if len(p.min_size) or len(p.max_size) or len(p.aspect_ratio):
            raise ctx.shape_error(
                "explicit width/height replace min_size, max_size and aspect_ratio; give one "
                "or the other (OpenCV refuses both)"
            )
        if any(v <= 0 for v in [*p.width, *p.height]):
            raise ctx.shape_error("every width and height must be positive")
        return [(float(bw), float(bh)) for bw, bh in zip(p.width, p.height, strict=True)]
    min_sizes = [float(v) for v in p.min_size]
    max_sizes = [float(v) for v in p.max_size]
    if not min_sizes or any(v <= 0 for v in min_sizes):
        raise ctx.shape_error("min_size (or width and height) must be given and positive")
    if max_sizes and len(max_sizes) != len(min_sizes):
        raise ctx.shape_error(f"{len(max_sizes)} max_size values for {len(min_sizes)} min_size")
    if any(mx <= mn for mn, mx in zip(min_sizes, max_sizes, strict=False)):
        raise ctx.shape_error("every max_size must be larger than its min_size")
    ratios = _prior_aspect_ratios([float(a) for a in p.aspect_ratio], bool(p.flip))
    return prior_sizes(min_sizes, max_sizes, ratios)


def _offsets(ctx: LayerContext) -> list[tuple[float, float]]:
    """(y, x) offsets of the box centres in a cell: OpenCV's ``offset_h``/``offset_w`` lists,
    or the one ``offset``."""
    p = ctx.layer.prior_box_param
    if not (len(p.offset_h) or len(p.offset_w)):
        return [(float(p.offset), float(p.offset))]
    if p.HasField("offset"):
        raise ctx.shape_error("give offset or offset_h/offset_w, not both (OpenCV refuses both)")
    if len(p.offset_h) != len(p.offset_w):
        raise ctx.shape_error(f"{len(p.offset_h)} offset_h values for {len(p.offset_w)} offset_w")
    return [(float(oy), float(ox)) for oy, ox in zip(p.offset_h, p.offset_w, strict=True)]


def prior_box(ctx: LayerContext) -> list[Shape]:
    """PriorBox (SSD, with OpenCV's extras): boxes depend only on shapes, so a constant."""
    p = ctx.layer.prior_box_param
    feature = ctx.input_shapes[0]
    image = ctx.input_shapes[1] if len(ctx.input_shapes) > 1 else None
    if len(p.variance) not in (0, 1, 4):
        raise ctx.shape_error(f"give 1 or 4 variance values, not {len(p.variance)}")
    sizes, offsets = _box_sizes(ctx), _offsets(ctx)
    if p.HasField("img_size"):
        ih = iw = float(p.img_size)
    elif p.HasField("img_h") or p.HasField("img_w"):
        ih, iw = float(p.img_h), float(p.img_w)
    elif image is not None and len(image) == 4:
        ih, iw = float(image[2]), float(image[3])
    else:
        raise ctx.shape_error("needs the image as bottom[1], or img_size / img_h and img_w")
    lh, lw = int(feature[2]), int(feature[3])
    if p.HasField("step"):
        sh = sw = float(p.step)
    elif p.HasField("step_h") or p.HasField("step_w"):
        sh, sw = float(p.step_h), float(p.step_w)
        if sh <= 0 or sw <= 0:
            raise ctx.shape_error("give both step_h and step_w, positive")
    else:
        sh, sw = ih / lh, iw / lw
    priors = prior_boxes(
        (lh, lw),
        (ih, iw),
        (sh, sw),
        sizes,
        offsets,
        clip=bool(p.clip),
        variance=[float(v) for v in p.variance],
    )
    ctx.op("Identity", ctx.const(priors, "priors"), out=ctx.outputs[0])
    return [tuple(priors.shape)]


def roi_pooling(ctx: LayerContext) -> list[Shape]:
    """ROIPooling (Fast R-CNN): ONNX MaxRoiPool, which follows the same rounding rules.

    TensorRT's ONNX parser has no MaxRoiPool importer, so engines with it need a TensorRT
    plugin; the ONNX model itself runs on ONNX Runtime.
    """
    p = ctx.layer.roi_pooling_param
    if len(ctx.inputs) != 2:
        raise ctx.shape_error(f"needs 2 bottoms (features, rois), got {len(ctx.inputs)}")
    features, rois = ctx.input_shapes
    if len(rois) < 2 or rois[-1] != 5:
        raise ctx.shape_error(f"rois must be R x 5 (batch index, x1, y1, x2, y2), got {list(rois)}")
    pooled = [int(p.pooled_h), int(p.pooled_w)]
    if min(pooled) < 1:
        raise ctx.shape_error("pooled_h and pooled_w must be positive")
    boxes = ctx.inputs[1]
    if len(rois) != 2:
        boxes = ctx.op("Reshape", boxes, ctx.ints([-1, 5], "rois"))
    ctx.op(
        "MaxRoiPool",
        ctx.inputs[0],
        boxes,
        out=ctx.outputs[0],
        pooled_shape=pooled,
        spatial_scale=float(p.spatial_scale),
    )
    return [(int(np.prod(rois[:-1])), features[1], *pooled)]


CONVERTERS: dict[str, Converter] = {"PriorBox": prior_box, "ROIPooling": roi_pooling}
