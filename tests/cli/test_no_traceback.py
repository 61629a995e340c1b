"""No model makes the command line end in a traceback: it builds, or one clear error.

Runs ``trtimport MODEL`` with no flags, as a new user would, over every model the tests can
make or find: graphs with ``If``, ``Loop``, ``NonZero``, ``NonMaxSuppression`` and a
data-dependent ``Reshape``, ONNX Runtime's fused graph, the shared Caffe, UFF and TensorFlow
models, and ONNX's own node cases (the real models of the sweep run through the command line
in ``test_real_models.py``). The node cases are imported without a build (``--no-engine``):
building every one of them, through the library, is ``test_onnx_node_cases.py``'s work, which
fails on any error that is not a ``TrtImportError`` too. Here, the control-flow and
data-dependent cases and every tenth of the others run, in two worker processes.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from conftest import SHARED_MODELS
from node_case_build import silence_output
from onnx_models import (
    conv_relu,
    data_dependent_reshape,
    if_rank_differs,
    if_selected_by_input,
    loop_sum,
    non_max_suppression,
    nonzero,
    ort_fused,
    save,
)
from onnx_node_cases import node_cases
from traceback_sweep import cli_traceback

pytest.importorskip("tensorrt_rtx")

#: Node cases of ops whose shapes or control flow depend on data: all of them run.
_DATA_DEPENDENT = (
    "if", "loop", "scan", "nonzero", "nonmaxsuppression", "unique", "topk", "compress",
    "reshape", "expand", "range", "constantofshape", "resize", "sequence", "optional",
    "split", "tile", "slice", "gather", "scatter", "onehot", "where",
)  # fmt: skip


def _generated(folder: Path) -> list[Path]:
    models = {
        "if_selected_by_input": if_selected_by_input(),
        "if_rank_differs": if_rank_differs(),
        "loop_sum": loop_sum(),
        "nonzero": nonzero(),
        "non_max_suppression": non_max_suppression(),
        "data_dependent_reshape": data_dependent_reshape(),
        "batch_only_dynamic": conv_relu(["N", 3, 8, 8]),
        "all_dynamic": conv_relu(["N", 3, "H", "W"]),
    }
    return [save(m, folder / f"{name}.onnx") for name, m in models.items()] + [ort_fused(folder)]


def _shared() -> list[tuple[str, ...]]:
    jobs: list[tuple[str, ...]] = []
    caffe = SHARED_MODELS / "caffe"
    for deploy in sorted(caffe.glob("*.prototxt")):
        weights = caffe / "weights" / f"{deploy.stem}.caffemodel"
        if weights.is_file():
            jobs.append((str(deploy), "--weights", str(weights)))
        else:
            jobs.append((str(deploy), "--no-engine"))
    for path in sorted((SHARED_MODELS / "uff").glob("*/*")):
        if path.suffix in (".uff", ".pb"):
            jobs.append((str(path),))
    return jobs


def _node_cases(folder: Path) -> list[Path]:
    paths = []
    for k, case in enumerate(node_cases()):
        if k % 10 == 0 or any(op in case.name for op in _DATA_DEPENDENT):
            paths.append(case.save(folder))
    return paths


@pytest.mark.slow
def test_no_model_ends_in_a_traceback(tmp_path: Path) -> None:
    out = tmp_path / "engines"
    out.mkdir()
    jobs: list[tuple[str, ...]] = []
    for path in _generated(tmp_path / "generated"):
        jobs.append((str(path), "-o", str(out / f"{path.stem}.engine")))
        jobs.append((str(path), "--no-engine", "--json"))
    jobs += [(*job, "-o", str(out / "shared.engine")) for job in _shared()]
    cases = tmp_path / "cases"
    cases.mkdir()
    jobs += [(str(p), "--no-engine", "--json") for p in _node_cases(cases)]
    # spawn: the workers must not inherit a TensorRT library that another test already loaded.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context, initializer=silence_output) as pool:
        tracebacks = [tb for tb in pool.map(cli_traceback, jobs, chunksize=8) if tb]
    print(f"\n{len(jobs)} command lines, {len(tracebacks)} tracebacks")
    assert not tracebacks, "\n\n".join(tracebacks[:5])
