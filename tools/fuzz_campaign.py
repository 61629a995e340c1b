"""A time-boxed, coverage-guided fuzzing campaign (atheris) over trtimport's file readers.

    python tools/fuzz_campaign.py TARGET [--seconds N] [--corpus DIR]
    python tools/fuzz_campaign.py --replay [--corpus DIR]

Each target writes the fuzzer's bytes to a file and hands it to one reader, the way the CLI
does: ``npy``, ``npz``, ``sidecar``, ``calib-cache``, ``prototxt``, ``caffemodel``,
``onnx-external``, ``keras-zip``. A reader may succeed or raise a ``TrtImportError``; anything
else (another exception, a hang, a crash) is a bug. When the campaign finds one, the input is
saved as ``tests/fuzz/corpus/TARGET/crash-<sha1>``, where the test suite replays it
(``test_fuzz_replay.py``) once the bug is fixed. ``--replay`` runs every saved input without
fuzzing (what the test does). Seeds are the valid files the fuzz suite's corpus builder makes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "fuzz" / "corpus"
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests"), str(REPO / "tests" / "fuzz")]


def _targets() -> dict[str, tuple[str, Callable[[Path], Any]]]:
    """Target name -> (file suffix, reader)."""
    from trtimport.build import engine
    from trtimport.core import input_files
    from trtimport.core.options import PrecisionOptions
    from trtimport.importers.caffe import parse, weights
    from trtimport.importers.tensorflow import convert
    from trtimport.onnxtools import external_data
    from trtimport.onnxtools.passes import calibrate

    def sidecar(path: Path) -> Any:
        return engine.read_sidecar(path.with_name(path.name.removesuffix(".json")))

    def calib_cache(path: Path) -> Any:
        return calibrate.read_cache(path, PrecisionOptions(int8=True), "0" * 64)

    return {
        "npy": (".npy", input_files.load_npy),
        "npz": (".npz", input_files.load_npz),
        "sidecar": (".engine.json", sidecar),
        "calib-cache": (".calib.json", calib_cache),
        "prototxt": (".prototxt", lambda p: parse.load_caffe(p, None)),
        "caffemodel": (".caffemodel", weights.read_caffemodel),
        "onnx-external": (".onnx", external_data.check_external_data),
        "keras-zip": (".keras", convert.check_keras_archive),
    }


def run_one(reader: Callable[[Path], Any], path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and read it; a TrtImportError is a clean refusal, any other
    exception propagates (a bug)."""
    from trtimport.errors import TrtImportError

    path.write_bytes(data)
    with contextlib.suppress(TrtImportError):
        reader(path)


def seeds(target: str, folder: Path) -> list[bytes]:
    """Valid (and a few broken) files of the target's kind, from the fuzz suite's builders."""
    import fuzz_corpus
    import numpy as np
    import onnx_models

    folder.mkdir(parents=True, exist_ok=True)
    if target in ("npy", "npz"):
        files = fuzz_corpus.data_files(folder)
        return [p.read_bytes() for n, p in sorted(files.items()) if n.endswith(f".{target}")]
    if target == "sidecar":
        return [bytes(v) for v in fuzz_corpus.SIDECARS.values()]
    if target == "calib-cache":
        return [b'{"schema": 1, "model_sha256": "", "method": "entropy", "ranges": {"x": 1.5}}']
    if target == "prototxt":
        return [fuzz_corpus.LENET.read_bytes()]
    if target == "caffemodel":
        from trtimport.importers.caffe.make_weights import make_caffe_weights

        proto = folder / "lenet.prototxt"
        proto.write_bytes(fuzz_corpus.LENET.read_bytes())
        make_caffe_weights(proto, folder / "lenet.caffemodel", seed=0)
        return [(folder / "lenet.caffemodel").read_bytes()[:20000]]
    if target == "onnx-external":
        path = onnx_models.with_external_weights(folder, "w.bin")
        return [path.read_bytes(), onnx_models.conv_relu().SerializeToString()]
    if target == "keras-zip":
        import zipfile

        with zipfile.ZipFile(folder / "m.keras", "w") as archive:
            archive.writestr("metadata.json", "{}")
            archive.writestr("config.json", '{"class_name": "Sequential"}')
        return [(folder / "m.keras").read_bytes(), np.zeros(4, np.uint8).tobytes()]
    raise SystemExit(f"unknown target {target}")


def replay(corpus: Path) -> int:
    """Read every saved input with its target's reader; returns the number that failed."""
    import traceback

    targets = _targets()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="trtimport-replay-") as tmp:
        for folder in sorted(p for p in corpus.iterdir() if p.is_dir()):
            suffix, reader = targets[folder.name]
            for entry in sorted(folder.iterdir()):
                try:
                    run_one(reader, Path(tmp) / f"input{suffix}", entry.read_bytes())
                except Exception:
                    failed += 1
                    print(f"{folder.name}/{entry.name}:\n{traceback.format_exc()}")
    return failed


def campaign(target: str, seconds: int, corpus: Path) -> None:
    """Fuzz ``target`` for ``seconds``; an input that breaks it is saved in ``corpus``."""
    import atheris
    import numpy  # noqa: F401  (imported uninstrumented: only trtimport's code is traced)

    with atheris.instrument_imports(include=["trtimport"]):
        targets = _targets()
    suffix, reader = targets[target]
    from trtimport.core.files import private_folder

    # libFuzzer ends the process without Python's clean-up; the process id in the folder's
    # name lets the next trtimport run remove it (core.files.clean_stale_folders).
    work = private_folder(Path(tempfile.gettempdir()), "trtimport-fuzz-")
    seed_dir = work / "seeds"
    seed_dir.mkdir()
    for i, data in enumerate(seeds(target, work / "made")):
        (seed_dir / f"seed{i}").write_bytes(data)
    path = work / f"input{suffix}"

    def one_input(data: bytes) -> None:
        try:
            run_one(reader, path, data)
        except Exception:
            saved = corpus / target / f"crash-{hashlib.sha1(data).hexdigest()}"
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_bytes(data)
            print(f"saved {saved}", file=sys.stderr)
            raise

    args = [sys.argv[0], f"-max_total_time={seconds}", "-timeout=20", "-rss_limit_mb=4096",
            str(seed_dir)]  # fmt: skip
    atheris.Setup(args, one_input)
    atheris.Fuzz()


def main() -> None:
    """Parse the command line and run the campaign or the replay."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", nargs="?", help="what to fuzz (see the module's docstring)")
    parser.add_argument("--seconds", type=int, default=120, help="how long (default 120)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="where inputs are saved")
    parser.add_argument("--replay", action="store_true", help="replay the saved inputs")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.replay:
        sys.exit(1 if replay(args.corpus) else 0)
    if args.target is None:
        parser.error("give a TARGET or --replay")
    campaign(args.target, args.seconds, args.corpus)


if __name__ == "__main__":
    main()
