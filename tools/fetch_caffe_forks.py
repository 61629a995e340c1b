"""Fetch the Caffe fork deploy nets whose licences forbid redistributing them with trtimport.

ENet (TimoSaemann/ENet) and SegNet (alexgkendall/SegNet-Tutorial) publish their prototxts under
CC BY-NC 4.0 (personal and research use), which an Apache-2.0 repository cannot carry, and
SENet (hujie-frank/SENet) and ShuffleNet (farmingyard/ShuffleNet) publish none, so they
are not committed (tests/data/caffe/SOURCES.md lists what is). This script downloads each file
from GitHub at the commit recorded here and keeps it only when its SHA-256 is the recorded one.
The tests that use them (tests/importers/caffe/test_caffe_fork_nets.py) call :func:`fetch`
themselves and skip when the files cannot be had (offline).

Run from the repository root: ``python tools/fetch_caffe_forks.py [--dest DIR]``. Exit code 0
when every file is present, 1 when a download failed, 2 when a file's digest differs.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DEST = REPO / ".cache" / "caffe-forks"


@dataclass(frozen=True)
class ForkNet:
    """One file of a public repository, pinned by commit and digest."""

    repo: str
    commit: str
    path: str
    sha256: str
    licence: str

    @property
    def url(self) -> str:
        """The raw file at the pinned commit."""
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.path}"


#: Local file name -> where it comes from.
NETS: dict[str, ForkNet] = {
    "ENet.prototxt": ForkNet(
        "TimoSaemann/ENet",
        "037b2b2bfaf0ddeafb1a69344c19c6203629480f",
        "prototxts/enet_deploy_final.prototxt",
        "e93331af261c79f7ceeb82bbd955023fe2ea897ef60968fbdcbfe9cdde3825a4",
        "CC BY-NC 4.0",
    ),
    "SegNet-basic.prototxt": ForkNet(
        "alexgkendall/SegNet-Tutorial",
        "63b77a90c6ba5c8b04635c13b0290a70bb8a47ab",
        "Models/segnet_basic_inference.prototxt",
        "e52a2b3c7ca1bf73dc1a6fce240c051784eddb8640185c20753560c579a05f18",
        "CC BY-NC 4.0",
    ),
    # SENet's deploy nets and farmingyard's ShuffleNet publish no licence (all rights
    # reserved): downloaded for the tests, never committed. The ShuffleNet file has CRLF lines.
    "SE-ResNet-50.prototxt": ForkNet(
        "hujie-frank/SENet",
        "2c51ece024a8ed0c8d0f52ba060cd87d268c84ae",
        "models/SE-ResNet-50.prototxt",
        "eebbe3c64201f34492caf501498f6031152edbd4a44ed106de69441060ff117c",
        "none published",
    ),
    "ShuffleNet-1x-g3.prototxt": ForkNet(
        "farmingyard/ShuffleNet",
        "5c75e18ecdc40b6e405710fd4774c1aaf39b3baf",
        "shufflenet_1x_g3_deploy.prototxt",
        "b71b4a5f7c14c8c410410d212c8822ed0be9365dbcc944e1e16ced03467850c4",
        "none published",
    ),
}


def sha256(data: bytes) -> str:
    """The SHA-256 of ``data``, hex."""
    return hashlib.sha256(data).hexdigest()


def present(dest: Path = DEFAULT_DEST) -> bool:
    """True when every file is in ``dest`` (digests are checked when fetching)."""
    return all((dest / name).is_file() for name in NETS)


def fetch(dest: Path = DEFAULT_DEST, timeout: float = 10.0) -> int:
    """Fetch whatever is missing into ``dest``; returns the exit code (see the module doc)."""
    dest.mkdir(parents=True, exist_ok=True)
    status = 0
    for name, net in NETS.items():
        target = dest / name
        if target.is_file():
            continue
        try:
            with urllib.request.urlopen(net.url, timeout=timeout) as response:
                data = response.read()
        except (urllib.error.URLError, OSError) as err:
            print(f"fetch_caffe_forks: could not download {net.url}: {err}", file=sys.stderr)
            status = max(status, 1)
            continue
        if sha256(data) != net.sha256:
            print(
                f"fetch_caffe_forks: {net.url} has another SHA-256 than recorded; not kept",
                file=sys.stderr,
            )
            status = 2
            continue
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        partial.replace(target)
    return status


def main() -> int:
    """Command line: ``--dest DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="where to put the files")
    dest = parser.parse_args().dest
    status = fetch(dest)
    for name in NETS:
        print(f"{'ok     ' if (dest / name).is_file() else 'missing'} {name}")
    return status


if __name__ == "__main__":
    sys.exit(main())
