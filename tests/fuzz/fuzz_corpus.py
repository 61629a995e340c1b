"""Deterministic corpora of broken and hostile inputs, and the CLI cases that use them.

Everything is built from seeds and from real files (an ONNX model written here, LeNet's
prototxt and seeded weights, a PNG), so every run fuzzes the same bytes. Each ``*_cases``
function writes its files into a folder and returns cases for
:func:`fuzz_harness.run_cases`.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_models
from onnx import TensorProto, helper

REPO = Path(__file__).resolve().parents[2]
LENET = REPO / "tests" / "data" / "caffe" / "LeNet.prototxt"

Case = dict[str, Any]


def case(
    name: str,
    argv: list[str],
    cwd: Path,
    *,
    expect: str = "error",
    allowed: tuple[str, ...] = (),
    protected: tuple[Path, ...] = (),
    timeout: int = 60,
) -> Case:
    """A case for the harness (see :mod:`fuzz_harness`)."""
    return {
        "name": name,
        "argv": argv,
        "cwd": str(cwd),
        "expect": expect,
        "allowed": list(allowed),
        "protected": [str(p) for p in protected],
        "timeout": timeout,
    }


# ----------------------------------------------------------------------------- mutations


def truncations(data: bytes, count: int) -> list[bytes]:
    """``data`` cut at ``count`` evenly spread lengths (never whole, never empty)."""
    return [data[: max(1, len(data) * (i + 1) // (count + 1))] for i in range(count)]


def bit_flips(data: bytes, count: int, seed: int, flips: int = 4) -> list[bytes]:
    """``count`` copies of ``data``, each with ``flips`` seeded bits flipped."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        mutated = bytearray(data)
        for position in rng.integers(0, len(data) * 8, size=flips):
            mutated[position // 8] ^= 1 << (position % 8)
        out.append(bytes(mutated))
    return out


def special_files(folder: Path, suffix: str) -> dict[str, Path]:
    """A FIFO, a symlink to /dev/zero and a folder, each named ``*{suffix}``."""
    fifo = folder / f"fifo{suffix}"
    if not fifo.exists():
        os.mkfifo(fifo)
    zero = folder / f"zero{suffix}"
    if not zero.is_symlink():
        zero.symlink_to("/dev/zero")
    directory = folder / f"dir{suffix}"
    directory.mkdir(exist_ok=True)
    return {"fifo": fifo, "zero": zero, "dir": directory}


# ----------------------------------------------------------------------------- ONNX


def _function_model(location: str) -> onnx.ModelProto:
    """A model calling a local function whose Constant holds external data at ``location``."""
    value = helper.make_tensor("k", TensorProto.FLOAT, [1], [1.0])
    value.ClearField("float_data")
    value.data_location = TensorProto.EXTERNAL
    for key, item in (("location", location), ("offset", "0"), ("length", "4")):
        entry = value.external_data.add()
        entry.key, entry.value = key, item
    body = [
        helper.make_node("Constant", [], ["k"], value=value),
        helper.make_node("Add", ["a", "k"], ["b"]),
    ]
    function = helper.make_function(
        "local", "addk", ["a"], ["b"], body, [helper.make_opsetid("", 17)]
    )
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph(
        [helper.make_node("addk", ["x"], ["y"], domain="local")], "g", [x], [y]
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
        functions=[function],
    )
    model.ir_version = 8
    return model


def _with_unknown_group(data: bytes) -> bytes:
    """``data`` plus an unknown protobuf group field (wire types 3/4), which the quick
    external-data walk cannot read, so the thorough one must."""
    return data + bytes(
        [(99 << 3 | 3) & 0x7F | 0x80, 99 >> 4, (99 << 3 | 4) & 0x7F | 0x80, 99 >> 4]
    )


def onnx_cases(folder: Path) -> list[Case]:
    """A real ONNX model, mutated every way, plus hostile external data and names."""
    folder.mkdir(parents=True, exist_ok=True)
    good = onnx_models.save(onnx_models.conv_relu(), folder / "m.onnx")
    data = good.read_bytes()
    cases = [
        case(
            "onnx-good",
            ["m.onnx", "-o", "m.engine", "-q"],
            folder,
            expect="ok",
            allowed=("m.engine", "m.engine.json"),
            protected=(good,),
        )
    ]
    variants: dict[str, bytes] = {"empty": b"", "zeros": bytes(4096)}
    variants |= {f"trunc{i}": d for i, d in enumerate(truncations(data, 6))}
    variants |= {f"flip{i}": d for i, d in enumerate(bit_flips(data, 10, seed=1))}
    variants["random"] = np.random.default_rng(2).bytes(2048)
    variants["group"] = _with_unknown_group(data)
    for name, content in variants.items():
        path = folder / f"{name}.onnx"
        path.write_bytes(content)
        cases.append(
            case(
                f"onnx-{name}",
                [path.name, "-o", f"{name}.engine", "-q"],
                folder,
                expect="any",
                allowed=(f"{name}.engine", f"{name}.engine.json"),
                protected=(path,),
            )
        )
    # Hostile external data: outside the folder, absolute, NUL byte, symlink loop, and in a
    # local function (read only through the thorough check when the quick one gives up).
    outside = folder.parent / "secret.bin"
    outside.write_bytes(bytes(432))
    hostile = {
        "ext-parent": "../secret.bin",
        "ext-absolute": str(outside),
        "ext-nul": "w\0.bin",
        "ext-loop": "loop.bin",
    }
    for name, location in hostile.items():
        sub = folder / name
        sub.mkdir(exist_ok=True)
        if name == "ext-loop" and not (sub / "loop.bin").is_symlink():
            (sub / "loop.bin").symlink_to("loop.bin")
        model = onnx_models.conv_relu()
        w = model.graph.initializer[0]
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", "432")):
            entry = w.external_data.add()
            entry.key, entry.value = key, value
        path = sub / "model.onnx"
        path.write_bytes(model.SerializeToString())
        cases.append(
            case(name, [str(path), "-o", f"{name}.engine", "-q"], folder, protected=(outside, path))
        )
    fn = folder / "function.onnx"
    fn.write_bytes(_with_unknown_group(_function_model("../secret.bin").SerializeToString()))
    cases.append(
        case(
            "ext-function-group",
            [fn.name, "-o", "fn.engine", "-q"],
            folder,
            protected=(outside, fn),
        )
    )
    # A node name and a file name that are not UTF-8.
    odd = onnx_models.conv_relu()
    odd.graph.node[0].name = "conv"
    raw = odd.SerializeToString().replace(b"\x04conv", b"\x04c\xffnv")
    (folder / "badname.onnx").write_bytes(raw)
    cases.append(
        case(
            "onnx-non-utf8-node",
            ["badname.onnx", "-o", "bn.engine", "-q"],
            folder,
            expect="any",
            allowed=("bn.engine", "bn.engine.json"),
        )
    )
    odd_file = os.fsencode(folder) + b"/n\xff.onnx"
    with open(odd_file, "wb") as f:
        f.write(data)
    cases.append(case("onnx-non-utf8-file", [os.fsdecode(odd_file), "-o", "nf.engine"], folder))
    # Special files as the model, with and without --format.
    for kind, path in special_files(folder, ".onnx").items():
        cases.append(case(f"onnx-{kind}", [path.name, "-q"], folder, timeout=20))
    for fmt in ("onnx", "caffe", "tflite", "tensorflow", "keras", "uff", "script"):
        cases.append(
            case(f"dev-zero-{fmt}", ["/dev/zero", "--format", fmt, "-q"], folder, timeout=20)
        )
        cases.append(case(f"fifo-{fmt}", ["fifo.onnx", "--format", fmt, "-q"], folder, timeout=20))
    return cases


# ----------------------------------------------------------------------------- Caffe


def _prototxt_edge_cases() -> dict[str, bytes]:
    header = b'input: "data"\ninput_shape { dim: 1 dim: 1 dim: 8 dim: 8 }\n'
    relu = b'layer { name: "r%d" type: "ReLU" bottom: "data" top: "data" }\n'
    return {
        "empty": b"",
        "binary": np.random.default_rng(3).bytes(512),
        "latin1": header + b'layer { name: "\xe9" type: "ReLU" bottom: "data" top: "data" }\n',
        "unterminated": header + b'layer { name: "r type: "ReLU"',
        "unbalanced": header + b"layer { " * 50,
        "nested": header + b"layer { " + b"convolution_param { " * 5000,
        "many-layers": header + b"".join(relu % i for i in range(30_000)),
        "one-line-layers": header + b" ".join((relu % i).strip() for i in range(30_000)),
        "huge-dim": b'input: "data"\ninput_shape { dim: 1 dim: 1 dim: 2000000000 dim: 8 }\n'
        + b'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
        + b"inner_product_param { num_output: 10 } }\n",
        "negative-dim": b'input: "data"\ninput_shape { dim: 1 dim: -3 dim: 8 dim: 8 }\n' + relu % 0,
        "unknown-type": header
        + b'layer { name: "u" type: "NoSuchLayer" bottom: "data" top: "u" }\n',
        "cycle": header
        + b'layer { name: "a" type: "ReLU" bottom: "b" top: "a" }\n'
        + b'layer { name: "b" type: "ReLU" bottom: "a" top: "b" }\n',
    }


def caffe_cases(folder: Path) -> list[Case]:
    """LeNet with seeded weights, its caffemodel mutated; prototxt edge cases; make-weights."""
    from trtimport.importers.caffe.make_weights import make_caffe_weights

    folder.mkdir(parents=True, exist_ok=True)
    proto = folder / "lenet.prototxt"
    proto.write_bytes(LENET.read_bytes())
    weights = folder / "lenet.caffemodel"
    make_caffe_weights(proto, weights, seed=0)
    both = (proto, weights)
    cases = [
        case(
            "caffe-good",
            [proto.name, "--weights", weights.name, "-o", "l.engine", "-q"],
            folder,
            expect="ok",
            allowed=("l.engine", "l.engine.json"),
            protected=both,
        ),
        case(
            "caffe-o-caffemodel",
            [proto.name, "--weights", weights.name, "-o", weights.name],
            folder,
            protected=both,
        ),
        case(
            "caffe-o-prototxt",
            [proto.name, "--weights", weights.name, "-o", proto.name],
            folder,
            protected=both,
        ),
        case(
            "caffe-save-onnx-caffemodel",
            [proto.name, "--weights", weights.name, "--no-engine", "--save-onnx", weights.name],
            folder,
            protected=both,
        ),
        case(
            "make-weights-o-prototxt",
            ["caffe", "make-weights", proto.name, "-o", proto.name],
            folder,
            protected=both,
        ),
    ]
    data = weights.read_bytes()
    variants = {f"trunc{i}": d for i, d in enumerate(truncations(data, 4))}
    variants |= {f"flip{i}": d for i, d in enumerate(bit_flips(data[:4096], 6, seed=4))}
    for name, content in variants.items():
        path = folder / f"{name}.caffemodel"
        path.write_bytes(content)
        cases.append(
            case(
                f"caffemodel-{name}",
                [proto.name, "--weights", path.name, "-o", f"{name}.engine", "-q"],
                folder,
                expect="any",
                allowed=(f"{name}.engine", f"{name}.engine.json"),
            )
        )
    for name, content in _prototxt_edge_cases().items():
        path = folder / f"{name}.prototxt"
        path.write_bytes(content)
        cases.append(
            case(
                f"prototxt-{name}",
                ["caffe", "make-weights", path.name, "-o", f"{name}.caffemodel"],
                folder,
                expect="any",
                allowed=(f"{name}.caffemodel",),
                timeout=30,
            )
        )
    for kind, path in special_files(folder, ".prototxt").items():
        cases.append(case(f"prototxt-{kind}", [path.name, "-q"], folder, timeout=20))
        cases.append(
            case(f"weights-{kind}", [proto.name, "--weights", path.name, "-q"], folder, timeout=20)
        )
    return cases


# ----------------------------------------------------------------------------- other formats


def _keras_bomb(path: Path, config_bytes: int) -> None:
    """A ``.keras`` zip whose config.json inflates to ``config_bytes`` (compresses ~1000:1)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", '{"keras_version": "3.0"}')
        with archive.open("config.json", "w", force_zip64=True) as member:
            chunk = b" " * (1 << 20)
            for _ in range(config_bytes >> 20):
                member.write(chunk)


def other_format_cases(folder: Path) -> list[Case]:
    """Keras zip bomb, hostile network script, garbage TensorFlow, UFF and TFLite files."""
    folder.mkdir(parents=True, exist_ok=True)
    _keras_bomb(folder / "bomb.keras", 100 << 20)
    evil = folder / "evil.py"
    evil.write_text("from pathlib import Path\nPath('PWNED').write_text('ran')\n")
    (folder / "garbage.pb").write_bytes(np.random.default_rng(5).bytes(1024))
    (folder / "garbage.uff").write_bytes(np.random.default_rng(6).bytes(1024))
    tflite = bytearray(np.random.default_rng(7).bytes(1024))
    tflite[4:8] = b"TFL3"
    (folder / "garbage.tflite").write_bytes(bytes(tflite))
    saved = folder / "saved"
    saved.mkdir(exist_ok=True)
    (saved / "saved_model.pb").write_bytes(np.random.default_rng(8).bytes(512))
    return [
        case("keras-bomb", ["bomb.keras", "-q"], folder),
        case("script-not-run", ["evil.py", "-q"], folder, expect="any"),
        case("uff-garbage", ["garbage.uff", "-q"], folder),
        case("pb-garbage", ["garbage.pb", "--format", "tensorflow", "-q"], folder),
        case("tflite-garbage", ["garbage.tflite", "-q"], folder, timeout=120),
        case("savedmodel-garbage", ["saved", "-q"], folder),
    ]


# ----------------------------------------------------------------------------- data files


def _png(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` (gray) with one empty data chunk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(bytes(height and 1))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _npy_header(shape: str, descr: str = "<f4") -> bytes:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * (118 - len(text)) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()


def data_files(folder: Path) -> dict[str, Path]:
    """Good and broken ``.npy``, ``.npz`` and images for an input x[1,3,8,8]."""
    import cv2

    good = np.random.default_rng(9).random((1, 3, 8, 8), dtype=np.float32)
    files: dict[str, bytes | Callable[[Path], None]] = {}
    np.save(folder / "good.npy", good)
    npy = (folder / "good.npy").read_bytes()
    np.savez(folder / "good.npz", x=good)
    npz = (folder / "good.npz").read_bytes()
    files |= {f"trunc{i}.npy": d for i, d in enumerate(truncations(npy, 4))}
    files |= {f"flip{i}.npy": d for i, d in enumerate(bit_flips(npy[:128], 6, seed=10))}
    files |= {f"trunc{i}.npz": d for i, d in enumerate(truncations(npz, 4))}
    files |= {f"flip{i}.npz": d for i, d in enumerate(bit_flips(npz, 6, seed=11))}
    files["huge-header.npy"] = _npy_header("(1099511627776, 1024)")
    files["syntax.npy"] = _npy_header("(1, 3, 8, 8")
    files["string.npy"] = _npy_header("(3,)", "<U4") + bytes(48)
    files["object.npy"] = _npy_header("(3,)", "|O") + bytes(24)
    files["complex.npy"] = _npy_header("(1, 3, 8, 8)", "<c8") + bytes(1536)
    files["nan.npy"] = _npy_header("(1, 3, 8, 8)") + np.full(192, np.nan, "<f4").tobytes()
    files["empty.npy"] = b""
    files["empty.npz"] = b""
    for name, content in files.items():
        assert isinstance(content, bytes)
        (folder / name).write_bytes(content)
    with (
        zipfile.ZipFile(folder / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("x.npy", "w", force_zip64=True) as member,
    ):
        member.write(_npy_header("(1, 3, 8, 8)"))
        for _ in range(300):
            member.write(bytes(1 << 20))
    with zipfile.ZipFile(folder / "pickle.npz", "w") as archive:
        archive.writestr("x.npy", _npy_header("(1,)", "|O") + b"\x80\x04K\x01.")
    image = (good[0].transpose(1, 2, 0) * 255).astype(np.uint8)
    cv2.imwrite(str(folder / "good.png"), image)
    png = (folder / "good.png").read_bytes()
    (folder / "trunc.png").write_bytes(png[: len(png) // 2])
    (folder / "garbage.png").write_bytes(np.random.default_rng(12).bytes(300))
    (folder / "giant.png").write_bytes(_png(200_000, 200_000))
    return {p.name: p for p in folder.iterdir() if p.is_file()}


def data_cases(folder: Path) -> list[Case]:
    """Every data file as ``run --input``, and as ``--int8 --calib-data``; special files."""
    folder.mkdir(parents=True, exist_ok=True)
    model = onnx_models.save(onnx_models.conv_relu(), folder / "m.onnx")
    files = data_files(folder)
    special = special_files(folder, ".npy")
    cases = []
    for name in sorted(files):
        if name == "m.onnx":
            continue
        expect = "ok" if name.startswith("good") else "any"
        cases.append(
            case(
                f"input-{name}",
                ["run", model.name, "--input", f"x={name}", "-q", "--backend", "onnxruntime"],
                folder,
                expect=expect,
                protected=(files[name],),
            )
        )
    for name in ("bomb.npz", "pickle.npz", "nan.npy", "complex.npy", "flip0.npz", "trunc1.npz"):
        calib = name if name.endswith(".npz") else None
        if calib is None:
            continue
        cases.append(
            case(
                f"calib-{name}",
                [model.name, "--int8", "--calib-data", name, "-q", "-o", "c.engine"],
                folder,
                allowed=("c.engine", "c.engine.json", "c.engine.calib.json"),
            )
        )
    nan = np.full((4, 3, 8, 8), np.nan, np.float32)
    np.savez(folder / "nan-calib.npz", x=nan)
    cases.append(
        case(
            "calib-nan",
            [model.name, "--int8", "--calib-data", "nan-calib.npz", "-q", "-o", "c.engine"],
            folder,
        )
    )
    for kind, path in special.items():
        cases.append(
            case(
                f"input-{kind}",
                ["run", model.name, "--input", f"x={path.name}", "-q"],
                folder,
                timeout=20,
            )
        )
        cases.append(
            case(
                f"calib-{kind}",
                [model.name, "--int8", "--calib-data", path.name, "-q"],
                folder,
                timeout=20,
            )
        )
    dynamic = onnx_models.save(onnx_models.conv_relu(["N", 3, "H", "W"]), folder / "dyn.onnx")
    for shape in ("100000000x3x800x800", "1x3x99999999999x99999999999", "0x3x8x8", "1x3x2x2"):
        cases.append(
            case(
                f"dynamic-input-{shape}",
                ["run", dynamic.name, "--input", f"x:{shape}", "--backend", "onnxruntime", "-q"],
                folder,
                expect="any",
            )
        )
    resize = ["run", model.name, "--input", "x=good.png", "--backend", "onnxruntime", "-q"]
    cases.append(case("resize-huge", [*resize, "--resize", "100000x100000"], folder))
    cases.append(case("resize-zero", [*resize, "--resize", "0x5"], folder))
    return cases


# ----------------------------------------------------------------------------- engines


SIDECARS: dict[str, bytes] = {
    "empty": b"",
    "not-utf8": b"\xff\xfe{}",
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "list": b"[1, 2]",
    "inputs-int": b'{"inputs": 5, "outputs": []}',
    "model-int": b'{"source": {"model": 7}, "build_options": {"refittable": true}}',
    "bad-tensor": b'{"inputs": [{"name": "x", "shape": "ab", "dtype": "zz"}], "outputs": []}',
    "bad-shapes": b'{"import_options": {"input_shapes": {"x": 5}}, "build_options": '
    b'{"refittable": true}, "source": {"model": "m.onnx", "format": "onnx"}, "inputs": [], '
    b'"outputs": []}',
    "files-junk": b'{"source": {"files": [{"path": "m.onnx", "sha256": 5}, 3, {"path": 9}]}}',
    "nan": b'{"inputs": NaN}',
}


def engine_cases(folder: Path) -> list[Case]:
    """A built engine with each broken sidecar: run, refit and a rebuild to the same ``-o``
    (which must repair it)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = onnx_models.save(onnx_models.conv_relu(), folder / "m.onnx")
    cases = []
    for name, content in SIDECARS.items():
        engine = folder / f"{name}.engine"
        engine.write_bytes(np.random.default_rng(13).bytes(4096))
        (folder / f"{name}.engine.json").write_bytes(content)
        cases += [
            case(f"sidecar-{name}-run", ["run", engine.name, "-q"], folder),
            case(
                f"sidecar-{name}-refit",
                ["refit", engine.name, "--weights", model.name, "-o", f"r-{name}.engine"],
                folder,
            ),
            case(
                f"sidecar-{name}-rebuild",
                [model.name, "-o", engine.name, "-q"],
                folder,
                expect="ok",
            ),
        ]
    fifo = folder / "fifo.engine"
    fifo.write_bytes(b"")
    os.mkfifo(folder / "fifo.engine.json")
    cases.append(case("sidecar-fifo-run", ["run", fifo.name, "-q"], folder, timeout=20))
    cases.append(
        case("sidecar-fifo-rebuild", [model.name, "-o", fifo.name, "-q"], folder, timeout=20)
    )
    return cases


# ----------------------------------------------------------------------------- outputs


def output_cases(folder: Path) -> list[Case]:
    """Every output flag aimed at an input (directly, by symlink, by hard link), a folder, a
    device, a FIFO, a path under a file; and calibration caches that are broken."""
    folder.mkdir(parents=True, exist_ok=True)
    model = onnx_models.save(onnx_models.conv_relu(), folder / "m.onnx")
    np.save(folder / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    np.savez(folder / "calib.npz", x=np.random.default_rng(14).random((4, 3, 8, 8), np.float32))
    (folder / "link.onnx").symlink_to("m.onnx")
    os.link(model, folder / "hard.onnx")
    (folder / "outdir").mkdir()
    os.mkfifo(folder / "fifo.out")
    protected = (model, folder / "x.npy", folder / "calib.npz")
    targets = {
        "model": "m.onnx",
        "symlink": "link.onnx",
        "hardlink": "hard.onnx",
        "folder": "outdir",
        "device": "/dev/null",
        "fifo": "fifo.out",
        "under-file": "m.onnx/out.bin",
    }
    #: Data files are inputs only of the commands that read them.
    data_targets = {
        "save-outputs": {"input-data": "x.npy"},
        "export-times": {"input-data": "x.npy"},
        "calib-cache": {"calib-data": "calib.npz"},
    }
    flags = {
        "convert-o": ["m.onnx", "-o", "{}"],
        "save-onnx": ["m.onnx", "--no-engine", "--save-onnx", "{}"],
        "save-network-onnx": ["m.onnx", "--no-engine", "--save-network-onnx", "{}"],
        "calib-cache": [
            "m.onnx",
            "--int8",
            "--calib-data",
            "calib.npz",
            "--calib-cache",
            "{}",
            "-o",
            "c.engine",
        ],
        "timing-cache": ["m.onnx", "--cache", "{}", "-o", "t.engine"],
        "save-outputs": [
            "run",
            "m.onnx",
            "--input",
            "x=x.npy",
            "--backend",
            "onnxruntime",
            "--save-outputs",
            "{}",
        ],
        "export-times": [
            "bench",
            "m.onnx",
            "--input",
            "x=x.npy",
            "--backend",
            "onnxruntime",
            "--duration",
            "0",
            "--warmup",
            "0",
            "--iterations",
            "1",
            "--export-times",
            "{}",
        ],
        "make-weights": ["caffe", "make-weights", "m.onnx", "-o", "{}"],
    }
    cases = []
    for flag, argv in flags.items():
        for target, path in (targets | data_targets.get(flag, {})).items():
            filled = [a.replace("{}", path) for a in argv]
            cases.append(
                case(
                    f"out-{flag}-{target}",
                    [*filled, "-q"] if flag != "make-weights" else filled,
                    folder,
                    protected=protected,
                    timeout=30,
                )
            )
    engine = folder / "e.engine"
    engine.write_bytes(b"engine")
    (folder / "e.engine.json").write_text(json.dumps({"build_options": {"refittable": True}}))
    for target in ("model", "symlink", "folder", "device"):
        cases.append(
            case(
                f"out-refit-{target}",
                ["refit", engine.name, "--weights", "m.onnx", "-o", targets[target]],
                folder,
                protected=(*protected, engine),
            )
        )
    caches = {
        "list": b"[1]",
        "deep": b"[" * 50_000,
        "nan": b'{"schema": 1, "ranges": {"x": NaN}}',
        "junk": np.random.default_rng(15).bytes(200),
    }
    for name, content in caches.items():
        cache = folder / f"{name}.calib.json"
        cache.write_bytes(content)
        cases.append(
            case(
                f"calib-cache-{name}",
                [
                    "m.onnx",
                    "--int8",
                    "--calib-data",
                    "calib.npz",
                    "--calib-cache",
                    cache.name,
                    "-o",
                    f"{name}.engine",
                    "-q",
                ],
                folder,
                expect="ok",
                allowed=(f"{name}.engine", f"{name}.engine.json"),
            )
        )
    return cases
