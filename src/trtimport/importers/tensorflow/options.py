"""The options of the TensorFlow importers, shared by the UFF importer (UFF models come from
TensorFlow and keep its NHWC layout). Cheap to import: the CLI builds them from its flags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from trtimport.core.importer_options import ImporterOptions
from trtimport.errors import UsageError


@dataclass(frozen=True)
class TensorFlowOptions(ImporterOptions):
    """Settings of the TensorFlow, Keras, TFLite and UFF importers."""

    key: ClassVar[str] = "tensorflow"

    #: NHWC inputs the ONNX model (and the engine) takes as NCHW, like tf2onnx's
    #: ``--inputs-as-nchw`` (``--inputs-as-nchw NAME``).
    inputs_as_nchw: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = self.inputs_as_nchw
        if not isinstance(names, tuple) or not all(isinstance(n, str) and n for n in names):
            raise UsageError(
                f"inputs_as_nchw must be a tuple of input names, not {names!r} "
                "(--inputs-as-nchw NAME)"
            )
