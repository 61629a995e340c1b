"""Seeded random weights for a deploy prototxt, written as a caffemodel.

For trying a structure without trained weights, and for tests. Every layer that has blobs gets
them with Caffe's blob shapes; the values are scaled so that activations stay of order one
through deep nets (He-scaled values for convolutions and inner products, BatchNorm statistics
with positive variances, gains near one), which keeps reference comparisons meaningful.
Values are uniform with those variances.
The caffemodel is streamed: each blob is generated, written and dropped.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from trtimport.core.files import atomic_path
from trtimport.errors import ShapeError, UnsupportedLayerError
from trtimport.importers.caffe import shapes
from trtimport.importers.caffe.convert import check_caffe
from trtimport.importers.caffe.inputs import override_input_shapes
from trtimport.importers.caffe.layers.conv import has_hole
from trtimport.importers.caffe.layers.pool import rounds_up
from trtimport.importers.caffe.parse import CaffeModel, load_caffe
from trtimport.importers.caffe.problems import NetProblems
from trtimport.importers.caffe.proto import caffe_pb2
from trtimport.importers.caffe.wire import LAYER_BLOBS, NET_LAYER
from trtimport.onnxtools.protowire import LEN, encode_varint, split_at_field
from trtimport.onnxtools.writer import raw_view

Shape = tuple[int, ...]
#: A blob's shape and the function that draws its values.
BlobSpec = tuple[Shape, Callable[[np.random.Generator, Shape], np.ndarray]]
#: Blob shapes converters asked for: layer -> blob index -> shape.
RequestedBlobs = dict[str, dict[int, Shape]]

CONV_TYPES = (
    "Convolution",
    "ConvolutionDepthwise",
    "DepthwiseConvolution",
    "Deconvolution",
    "HoleConvolution",
)


@dataclass
class MadeWeights:
    """What :func:`make_caffe_weights` wrote."""

    path: Path
    seed: int
    blobs: dict[str, list[Shape]] = field(default_factory=dict)
    bytes_written: int = 0


def make_caffe_weights(
    prototxt: Path, dest: Path, seed: int = 0, input_shapes: Mapping[str, Shape] | None = None
) -> MadeWeights:
    """Write ``dest`` (atomically): the deploy net of ``prototxt`` with seeded random blobs.

    The net is checked first, every problem reported at once. Every blob a converter reads is
    written, with the shape the converter asks for; ``input_shapes`` replaces input shapes
    (``--input``), for nets whose data layer has no shape. Layers sharing a parameter by
    ``param { name }`` get the same values.
    """
    model = load_caffe(Path(prototxt), None)
    override_input_shapes(model, input_shapes or {})
    NetProblems(model).raise_if_any()
    # Layers without a converter get their blobs from the shape walk alone.
    with contextlib.suppress(UnsupportedLayerError):
        check_caffe(model)
    specs = _merge(blob_specs(model), model.requested_blobs)
    _check_blob_sizes(Path(prototxt), specs)
    rng = np.random.default_rng(seed)
    made = MadeWeights(Path(dest), seed)
    header = caffe_pb2.NetParameter()
    header.CopyFrom(model.net)
    header.ClearField("layer")
    shared: dict[str, np.ndarray] = {}
    with atomic_path(Path(dest)) as tmp, tmp.open("wb") as out:
        out.write(header.SerializeToString())
        for layer in model.net.layer:
            layer_specs = _share(layer, specs.get(layer.name, []), shared)
            made.blobs[layer.name] = [shape for shape, _ in layer_specs] if layer_specs else []
            _write_layer(out, layer, layer_specs, rng)
        made.bytes_written = out.tell()
    made.blobs = {k: v for k, v in made.blobs.items() if v}
    return made


def _merge(walk: dict[str, list[BlobSpec]], requested: RequestedBlobs) -> dict[str, list[BlobSpec]]:
    """The walk's blobs, replaced by the converters' where they asked for other shapes."""
    specs = dict(walk)
    for name, wanted in requested.items():
        have = walk.get(name, [])
        count = max(wanted) + 1
        if len(have) >= count and all(have[i][0] == s for i, s in wanted.items()):
            continue
        specs[name] = [
            (wanted[i], _fallback(wanted[i])) if i in wanted else have[i] for i in range(count)
        ]
    return specs


def _fallback(shape: Shape) -> Callable[[np.random.Generator, Shape], np.ndarray]:
    """Values for a blob the walk does not know: He-scaled weights, small 1-D biases."""
    return _he(math.prod(shape[1:])) if len(shape) > 1 else BIAS


def _share(
    layer: caffe_pb2.LayerParameter, specs: list[BlobSpec], shared: dict[str, np.ndarray]
) -> list[BlobSpec]:
    """Blobs named by ``param { name }`` take the values of the first layer that made them."""
    out = []
    for i, (shape, make) in enumerate(specs):
        name = layer.param[i].name if i < len(layer.param) else ""
        if name and name in shared and shared[name].shape == shape:
            out.append((shape, _same(shared[name])))
            continue
        if name:
            out.append((shape, _remember(make, name, shared)))
            continue
        out.append((shape, make))
    return out


def _same(values: np.ndarray) -> Callable[[np.random.Generator, Shape], np.ndarray]:
    return lambda rng, shape: values


def _remember(
    make: Callable[[np.random.Generator, Shape], np.ndarray],
    name: str,
    shared: dict[str, np.ndarray],
) -> Callable[[np.random.Generator, Shape], np.ndarray]:
    def draw(rng: np.random.Generator, shape: Shape) -> np.ndarray:
        shared[name] = make(rng, shape)
        return shared[name]

    return draw


#: Protobuf's limit on one message: a blob's data cannot be larger.
BLOB_LIMIT = (1 << 31) - 1


def _check_blob_sizes(prototxt: Path, specs: dict[str, list[BlobSpec]]) -> None:
    """Refuse blobs a caffemodel cannot hold (over 2 GiB each) before any is drawn."""
    too_big = [
        f"layer '{name}': blob of shape {list(shape)} is {4 * math.prod(shape)} bytes"
        for name, layer_specs in specs.items()
        for shape, _ in layer_specs
        if 4 * math.prod(shape) > BLOB_LIMIT
    ]
    if too_big:
        raise ShapeError(
            f"{prototxt}: a caffemodel holds at most {BLOB_LIMIT} bytes per blob; check the "
            "input shapes and layer sizes:\n" + "\n".join(f"  - {p}" for p in too_big)
        )


def _blob_parts(shape: Shape) -> tuple[bytes, int, bytes]:
    """A BlobProto around ``shape``'s float32 data: bytes before the data, its size, after it.

    Fields in number order, as protobuf writes them: ``data`` (5) then ``shape`` (7).
    """
    nbytes = 4 * math.prod(shape)
    blob_shape = caffe_pb2.BlobShape(dim=shape).SerializeToString()
    after = _len_key(7) + encode_varint(len(blob_shape)) + blob_shape
    return _len_key(5) + encode_varint(nbytes), nbytes, after


def _write_layer(
    out: BinaryIO, layer: caffe_pb2.LayerParameter, specs: list[BlobSpec], rng: np.random.Generator
) -> None:
    before, after = split_at_field(layer.SerializeToString(), LAYER_BLOBS)
    parts = [_blob_parts(shape) for shape, _ in specs]
    blob_sizes = [len(head) + nbytes + len(tail) for head, nbytes, tail in parts]
    size = len(before) + len(after)
    size += sum(len(_len_key(LAYER_BLOBS)) + len(encode_varint(s)) + s for s in blob_sizes)
    out.write(_len_key(NET_LAYER) + encode_varint(size) + before)
    for (head, _, tail), blob_size, (shape, make) in zip(parts, blob_sizes, specs, strict=True):
        values = np.ascontiguousarray(make(rng, shape), dtype="<f4")
        out.write(_len_key(LAYER_BLOBS) + encode_varint(blob_size) + head)
        out.write(raw_view(values))
        out.write(tail)
    out.write(after)


def _len_key(number: int) -> bytes:
    return encode_varint(number << 3 | LEN)


# ------------------------------------------------------------------------ value makers


def _uniform(low: float, high: float) -> Callable[[np.random.Generator, Shape], np.ndarray]:
    # Uniform float32 draws are several times faster than normal ones, which matters for the
    # hundreds of millions of values of a VGG-sized net.
    def make(rng: np.random.Generator, shape: Shape) -> np.ndarray:
        values = rng.random(shape, dtype=np.float32)
        values *= np.float32(high - low)
        values += np.float32(low)
        return values

    return make


def _spread(std: float) -> Callable[[np.random.Generator, Shape], np.ndarray]:
    """Zero-mean uniform values with standard deviation ``std``."""
    half_width = math.sqrt(3.0) * std
    return _uniform(-half_width, half_width)


def _constant(value: float) -> Callable[[np.random.Generator, Shape], np.ndarray]:
    def make(rng: np.random.Generator, shape: Shape) -> np.ndarray:
        return np.full(shape, value, np.float32)

    return make


def _he(fan_in: float) -> Callable[[np.random.Generator, Shape], np.ndarray]:
    """He scaling: variance 2 / fan_in keeps ReLU activations of order one layer after layer."""
    return _spread(math.sqrt(2.0 / max(fan_in, 1.0)))


BIAS = _spread(0.05)


# ------------------------------------------------------------------------ shapes walk


@dataclass(frozen=True)
class Moments:
    """Estimated mean and mean square of a blob's values (treated as one normal variable)."""

    mean: float = 0.0
    square: float = 1.0

    @property
    def var(self) -> float:
        """The variance (never below a small positive floor)."""
        return max(self.square - self.mean * self.mean, 1e-6)


