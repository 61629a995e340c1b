"""Round trip of ONNX's backend node cases: ONNX -> TensorRT network -> exported ONNX -> ORT.

Every case trtimport imports is exported and run with onnxruntime next to the source model, on
the case's own inputs. Only cases whose network TensorRT can also build count; the builds run
in two worker processes while the round trips run, and are remembered in pytest's cache.
Every category is printed, listed and asserted.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from onnx_node_cases import NodeCase, node_cases

ort = pytest.importorskip("onnxruntime")

#: Measured with tensorrt_rtx 1.7.1, onnx 1.23.2, onnxruntime 1.32: of 1,884 cases trtimport
#: imports 1,013 and TensorRT builds 837; the exported network of 711 of those matches
#: onnxruntime on the source model (max relative error <= 1e-5).
MIN_MATCHED = 711

#: Building cases whose TensorRT network itself computes something else than the ONNX model
#: (the exporter reproduces TensorRT's network; these differences come from TensorRT's parser).
TENSORRT_DIFFERS = {
    # The parser builds the same lower-triangle network for Trilu(upper=1) as for Trilu(upper=0).
    **{
        f"test_triu{suffix}": "parser ignores upper=1"
        for suffix in (
            "",
            "_neg",
            "_one_row",
            "_out_neg_out",
            "_out_pos",
            "_pos",
            "_square",
            "_square_neg",
        )
    },
    "test_selu_default": "parser uses alpha=1.6732, gamma=1.0507 instead of ONNX's defaults",
    "test_spacetodepth_crd_mode_example": "parser ignores mode=CRD (builds DCR)",
    "test_causal_conv_with_state_silu_fp16_expanded": "float16 network: rounding differs",
}

#: Exported models onnxruntime cannot run (kernels it lacks, limits it enforces).
ORT_CANNOT_RUN_EXPORTED = {
    "test_isinf_float16": "IsInf has no float16 kernel before opset 20",
    "test_maxpool_2d_ceil_output_size_reduce_by_one": "TensorRT keeps the window ONNX drops; "
    "ORT refuses end padding >= kernel",
}

REL_TOL = 1e-5

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


@dataclass
class RoundTrip:
    """What happened to every case."""

    import_failed: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    source_not_runnable: list[str] = field(default_factory=list)
    #: Cases that did not match, with why; sorted out by whether they build.
    failed: dict[str, str] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)
    ort_cannot_run: dict[str, str] = field(default_factory=dict)
    not_building: list[str] = field(default_factory=list)


def _session(model_bytes: bytes) -> object:
    options = ort.SessionOptions()
    options.log_severity_level = 4
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def max_relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| over finite entries; NaN and inf must match in place."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return float("inf")
    if want.dtype.kind not in "fc":
        return 0.0 if np.array_equal(got, want) else float("inf")
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    finite = np.isfinite(want64)
    if not np.array_equal(np.isnan(got64), np.isnan(want64)):
        return float("inf")
    if not np.array_equal(got64[~finite & ~np.isnan(want64)], want64[~finite & ~np.isnan(want64)]):
        return float("inf")
    if not finite.any():
        return 0.0
    scale = max(float(np.max(np.abs(want64[finite]))), 1e-30)
    return float(np.max(np.abs(got64[finite] - want64[finite]))) / scale


def _round_trip(case: NodeCase, folder: Path, plugins: object, results: RoundTrip) -> None:
    from trtimport.core.export import network_to_onnx
    from trtimport.core.pipeline import import_model
    from trtimport.errors import TrtImportError, UnsupportedLayerError

    try:
        imported = import_model(case.save(folder), plugins=plugins)  # type: ignore[arg-type]
    except TrtImportError:
        results.import_failed.append(case.name)
        return
    with imported:
        network = imported.network
        layer_names = {
            network.get_layer(i).name
            for i in range(network.num_layers)
            if network.get_layer(i).num_outputs > 0
        }
        try:
            exported = network_to_onnx(network, imported.backend)
        except UnsupportedLayerError as err:
            results.unsupported[case.name] = str(err).split("\n", 1)[-1]
            return
        except Exception as err:  # an exporter bug; it only counts if the case builds
            results.failed[case.name] = f"export raised {type(err).__name__}: {err}"
            return
    lost = layer_names - {n.name for n in exported.graph.node}
    if lost:
        results.failed[case.name] = f"layer names not kept: {sorted(lost)[:5]}"
        return
    feeds = {i.name: x for i, x in zip(case.model.graph.input, case.inputs, strict=False)}
    try:
        want = _session(case.model.SerializeToString()).run(None, feeds)  # type: ignore[attr-defined]
    except Exception:  # onnxruntime lacks the op or type: nothing to compare with
        results.source_not_runnable.append(case.name)
        return
    try:
        sess = _session(exported.SerializeToString())
        # TensorRT has no float64: the parser made such inputs float32, and so does the export.
        got = sess.run(  # type: ignore[attr-defined]
            None,
            {
                i.name: np.asarray(feeds[i.name]).astype(
                    _ORT_TYPES.get(i.type, feeds[i.name].dtype)
                )
                for i in sess.get_inputs()  # type: ignore[attr-defined]
            },
        )
    except Exception as err:
        results.ort_cannot_run[case.name] = str(err).splitlines()[0][:200]
        return
    errors = [max_relative_error(g, w) for g, w in zip(got, want, strict=True)]
    if max(errors, default=0.0) <= REL_TOL:
        results.matched.append(case.name)
    else:
        results.failed[case.name] = f"max relative error {max(errors):.3g}"


def _build_one(item: tuple[str, bytes]) -> tuple[str, bool]:
    """Build one case's model with trtimport (runs in a worker process)."""
    import tempfile

    from trtimport.core.options import BuildOptions
    from trtimport.core.pipeline import convert
    from trtimport.errors import TrtImportError

    name, model = item
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.onnx"
        path.write_bytes(model)
        try:
            convert(path, Path(folder) / "x.engine", build_options=BuildOptions(progress=False))
        except TrtImportError:
            return name, False
    return name, True


