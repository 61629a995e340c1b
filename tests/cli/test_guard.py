"""What every command checks before it starts: numbers, paths, signals."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

import pytest

from trtimport.cli import guard
from trtimport.errors import UsageError


@pytest.mark.parametrize(
    ("dest", "value", "message"),
    [
        ("top_k", -1, "--top-k -1"),
        ("streams", 0, "--streams 0"),
        ("warmup", 1e308, "--warmup"),
        ("atol", -1.0, "--atol -1"),
        ("scale", float("nan"), "--scale nan"),
        ("calib_percentile", 0.0, "--calib-percentile"),
        ("std", "1,0", "a standard deviation of 0"),
        ("mean", "inf", "--mean 'inf'"),
        ("builder_threads", 0, "--builder-threads 0"),
    ],
)
def test_bad_numbers_are_usage_errors(dest: str, value: object, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("+", r"\+")):
        guard.check_numbers(argparse.Namespace(**{dest: value}))


def test_good_numbers_pass() -> None:
    guard.check_numbers(
        argparse.Namespace(top_k=0, streams=2, warmup=0.0, atol=0.0, scale=0.5, std="0.5,2")
    )


def test_refit_in_place_is_allowed_but_not_over_its_weights(tmp_path: Path) -> None:
    engine, weights = tmp_path / "e.engine", tmp_path / "w.onnx"
    engine.write_bytes(b"e")
    weights.write_bytes(b"w")
    args = argparse.Namespace(command="refit", engine=engine, weights=weights, model=None)
    guard.check_paths(argparse.Namespace(**vars(args), output=None))
    with pytest.raises(UsageError, match="is the input"):
        guard.check_paths(argparse.Namespace(**vars(args), output=weights))


def test_sigterm_raises_keyboard_interrupt_until_restored() -> None:
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    sigint = signal.getsignal(signal.SIGINT)
    guard.install_signal_handlers()
    try:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
        assert guard.signal_exit_code() == 128 + signal.SIGTERM
        guard.record_signal(signal.SIGHUP)  # as a cancelled build does (cli/progress.py)
        assert guard.signal_exit_code() == 128 + signal.SIGHUP
    finally:
        guard.restore_signal_handlers()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        signal.signal(signal.SIGINT, sigint)
