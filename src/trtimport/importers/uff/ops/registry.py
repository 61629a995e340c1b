"""The op-name -> handler table the op modules fill with :func:`handles`."""

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
