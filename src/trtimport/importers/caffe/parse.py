"""Load a Caffe model (deploy prototxt and/or caffemodel) into one :class:`CaffeModel`.

Interface used by the layer converters (stable; changes are announced here first):

- ``load_caffe(prototxt, caffemodel) -> CaffeModel``: ``net`` is always in the V2 ``layer``
  form with blobs stripped and TEST-phase filtering applied; ``weights`` maps layer name to its
  blobs as float32 arrays (read-only views of the caffemodel when possible; copy before
  mutating); ``layer_lines`` maps layer name to its 1-based prototxt line (0 when the layer came
  from the caffemodel only); ``input_shapes`` maps each net input to its shape.
- ``require_blobs(model, layer_name, count)`` and ``blob_as(model, layer_name, index, shape)``
  check a layer's weights and raise errors naming the layer, the expected and found values.
- ``check_bottoms(model)`` reports every undefined or later-defined bottom at once.
- ``detect_caffe(path, head)`` and ``find_deploy_prototxt(caffemodel) -> (path, note)``.
- ``describe_layer(model, name)`` gives "layer 'conv1' (Convolution, deploy.prototxt:12)" for
  messages.

Note for converters (measured by benchmarks/bench_caffe.py): keep weights as the views they
are. ``writer.write_onnx`` streams any array, strided ones included, so an initializer needs no
``np.ascontiguousarray``; and a transposed blob costs a full copy (VGG16's fc6 is 411 MB, ~4 s
of the 5 s conversion). InnerProduct can use the stored (N, K) blob as is with
``Gemm(transB=1)`` on the input flattened to (M, K) at ``axis``, reshaped back after.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trtimport.errors import ModelParseError, ShapeError, UsageError
from trtimport.importers.caffe.proto import caffe_pb2
from trtimport.importers.caffe.pyfasterrcnn import rewrite_proposal_layers
from trtimport.importers.caffe.sniff import detect_caffe  # noqa: F401 (part of the interface)
from trtimport.importers.caffe.trainval import to_deploy
from trtimport.importers.caffe.upgrade import filter_test_phase, test_phase_mask, upgrade_net
from trtimport.importers.caffe.weights import read_caffemodel

SCHEMA_SCOPE = (
    "trtimport's Caffe schema (BVLC Caffe plus the SSD, ConvolutionDepthwise, ShuffleChannel, "
    "Interp, Upsample, Axpy, ReLU6, BN and ROIPooling forks)"
)


@dataclass
class CaffeModel:
    """A Caffe net ready for conversion: V2 structure, weights by layer name, input shapes."""

    net: caffe_pb2.NetParameter
    weights: dict[str, list[np.ndarray]]
    layer_lines: dict[str, int]
    input_shapes: dict[str, tuple[int, ...]]
    prototxt: Path | None
    caffemodel: Path | None
    notes: list[str] = field(default_factory=list)
    #: Problems found while reading (unknown fields), reported with the converter's own.
    problems: list[str] = field(default_factory=list)
    #: The blob shapes converters asked for, by layer (filled when ``has_weights`` is False).
    requested_blobs: dict[str, dict[int, tuple[int, ...]]] = field(default_factory=dict)

    @property
    def has_weights(self) -> bool:
        """False for a prototxt alone: converters then get zero blobs of the shapes they ask
        for, so that the structure is checked before weights are asked for."""
        return self.caffemodel is not None or bool(self.weights)


def load_caffe(prototxt: Path | None, caffemodel: Path | None) -> CaffeModel:
    """Load a deploy prototxt, a caffemodel, or both (weights are matched to layers by name).

    With both, the structure comes from the prototxt and the caffemodel (possibly a training
    net) only supplies blobs; its layers that the deploy net lacks are ignored. With only a
    caffemodel, the structure stored in it is used. Raises :class:`ModelParseError` with
    ``file:line:col`` for syntax errors and the byte offset for corrupt caffemodels.
    """
    if prototxt is None and caffemodel is None:
        raise UsageError("load_caffe needs a prototxt, a caffemodel, or both")
    notes: list[str] = []
    problems: list[str] = []
    lines: dict[str, int] = {}
    if prototxt is not None:
        prototxt = Path(prototxt)
        text = _read_text(prototxt)
        net, problems = parse_prototxt_collecting(text, str(prototxt))
        starts = top_level_layer_starts(text)
        if len(starts) == len(net.layer):  # V2 layers: keep the line of the TEST-phase one
            starts = [s for s, active in zip(starts, test_phase_mask(net), strict=True) if active]
        for line, name in starts:
            lines.setdefault(name, line)
    stored = read_caffemodel(Path(caffemodel)) if caffemodel is not None else None
    if prototxt is None:
        assert stored is not None
        net = stored.net
    source = str(prototxt if prototxt is not None else caffemodel)
    upgraded = upgrade_net(net, source)
    if upgraded:
        notes.append(f"{source}: upgraded {upgraded} legacy (V0/V1) layer definitions")
    removed = filter_test_phase(net)
    if removed:
        notes.append(f"{source}: left out {len(removed)} layers that a TEST net does not run")
    notes += rewrite_proposal_layers(net, source)
    notes += to_deploy(net, source)
    weights: dict[str, list[np.ndarray]] = {}
    if stored is not None:
        deploy_names = {layer.name for layer in net.layer}
        weights = {k: v for k, v in stored.weights.items() if k in deploy_names}
        if prototxt is not None:
            unused = sorted(set(stored.weights) - deploy_names)
            if unused:
                notes.append(
                    f"{caffemodel}: ignored the weights of {len(unused)} layers that the deploy "
                    f"net does not have: {', '.join(unused[:8])}"
                    + (" …" if len(unused) > 8 else "")
                )
    for layer in net.layer:
        if layer.blobs:
            weights.setdefault(
                layer.name, [_blob_array(b, layer.name, source) for b in layer.blobs]
            )
            del layer.blobs[:]
    model = CaffeModel(
        net=net,
        weights=weights,
        layer_lines={layer.name: lines.get(layer.name, 0) for layer in net.layer},
        input_shapes={},
        prototxt=prototxt,
        caffemodel=Path(caffemodel) if caffemodel is not None else None,
        notes=notes,
        problems=problems,
    )
    model.input_shapes = _input_shapes(model)
    return model


#: The largest prototxt read: real deploy nets are well under 1 MiB.
PROTOTXT_LIMIT = 16 << 20
#: The most layers a prototxt may declare. The largest real nets have a few thousand;
#: protobuf's text parser takes about 60 microseconds a layer.
LAYER_LIMIT = 20_000
_LAYER_START = re.compile(rb"\blayers?\s*\{")


def _read_text(path: Path) -> str:
    from trtimport.core.input_files import read_bounded

    data = read_bounded(path, PROTOTXT_LIMIT, "prototxt")
    layers = len(_LAYER_START.findall(data))
    if layers > LAYER_LIMIT:
        raise ModelParseError(
            f"{path}: declares {layers} layers; trtimport imports nets of at most {LAYER_LIMIT} "
            "layers (real deploy nets have a few thousand at most)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ModelParseError(
            f"{path}: not a text prototxt (byte {err.start} is not UTF-8). If this is a binary "
            "caffemodel, pass it as the model or with --weights"
        ) from err


_PARSE_PREFIX = re.compile(r"^\d+:\d+ : ")
#: Said once after the unknown fields of a net.
UNKNOWN_FIELD_HINT = (
    f"A field that is not in {SCHEMA_SCOPE} probably comes from another Caffe fork. Remove the "
    "field from the prototxt if the layer does not need it; a fork layer that needs its own "
    "parameters can be converted by a plugin registered through the "
    "`trtimport_register_caffe_layers` hook (see docs/caffe.md)"
)


def parse_prototxt_text(text: str, source: str) -> caffe_pb2.NetParameter:
    """Parse prototxt text; every error becomes one :class:`ModelParseError` (``source:line:col``).

    Unknown fields are all listed together (see :func:`parse_prototxt_collecting`).
    """
    net, problems = parse_prototxt_collecting(text, source)
    if problems:
        raise ModelParseError(
            f"{source}: {len(problems)} field(s) the schema does not know ({UNKNOWN_FIELD_HINT})",
            problems,
        )
    return net


def parse_prototxt_collecting(text: str, source: str) -> tuple[caffe_pb2.NetParameter, list[str]]:
    """Parse prototxt text, leaving out unknown fields; the net and one problem per such field.

    Other syntax errors raise :class:`ModelParseError` with ``source:line:col`` and the layer,
    after the unknown fields met before them.
    """
    from google.protobuf import text_format

    from trtimport.importers.caffe.unknown_fields import parse_collecting_unknown

    def parse(candidate: str) -> caffe_pb2.NetParameter:
        net = caffe_pb2.NetParameter()
        text_format.Parse(candidate, net)
        return net

    def where(line: int) -> str:
        return _enclosing_layer(text, line)

    try:
        net, unknown = parse_collecting_unknown(text, parse)
    except text_format.ParseError as err:
        line, col = err.GetLine(), err.GetColumn()
        detail = _PARSE_PREFIX.sub("", str(err))
        raise ModelParseError(f"{source}:{line}:{col}: {detail}{where(line)}") from err
    return net, unknown.problems(source, where)


_TOKEN = re.compile(
    r"""\#[^\n]*|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[{}<>]|[A-Za-z_][A-Za-z0-9_]*|\n"""
)