UNIT = Moments()


def blob_specs(model: CaffeModel) -> dict[str, list[BlobSpec]]:
    """Blob shapes and value makers for every layer of ``model`` that has blobs.

    Walks the net in order inferring each blob's shape (only the shape rules that decide blob
    shapes are needed) and estimates of each blob's mean and variance, which set the BatchNorm
    statistics so that they normalize like trained ones would. Layers whose shapes cannot be
    followed are reported all at once.
    """
    known: dict[str, Shape] = dict(model.input_shapes)
    moments: dict[str, Moments] = dict.fromkeys(known, UNIT)
    specs: dict[str, list[BlobSpec]] = {}
    for layer in model.net.layer:
        if any(b not in known for b in layer.bottom):
            continue  # downstream of a reported problem
        bottoms = [known[b] for b in layer.bottom]
        inputs = [moments[b] for b in layer.bottom]
        try:
            layer_specs, tops = _layer(layer, bottoms, inputs, model)
        except (ValueError, IndexError, ZeroDivisionError):
            continue  # the converters' check reported it, or their requests cover it
        if layer_specs:
            specs[layer.name] = layer_specs
        out = _moments(layer, bottoms, inputs)
        for top, shape in zip(layer.top, tops, strict=False):
            known[top] = shape
            moments[top] = out
    return specs


