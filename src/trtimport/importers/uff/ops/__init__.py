"""Op handlers: one function per UFF operation, registered by name (:mod:`.registry`).

A handler gets the :class:`~trtimport.importers.uff.context.Converter` and the node, and adds
ONNX nodes that write a tensor named after the node. It raises
:class:`~trtimport.importers.uff.context.NotConvertible` for a form of the op it cannot convert.
Ops the ``uff`` converter wrote for TensorFlow ops it had no mapping for carry the TensorFlow op's
name with a ``_`` prefix (``_BatchMatMulV2``) and its attributes as fields.
"""

from __future__ import annotations

from trtimport.importers.uff.ops.registry import HANDLERS, Handler


def handlers() -> dict[str, Handler]:
    """Every built-in handler by op name."""
    from trtimport.importers.uff.ops import custom, math, nn, tensor  # noqa: F401  (registers)

    return HANDLERS
