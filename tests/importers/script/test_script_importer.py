"""Network scripts through the CLI: a good script builds; every bad one is one clear error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from conftest import run_cli
from mnist_weights import MNIST, write_lenet_npz

pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def lenet_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LeNet's real weights as .npz (read from the caffemodel by OpenCV)."""
    return write_lenet_npz(tmp_path_factory.mktemp("weights") / "lenet.npz")


GOOD_HEAD = """\
from trtimport.netbuild import NetBuilder


def build_network(network, weights, trt):
    nb = NetBuilder(network, weights, trt)
    x = nb.input("data", (1, 1, 28, 28))
"""


def _script(folder: Path, body: str, name: str = "net.py") -> Path:
    path = folder / name
    path.write_text(GOOD_HEAD + body)
    return path


def test_lenet_script_builds_an_engine(tmp_path: Path, lenet_npz: Path) -> None:
    """`trtimport lenet_net.py --weights lenet.npz` builds, exports the network, exits 0."""
    engine, net_onnx = tmp_path / "lenet.engine", tmp_path / "lenet_net.onnx"
    proc = run_cli(
        str(MNIST / "lenet_net.py"),
        "--weights",
        str(lenet_npz),
        "-o",
        str(engine),
        "--save-network-onnx",
        str(net_onnx),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert engine.stat().st_size > 100_000 and net_onnx.is_file()
    assert '"format": "script"' in proc.stdout and '"name": "prob"' in proc.stdout


@pytest.mark.parametrize(
    ("body", "kind", "line", "message"),
    [
        (
            "    x = nb.conv(x, 20, 5, kernel='conv1/0', bias='conv1/1', name='conv1'\n",
            "syntax",
            7,
            "syntax error in the network script",
        ),
        (
            "    x = nb.conv(x, 20, 5, kernel='conv1/0', bias='conv1/1', name='conv1')\n"
            "    raise RuntimeError('layer count wrong')\n",
            "exception",
            8,
            "build_network raised RuntimeError: layer count wrong",
        ),
        (
            "    x = nb.conv(x, 20, 5, kernel='conv1/0', bias='conv1/1', name='conv1')\n",
            "no outputs",
            4,
            "marked no outputs. Call `network.mark_output(tensor)`",
        ),
        (
            "    x = nb.conv(x, 20, 5, kernel='conv1/9', bias='conv1/1', name='conv1')\n"
            "    nb.mark_output(x)\n",
            "weight name",
            7,
            "no weight named 'conv1/9'; did you mean",
        ),
        (
            "    x = nb.conv(x, 20, 3, kernel='conv1/0', bias='conv1/1', name='conv1')\n"
            "    nb.mark_output(x)\n",
            "weight shape",
            7,
            "weight 'conv1/0' has shape [20, 1, 5, 5]",
        ),
    ],
)
def test_bad_scripts(
    tmp_path: Path, lenet_npz: Path, body: str, kind: str, line: int, message: str
) -> None:
    """Each failure: exit 1, the script's file:line, the cause, no traceback, no engine."""
    script = _script(tmp_path, body)
    engine = tmp_path / "net.engine"
    proc = run_cli(str(script), "--weights", str(lenet_npz), "-o", str(engine))
    assert proc.returncode == 1, (kind, proc.stdout, proc.stderr)
    assert f"{script}:{line}" in proc.stderr, (kind, proc.stderr)
    assert message in proc.stderr, (kind, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("error:") == 1
    assert (
        not engine.exists()
        and not list(tmp_path.glob("*.engine*"))
        and not list(tmp_path.glob(".net*"))
    )


def test_output_flag_names_outputs_for_scripts(tmp_path: Path, lenet_npz: Path) -> None:
    """A script that marks nothing builds when --output names a tensor."""
    script = _script(
        tmp_path, "    nb.conv(x, 20, 5, kernel='conv1/0', bias='conv1/1', name='conv1')\n"
    )
    proc = run_cli(
        str(script), "--weights", str(lenet_npz), "--output", "conv1", "--no-engine", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    assert '"name": "conv1"' in proc.stdout


def test_detection_reads_but_never_runs(tmp_path: Path) -> None:
    """A .py is a script only if it defines build_network, and detecting it runs nothing."""
    from trtimport.detect import detect_format
    from trtimport.errors import ModelParseError
    from trtimport.plugins.manager import load_plugins

    marker = tmp_path / "ran"
    script = tmp_path / "net.py"
    touch = f"open({str(marker)!r}, 'w').close()\n"
    script.write_text(touch + "\ndef build_network(network, weights, trt):\n    pass\n")
    plugins = load_plugins()
    assert detect_format(script, plugins).importer.name == "script"
    assert not marker.exists()

    plain = tmp_path / "helper.py"
    plain.write_text(touch)
    importer = plugins.importer("script").importer  # type: ignore[union-attr]
    assert not importer.detect(plain, plain.read_bytes())
    from trtimport.importers.script import load_script

    with pytest.raises(ModelParseError, match="must define `def build_network"):
        load_script(plain)
    assert not marker.exists()
