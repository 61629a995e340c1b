"""trtimport: get models of any format into NVIDIA TensorRT.

The public API is imported lazily so that ``import trtimport`` stays light.
"""

from __future__ import annotations

# Not ``typing.TYPE_CHECKING``: importing ``typing`` (~10 ms) is all that ``import trtimport``
# would cost, and the console script imports this package before Ctrl-C is made quiet.
TYPE_CHECKING = False

__version__ = "0.1.0"

_EXPORTS = {
    "convert": "trtimport.pipeline",
    "import_model": "trtimport.populate",
    "ConvertResult": "trtimport.pipeline",
    "ImportedNetwork": "trtimport.populate",
    "ImportOptions": "trtimport.core.options",
    "BuildOptions": "trtimport.core.options",
    "PrecisionOptions": "trtimport.core.options",
    "ImporterOptions": "trtimport.core.importer_options",
    "TensorFlowOptions": "trtimport.importers.tensorflow.options",
    "get_backend": "trtimport.core.backend",
    "make_runner": "trtimport.runners",
    "Runner": "trtimport.core.runner",
    "run_benchmark": "trtimport.runtime.bench",
    "export_network_onnx": "trtimport.export.writer",
    "verify_model": "trtimport.verify.verify",
    "load_plugins": "trtimport.plugins.manager",
    "hookimpl": "trtimport.plugins.hookspecs",
    "Importer": "trtimport.core.importer",
    "OnnxBasedImporter": "trtimport.importers.base",
    "ImportContext": "trtimport.core.importer",
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
    "ScriptSyntaxError": "trtimport.errors",
    "ScriptExecutionError": "trtimport.errors",
    "ScriptOutputError": "trtimport.errors",
    "WeightNameError": "trtimport.errors",
    "WeightShapeError": "trtimport.errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from typing import Any

    from trtimport.core.backend import get_backend
    from trtimport.core.importer import ImportContext, Importer
    from trtimport.core.options import BuildOptions, ImportOptions, PrecisionOptions
    from trtimport.core.runner import Runner
    from trtimport.errors import (
        EngineBuildError,
        InferenceError,
        InternalError,
        MissingDependencyError,
        ModelParseError,
        NoGpuError,
        OutputMarkingError,
        PluginLoadError,
        ScriptExecutionError,
        ScriptOutputError,
        ScriptSyntaxError,
        ShapeError,
        TrtImportError,
        UnknownFormatError,
        UnsupportedLayerError,
        UsageError,
        WeightNameError,
        WeightShapeError,
    )
    from trtimport.export.writer import export_network_onnx
    from trtimport.importers.base import OnnxBasedImporter
    from trtimport.pipeline import ConvertResult, convert
    from trtimport.plugins.hookspecs import hookimpl
    from trtimport.plugins.manager import load_plugins
    from trtimport.populate import ImportedNetwork, import_model
    from trtimport.runners import make_runner
    from trtimport.runtime.bench import run_benchmark
    from trtimport.verify.verify import verify_model


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'trtimport' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
