"""Typed options of one importer (or of a family of importers that share them).

An importer that takes settings of its own (TensorFlow's ``--inputs-as-nchw``) declares a frozen
dataclass derived from :class:`ImporterOptions` as its ``options_class``. The caller puts an
instance in ``ImportOptions.importer_options`` under the class's :attr:`~ImporterOptions.key`;
the engine's sidecar records it with :meth:`~ImporterOptions.as_dict`, and a re-import (refit)
reads it back as a plain mapping that :meth:`~ImporterOptions.from_dict` turns into the class
again when the importer asks for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import ClassVar, TypeVar

from trtimport.errors import UsageError

_O = TypeVar("_O", bound="ImporterOptions")


@dataclass(frozen=True)
class ImporterOptions:
    """Base of an importer's own options: a frozen dataclass of JSON-friendly fields.

    Fields hold ``str``, ``int``, ``float``, ``bool``, ``None`` or tuples of them (tuples are
    recorded as JSON lists and become tuples again when read back).
    """

    #: Where :class:`~trtimport.core.options.ImportOptions` and the sidecar hold these options.
    key: ClassVar[str] = ""

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form (for the engine's sidecar)."""
        return {
            f.name: list(value) if isinstance(value, tuple) else value
            for f in fields(self)
            for value in [getattr(self, f.name)]
        }

    @classmethod
    def from_dict(cls: type[_O], data: Mapping[str, object]) -> _O:
        """The options :meth:`as_dict` recorded; an unknown field is an error."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise UsageError(
                f"{cls.key} options have no {', '.join(repr(n) for n in unknown)} (known: "
                f"{', '.join(known) or 'none'}); rebuild the engine with this trtimport"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
