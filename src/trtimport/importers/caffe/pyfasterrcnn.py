"""py-faster-rcnn's Python layers, recognised by ``python_param.module`` and ``layer``.

trtimport never runs a Python layer's code. These four come from py-faster-rcnn's sources
(``lib/roi_data_layer/layer.py``, ``lib/rpn/*.py``) and are handled as Caffe's TEST phase sees
them:

- ``rpn.proposal_layer.ProposalLayer`` becomes the built-in ``Proposal`` layer. Its ``param_str``
  gives ``feat_stride`` (and ``scales``; forks add ``ratios``); the rest comes from
  ``cfg.TEST`` of ``lib/fast_rcnn/config.py`` (the layer reads ``cfg[phase]``): RPN_PRE_NMS_TOP_N
  6000, RPN_POST_NMS_TOP_N 300, RPN_NMS_THRESH 0.7, RPN_MIN_SIZE 16, which are
  ``proposal_param``'s defaults; ``generate_anchors`` uses base size 16 and ratios 0.5, 1, 2.
- ``roi_data_layer.layer.RoIDataLayer`` is the training data layer. Its tops are positional:
  ``data``, then with an RPN (``cfg.TRAIN.HAS_RPN``) ``im_info`` and ``gt_boxes``, without one
  (Fast R-CNN) ``rois``, ``labels`` and the bounding-box targets and weights.
- ``rpn.anchor_target_layer.AnchorTargetLayer`` (the RPN's training labels and box targets) and
  ``rpn.proposal_target_layer.ProposalTargetLayer`` (samples training regions from the proposals
  and ``gt_boxes``) only make training targets. At test time py-faster-rcnn's test nets feed the
  proposals themselves to the region layers, so the sampled regions' consumers read them.
"""

from __future__ import annotations

import re

from trtimport.importers.caffe.proto import caffe_pb2

Shape = tuple[int, ...]

PROPOSAL = ("rpn.proposal_layer", "ProposalLayer")
ROI_DATA = ("roi_data_layer.layer", "RoIDataLayer")
ANCHOR_TARGET = ("rpn.anchor_target_layer", "AnchorTargetLayer")
PROPOSAL_TARGET = ("rpn.proposal_target_layer", "ProposalTargetLayer")
TRAINING_ONLY = {
    ANCHOR_TARGET: "it makes the RPN's training labels and box targets from gt_boxes",
    PROPOSAL_TARGET: "it samples training regions and their targets from the proposals and "
    "gt_boxes",
}
#: The param_str keys ProposalLayer reads (``ratios``: forks of py-faster-rcnn).
PROPOSAL_KEYS = ("feat_stride", "scales", "ratios")
#: py-faster-rcnn's test-time image size: shorter side cfg.TEST.SCALES[0], longer side at most
#: cfg.TEST.MAX_SIZE (also RoIDataLayer's own setup shape: max(TRAIN.SCALES) x TRAIN.MAX_SIZE).
TEST_IMAGE = (600, 1000)


def kind(layer: caffe_pb2.LayerParameter) -> tuple[str, str] | None:
    """``(module, layer)`` of a Python layer, else None."""
    if layer.type != "Python":
        return None
    return (layer.python_param.module, layer.python_param.layer)


def describe(layer: caffe_pb2.LayerParameter) -> str:
    """``'proposal' (Python rpn.proposal_layer.ProposalLayer)``."""
    p = layer.python_param
    return f"'{layer.name}' (Python {p.module or '?'}.{p.layer or '?'})"


# --------------------------------------------------------------------------- param_str


class ParamStrError(ValueError):
    """A ``param_str`` outside the YAML subset py-faster-rcnn's layers are written in."""


_SCALAR_INT = re.compile(r"[-+]?\d+")
_SCALAR_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


def parse_param_str(text: str) -> dict[str, object]:
    """A ``param_str`` (YAML, read by the layers with ``yaml.load``) as a dict.

    The subset the layers use: a mapping, in block (``'key': value`` per line) or flow
    (``{'key': value, …}``) style, of numbers, strings and lists of them (``[a, b]`` or
    ``- item`` lines). Anything else raises :class:`ParamStrError`.
    """
    body = text.strip()
    if not body:
        return {}
    if body.startswith("{"):
        if not body.endswith("}"):
            raise ParamStrError("a '{' mapping that does not end with '}'")
        entries = _split_flow(body[1:-1])
        return dict(_entry(e) for e in entries if e.strip())
    result: dict[str, object] = {}
    pending: str | None = None
    for raw in body.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("- "):
            items = result.get(pending) if pending is not None else None
            if not isinstance(items, list):
                raise ParamStrError(f"a list item outside a list: {line!r}")
            items.append(_scalar(line[2:]))
            continue
        key, value = _entry(line)
        result[key] = [] if value == "" else value
        pending = key if value == "" else None
    return result