def _relu(x: Moments, slope: float = 0.0) -> Moments:
    """Moments of max(z, 0) + slope * min(z, 0) for z normal with the moments ``x``."""
    sigma = math.sqrt(x.var)
    t = x.mean / sigma
    cdf = 0.5 * (1.0 + math.erf(t / math.sqrt(2.0)))
    pdf = math.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)
    pos_mean = x.mean * cdf + sigma * pdf
    pos_square = (x.mean**2 + x.var) * cdf + x.mean * sigma * pdf
    neg_mean, neg_square = x.mean - pos_mean, x.square - pos_square
    return Moments(pos_mean + slope * neg_mean, pos_square + slope * slope * neg_square)


def _moments(
    layer: caffe_pb2.LayerParameter, bottoms: list[Shape], inputs: list[Moments]
) -> Moments:
    """Rough moments of the layer's output from its inputs' (the weights drawn here)."""
    kind = layer.type
    x = inputs[0] if inputs else UNIT
    if kind in (*CONV_TYPES, "InnerProduct"):
        return Moments(0.0, 2.0 * x.square)  # zero-mean He weights: E[y^2] = 2 E[x^2]
    if kind in ("BatchNorm", "BN", "Normalize", "Embed", "Parameter", "Input"):
        return UNIT
    if kind == "ReLU":
        return _relu(x, layer.relu_param.negative_slope)
    if kind == "PReLU":
        return _relu(x, 0.175)
    if kind in ("ReLU6", "Clip"):
        return _relu(x)
    if kind in ("Sigmoid", "TanH"):
        return Moments(0.5 if kind == "Sigmoid" else 0.0, min(x.square, 1.0) / 2.0)
    if kind == "Scale" and len(inputs) > 1:
        return Moments(x.mean * inputs[1].mean, x.square * inputs[1].square)
    if kind == "Eltwise":
        p = layer.eltwise_param
        if p.operation == caffe_pb2.EltwiseParameter.PROD:
            return Moments(math.prod(i.mean for i in inputs), math.prod(i.square for i in inputs))
        if p.operation == caffe_pb2.EltwiseParameter.MAX:
            return max(inputs, key=lambda i: i.square)
        coeffs = list(p.coeff) or [1.0] * len(inputs)
        return _sum(inputs, coeffs)
    if kind == "Axpy":
        a, v, y = inputs
        return _sum([Moments(a.mean * v.mean, a.square * v.square), y], [1.0, 1.0])
    if kind == "Concat":
        p = layer.concat_param
        axis = shapes.canonical_axis(
            p.axis if p.HasField("axis") else p.concat_dim, len(bottoms[0])
        )
        sizes = [b[axis] for b in bottoms]
        total = max(sum(sizes), 1)
        return Moments(
            sum(s * i.mean for s, i in zip(sizes, inputs, strict=True)) / total,
            sum(s * i.square for s, i in zip(sizes, inputs, strict=True)) / total,
        )
    return x