def top_level_layer_starts(text: str) -> list[tuple[int, str]]:
    """``(line, name)`` of each top-level ``layer``/``layers`` block, in file order.

    ``name`` is the block's ``name:`` (for V0 nets, the nested ``layer { name: }``); empty if
    it has none.
    """
    starts: list[list] = []
    blocks: list[str] = []  # the field name that opened each enclosing block
    previous = ""
    line = 1
    name_next = False
    for match in _TOKEN.finditer(text):
        token = match.group()
        first = token[0]
        if token == "\n":
            line += 1
        elif first == "#":
            continue
        elif first in "{<":
            blocks.append(previous)
            name_next = False
        elif first in "}>":
            if blocks:
                blocks.pop()
            name_next = False
        elif first in "\"'":
            if name_next and not starts[-1][1]:
                starts[-1][1] = _unquote(token)
            name_next = False
        else:
            if not blocks and token in ("layer", "layers"):
                starts.append([line, ""])
            in_layer = len(blocks) == 1 or (len(blocks) == 2 and blocks[1] == "layer")
            name_next = token == "name" and in_layer and bool(starts)
            previous = token
    return [(start, name) for start, name in starts]


def _unquote(token: str) -> str:
    from google.protobuf import text_format

    return text_format.Tokenizer([token]).ConsumeString()


