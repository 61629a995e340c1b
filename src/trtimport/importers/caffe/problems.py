"""Every problem of a Caffe net, collected in one pass and raised as one error.

A conversion gathers, before it writes anything or asks for weights: fields the schema does
not know (from parsing), bottoms used before they are produced, layer types without a
converter, parameters a converter cannot map, and shape errors. The error's class says what
dominates (an unsupported layer, else a parse problem, else a shape problem); its message lists
everything with ``file:line``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trtimport.errors import ModelParseError, ShapeError, TrtImportError, UnsupportedLayerError
from trtimport.importers.caffe import pyfasterrcnn
from trtimport.importers.caffe.parse import UNKNOWN_FIELD_HINT, CaffeModel, describe_layer
from trtimport.importers.caffe.proto import caffe_pb2

PLUGIN_HINT = """\
Register a converter for these layer types from a plugin, through the
trtimport_register_caffe_layers hook (docs/caffe.md, "Custom layers"):

    from trtimport import hookimpl

    @hookimpl
    def trtimport_register_caffe_layers(register):
        register("{example}", convert_{func})  # convert_{func}(ctx) emits ONNX nodes"""


#: Layer types that Caffe forks define differently, so a converter cannot know which one a
#: net means: why, and the way out.
AMBIGUOUS_TYPES = {
    "HardSwish": (
        "MobileNetV3 forks define HardSwish differently (x * min(max(x + 3, 0), 6) / 6 in most, "
        "x * min(max(0.2 x + 0.5, 0), 1) in others), so trtimport does not guess; write the "
        "net with HSwish (the first) or with Power, ReLU6 and Eltwise PROD, or register a "
        "converter for HardSwish in a plugin"
    ),
    "HardSigmoid": (
        "Caffe forks define HardSigmoid differently (min(max(x + 3, 0), 6) / 6, "
        "min(max(0.2 x + 0.5, 0), 1), or alpha x + beta from their own hard_sigmoid_param), so "
        "trtimport does not guess; write the net with HSigmoid (the first) or with Power and "
        "ReLU6/Clip, or register a converter for HardSigmoid in a plugin"
    ),
}


@dataclass
class NetProblems:
    """The problems found so far, by kind."""

    model: CaffeModel
    wiring: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    #: The layer type of each ``unsupported`` entry.
    types: list[str] = field(default_factory=list)
    #: The types among them that have no converter at all (a plugin can add one).
    missing: list[str] = field(default_factory=list)
    shapes: list[str] = field(default_factory=list)

    def no_converter(self, layer: caffe_pb2.LayerParameter) -> None:
        """Record a layer whose type has no converter (a Python layer names its class)."""
        what = "no converter"
        if layer.type == "Python":
            p = layer.python_param
            what = f"no converter for the Python layer {p.module or '?'}.{p.layer or '?'}"
            if pyfasterrcnn.kind(layer) == pyfasterrcnn.PROPOSAL:
                what += (
                    "; py-faster-rcnn's ProposalLayer converts as the built-in Proposal layer, "
                    f"but {pyfasterrcnn.proposal_problem(layer)}"
                )
        if layer.type in AMBIGUOUS_TYPES:
            what += ": " + AMBIGUOUS_TYPES[layer.type]
        self.unsupported.append(f"{describe_layer(self.model, layer.name)}: {what}")
        self.types.append(layer.type)
        self.missing.append(layer.type)

    def no_shape(self, layer: caffe_pb2.LayerParameter, tops: list[str]) -> None:
        """Record inputs whose shape nothing gives (a data layer's parameters imply none)."""
        give = " ".join(f"--input {t}:NxCxHxW" for t in tops)
        self.shapes.append(
            f"{describe_layer(self.model, layer.name)}: no shape for {', '.join(tops)} (the "
            f"layer's parameters imply none); give it with {give}"
        )

    def raise_if_any(self) -> None:
        """Raise one error listing every problem, if there is any."""
        unknown = self.model.problems
        total = len(unknown) + len(self.wiring) + len(self.unsupported) + len(self.shapes)
        if not total:
            return
        source = self.model.prototxt or self.model.caffemodel or "the Caffe net"
        lines = [f"{source}: {total} problem(s); nothing was written:"]
        sections = (
            ("fields the schema does not know", unknown),
            ("layer inputs not defined before use", self.wiring),
            ("layers that cannot be converted to ONNX", self.unsupported),
            ("shape and weight errors", self.shapes),
        )
        for title, items in sections:
            if items:
                lines.append(f"{len(items)} {title}:")
                lines += [f"  - {item}" for item in items]
        if unknown:
            lines.append(UNKNOWN_FIELD_HINT + ".")
        if self.unsupported:
            lines += self._unsupported_advice()
        message = "\n".join(lines)
        error: type[TrtImportError] = ShapeError
        if self.unsupported:
            error = UnsupportedLayerError
        elif unknown or self.wiring:
            error = ModelParseError
        raise error(message)

    def _unsupported_advice(self) -> list[str]:
        from trtimport.importers.caffe.layers.detection import NO_MAPPING

        lines = [f"{t}: {NO_MAPPING[t]}." for t in sorted(set(self.types) & set(NO_MAPPING))]
        if self.missing:  # a built-in type's refused parameter is no case for a plugin
            example = self.missing[0]
            func = "".join(c if c.isalnum() else "_" for c in example).lower()
            lines.append(PLUGIN_HINT.format(example=example, func=func))
        return lines
