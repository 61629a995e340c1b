"""Every module of the package imports without the optional dependencies installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