def _enclosing_layer(text: str, line: int) -> str:
    starts = [s for s in top_level_layer_starts(text) if s[0] <= line]
    if not starts:
        return ""
    start, name = starts[-1]
    return (
        f" (in the layer '{name}' starting at line {start})"
        if name
        else (f" (in the layer starting at line {start})")
    )


def _blob_array(blob: caffe_pb2.BlobProto, layer: str, source: str) -> np.ndarray:
    """A ``BlobProto`` from a prototxt (rare, but legal) as a float32 array."""
    values = np.asarray(blob.data if blob.data else blob.double_data, dtype=np.float32)
    if blob.HasField("shape"):
        shape = tuple(blob.shape.dim)
    elif any((blob.num, blob.channels, blob.height, blob.width)):
        shape = (blob.num, blob.channels, blob.height, blob.width)
    else:
        shape = (values.size,)
    if int(np.prod(shape)) != values.size:
        raise ModelParseError(
            f"{source}: layer '{layer}' has a blob of shape {list(shape)} holding "
            f"{values.size} values"
        )
    return values.reshape(shape)


def _input_shapes(model: CaffeModel) -> dict[str, tuple[int, ...]]:
    net = model.net
    source = model.prototxt or model.caffemodel
    shapes: dict[str, tuple[int, ...]] = {}
    inputs = list(net.input)
    if inputs:
        if len(net.input_shape) == len(inputs):
            for name, shape in zip(inputs, net.input_shape, strict=True):
                shapes[name] = tuple(shape.dim)
        elif len(net.input_dim) == 4 * len(inputs):
            for i, name in enumerate(inputs):
                shapes[name] = tuple(net.input_dim[4 * i : 4 * i + 4])
        else:
            raise ModelParseError(
                f"{source}: the net declares {len(inputs)} input(s) ({', '.join(inputs)}) with "
                f"{len(net.input_shape)} input_shape and {len(net.input_dim)} input_dim "
                "entries; give one `input_shape { dim: … }` per input, or four `input_dim` "
                "lines (N, C, H, W) per input"
            )
    for layer in net.layer:
        if layer.type != "Input":
            continue
        given = list(layer.input_param.shape)
        if not given:  # "defer to reshaping manually": --input gives the shape
            given = [caffe_pb2.BlobShape()]
        if len(given) == 1:
            given = given * len(layer.top)
        if len(given) != len(layer.top):
            raise ModelParseError(
                f"{source}: {describe_layer(model, layer.name)} has {len(layer.top)} tops but "
                f"{len(layer.input_param.shape)} input_param shapes; give one shape, or one per top"
            )
        for top, shape in zip(layer.top, given, strict=True):
            shapes[top] = tuple(shape.dim)
    return shapes


def describe_layer(model: CaffeModel, name: str) -> str:
    """``layer 'conv1' (Convolution, deploy.prototxt:12)`` — for error messages."""
    kind = next((layer.type for layer in model.net.layer if layer.name == name), "?")
    line = model.layer_lines.get(name, 0)
    if model.prototxt is not None and line:
        return f"layer '{name}' ({kind}, {model.prototxt}:{line})"
    return f"layer '{name}' ({kind})"


