"""The docs match the code: every CLI flag and hook documented, and every example runs."""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from trtimport.cli import build_parser
from trtimport.plugins import hookspecs

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PLUGIN_EXAMPLE = DOCS / "examples" / "plugin_npzmlp.py"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(doc: Path, language: str) -> list[str]:
    """The fenced code blocks of ``language`` in ``doc``."""
    return [body for lang, body in BLOCK.findall(doc.read_text()) if lang == language]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """Subcommand name -> its parser, for every command registered on this branch."""
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("trtimport has no subcommands")


def cli_section(command: str) -> str | None:
    """The text of the ``## `trtimport COMMAND` `` section of docs/cli.md."""
    text = (DOCS / "cli.md").read_text()
    match = re.search(
        rf"^## `trtimport {re.escape(command)}`\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL
    )
    return match.group(1) if match else None


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_cli_flag_is_documented(command: str) -> None:
    section = cli_section(command)
    assert section is not None, f"docs/cli.md has no section '## `trtimport {command}`'"
    # A section may say that it takes convert's import/precision/image flags; those count as
    # documented where convert documents them.
    sections = [section]
    if re.search(r"flags\s+of\s+`convert`", section):
        sections.append(cli_section("convert") or "")
    missing = []
    for action in subcommands()[command]._actions:
        for flag in action.option_strings:
            if flag in ("-h", "--help"):
                continue
            pattern = rf"(?<![\w-]){re.escape(flag)}(?![\w-])"
            if not any(re.search(pattern, text) for text in sections):
                missing.append(flag)
    assert not missing, f"docs/cli.md, `trtimport {command}`: undocumented {missing}"


def _hook_signature(function: object) -> str:
    source = inspect.getsource(function)  # type: ignore[arg-type]
    lines = source[source.index("def ") :].splitlines()
    signature = []
    for line in lines:
        signature.append(line.strip())
        if line.rstrip().endswith(":"):
            break
    return " ".join(signature).replace("( ", "(").replace(", )", ")")


HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("trtimport_"))


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_exact_signature(hook: str) -> None:
    signature = _hook_signature(getattr(hookspecs, hook))
    documented = [b.strip() for b in blocks(DOCS / "plugins.md", "python")]
    assert signature in documented, f"docs/plugins.md lacks ```python\n{signature}\n```"
    assert f"### {hook}" in (DOCS / "plugins.md").read_text()


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_its_own_test(hook: str) -> None:
    tests = (REPO / "tests" / "plugins" / "test_hooks.py").read_text()
    assert f"def test_{hook}(" in tests


def test_plugin_example_is_included_verbatim_and_short() -> None:
    text = (DOCS / "plugins.md").read_text()
    marker = "<!-- include: docs/examples/plugin_npzmlp.py -->\n```python\n"
    start = text.index(marker) + len(marker)
    included = text[start : text.index("```", start)]
    assert included == PLUGIN_EXAMPLE.read_text()
    assert len(included.splitlines()) < 50


def test_plugin_example_converts_a_model_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    import numpy as np

    from trtimport import BuildOptions, convert, load_plugins
    from trtimport.detect import detect_format

    spec = importlib.util.spec_from_file_location("plugin_npzmlp", PLUGIN_EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(1)
    model = tmp_path / "weights.bin"  # no .npz extension: detected by content
    with model.open("wb") as f:
        np.savez(
            f,
            W0=rng.standard_normal((8, 16), dtype=np.float32),
            b0=rng.standard_normal(16, dtype=np.float32),
            W1=rng.standard_normal((16, 4), dtype=np.float32),
            b1=rng.standard_normal(4, dtype=np.float32),
        )
    plugins = load_plugins([module], entry_points=[])
    entry = detect_format(model, plugins)
    assert (entry.importer.name, entry.plugin) == ("npz-mlp", "plugin_npzmlp")
    result = convert(
        model, tmp_path / "mlp.engine", plugins=plugins, build_options=BuildOptions(progress=False)
    )
    assert [(t.name, t.shape) for t in result.inputs] == [("x", (1, 8))]
    assert [(t.name, t.shape) for t in result.outputs] == [("y", (1, 4))]
    assert result.layers == 9  # 2 x (2 constants, matmul, add) + relu
    assert (tmp_path / "mlp.engine").stat().st_size == result.engine_bytes


def _environment() -> dict[str, str]:
    paths = [str(DOCS / "examples")]
    paths += [
        str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    ]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A temporary folder where ``examples/`` is the repository's."""
    (tmp_path / "examples").symlink_to(REPO / "examples")
    return tmp_path


#: Docs whose examples these generic tests run. Every other page's examples need set-up (models
#: made by the test) and are run by that page's own test, which names the page.
GENERIC_DOCS = ("quickstart.md", "cli.md", "plugins.md")


def test_every_doc_page_has_its_examples_run() -> None:
    tests = "\n".join(p.read_text() for p in (REPO / "tests").rglob("test_*.py"))
    for doc in sorted(DOCS.glob("*.md")):
        if doc.name in GENERIC_DOCS or doc.name in ("performance.md", "architecture.md"):
            continue
        assert f'"{doc.name}"' in tests, (
            f"docs/{doc.name}: no test runs its examples (name it in a test)"
        )


def test_architecture_names_files_that_exist() -> None:
    """Every ``src/trtimport/...`` file the extension-point recipes name is there."""
    text = (DOCS / "architecture.md").read_text()
    named = re.findall(r"`(src/trtimport/[\w/]+\.py)`", text)
    assert len(named) >= 5
    assert not [p for p in named if not (REPO / p).is_file()]


def _console_commands() -> list[tuple[str, str]]:
    found = []
    for doc in map(DOCS.joinpath, GENERIC_DOCS):
        for body in blocks(doc, "console"):
            for line in body.splitlines():
                if line.startswith("$ trtimport"):
                    found.append((doc.name, line[2:]))
    return found


@pytest.mark.parametrize(("doc", "command"), _console_commands())
def test_console_examples_run(doc: str, command: str, workdir: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    args = shlex.split(command)[1:]
    proc = subprocess.run(
        [sys.executable, "-m", "trtimport", *args],
        cwd=workdir,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{doc}: `{command}` failed:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr


def _python_examples() -> list[tuple[str, int, str]]:
    found = []
    for doc in map(DOCS.joinpath, GENERIC_DOCS):
        for i, body in enumerate(blocks(doc, "python")):
            if body.strip().startswith("def ") and len(body.strip().splitlines()) == 1:
                continue  # a hook signature, not an example
            found.append((doc.name, i, body))
    return found


@pytest.mark.parametrize(
    ("doc", "index", "code"),
    _python_examples(),
    ids=lambda v: v if isinstance(v, str) and v.endswith(".md") else None,
)
def test_python_examples_run(doc: str, index: int, code: str, workdir: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=workdir,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{doc} python block {index} failed:\n{proc.stderr}"
