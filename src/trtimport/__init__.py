"""trtimport: get models of any format into NVIDIA TensorRT.

The public API is imported lazily so that ``import trtimport`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "convert": "trtimport.core.pipeline",
    "import_model": "trtimport.core.pipeline",
    "ConvertResult": "trtimport.core.pipeline",
    "ImportedNetwork": "trtimport.core.pipeline",
    "ImportOptions": "trtimport.core.options",
    "BuildOptions": "trtimport.core.options",
    "get_backend": "trtimport.core.backend",
    "make_runner": "trtimport.core.runtime.factory",
    "verify_model": "trtimport.core.verify",
    "load_plugins": "trtimport.plugins.manager",
    "hookimpl": "trtimport.plugins.hookspecs",
    "Importer": "trtimport.importers.base",
    "OnnxBasedImporter": "trtimport.importers.base",
    "ImportContext": "trtimport.importers.base",
    "TrtImportError": "trtimport.errors",
    "PluginLoadError": "trtimport.errors",
    "UnknownFormatError": "trtimport.errors",
    "ModelParseError": "trtimport.errors",
    "UnsupportedLayerError": "trtimport.errors",
    "ShapeError": "trtimport.errors",
    "OutputMarkingError": "trtimport.errors",
    "UsageError": "trtimport.errors",
    "EngineBuildError": "trtimport.errors",
    "MissingDependencyError": "trtimport.errors",
    "NoGpuError": "trtimport.errors",
    "InferenceError": "trtimport.errors",
    "InternalError": "trtimport.errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from trtimport.core.backend import get_backend
    from trtimport.core.options import BuildOptions, ImportOptions
    from trtimport.core.pipeline import ConvertResult, ImportedNetwork, convert, import_model
    from trtimport.core.runtime.factory import make_runner
    from trtimport.core.verify import verify_model
    from trtimport.errors import (
        EngineBuildError,
        InferenceError,
        InternalError,
        MissingDependencyError,
        ModelParseError,
        NoGpuError,
        OutputMarkingError,
        PluginLoadError,
        ShapeError,
        TrtImportError,
        UnknownFormatError,
        UnsupportedLayerError,
        UsageError,
    )
    from trtimport.importers.base import ImportContext, Importer, OnnxBasedImporter
    from trtimport.plugins.hookspecs import hookimpl
    from trtimport.plugins.manager import load_plugins


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'trtimport' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