def _sum(inputs: list[Moments], coeffs: list[float]) -> Moments:
    """Moments of a weighted sum of independent inputs."""
    mean = sum(c * i.mean for c, i in zip(coeffs, inputs, strict=False))
    var = sum(c * c * i.var for c, i in zip(coeffs, inputs, strict=False))
    return Moments(mean, var + mean * mean)


def _spatial(values: list[int], n: int, default: int, what: str) -> list[int]:
    if not values:
        return [default] * n
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ValueError(f"{len(values)} {what} values for {n} spatial axes")
    return values


def _conv_geometry(p: caffe_pb2.ConvolutionParameter, n: int) -> tuple[list[int], ...]:
    if p.HasField("kernel_h") or p.HasField("kernel_w"):
        kernel = [p.kernel_h, p.kernel_w]
    else:
        kernel = _spatial(list(p.kernel_size), n, 0, "kernel_size")
    if p.HasField("stride_h") or p.HasField("stride_w"):
        stride = [p.stride_h or 1, p.stride_w or 1]
    else:
        stride = _spatial(list(p.stride), n, 1, "stride")
    if p.HasField("pad_h") or p.HasField("pad_w"):
        pad = [p.pad_h, p.pad_w]
    else:
        pad = _spatial(list(p.pad), n, 0, "pad")
    dilation = _spatial(list(p.dilation), n, 1, "dilation")
    if min(kernel) <= 0:
        raise ValueError(f"kernel size {kernel} must be positive")
    return kernel, stride, pad, dilation