def _split_flow(text: str) -> list[str]:
    parts, depth, quote, start = [], 0, "", 0
    for i, c in enumerate(text):
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if quote or depth:
        raise ParamStrError(f"unbalanced quotes or brackets in {text!r}")
    return [*parts, text[start:]]


def _entry(text: str) -> tuple[str, object]:
    key, sep, value = _split_key(text.strip())
    if not sep:
        raise ParamStrError(f"expected 'key: value', got {text.strip()!r}")
    value = value.strip()
    if value.startswith("["):
        if not value.endswith("]"):
            raise ParamStrError(f"a '[' list that does not end with ']': {value!r}")
        inner = value[1:-1]
        return key, [_scalar(v) for v in _split_flow(inner) if v.strip()] if inner.strip() else []
    return key, ("" if not value else _scalar(value))


def _split_key(text: str) -> tuple[str, str, str]:
    if text[:1] in "'\"":
        end = text.find(text[0], 1)
        if end < 0:
            raise ParamStrError(f"an unclosed quote in {text!r}")
        rest = text[end + 1 :].lstrip()
        if not rest.startswith(":"):
            return text, "", ""
        return text[1:end], ":", rest[1:]
    key, sep, value = text.partition(":")
    return key.strip(), sep, value


def _scalar(text: str) -> object:
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    if _SCALAR_INT.fullmatch(value):
        return int(value)
    if _SCALAR_FLOAT.fullmatch(value):
        return float(value)
    if value in ("true", "True", "false", "False"):
        return value.lower() == "true"
    if not value or value[0] in "[]{}&*!|>%@`":
        raise ParamStrError(f"a value outside the supported YAML subset: {value!r}")
    return value


# --------------------------------------------------------------------------- ProposalLayer


def _numbers(params: dict[str, object], key: str) -> list[float]:
    value = params[key]
    values = value if isinstance(value, list) else [value]
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not numbers or len(numbers) != len(values) or min(numbers) <= 0:
        raise ParamStrError(f"'{key}' must be a positive number or a list of them, not {value!r}")
    return numbers


def proposal_problem(layer: caffe_pb2.LayerParameter) -> str | None:
    """Why a Python ProposalLayer cannot become a Proposal layer (None: it can)."""
    try:
        _proposal_param(layer)
    except ParamStrError as err:
        return str(err)
    return None


def _proposal_param(layer: caffe_pb2.LayerParameter) -> caffe_pb2.ProposalParameter:
    try:
        params = parse_param_str(layer.python_param.param_str)
    except ParamStrError as err:
        raise ParamStrError(f"its param_str cannot be read: {err}") from err
    unknown = [k for k in params if k not in PROPOSAL_KEYS]
    if unknown:
        raise ParamStrError(
            f"param_str key(s) {', '.join(repr(k) for k in unknown)} are not read by "
            f"{PROPOSAL[0]}.{PROPOSAL[1]} (it reads {', '.join(PROPOSAL_KEYS)}); write type "
            '"Proposal" with proposal_param instead (docs/caffe.md)'
        )
    if "feat_stride" not in params:
        raise ParamStrError("its param_str has no 'feat_stride', which ProposalLayer requires")
    (stride,) = _numbers(params, "feat_stride")
    if stride != int(stride):
        raise ParamStrError(f"'feat_stride' must be a whole number, not {stride}")
    p = caffe_pb2.ProposalParameter(feat_stride=int(stride))
    if "scales" in params:
        p.scale.extend(_numbers(params, "scales"))
    if "ratios" in params:
        p.ratio.extend(_numbers(params, "ratios"))
    if not 1 <= len(layer.top) <= 2 or len(layer.bottom) != 3:
        raise ParamStrError(
            f"ProposalLayer takes 3 bottoms (scores, deltas, im_info) and gives 1 or 2 tops "
            f"(rois, scores); this one has {len(layer.bottom)} and {len(layer.top)}"
        )
    return p


