"""What an importer is and what it gets to fill a network: the contract every importer keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from trtimport.core.progress import Progress

if TYPE_CHECKING:
    from trtimport.core.backend import Backend
    from trtimport.core.files import WorkFolder
    from trtimport.core.importer_options import ImporterOptions
    from trtimport.core.options import ImportOptions
    from trtimport.core.runner import Runner


@dataclass
class ImportContext:
    """Everything an importer gets to fill a network, and where it leaves what it made."""

    source: Path
    options: ImportOptions
    backend: Backend
    builder: Any
    network: Any
    logger: Any
    #: Where :attr:`workdir` is made when an importer first asks for it.
    work: WorkFolder
    #: The ONNX file the network was parsed from (set by ONNX-based importers).
    onnx_path: Path | None = None
    #: Objects that must live as long as the network (parsers, weight buffers).
    keepalive: list[Any] = field(default_factory=list)
    #: Messages for the user, such as which deploy prototxt was paired with a caffemodel.
    notes: list[str] = field(default_factory=list)
    #: The loaded plugins (``trtimport.plugins.manager.Plugins``), for importers with sub-hooks.
    plugins: Any = None
    #: What rewrites found out, recorded in the engine's sidecar under ``rewrites`` (e.g.
    #: ``precision``: the nodes ``--max-error`` kept in fp32 and the error it reached).
    records: dict[str, Any] = field(default_factory=dict)
    #: Where long work reports progress (a tf2onnx conversion); the CLI draws it.
    progress: Progress = field(default_factory=Progress)
    #: Input shapes trtimport chose for dynamic batch dimensions no flag gave (name -> shape).
    default_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: Rewrites that made a refused ONNX graph buildable (``onnxtools.rescue.Rewrite``).
    rewrites: list[Any] = field(default_factory=list)

    @property
    def workdir(self) -> Path:
        """A private temporary folder for intermediate files, removed after the build."""
        return self.work.path

    def note(self, message: str) -> None:
        """Tell the user something about the import (printed unless ``-q``)."""
        self.notes.append(message)


class Importer:
    """An importer turns one model format into a populated TensorRT network.

    Subclasses set the class attributes and implement :meth:`populate`; :meth:`detect` claims
    files by content (extension matching is done by the caller).
    """

    #: The format's name, as used with ``--format``.
    name: ClassVar[str] = ""
    #: One line shown by ``trtimport formats``.
    description: ClassVar[str] = ""
    #: File name endings this format usually has (``.onnx``), lowercase, with the dot.
    extensions: ClassVar[tuple[str, ...]] = ()
    #: Python modules that must be importable for this importer to work.
    requires: ClassVar[tuple[str, ...]] = ()
    #: The ``trtimport[...]`` extra that installs :attr:`requires`.
    extra: ClassVar[str | None] = None
    #: True if the importer accepts a separate weights file (``--weights``).
    takes_weights: ClassVar[bool] = False
    #: The importer's own options (a frozen :class:`ImporterOptions` dataclass), if it has any:
    #: read them with ``options.importer_options_for(self.options_class)``.
    options_class: ClassVar[type[ImporterOptions] | None] = None

    def missing_requirements(self) -> list[str]:
        """The required modules that are not installed (checked without importing them)."""
        if not self.requires:
            return []
        import importlib.util

        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def detect(self, path: Path, head: bytes) -> bool:
        """True if ``path`` (whose first bytes are ``head``) is a model of this format."""
        return False

    def related_files(self, source: Path, options: ImportOptions) -> list[Path]:
        """Every file the import reads (hashed into the engine's sidecar)."""
        if source.is_file():
            files = [source]
        else:
            files = sorted(p for p in source.rglob("*") if p.is_file())
        if options.weights is not None:
            files.append(options.weights)
        return files

    def populate(self, ctx: ImportContext) -> None:
        """Fill ``ctx.network``; mark outputs unless the format has none to mark."""
        raise NotImplementedError

    def reference_runner(self, source: Path, options: ImportOptions) -> Runner | None:
        """A runner on the source framework's own runtime (for ``verify``), or None."""
        return None
