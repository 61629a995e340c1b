"""YOLOv2 layers of the caffe-yolo ports: Reorg (darknet's space-to-depth) and Region.

Both are pure data movement and element-wise activations, so they become Reshape/Transpose and
Sigmoid/Softmax nodes that TensorRT builds.
"""

from __future__ import annotations

from trtimport.importers.caffe.registry import Converter, LayerContext, Shape


def reorg(ctx: LayerContext) -> list[Shape]:
    """Reorg as the ports' ``reorg_cpu`` (darknet's), which is not ONNX SpaceToDepth.

    Darknet's forward pass (``reverse: false``) reads the N x C x H x W input buffer as if it
    were C/s² x Hs x Ws, gathers s x s blocks of that view into channels, and writes the result
    into the input's own C x H x W layout; Caffe then labels the buffer Cs² x H/s x W/s. In
    ONNX: view as [N, C/s², H, s, W, s], move the two block axes in front of the channels, and
    relabel. ``reverse: true`` is the inverse scatter (darknet's ``forward`` flag set).
    """
    p = ctx.layer.reorg_param
    if len(ctx.input_shapes[0]) != 4:
        raise ctx.shape_error(f"needs a 4-D bottom, got {list(ctx.input_shapes[0])}")
    n, c, h, w = (int(d) for d in ctx.input_shapes[0])
    # No stride: caffe-yolo9000 (choasup), the one fork whose ReorgParameter has a default (2);
    # its Forward_cpu always scatters (reorg_cpu with forward = 1) and labels the result
    # Cs² x H/s x W/s. The ports check for a stride and gather unless `reverse`.
    yolo9000 = not p.HasField("stride") and not p.reverse
    s = 2 if yolo9000 else int(p.stride)
    if s < 1:
        raise ctx.shape_error("reorg_param needs a positive stride (the ports check it)")
    if c % (s * s):
        raise ctx.shape_error(f"channels {c} are not a multiple of stride² = {s * s}")
    x = ctx.inputs[0]
    if yolo9000 and (h % s or w % s):
        raise ctx.shape_error(
            f"height {h} and width {w} must be multiples of stride {s} (caffe-yolo9000's "
            "Reorg, no reorg_param: stride 2, checks that the sizes divide)"
        )
    if p.reverse or yolo9000:
        view = ctx.op("Reshape", x, ctx.ints([0, s, s, c // (s * s), h, w], "view"))
        moved = ctx.op("Transpose", view, perm=[0, 3, 4, 1, 5, 2])
        out_shape = (n, c // (s * s), h * s, w * s)
        if yolo9000:
            out_shape = (n, c * s * s, h // s, w // s)
    else:
        if h % s or w % s:
            raise ctx.shape_error(f"height {h} and width {w} must be multiples of stride {s}")
        view = ctx.op("Reshape", x, ctx.ints([0, c // (s * s), h, s, w, s], "view"))
        moved = ctx.op("Transpose", view, perm=[0, 3, 5, 1, 2, 4])
        out_shape = (n, c * s * s, h // s, w // s)
    ctx.op("Reshape", moved, ctx.ints([0, *out_shape[1:]], "shape"), out=ctx.outputs[0])
    return [out_shape]


def region(ctx: LayerContext) -> list[Shape]:
    """Region (YOLOv2) as the darknet-style port's forward pass; the output keeps the shape.

    The channels hold ``num`` anchors of (coords, objectness, classes) planes. Per anchor the
    first two coordinates (x, y) and the objectness go through the logistic, the other
    coordinates pass unchanged, and the class planes get a softmax across classes at each cell.
    """
    p = ctx.layer.region_param
    if p.HasField("boxes_of_each_grid") or p.HasField("softmax"):
        raise ctx.unsupported(
            "region_param boxes_of_each_grid/softmax belong to the port whose Region rewrites "
            "the blob into per-box rows with objectness at a fixed index 4; only the "
            "darknet-style Region (classes, coords, num) converts"
        )
    shape = ctx.input_shapes[0]
    if len(shape) != 4:
        raise ctx.shape_error(f"needs a 4-D bottom, got {list(shape)}")
    anchors, coords, classes = int(p.num), int(p.coords), int(p.classes)
    per_anchor = coords + 1 + classes
    if coords < 2 or classes < 1 or anchors < 1:
        raise ctx.shape_error("region_param needs coords >= 2, classes >= 1 and num >= 1")
    if int(shape[1]) != anchors * per_anchor:
        raise ctx.shape_error(
            f"{shape[1]} channels, but num {anchors} x (coords {coords} + 1 + classes "
            f"{classes}) = {anchors * per_anchor}"
        )
    h, w = int(shape[2]), int(shape[3])
    grid = ctx.op("Reshape", ctx.inputs[0], ctx.ints([0, anchors, per_anchor, h, w], "grid"))
    sizes = [2, coords - 2, 1, classes] if coords > 2 else [2, 1, classes]
    parts = ctx.node("Split", [grid, ctx.ints(sizes, "split")], len(sizes), axis=2)
    xy, objectness, scores = parts[0], parts[-2], parts[-1]
    pieces = [ctx.op("Sigmoid", xy), *parts[1:-2], ctx.op("Sigmoid", objectness)]
    pieces.append(ctx.op("Softmax", scores, axis=2))
    joined = ctx.node("Concat", pieces, 1, axis=2)[0]
    ctx.op("Reshape", joined, ctx.ints([0, *shape[1:]], "shape"), out=ctx.outputs[0])
    return [tuple(shape)]


CONVERTERS: dict[str, Converter] = {"Reorg": reorg, "Region": region}
