"""The CLI commands: convert summary and --json, formats, info, python -m and the script."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from onnx_models import conv_relu, save

from trtimport.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "onnx" / "tiny_cnn.onnx"


def test_convert_prints_the_summary(cli, tmp_path: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    proc = cli(str(EXAMPLE), "-o", "tiny.engine", "--target", "sm86,sm89", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "(onnx) -> tensorrt_rtx" in out
    assert "image  1x1x28x28  float32" in out and "prob  1x10  float32" in out
    assert "layers: 14" in out and "targets: sm86, sm89" in out
    assert "build time:" in out and "engine size:" in out
    assert "tiny.engine\n" in out and "tiny.engine.json" in out
    assert (tmp_path / "tiny.engine").is_file()


def test_convert_json_has_the_same_facts(cli, tmp_path: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    model = save(conv_relu(["N", 3, 8, 8]), tmp_path / "m.onnx")
    proc = cli(
        str(model), "--shapes", "x:1x3x8x8/2x3x8x8/4x3x8x8", "--output", "c", "--json", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["inputs"] == [{"name": "x", "shape": [-1, 3, 8, 8], "dtype": "float32"}]
    assert [o["name"] for o in data["outputs"]] == ["c"]
    assert data["layers"] == 2 and data["engine_bytes"] > 0 and data["build_seconds"] > 0
    assert data["files_written"] == [data["engine"], data["engine"] + ".json"]
    assert Path(data["engine"]) == tmp_path / "m.engine"  # default: ./STEM.engine


def test_builder_threads_flag_reaches_the_sidecar(cli, tmp_path: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    proc = cli(str(EXAMPLE), "-o", "t.engine", "--builder-threads", "1", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    sidecar = json.loads((tmp_path / "t.engine.json").read_text())
    assert sidecar["build_options"]["builder_threads"] == 1


def test_input_flag_from_the_cli(cli, tmp_path: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    model = save(conv_relu(["N", 3, "H", "W"]), tmp_path / "m.onnx")
    proc = cli(str(model), "--input", "x:1x3x32x32", "--json", "--no-engine", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["outputs"][0]["shape"] == [1, 4, 30, 30]


def test_input_values_flag_from_the_cli(cli, tmp_path: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "reshape",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = save(helper.make_model(graph), tmp_path / "r.onnx")
    proc = cli(str(model), "--input-values", "shape:4,-1", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    sidecar = json.loads((tmp_path / "r.engine.json").read_text())
    assert sidecar["import_options"]["input_values"] == {"shape": [4, -1]}


def test_bad_flag_values_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(EXAMPLE), "--input", "image:1xAx28"]) == 1
    assert "invalid shape for input 'image' '1xAx28'" in capsys.readouterr().err
    assert main([str(EXAMPLE), "--input-values", "shape:2,x"]) == 1
    assert "invalid --input-values 'shape:2,x'" in capsys.readouterr().err
    assert main([str(EXAMPLE), "--workspace", "lots"]) == 1
    assert "invalid size 'lots'" in capsys.readouterr().err
    assert main(["nowhere.onnx", "--builder-threads", "-2"]) == 1  # before looking at the model
    assert "--builder-threads -2: give 1 or more threads" in capsys.readouterr().err


def test_formats_lists_plugin_distribution_and_missing_extra(cli, tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist = site / "trtimport_needy-2.5.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: trtimport-needy\nVersion: 2.5\n")
    (dist / "entry_points.txt").write_text("[trtimport]\nneedy = needy_plugin\n")
    (site / "needy_plugin.py").write_text(
        "from trtimport import Importer, hookimpl\n"
        "class Needy(Importer):\n"
        "    name = 'needy'\n"
        "    extensions = ('.needy', '.nd')\n"
        "    requires = ('module_that_is_not_installed',)\n"
        "    extra = 'tf'\n"
        "@hookimpl\n"
        "def trtimport_register_importers(register):\n"
        "    register(Needy())\n"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    proc = cli("formats", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    needy = next(line for line in proc.stdout.splitlines() if line.startswith("needy"))
    assert ".needy .nd" in needy and "needy (trtimport-needy 2.5)" in needy
    assert "needs `pip install trtimport[tf]`" in needy
    onnx_line = next(line for line in proc.stdout.splitlines() if line.startswith("onnx"))
    assert "trtimport.importers.onnx (trtimport" in onnx_line and onnx_line.endswith("ok")
    rows = json.loads(cli("formats", "--json", cwd=tmp_path, env=env).stdout)["formats"]
    row = next(r for r in rows if r["format"] == "needy")
    assert row["missing"] == ["module_that_is_not_installed"] and row["available"] is False


def test_info_reports_backend_and_capabilities(cli, tmp_path: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    proc = cli("info", "--json", cwd=tmp_path, env={"TRTIMPORT_BACKEND": "tensorrt_rtx"})
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert facts["backend"]["name"] == "tensorrt_rtx"
    caps = facts["backend"]["capabilities"]
    assert caps["targets"] is True and caps["cache"] == "runtime"
    assert caps["builder_threads"] is True
    assert caps["strongly_typed_only"] is True
    text = cli("info", cwd=tmp_path).stdout
    assert "backend: tensorrt_rtx" in text


def test_unknown_backend_is_a_usage_error(cli, tmp_path: Path) -> None:
    proc = cli("info", cwd=tmp_path, env={"TRTIMPORT_BACKEND": "tensorflow"})
    assert proc.returncode == 0  # info reports the problem instead of failing
    assert "unknown TensorRT backend 'tensorflow'" in proc.stdout


def test_version_and_help_via_python_m(cli, tmp_path: Path) -> None:
    from trtimport import __version__

    assert cli("--version", cwd=tmp_path).stdout.strip() == f"trtimport {__version__}"
    assert "import a model and build a TensorRT engine" in cli("--help", cwd=tmp_path).stdout


def test_console_script_entry_point_is_declared() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        pytest.skip("tomllib needs Python 3.11")
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["trtimport"] == "trtimport._console:run"


def test_console_script_is_quiet_on_ctrl_c_until_the_cli_takes_over(tmp_path: Path) -> None:
    """The script's module imports no CLI module, and ``run`` lets Ctrl-C end the process
    while the CLI is imported; the CLI then puts Python's handler back and runs."""
    import subprocess

    code = (
        "import signal, sys\n"
        "import trtimport._console as console\n"
        "assert 'trtimport.cli' not in sys.modules, 'the CLI was imported with the script'\n"
        "import builtins\n"
        "real_import = builtins.__import__\n"
        "def spy(name, *args, **kwargs):\n"
        "    if name == 'trtimport.cli':\n"
        "        assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL\n"
        "    return real_import(name, *args, **kwargs)\n"
        "builtins.__import__ = spy\n"
        "sys.argv = ['trtimport', '--version']\n"
        "console.run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("trtimport ")
