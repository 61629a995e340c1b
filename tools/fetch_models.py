"""Fetch the real models of the sweep (docs/performance.md) from pinned PyPI wheels.

The models ship inside these wheels (their licences travel with them):

- ``rapidocr-onnxruntime==1.4.4`` (Apache-2.0): PP-OCRv4 text detector and recognizer, and the
  text-direction classifier (ONNX);
- ``silero-vad==6.2.3`` (MIT): six voice-activity detectors (ONNX; ``If``, LSTM state, fp16);
- ``mediapipe==0.10.14`` (Apache-2.0): four TFLite models (face detection, palm detection, hand
  landmarks, selfie segmentation).

Each wheel is fetched with ``pip download --no-deps`` at its pinned version, the models are
extracted, and every file is checked against the SHA-256 recorded here; a file that differs is
deleted and reported. Nothing is committed: the files go to ``.cache/real-models`` (ignored by
git) or the folder given. Tests that need them skip when they are absent.

Run from the repository root: ``python tools/fetch_models.py [--dest DIR]``. Exit code 0 when
every model is present and verified, 1 when a download failed (PyPI unreachable, say: the
caller decides whether that matters), 2 when a file's digest differs.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DEST = REPO / ".cache" / "real-models"

#: wheel requirement -> {path inside the wheel: SHA-256 of the file}.
MODELS: dict[str, dict[str, str]] = {
    "rapidocr-onnxruntime==1.4.4": {
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx": (
            "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"
        ),
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx": (
            "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"
        ),
        "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx": (
            "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"
        ),
    },
    "silero-vad==6.2.3": {
        "silero_vad/data/silero_vad.onnx": (
            "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
        ),
        "silero_vad/data/silero_vad_16k_op15.onnx": (
            "7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49"
        ),
        "silero_vad/data/silero_vad_16k_sequence.onnx": (
            "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85"
        ),
        "silero_vad/data/silero_vad_half.onnx": (
            "1e0b195ad4806595ef4466f419d16fca7e4afcfc6669b8c0b5f76ea87547c769"
        ),
        "silero_vad/data/silero_vad_op18_ifless.onnx": (
            "7671cd04b004e9076da0d4a7b1a5aec36adf161c39230c1cb94a4fd5db6bbd28"
        ),
        "silero_vad/data/silero_vad_openvino_16k.onnx": (
            "7776b81ad1b0350c15d7f1555943b9232eb53e9ca5d989c6d0cea9ebc8664d87"
        ),
    },
    "mediapipe==0.10.14": {
        "mediapipe/modules/face_detection/face_detection_short_range.tflite": (
            "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
        ),
        "mediapipe/modules/palm_detection/palm_detection_lite.tflite": (
            "e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18"
        ),
        "mediapipe/modules/hand_landmark/hand_landmark_lite.tflite": (
            "048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6"
        ),
        "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite": (
            "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
        ),
    },
}

#: The flags a user gives each model for fixed shapes (and pinned inputs): the sweep's "with
#: shapes" column. Models absent here need none.
SHAPE_FLAGS: dict[str, list[str]] = {
    "ch_PP-OCRv4_det_infer.onnx": ["--input", "x:1x3x640x640"],
    "ch_PP-OCRv4_rec_infer.onnx": ["--input", "x:1x3x48x320"],
    "ch_ppocr_mobile_v2.0_cls_infer.onnx": ["--input", "x:1x3x48x192"],
    "silero_vad.onnx": [
        "--input", "input:1x512", "--input", "state:2x1x128", "--input-values", "sr:16000",
    ],
    "silero_vad_16k_op15.onnx": ["--input", "input:1x512", "--input", "state:2x1x128"],
    "silero_vad_16k_sequence.onnx": ["--input", "input:1x576"],
    "silero_vad_half.onnx": ["--input", "input:1x512", "--input", "state:2x1x128"],
    "silero_vad_op18_ifless.onnx": ["--input", "input:1x512", "--input", "state:2x1x128"],
}  # fmt: skip

#: mediapipe publishes platform wheels only; the models inside are the same in each.
_PLATFORM_ARGS = [
    "--only-binary=:all:",
    "--platform",
    "manylinux_2_17_x86_64",
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
]


def sha256(path: Path) -> str:
    """The file's SHA-256, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_files(dest: Path = DEFAULT_DEST) -> dict[str, Path]:
    """Every model of the sweep by file name, where it is (or would be) in ``dest``."""
    return {Path(p).name: dest / Path(p).name for files in MODELS.values() for p in files}


def present(dest: Path = DEFAULT_DEST) -> bool:
    """True when every model is in ``dest`` (digests are checked when fetching)."""
    return all(p.is_file() for p in model_files(dest).values())


def _download(requirement: str, folder: Path) -> Path:
    platform = _PLATFORM_ARGS if requirement.startswith("mediapipe") else []
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            # Fail soon where PyPI is unreachable (CI goes on without the models).
            "--timeout",
            "30",
            "--retries",
            "2",
            "-d",
            str(folder),
            *platform,
            requirement,
        ],
        check=True,
        timeout=300,
    )
    name = requirement.split("==")[0].replace("-", "_")
    return next(folder.glob(f"{name}-*.whl"))


def fetch(dest: Path = DEFAULT_DEST) -> int:
    """Fetch whatever is missing into ``dest``; returns the exit code (see the module doc)."""
    dest.mkdir(parents=True, exist_ok=True)
    status = 0
    for requirement, files in MODELS.items():
        wanted = {p: d for p, d in files.items() if not (dest / Path(p).name).is_file()}
        if not wanted:
            continue
        with tempfile.TemporaryDirectory(prefix="trtimport-wheels-") as tmp:
            try:
                wheel = _download(requirement, Path(tmp))
            except (subprocess.SubprocessError, OSError, StopIteration) as err:
                print(f"fetch_models: could not download {requirement}: {err}", file=sys.stderr)
                status = max(status, 1)
                continue
            with zipfile.ZipFile(wheel) as archive:
                for inner, digest in wanted.items():
                    target = dest / Path(inner).name
                    partial = target.with_name(target.name + ".partial")
                    partial.write_bytes(archive.read(inner))
                    if sha256(partial) != digest:
                        partial.unlink()
                        print(
                            f"fetch_models: {inner} from {requirement} has another SHA-256 "
                            "than recorded; not kept",
                            file=sys.stderr,
                        )
                        status = 2
                        continue
                    partial.replace(target)
    for name, path in model_files(dest).items():
        print(f"{'ok     ' if path.is_file() else 'missing'} {name}")
    return status


def main() -> int:
    """Command line: ``--dest DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="where to put the models")
    return fetch(parser.parse_args().dest)


if __name__ == "__main__":
    sys.exit(main())
