"""Convolution, Deconvolution, ConvolutionDepthwise and PSPNet's HoleConvolution (N-d, groups,
dilation)."""

from __future__ import annotations

from collections.abc import Sequence

from trtimport.importers.caffe import shapes
from trtimport.importers.caffe.layers.common import intel_engine
from trtimport.importers.caffe.proto import caffe_pb2
from trtimport.importers.caffe.registry import Converter, LayerContext, Shape


def _per_axis(
    values: Sequence[int], n: int, default: int, what: str, ctx: LayerContext
) -> list[int]:
    if not values:
        return [default] * n
    if len(values) == 1:
        return [int(values[0])] * n
    if len(values) != n:
        raise ctx.shape_error(f"{len(values)} {what} values for {n} spatial axes")
    return [int(v) for v in values]


def conv_geometry(ctx: LayerContext, n: int) -> tuple[list[int], list[int], list[int], list[int]]:
    """(kernel, stride, pad, dilation) per spatial axis, honouring the ``_h``/``_w`` fields."""
    p = ctx.layer.convolution_param
    if p.HasField("kernel_h") or p.HasField("kernel_w"):
        if n != 2:
            raise ctx.shape_error("kernel_h/kernel_w need 2 spatial axes")
        kernel = [p.kernel_h, p.kernel_w]
    else:
        kernel = _per_axis(p.kernel_size, n, 0, "kernel_size", ctx)
    if p.HasField("stride_h") or p.HasField("stride_w"):
        stride = [p.stride_h or 1, p.stride_w or 1]
    else:
        stride = _per_axis(p.stride, n, 1, "stride", ctx)
    if p.HasField("pad_h") or p.HasField("pad_w"):
        pad = [p.pad_h, p.pad_w]
    else:
        pad = _per_axis(p.pad, n, 0, "pad", ctx)
    dilation = _per_axis(p.dilation, n, 1, "dilation", ctx)
    if ctx.layer.type == "HoleConvolution" or (ctx.layer.type == "Convolution" and has_hole(p)):
        # DeepLab v1's ConvolutionLayer reads hole itself (PSPNet's moved it to HoleConvolution,
        # and no PSPNet net sets it on a Convolution): the same effective kernel.
        dilation = _hole(ctx, n)
    elif p.hole != 1 or p.hole_h != 1 or p.hole_w != 1:
        raise ctx.unsupported(
            "hole is read by DeepLab v1's Convolution and PSPNet's HoleConvolution only; "
            "use dilation"
        )
    if min(kernel) <= 0 or min(stride) <= 0:
        raise ctx.shape_error(f"kernel {kernel} and stride {stride} must be positive")
    return kernel, stride, pad, dilation


def has_hole(p: caffe_pb2.ConvolutionParameter) -> bool:
    """Whether a hole field is written (DeepLab v1 / PSPNet)."""
    return p.HasField("hole") or p.HasField("hole_h") or p.HasField("hole_w")


def _hole(ctx: LayerContext, n: int) -> list[int]:
    """HoleConvolution's (or DeepLab v1 Convolution's) dilation; both forks CHECK for hole, or
    hole_h and hole_w; HoleConvolution also for 4-D blobs and a hole field."""
    p = ctx.layer.convolution_param
    has_hw = p.HasField("hole_h") or p.HasField("hole_w")
    if n != 2:
        raise ctx.shape_error(f"{ctx.layer.type} with hole needs 4-D (N, C, H, W) input")
    if p.HasField("hole_h") != p.HasField("hole_w") or (has_hw and p.HasField("hole")):
        raise ctx.shape_error(f"{ctx.layer.type} takes hole, or hole_h and hole_w (not both)")
    if not has_hw and not p.HasField("hole"):
        raise ctx.shape_error("HoleConvolution without hole: use Convolution (as the fork says)")
    if p.dilation:
        raise ctx.shape_error(f"{ctx.layer.type} takes hole (its fork's) or dilation, not both")
    try:
        return shapes.hole_dilation(p.hole, p.hole_h, p.hole_w, has_hw)
    except ValueError as err:
        raise ctx.shape_error(str(err)) from err


