"""Op handlers: one function per UFF operation, registered by name.

A handler gets the :class:`~trtimport.importers.uff.context.Converter` and the node, and adds
ONNX nodes that write a tensor named after the node. It raises
:class:`~trtimport.importers.uff.context.NotConvertible` for a form of the op it cannot convert.
Ops the ``uff`` converter wrote for TensorFlow ops it had no mapping for carry the TensorFlow op's
name with a ``_`` prefix (``_BatchMatMulV2``) and its attributes as fields.
"""

from __future__ import annotations

from collections.abc import Callable

from trtimport.importers.uff.context import Converter
from trtimport.importers.uff.model import UffNode

Handler = Callable[[Converter, UffNode], None]

HANDLERS: dict[str, Handler] = {}


def handles(*ops: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``ops``."""

    def register(func: Handler) -> Handler:
        for op in ops:
            HANDLERS[op] = func
        return func

    return register


def handlers() -> dict[str, Handler]:
    """Every built-in handler by op name."""
    from trtimport.importers.uff.ops import custom, math, nn, tensor  # noqa: F401  (registers)

    return HANDLERS
