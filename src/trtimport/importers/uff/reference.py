"""The reference for ``verify``: TensorFlow running the frozen graph a UFF was converted from.

The UFF names tensors by node (``dense/Relu``); TensorFlow by output (``dense/Relu:0``). This
runner speaks the UFF's names, so its inputs and outputs match the converted ONNX model's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trtimport.core.runner import Runner, TensorSpec
from trtimport.importers.tensorflow.runner import GraphDefRunner


def _node_name(tensor: str) -> str:
    base, sep, index = tensor.rpartition(":")
    return base if sep and index == "0" else tensor


class TwinGraphRunner(Runner):
    """A frozen GraphDef in a TensorFlow session, named like the UFF converted from it."""

    name = "tensorflow"

    def __init__(self, graph: Path, outputs: list[str] | None, uff: Path) -> None:
        from trtimport.importers.uff.model import load_uff

        self.graph = GraphDefRunner(graph)
        self.marked = outputs or load_uff(uff).outputs

    def inputs(self) -> list[TensorSpec]:
        """The graph's Placeholders, by node name; an unknown batch axis is 1, as the importer
        makes it."""
        return [
            TensorSpec(
                _node_name(s.name),
                tuple(1 if i == 0 and d is None else d for i, d in enumerate(s.shape)),
                s.dtype,
            )
            for s in self.graph.inputs()
        ]

    def outputs(self) -> list[TensorSpec]:
        """The tensors the UFF marks as outputs (or ``--output``)."""
        specs = {_node_name(s.name): s for s in self.graph.outputs()}
        found = []
        for name in self.marked:
            spec = specs.get(name)
            found.append(
                TensorSpec(name, spec.shape, spec.dtype)
                if spec
                else TensorSpec(name, (), np.dtype(np.float32))
            )
        return found

    def infer(
        self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run the session once; ``outputs`` may name any node of the graph."""
        return self.graph.infer(feeds, outputs or self.marked)

    def close(self) -> None:
        """Close the session."""
        self.graph.close()
