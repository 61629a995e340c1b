"""The interface every runner implements (TensorRT, ONNX Runtime, and reference runtimes)."""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np


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

    def close(self) -> None:  # noqa: B027 - optional for runners that hold nothing
        """Release resources."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