def _build_key() -> str:
    import onnx

    from trtimport.core.backend import get_backend

    backend = get_backend()
    return f"trtimport/node-case-builds/{backend.name}-{backend.version}-onnx-{onnx.__version__}"


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> RoundTrip:
    """Run every node case once for the whole module; builds run meanwhile in two workers.

    Which cases build is remembered in pytest's cache per TensorRT and onnx version.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from trtimport.plugins.manager import load_plugins

    cache = pytestconfig.cache
    assert cache is not None
    known: dict[str, bool] = cache.get(_build_key(), {})
    todo = [(c.name, c.model.SerializeToString()) for c in node_cases() if c.name not in known]
    folder = tmp_path_factory.mktemp("node_cases")
    plugins = load_plugins()
    results = RoundTrip()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        pending = pool.map(_build_one, todo, chunksize=16)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for case in node_cases():
                _round_trip(case, folder, plugins, results)
        known.update(pending)
    cache.set(_build_key(), known)
    # Only cases TensorRT builds count.
    for bucket in (results.failed, results.unsupported, results.ort_cannot_run):
        for name in [n for n in bucket if not known.get(n)]:
            results.not_building.append(name)
            del bucket[name]
    for names in (results.matched, results.source_not_runnable):
        for name in [n for n in names if not known.get(n)]:
            results.not_building.append(name)
            names.remove(name)
    return results


def test_node_case_round_trip(round_trip: RoundTrip, capsys: pytest.CaptureFixture[str]) -> None:
    """Every building case round-trips, except the listed, explained ones."""
    r = round_trip
    imported = len(r.matched) + len(r.failed) + len(r.unsupported) + len(r.ort_cannot_run)
    imported += len(r.source_not_runnable) + len(r.not_building)
    unsupported_types = sorted(
        {
            line.strip().lstrip("- ").split(" layer ")[0]
            for v in r.unsupported.values()
            for line in v.splitlines()
            if " layer " in line
        }
    )
    with capsys.disabled():
        print(
            f"\nnode cases: {len(node_cases())}, imported {imported}, not building "
            f"{len(r.not_building)}, exported+matched {len(r.matched)}, "
            f"TensorRT differs {len(r.failed)}, ORT cannot run export {len(r.ort_cannot_run)}, "
            f"ORT cannot run source {len(r.source_not_runnable)}, "
            f"unsupported layers {len(r.unsupported)} ({', '.join(unsupported_types)})"
        )
        for name, why in sorted(r.ort_cannot_run.items()):
            print(f"  ORT cannot run export: {name}: {why}")
        for name, why in sorted(r.unsupported.items()):
            print(f"  unsupported: {name}: {why.splitlines()[0]}")
    unexplained = {n: why for n, why in r.failed.items() if n not in TENSORRT_DIFFERS}
    assert not unexplained, f"exported networks differ from the source: {unexplained}"
    assert set(r.ort_cannot_run) == set(ORT_CANNOT_RUN_EXPORTED), r.ort_cannot_run
    assert len(r.matched) >= MIN_MATCHED
    assert set(r.failed) <= set(TENSORRT_DIFFERS)


def test_unsupported_layers_are_only_the_known_kinds(round_trip: RoundTrip) -> None:
    """Cases the exporter refuses name only loop, attention and other inexpressible layers."""
    allowed = {
        "TRIP_LIMIT",
        "ITERATOR",
        "RECURRENCE",
        "LOOP_OUTPUT",
        "ATTENTION_INPUT",
        "ATTENTION_OUTPUT",
        "ROTARY_EMBEDDING",
        "KV_CACHE_UPDATE",
        "NMS",
        "FILL",  # random fills cannot be reproduced
        "SLICE",  # out-of-bounds modes with strides or shape tensors
        "QUANTIZE",  # float8 / block quantization
        "DEQUANTIZE",
    }
    kinds = {
        line.strip().lstrip("- ").split(" layer ")[0]
        for v in round_trip.unsupported.values()
        for line in v.splitlines()
        if " layer " in line
    }
    assert kinds <= allowed, kinds - allowed
    assert len(round_trip.unsupported) <= 53