def _conv(layer: caffe_pb2.LayerParameter, x: Shape) -> tuple[list[BlobSpec], list[Shape]]:
    p = layer.convolution_param
    n = len(x) - 2
    kernel, stride, pad, dilation = _conv_geometry(p, n)
    if layer.type == "HoleConvolution" or (layer.type == "Convolution" and has_hole(p)):
        has_hw = p.HasField("hole_h") or p.HasField("hole_w")
        dilation = shapes.hole_dilation(p.hole, p.hole_h, p.hole_w, has_hw)
    channels, num_output = x[1], int(p.num_output)
    group = channels if layer.type in ("ConvolutionDepthwise", "DepthwiseConvolution") else p.group
    if channels % group or num_output % group:
        raise ValueError(f"channels {channels} and num_output {num_output} vs group {group}")
    if layer.type == "Deconvolution":
        w_shape: Shape = (channels, num_output // group, *kernel)
        fan_in = channels // group * math.prod(kernel) / math.prod(stride)
        size = shapes.deconv_output
    else:
        w_shape = (num_output, channels // group, *kernel)
        fan_in = channels // group * math.prod(kernel)
        size = shapes.conv_output
    spatial = [size(x[2 + i], kernel[i], stride[i], pad[i], dilation[i]) for i in range(n)]
    blobs: list[BlobSpec] = [(w_shape, _he(fan_in))]
    if p.bias_term:
        blobs.append(((num_output,), BIAS))
    return blobs, [(x[0], num_output, *spatial)]


def _pool(layer: caffe_pb2.LayerParameter, x: Shape) -> Shape:
    p = layer.pooling_param
    if p.global_pooling:
        return (*x[:2], *([1] * (len(x) - 2)))
    kernel = [p.kernel_h, p.kernel_w] if p.HasField("kernel_h") else [p.kernel_size] * 2
    stride = [p.stride_h, p.stride_w] if p.HasField("stride_h") else [p.stride] * 2
    pad = [p.pad_h, p.pad_w] if p.HasField("pad_h") or p.HasField("pad_w") else [p.pad] * 2
    ceil = rounds_up(p)
    out = [shapes.pool_output(x[2 + i], kernel[i], stride[i], pad[i], ceil=ceil) for i in range(2)]
    return (*x[:2], *out)


def _param_shape(x: Shape, axis: int, num_axes: int) -> Shape:
    start = shapes.canonical_axis(axis, len(x))
    end = len(x) if num_axes == -1 else start + num_axes
    return tuple(x[start:end])


def _layer(
    layer: caffe_pb2.LayerParameter, bottoms: list[Shape], inputs: list[Moments], model: CaffeModel
) -> tuple[list[BlobSpec], list[Shape]]:
    kind = layer.type
    x = bottoms[0] if bottoms else ()
    same = [x] * len(layer.top)
    if kind == "Input":
        return [], [model.input_shapes[t] for t in layer.top]
    if kind in CONV_TYPES:
        return _conv(layer, x)
    if kind == "InnerProduct":
        p = layer.inner_product_param
        axis = shapes.canonical_axis(p.axis, len(x))
        k, n = shapes.count(x, axis), int(p.num_output)
        weight: BlobSpec = ((k, n) if p.transpose else (n, k), _he(k))
        blobs = [weight, ((n,), BIAS)] if p.bias_term else [weight]
        return blobs, [(*x[:axis], n)]
    if kind in ("BatchNorm", "BN"):
        # Statistics close to the input's own, as training would have left them.
        m, v = inputs[0].mean, inputs[0].var
        mean, var = (
            _uniform(m - 0.1 * math.sqrt(v), m + 0.1 * math.sqrt(v)),
            _uniform(0.7 * v, 1.3 * v),
        )
        if kind == "BatchNorm":
            per_channel: Shape = (x[1],)
            stats = [(per_channel, mean), (per_channel, var), ((1,), _constant(1.0))]
            p = layer.batch_norm_param
            intel = p.HasField("use_weight_bias") and p.use_weight_bias
            if p.scale_bias or intel:
                stats.append((per_channel, _uniform(0.8, 1.2)))
            if p.scale_bias or (intel and p.bias_term):
                stats.append((per_channel, BIAS))
            return stats, same
        fork: Shape = (1, x[1], 1, 1)
        if layer.bn_param.bn_mode == layer.bn_param.INFERENCE:
            # SegNet/ENet: two blobs, the statistics folded into them (compute_bn_statistics.py).
            sd = math.sqrt(max(v, 1e-12))
            scale, shift = _uniform(0.8 / sd, 1.2 / sd), _uniform(-m / sd - 0.1, -m / sd + 0.1)
            return [(fork, scale), (fork, shift)], same
        return [(fork, _uniform(0.8, 1.2)), (fork, _spread(0.1)), (fork, mean), (fork, var)], same
    if kind in ("Scale", "Bias"):
        p = layer.scale_param if kind == "Scale" else layer.bias_param
        if len(bottoms) > 1:
            has_bias = kind == "Scale" and layer.scale_param.bias_term
            return ([(bottoms[1], BIAS)] if has_bias else []), same
        shape = _param_shape(x, p.axis, p.num_axes)
        if kind == "Bias":
            return [(shape, BIAS)], same
        blobs = [(shape, _uniform(0.8, 1.2))]
        if layer.scale_param.bias_term:
            blobs.append((shape, BIAS))
        return blobs, same
    if kind == "PReLU":
        slopes: Shape = (1,) if layer.prelu_param.channel_shared else (x[1],)
        return [(slopes, _uniform(0.05, 0.3))], same
    if kind == "Normalize":
        channels = x[1]
        gains: Shape = (1,) if layer.norm_param.channel_shared else (channels,)
        spread = shapes.count(x, 1) if layer.norm_param.across_spatial else channels
        root = math.sqrt(spread)
        return [(gains, _uniform(0.8 * root, 1.2 * root))], same
    if kind == "Embed":
        p = layer.embed_param
        n = int(p.num_output)
        blobs = [((int(p.input_dim), n), _spread(1.0))]
        if p.bias_term:
            blobs.append(((n,), BIAS))
        return blobs, [(*x, n)]
    if kind == "Parameter":
        shape = tuple(layer.parameter_param.shape.dim)
        return [(shape, _spread(1.0))], [shape]
    return [], _tops(layer, bottoms)


def _tops(layer: caffe_pb2.LayerParameter, bottoms: list[Shape]) -> list[Shape]:
    """Top shapes of layers without blobs (the ones that change shapes; others keep them)."""
    kind = layer.type
    x = bottoms[0] if bottoms else ()
    if kind == "Pooling":
        return [_pool(layer, x)]
    if kind == "Concat":
        p = layer.concat_param
        axis = shapes.canonical_axis(p.axis if p.HasField("axis") else p.concat_dim, len(x))
        total = sum(b[axis] for b in bottoms)
        return [(*x[:axis], total, *x[axis + 1 :])]
    if kind == "Slice":
        p = layer.slice_param
        axis = shapes.canonical_axis(p.axis if p.HasField("axis") else p.slice_dim, len(x))
        sizes = shapes.slice_sizes(x[axis], list(p.slice_point), len(layer.top))
        return [(*x[:axis], s, *x[axis + 1 :]) for s in sizes]
    if kind == "Flatten":
        p = layer.flatten_param
        return [shapes.flatten_output(x, p.axis, p.end_axis)]
    if kind == "Reshape":
        p = layer.reshape_param
        return [shapes.reshape_output(x, list(p.shape.dim), p.axis, p.num_axes)]
    if kind == "Permute":
        order = list(layer.permute_param.order)
        order += [i for i in range(len(x)) if i not in order]
        return [tuple(x[i] for i in order)]
    if kind == "Crop":
        p = layer.crop_param
        axis = shapes.canonical_axis(p.axis, len(x))
        return [(*x[:axis], *bottoms[1][axis:])]
    if kind == "Axpy":
        return [bottoms[1]]
    if kind == "ROIPooling":
        p = layer.roi_pooling_param
        return [(bottoms[1][0], x[1], p.pooled_h, p.pooled_w)]
    if kind == "SPP":
        levels = int(layer.spp_param.pyramid_height)
        return [(x[0], x[1] * sum(4**level for level in range(levels)))]
    if kind == "Upsample":
        p = layer.upsample_param
        if p.HasField("upsample_h"):
            return [(*x[:2], p.upsample_h, p.upsample_w)]
        sh, sw = (p.scale_h or p.scale, p.scale_w or p.scale)
        return [(*x[:2], x[2] * sh, x[3] * sw)]
    if kind == "Interp":
        return [_interp(layer.interp_param, x)]
    if kind == "Tile":
        p = layer.tile_param
        axis = shapes.canonical_axis(p.axis, len(x))
        return [(*x[:axis], x[axis] * p.tiles, *x[axis + 1 :])]
    if kind == "Reduction":
        axis = shapes.canonical_axis(layer.reduction_param.axis, len(x)) if x else 0
        return [tuple(x[:axis])]
    if kind == "ArgMax":
        return [_argmax(layer.argmax_param, x)]
    return [x] * len(layer.top)


def _interp(p: caffe_pb2.InterpParameter, x: Shape) -> Shape:
    """The Interp fork's output size (the same precedence of its parameters as the fork)."""
    size = [x[2] + p.pad_beg + p.pad_end, x[3] + p.pad_beg + p.pad_end]
    shrink, zoom = p.HasField("shrink_factor"), p.HasField("zoom_factor")
    if shrink:
        size = [(s - 1) // p.shrink_factor + 1 for s in size]
    if zoom:
        size = [s + (s - 1) * (p.zoom_factor - 1) for s in size]
    if not (shrink or zoom) and p.HasField("height") and p.HasField("width"):
        size = [p.height, p.width]
    return (*x[:2], *size)


def _argmax(p: caffe_pb2.ArgMaxParameter, x: Shape) -> Shape:
    top_k = int(p.top_k)
    if p.HasField("axis"):
        axis = shapes.canonical_axis(p.axis, len(x))
        return (*x[:axis], top_k, *x[axis + 1 :])
    shape = [1] * max(len(x), 3)
    shape[0], shape[1], shape[2] = x[0], 2 if p.out_max_val else 1, top_k
    return tuple(shape)
