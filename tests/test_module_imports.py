"""The package's modules: each imports without the optional dependencies, imports point down
the layers of docs/architecture.md, and there are no import cycles.

The layer rules read imports with ``ast`` from the source, so every import counts: module level,
inside functions, and the ones only type checkers see (``if TYPE_CHECKING:``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: Optional dependencies (extras) that no module may need at import time.
OPTIONAL = ("tensorflow", "tf2onnx", "onnxruntime", "cv2", "cuda", "torch")

_SCRIPT = textwrap.dedent(
    """
    import importlib, importlib.abc, pkgutil, sys

    BLOCKED = {blocked!r}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked optional dependency: {{name}}")
            return None

    sys.meta_path.insert(0, Block())
    import trtimport
    names = ["trtimport"]
    for info in pkgutil.walk_packages(trtimport.__path__, "trtimport."):
        names.append(info.name)
    failed = []
    for name in names:
        if name.endswith("__main__"):
            continue
        try:
            importlib.import_module(name)
        except Exception as err:
            failed.append(f"{{name}}: {{type(err).__name__}}: {{err}}")
    print(len(names))
    print("\\n".join(failed))
    """
)


def test_every_module_imports_without_optional_dependencies() -> None:
    script = _SCRIPT.format(blocked=set(OPTIONAL))
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    count, *failed = proc.stdout.strip().splitlines()
    assert int(count) >= 20
    assert not [f for f in failed if f], "\n".join(failed)


SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "trtimport"

#: Bottom to top: a module may import its own layer and the layers below it, never above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("trtimport.errors",),
    ("trtimport.core",),
    ("trtimport.plugins",),
    ("trtimport.build",),
    ("trtimport.runtime",),
    ("trtimport.onnxtools",),
    ("trtimport.export",),
    ("trtimport.importers",),
    ("trtimport.netbuild",),
    (
        "trtimport.detect",
        "trtimport.populate",
        "trtimport.pipeline",
        "trtimport.runners",
        "trtimport.refit",
    ),
    ("trtimport.verify",),
    ("trtimport",),
    ("trtimport.cli", "trtimport.__main__", "trtimport._console"),
)

#: ``from trtimport import __version__`` reads a constant of the package itself: allowed anywhere.
ANYWHERE = {("trtimport", "__version__")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "proto" not in p.parts}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every trtimport module ``name`` imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "trtimport"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "trtimport":
                continue
            for alias in node.names:
                if (target, alias.name) in ANYWHERE:
                    continue
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    found.discard(name)
    return found


def _layer(name: str) -> int:
    best, rank = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank >= 0, f"{name} is in no layer: add it to LAYERS and docs/architecture.md"
    return rank


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_every_module_has_a_layer() -> None:
    for name in _modules():
        _layer(name)


def test_imports_point_down_the_layers() -> None:
    wrong = [
        f"{name} ({LAYERS[_layer(name)][0]}) imports {dep} ({LAYERS[_layer(dep)][0]})"
        for name, deps in _graph().items()
        for dep in sorted(deps)
        if _layer(dep) > _layer(name)
    ]
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph = _graph()
    # A package's __init__ runs when any of its modules is imported; an import of a module is
    # an edge to it (its package's __init__ is not counted, as it imports nothing by default).
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_layers_see_a_real_graph() -> None:
    graph = _graph()
    assert len(graph) > 60
    assert "trtimport.core.options" in graph["trtimport.pipeline"]


_UFF_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys
    from pathlib import Path

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked!r}:
                raise ImportError(f"blocked: {{name}}")
            return None

    sys.meta_path.insert(0, Block())
    from trtimport import BuildOptions, ImportOptions, convert

    out = Path({out!r})
    result = convert(
        Path({model!r}),
        out / "allcnn.engine",
        import_options=ImportOptions(input_shapes={{"input_layer_1": (1, 28, 28, 1)}}),
        build_options=BuildOptions(progress=False),
        save_onnx_to=out / "allcnn.onnx",
    )
    assert result.format == "uff", result.format
    print(sorted(m for m in sys.modules if m.split(".")[0] in {blocked!r}))
    """
)


def test_uff_importer_never_imports_tensorflow(shared_uff: Path, tmp_path: Path) -> None:
    """A UFF file converts and builds with TensorFlow, tf2onnx and Keras unimportable."""
    pytest.importorskip("tensorrt_rtx")
    script = _UFF_SCRIPT.format(
        blocked={"tensorflow", "tf2onnx", "keras"},
        model=str(shared_uff / "cgarciae-allcnn" / "all_cnn.uff"),
        out=str(tmp_path),
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert (tmp_path / "allcnn.engine").stat().st_size > 0