def rewrite_proposal_layers(net: caffe_pb2.NetParameter, source: str) -> list[str]:
    """Turn each Python ProposalLayer into a Proposal layer, in place; the notes saying so.

    A layer whose ``param_str`` cannot be mapped stays a Python layer; the conversion reports
    it with :func:`proposal_problem`'s reason.
    """
    notes: list[str] = []
    for layer in net.layer:
        if kind(layer) != PROPOSAL:
            continue
        try:
            param = _proposal_param(layer)
        except ParamStrError:
            continue
        said = describe(layer)
        layer.type = "Proposal"
        layer.ClearField("python_param")
        layer.proposal_param.CopyFrom(param)
        scales = ", ".join(f"{s:g}" for s in param.scale) or "8, 16, 32"
        ratios = ", ".join(f"{r:g}" for r in param.ratio) or "0.5, 1, 2"
        notes.append(
            f"{source}: the layer {said} converts as the built-in Proposal layer: feat_stride "
            f"{param.feat_stride}, anchor scales {scales}, ratios {ratios}, and "
            "py-faster-rcnn's TEST settings (pre_nms_topn 6000, post_nms_topn 300, nms_thresh "
            "0.7, min_size 16: lib/fast_rcnn/config.py); a configuration that changes "
            'TEST.RPN_* needs type "Proposal" with its values in proposal_param'
        )
    return notes


# --------------------------------------------------------------------------- training nets


def data_shapes(layer: caffe_pb2.LayerParameter) -> dict[str, Shape]:
    """RoIDataLayer's inputs at test time: ``data`` 1x3x600x1000, ``im_info`` 1x3, ``rois`` 1x5.

    One image, as py-faster-rcnn's tester feeds (and ProposalLayer requires). The other tops
    (``gt_boxes``, labels, targets) only feed training layers.
    """
    tops = list(layer.top)
    shapes: dict[str, Shape] = {tops[0]: (1, 3, *TEST_IMAGE)} if tops else {}
    fast_rcnn = len(tops) == 6 or (len(tops) == 3 and tops[1] == "rois")
    if len(tops) == 3 and not fast_rcnn:
        shapes[tops[1]] = (1, 3)
    elif fast_rcnn:
        shapes[tops[1]] = (1, 5)
    return shapes


def data_note(layer: caffe_pb2.LayerParameter) -> str:
    """Where RoIDataLayer's input shapes come from (said after the data layer's note)."""
    if kind(layer) != ROI_DATA:
        return ""
    rois = data_shapes(layer).get(layer.top[1] if len(layer.top) > 1 else "") == (1, 5)
    return (
        f"; {layer.top[0]} is py-faster-rcnn's test size, one image with the shorter side "
        f"{TEST_IMAGE[0]} and the longer at most {TEST_IMAGE[1]} (cfg.TEST.SCALES, MAX_SIZE): "
        f"give the image's size with --input {layer.top[0]}:1x3xHxW"
        + (
            f", and the number of regions with --input {layer.top[1]}:Rx5 (1x5, as in "
            "py-faster-rcnn's Fast R-CNN test nets)"
            if rois
            else ""
        )
    )


def drop_training_layers(net: caffe_pb2.NetParameter, source: str) -> list[str]:
    """Remove AnchorTargetLayer and ProposalTargetLayer, in place; the notes saying so.

    ProposalTargetLayer's first top (the sampled regions) is replaced by its first bottom (the
    proposals): the proposal layer's top is renamed to it when nothing else reads it, as in
    py-faster-rcnn's test nets, else the regions' readers read the proposals.
    """
    notes: list[str] = []
    for layer in [x for x in net.layer if kind(x) in TRAINING_ONLY]:
        reason = TRAINING_ONLY[kind(layer)]  # type: ignore[index]
        index = list(net.layer).index(layer)
        del net.layer[index]
        note = f"{source}: dropped the training-only layer {describe(layer)}: {reason}"
        if kind(layer) == PROPOSAL_TARGET and layer.top and layer.bottom:
            note += _feed_proposals(net, layer.bottom[0], layer.top[0])
        notes.append(note)
    return notes


def _feed_proposals(net: caffe_pb2.NetParameter, proposals: str, rois: str) -> str:
    writers = [x for x in net.layer if proposals in x.top]
    readers = [x for x in net.layer if proposals in x.bottom]
    rois_written = any(rois in x.top for x in net.layer)
    if len(writers) == 1 and not readers and not rois_written:
        tops = writers[0].top
        tops[list(tops).index(proposals)] = rois
        return (
            f"; '{rois}' is now the proposals of '{writers[0].name}' (its top '{proposals}' "
            f"renamed '{rois}', as in py-faster-rcnn's test nets)"
        )
    for x in net.layer:
        for i, bottom in enumerate(x.bottom):
            if bottom == rois:
                x.bottom[i] = proposals
    return f"; the layers that read '{rois}' read the proposals '{proposals}'"