def _convolve(ctx: LayerContext, *, transpose: bool, depthwise: bool = False) -> list[Shape]:
    p = ctx.layer.convolution_param
    if p.axis != 1:
        raise ctx.unsupported(f"convolution over axis {p.axis} (only axis 1, channels)")
    x_shape = ctx.input_shapes[0]
    n = len(x_shape) - 2
    if n < 1:
        raise ctx.shape_error(f"input shape {list(x_shape)} has no spatial axes")
    kernel, stride, pad, dilation = conv_geometry(ctx, n)
    channels = x_shape[1]
    num_output = int(p.num_output)
    group = channels if depthwise else int(p.group)
    if channels % group or num_output % group:
        raise ctx.shape_error(
            f"channels {channels} and num_output {num_output} must be divisible by group {group}"
        )
    if transpose:
        w_shape: Shape = (channels, num_output // group, *kernel)
    else:
        w_shape = (num_output, channels // group, *kernel)
    weight = ctx.const(ctx.blob(0, w_shape), "W")
    inputs = [ctx.inputs[0], weight]
    if p.bias_term:
        inputs.append(ctx.const(ctx.blob(1, (num_output,)), "b"))
    try:
        size = shapes.deconv_output if transpose else shapes.conv_output
        spatial = [
            size(x_shape[2 + i], kernel[i], stride[i], pad[i], dilation[i]) for i in range(n)
        ]
    except ValueError as err:
        raise ctx.shape_error(str(err)) from err
    if ctx.layer.HasField("quantization_param") and not transpose:
        _refuse_intel_int8(ctx, dilation)
    if p.relu and transpose:
        raise ctx.unsupported("Intel Caffe fuses relu into Convolution only, not Deconvolution")
    convolved = ctx.node(
        "ConvTranspose" if transpose else "Conv",
        inputs,
        1 if p.relu else ctx.outputs[:1],
        kernel_shape=kernel,
        strides=stride,
        pads=pad + pad,
        dilations=dilation,
        group=group,
    )
    if p.relu:
        _fused_relu(ctx, convolved[0])
    return [(x_shape[0], num_output, *spatial)]


def _fused_relu(ctx: LayerContext, conv_out: str) -> None:
    """Intel Caffe's ``relu: true``: ReLU after the convolution, leaky by ``negative_slope``."""
    slope = float(ctx.layer.convolution_param.negative_slope)
    if slope:
        ctx.op("LeakyRelu", conv_out, out=ctx.outputs[0], alpha=slope)
    else:
        ctx.op("Relu", conv_out, out=ctx.outputs[0])


def convolution(ctx: LayerContext) -> list[Shape]:
    """Convolution: ONNX Conv (weights num_output x C/group x kernel)."""
    return _convolve(ctx, transpose=False)


def convolution_depthwise(ctx: LayerContext) -> list[Shape]:
    """ConvolutionDepthwise (MobileNet forks): Conv with one group per input channel."""
    return _convolve(ctx, transpose=False, depthwise=True)


def deconvolution(ctx: LayerContext) -> list[Shape]:
    """Deconvolution: ONNX ConvTranspose (Caffe's weights are C x num_output/group x kernel)."""
    return _convolve(ctx, transpose=True)


CONVERTERS: dict[str, Converter] = {
    "Convolution": convolution,
    "ConvolutionDepthwise": convolution_depthwise,
    "DepthwiseConvolution": convolution_depthwise,
    "Deconvolution": deconvolution,
    "HoleConvolution": convolution,
}


def _refuse_intel_int8(ctx: LayerContext, dilation: Sequence[int]) -> None:
    """Intel Caffe's MKL-DNN convolution reads ``quantization_param`` at test time and runs in
    INT8; its own (CAFFE) engine ignores it. The engine is chosen as Intel's layer factory does
    (a dilated convolution named by an engine string falls back to CAFFE). None named is
    refused too: builds with USE_MKLDNN_AS_DEFAULT_ENGINE give every net MKL-DNN."""
    param = ctx.layer.convolution_param
    engine = intel_engine(ctx, caffe_pb2.ConvolutionParameter.Engine.Name(param.engine))
    dilated = max(dilation) > 1 and param.engine == 0
    if engine == "CAFFE" or (dilated and engine in ("MKLDNN", "")):
        return
    q = ctx.layer.quantization_param
    raise ctx.unsupported(
        "quantization_param: Intel Caffe's MKL-DNN engine (its builds' usual default) runs "
        f"this convolution in INT8 at test time (input at scale {_scales(q.scale_in)}, "
        f"weights per output channel, output at scale {_scales(q.scale_out)}), which trtimport "
        "does not reproduce; it converts the float net. To convert that, as Intel Caffe "
        'computes it with its own engine, add engine: "CAFFE" to the quantized Convolution '
        "layers (a net-wide engine would change other layers' weight layout too) or delete "
        "the quantization_param blocks; --int8 quantizes for TensorRT instead"
    )


def _scales(values: Sequence[float]) -> str:
    return ", ".join(f"{v:g}" for v in values) or "none given"
