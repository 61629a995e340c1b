"""``verify``: the source framework's runtime against what trtimport made of the model.

The reference is the importer's own runtime (``Importer.reference_runner``: ONNX Runtime for
ONNX, OpenCV for Caffe, TensorFlow for TensorFlow). Candidates: the engine on a GPU; on a CPU,
the intermediate ONNX on ONNX Runtime and, where the network exporter is installed, the TensorRT
network exported to ONNX; or any ONNX file of the same graph given with ``candidate``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtimport.core.options import ImageOptions, ImportOptions
from trtimport.core.runner import Runner
from trtimport.errors import TrtImportError, UsageError
from trtimport.plugins.manager import Plugins, load_plugins
from trtimport.runtime.inputs import make_feeds
from trtimport.verify.compare import CandidateReport, compare_runners

if TYPE_CHECKING:
    from trtimport.populate import ImportedNetwork


@dataclass
class VerifyReport:
    """Every candidate's comparison with the reference on the same inputs."""

    model: Path
    reference: str
    inputs: dict[str, str]
    atol: float
    rtol: float
    candidates: list[CandidateReport]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every candidate's outputs are within tolerance."""
        return all(c.passed for c in self.candidates)

    def as_dict(self) -> dict[str, Any]:
        """What ``verify --json`` prints."""
        return {
            "model": str(self.model),
            "reference": self.reference,
            "inputs": self.inputs,
            "tolerance": {"atol": self.atol, "rtol": self.rtol},
            "rule": "|candidate - reference| <= atol + rtol * |reference| for every element",
            "passed": self.passed,
            "candidates": [c.as_dict() for c in self.candidates],
            "notes": self.notes,
        }


def _label(runner: Runner) -> str:
    return str(getattr(runner, "label", runner.name))


def _select_outputs(runner: Runner, names: list[str], notes: list[str]) -> None:
    """Apply ``--output`` to runners that choose outputs at run time (ONNX Runtime)."""
    select = getattr(runner, "select_outputs", None)
    if select is not None:
        select(names)
    elif runner.name != "tensorrt":  # engines are built with the outputs marked
        notes.append(f"--output is not applied to {_label(runner)}")


def mark_layerwise_outputs(imported: ImportedNetwork, names: list[str]) -> list[str]:
    """Also mark the network's float activations among ``names`` as outputs; returns them."""
    from trtimport.populate import all_tensors, mark_outputs

    network = imported.network
    current = [network.get_output(i).name for i in range(network.num_outputs)]
    tensors = all_tensors(network)
    inputs = {network.get_input(i).name for i in range(network.num_inputs)}
    # Only float activations: marking shape tensors as outputs changes what TensorRT builds.
    floats = {imported.backend.trt.float32, imported.backend.trt.float16}
    extra = [
        n
        for n in names
        if n in tensors and n not in inputs and n not in current and tensors[n].dtype in floats
    ]
    mark_outputs(network, current + extra, imported.source)
    return extra


def _gpu_candidate(
    imported: ImportedNetwork, reference: Runner, layerwise: bool, verbosity: int
) -> Runner:
    """The imported network built into an engine (intermediates marked for ``layerwise``)."""
    from trtimport.runners import engine_runner_for

    if layerwise:
        mark_layerwise_outputs(imported, reference.tensor_names())
    return engine_runner_for(imported, verbosity=verbosity)


def _candidates(
    source: Path,
    options: ImportOptions,
    plugins: Plugins,
    reference: Runner,
    runtime: str,
    layerwise: bool,
    verbosity: int,
    stack: contextlib.ExitStack,
    notes: list[str],
) -> list[Runner]:
    from trtimport.populate import import_model
    from trtimport.runners import (
        choose_runtime,
        exported_onnx_runner,
        intermediate_onnx_runner,
    )

    imported = stack.enter_context(
        import_model(source, options=options, plugins=plugins, verbosity=verbosity)
    )
    notes.extend(imported.notes)
    if choose_runtime(runtime, imported) == "tensorrt":
        return [stack.enter_context(_gpu_candidate(imported, reference, layerwise, verbosity))]
    runners: list[Runner] = []
    onnx_path = imported.onnx_path
    if onnx_path is not None and onnx_path.resolve() == source.resolve():
        notes.append("the intermediate ONNX is the model itself; it was not compared with itself")
    elif onnx_path is not None:
        runners.append(stack.enter_context(intermediate_onnx_runner(imported)))
    try:
        runners.append(stack.enter_context(exported_onnx_runner(imported)))
    except TrtImportError as err:
        notes.append(f"skipped the exported network ONNX: {err}")
    if not runners:
        raise UsageError(
            f"{source}: nothing to compare on this machine: no usable GPU for the engine and "
            "no ONNX besides the model itself. Compare against another ONNX of the same graph "
            "with --candidate FILE.onnx, or run on a GPU."
        )
    return runners


def verify_model(
    model: str | Path,
    *,
    import_options: ImportOptions | None = None,
    candidate: Path | None = None,
    files: dict[str, Path] | None = None,
    image_options: ImageOptions | None = None,
    seed: int = 0,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    layerwise: bool = False,
    runtime: str = "auto",
    plugins: Plugins | None = None,
    verbosity: int = 0,
    backend: str | None = None,
) -> VerifyReport:
    """Compare the reference runtime with every candidate on the same inputs.

    ``runtime`` (``auto``, ``tensorrt``, ``onnxruntime``) runs the candidate built from the
    model; ``backend`` is its deprecated old name.
    """
    from trtimport.runners import runtime_argument

    runtime = runtime_argument(runtime, backend)
    from trtimport.detect import detect_format
    from trtimport.runtime.onnxruntime import OnnxRuntimeRunner

    source = Path(model)
    options = import_options or ImportOptions()
    plugins = plugins or load_plugins()
    importer = detect_format(source, plugins, options.format).importer
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        reference = importer.reference_runner(source, options)
        if reference is None:
            raise UsageError(
                f"{source}: the {importer.name} importer has no reference runtime to verify against"
            )
        stack.enter_context(reference)
        feeds = make_feeds(
            reference.inputs(),
            files or {},
            image_options or ImageOptions(),
            seed=seed,
            shapes=options.input_shapes,
        )
        notes.extend(feeds.notes)
        if candidate is not None:
            runners: list[Runner] = [stack.enter_context(OnnxRuntimeRunner(candidate))]
        else:
            runners = _candidates(
                source, options, plugins, reference, runtime, layerwise, verbosity, stack, notes
            )
        if options.outputs:
            for runner in (reference, *runners):
                _select_outputs(runner, options.outputs, notes)
        reports = [
            compare_runners(
                reference,
                runner,
                feeds.arrays,
                atol=atol,
                rtol=rtol,
                layerwise=layerwise,
                label=_label(runner),
            )
            for runner in runners
        ]
        return VerifyReport(source, _label(reference), feeds.sources, atol, rtol, reports, notes)
