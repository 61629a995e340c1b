"""``--shapes`` ranges on non-batch dimensions of Caffe inputs: refused, naming the layer that
pins the size.

The Caffe converter computes every layer's shape when it converts (Caffe's own pooling rounding,
PriorBox boxes, Interp and Crop sizes, InnerProduct's input length, Reshape dimensions), so the
ONNX it writes holds one spatial size. To say which layer pins it, the net is converted at the
range's MIN and at its MAX and the two graphs are compared node by node: the first node whose
operator, attributes or constant inputs differ belongs to the pinning layer.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trtimport.core.options import Profile
from trtimport.errors import ShapeError, TrtImportError
from trtimport.importers.caffe.parse import CaffeModel, describe_layer

if TYPE_CHECKING:
    import onnx

Shape = tuple[int, ...]


def varying_inputs(profiles: list[Profile], inputs: Mapping[str, Shape]) -> dict[str, Profile]:
    """Per Caffe input, the profiles whose MIN and MAX differ outside the batch dimension."""
    found: dict[str, Profile] = {}
    for profile in profiles:
        for name, rng in profile.items():
            if name in inputs and tuple(rng.min[1:]) != tuple(rng.max[1:]):
                found.setdefault(name, profile)
    return found


def _node_key(node: onnx.NodeProto, constants: Mapping[str, np.ndarray]) -> tuple[object, ...]:
    """What a node computes: operator, attributes and the values of its constant inputs."""
    values = tuple(
        constants[i].tobytes() + str(constants[i].shape).encode() if i in constants else i
        for i in node.input
    )
    return node.op_type, tuple(a.SerializeToString() for a in node.attribute), values


def _first_difference(a: onnx.ModelProto, b: onnx.ModelProto) -> str | None:
    """The name of the first node that differs between two conversions, if any."""
    from onnx import numpy_helper  # only when a range is refused: converting needs no onnx

    consts_a = {t.name: numpy_helper.to_array(t) for t in a.graph.initializer}
    consts_b = {t.name: numpy_helper.to_array(t) for t in b.graph.initializer}
    for node_a, node_b in zip(a.graph.node, b.graph.node, strict=False):
        if _node_key(node_a, consts_a) != _node_key(node_b, consts_b):
            return node_a.name
    if len(a.graph.node) != len(b.graph.node):
        shorter = min(len(a.graph.node), len(b.graph.node))
        longer = a if len(a.graph.node) > shorter else b
        return longer.graph.node[shorter].name
    return None


def refuse_spatial_ranges(
    model: CaffeModel,
    profiles: list[Profile],
    convert: Callable[[CaffeModel, Path], Path],
    load: Callable[[], CaffeModel],
) -> None:
    """Raise a :class:`ShapeError` if a profile varies a non-batch dimension of a Caffe input.

    ``load`` gives a fresh copy of the net and ``convert`` writes its ONNX; they are called at
    the range's MIN and MAX shapes to find the layer whose graph depends on the size.
    """
    varying = varying_inputs(profiles, model.input_shapes)
    if not varying:
        return
    name, profile = next(iter(varying.items()))
    rng = profile[name]
    source = model.prototxt or model.caffemodel
    sizes = f"{'x'.join(map(str, rng.min))} to {'x'.join(map(str, rng.max))}"
    start = f"{source}: --shapes gives input '{name}' the sizes {sizes}, but"
    fix = (
        f"Build one engine per size with --input {name}:SHAPE (Caffe input shapes are "
        "defaults), or vary only the batch with --batch MIN/OPT/MAX"
    )
    import onnx

    graphs = []
    with tempfile.TemporaryDirectory(prefix="trtimport-caffe-range-") as tmp:
        for which, shapes in (("min", rng.min), ("max", rng.max)):
            copy = load()
            for other, other_rng in profile.items():
                if other in copy.input_shapes:
                    copy.input_shapes[other] = tuple(getattr(other_rng, which))
            copy.input_shapes[name] = tuple(shapes)
            try:
                graphs.append(onnx.load(str(convert(copy, Path(tmp) / f"{which}.onnx"))))
            except TrtImportError as err:
                raise ShapeError(
                    f"{start} the net does not convert at {which.upper()} "
                    f"{'x'.join(map(str, shapes))}:\n{err}\n{fix}"
                ) from err
    node = _first_difference(*graphs)
    if node is None:
        raise ShapeError(
            f"{start} a converted Caffe net holds one size: every layer's shape is computed at "
            "conversion time (no layer's ONNX differs between MIN and MAX, but sizes between "
            f"them may round differently). {fix}"
        )
    names = [layer.name for layer in model.net.layer]
    layer = max((n for n in names if node == n or node.startswith(f"{n}/")), key=len, default=node)
    raise ShapeError(
        f"{start} {describe_layer(model, layer)} is converted differently at MIN and MAX "
        f"(its operators or constants are computed from the size), so the engine cannot take "
        f"a range. {fix}"
    )