def require_blobs(
    model: CaffeModel, layer_name: str, count: int | Sequence[int]
) -> list[np.ndarray]:
    """The weight blobs of ``layer_name``; raises if their number is not ``count`` (or one of it).

    The message names the layer, its prototxt line, the caffemodel, and expected vs found.
    """
    allowed = (count,) if isinstance(count, int) else tuple(count)
    blobs = model.weights.get(layer_name, [])
    if len(blobs) in allowed:
        return blobs
    expected = " or ".join(str(c) for c in allowed)
    where = f"{model.caffemodel}" if model.caffemodel is not None else "no caffemodel was given"
    if not blobs:
        fix = (
            "pass the matching caffemodel with --weights (layer names must match), or generate "
            "random weights with `trtimport caffe make-weights`"
            if model.caffemodel is None
            else "check that the caffemodel belongs to this prototxt (layers are matched by name)"
        )
        raise ModelParseError(
            f"{describe_layer(model, layer_name)} needs {expected} weight blob(s) but has none "
            f"({where}); {fix}"
        )
    raise ShapeError(
        f"{describe_layer(model, layer_name)} needs {expected} weight blob(s) but "
        f"{where} has {len(blobs)} for it"
    )


def blob_as(model: CaffeModel, layer_name: str, index: int, shape: Sequence[int]) -> np.ndarray:
    """Blob ``index`` of a layer, checked against ``shape`` and returned with that shape.

    Like Caffe, a blob stored with the legacy 4-D (num, channels, height, width) form matches a
    shorter expected shape padded with leading 1s.
    """
    blobs = model.weights.get(layer_name, [])
    if index >= len(blobs):
        require_blobs(model, layer_name, index + 1)
    blob = blobs[index]
    expected = tuple(int(d) for d in shape)
    if blob.shape == expected:
        return blob
    padded = (1,) * (4 - len(expected)) + expected if len(expected) < 4 else expected
    if blob.ndim == 4 and blob.shape == padded:
        return blob.reshape(expected)
    raise ShapeError(
        f"{describe_layer(model, layer_name)}: weight blob {index} has shape {list(blob.shape)}, "
        f"expected {list(expected)}"
        + (f" (from {model.caffemodel})" if model.caffemodel is not None else "")
    )


def check_bottoms(model: CaffeModel) -> None:
    """Raise one :class:`ModelParseError` listing every bottom not produced before its layer."""
    problems = bottom_problems(model)
    if problems:
        source = model.prototxt or model.caffemodel
        raise ModelParseError(
            f"{source}: {len(problems)} layer input(s) are not defined before use", problems
        )


def bottom_problems(model: CaffeModel) -> list[str]:
    """Every bottom not produced before its layer, one line each.

    Caffe runs layers in file order, so a bottom produced only by a later layer is a cycle or a
    misordering, and a bottom produced by nothing is undefined.
    """
    produced: set[str] = set(model.net.input) | set(model.input_shapes)
    later: dict[str, str] = {}
    for layer in model.net.layer:
        for top in layer.top:
            later.setdefault(top, layer.name)
    problems: list[str] = []
    for layer in model.net.layer:
        for bottom in layer.bottom:
            if bottom in produced:
                continue
            who = describe_layer(model, layer.name)
            if bottom in later:
                problems.append(
                    f"{who}: bottom '{bottom}' is only produced later, by "
                    f"{describe_layer(model, later[bottom])} (a cycle, or layers out of order)"
                )
            else:
                problems.append(f"{who}: bottom '{bottom}' is not produced by any layer or input")
        produced.update(layer.top)
    return problems


# --------------------------------------------------------------------------- pairing


def find_deploy_prototxt(caffemodel: Path) -> tuple[Path, str]:
    """The deploy prototxt beside ``caffemodel`` and a note saying which one was used.

    Candidates: ``<stem>.prototxt`` and ``deploy.prototxt`` in the same folder. None or several
    is a :class:`UsageError` that says to pass the prototxt as the model with ``--weights``.
    """
    caffemodel = Path(caffemodel)
    folder = caffemodel.parent
    names = dict.fromkeys([f"{caffemodel.stem}.prototxt", "deploy.prototxt"])
    found = [folder / name for name in names if (folder / name).is_file()]
    how = f"pass it as the model: `trtimport DEPLOY.prototxt --weights {caffemodel}`"
    if not found:
        raise UsageError(
            f"{caffemodel}: no deploy prototxt beside it (looked for "
            f"{' and '.join(names)} in {folder}); {how}"
        )
    if len(found) > 1:
        raise UsageError(
            f"{caffemodel}: several candidate deploy prototxts beside it "
            f"({', '.join(str(p) for p in found)}); choose one and {how}"
        )
    return found[0], f"using the deploy prototxt {found[0]} found beside {caffemodel.name}"
