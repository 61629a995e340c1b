"""The interface every runner implements (TensorRT, ONNX Runtime, and reference runtimes)."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from trtimport.runtime.bench import Launcher


@dataclass(frozen=True)
class TensorSpec:
    """A runner input or output: name, shape (-1 or None for dynamic dims) and numpy dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype


class Runner(abc.ABC):
    """Runs inference. Use as a context manager or call :meth:`close`."""

    #: Short name shown to users (``onnxruntime``, ``tensorrt``, ``opencv``, ``tensorflow``).
    name: str = ""

    @abc.abstractmethod
    def inputs(self) -> list[TensorSpec]:
        """The model's inputs."""

    @abc.abstractmethod
    def outputs(self) -> list[TensorSpec]:
        """The model's outputs."""

    @abc.abstractmethod
    def infer(
        self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run once. ``outputs`` may name intermediate tensors where the runtime allows it."""

    @property
    def notes(self) -> list[str]:
        """Messages for the user about this runner (what it runs, what it ignored)."""
        return self.__dict__.setdefault("_notes", [])

    def add_note(self, message: str) -> None:
        """Record a message for the user."""
        self.notes.append(message)

    def tensor_names(self) -> list[str]:
        """Tensors :meth:`infer` can return, in topological order (for layer-wise checks).

        Runners that can return intermediate tensors list them all; the default is the outputs.
        """
        return [o.name for o in self.outputs()]

    def producer(self, tensor: str) -> tuple[str, str] | None:
        """(layer name, layer type) that computes ``tensor``, where the runner knows it."""
        return None

    def launcher(self, feeds: dict[str, np.ndarray], *, transfers: bool = True) -> Launcher:
        """Issues timed queries for ``bench``; the default times :meth:`infer` on the host."""
        from trtimport.runtime.bench import HostLauncher

        return HostLauncher(self, feeds)

    def close(self) -> None:  # noqa: B027 - optional for runners that hold nothing
        """Release resources."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
