"""Inputs that atheris campaigns (tools/fuzz_campaign.py) found breaking a reader, replayed;
and a few seconds of a campaign, so that the tool itself keeps working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fuzz_harness
import pytest

TOOL = fuzz_harness.REPO / "tools" / "fuzz_campaign.py"
CORPUS = Path(__file__).with_name("corpus")


def _tool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *args],
        cwd=cwd,
        env=fuzz_harness.child_env(),
        preexec_fn=fuzz_harness.limits(fuzz_harness.MEMORY_LIMIT),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_saved_campaign_findings_are_clean_refusals(tmp_path: Path) -> None:
    entries = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    # A keras archive whose zip version zipfile does not implement; a caffemodel ending in a
    # float tag without its value, which made the blob reader loop forever.
    assert len(entries) >= 2
    done = _tool("--replay", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_a_short_campaign_runs(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    done = _tool("sidecar", "--seconds", "4", "--corpus", str(tmp_path / "found"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done" in done.stderr
    assert not (tmp_path / "found").exists()
