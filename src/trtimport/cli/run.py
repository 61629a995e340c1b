"""``trtimport run MODEL|ENGINE``: run once and show the outputs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtimport.cli.common import add_output_arguments, image_options
from trtimport.cli.runtime_args import add_model_and_input_arguments, input_files_and_options

if TYPE_CHECKING:
    import numpy as np

HELP = "run a model or engine once on given or generated inputs and show the outputs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``run``."""
    add_model_and_input_arguments(parser)
    g = parser.add_argument_group("results")
    g.add_argument(
        "--save-outputs", type=Path, metavar="OUT.npz", help="save every output to an .npz file"
    )
    g.add_argument(
        "--top-k",
        type=int,
        default=5,
        metavar="K",
        help="classes shown for classifier-like outputs (default 5, 0: none)",
    )
    add_output_arguments(parser)


def top_k(array: np.ndarray, k: int) -> list[tuple[int, float]] | None:
    """Top-k (index, value) of a classifier-like output: one row of at least two scores."""
    import numpy as np

    if k <= 0 or array.size < 2 or array.size != max(array.shape, default=0):
        return None
    if not np.issubdtype(array.dtype, np.number):
        return None
    flat = array.reshape(-1).astype(np.float64)
    order = np.argsort(-flat, kind="stable")[:k]
    return [(int(i), float(flat[i])) for i in order]


def describe_output(name: str, array: np.ndarray, k: int) -> dict[str, Any]:
    """Shape, dtype, min/max/mean/std and top-k of one output."""
    import numpy as np

    info: dict[str, Any] = {"name": name, "shape": list(array.shape), "dtype": str(array.dtype)}
    if array.size and (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        values = array.astype(np.float64)
        info |= {
            "min": float(values.min()),
            "max": float(values.max()),
            "mean": float(values.mean()),
            "std": float(values.std()),
        }
    ranked = top_k(array, k)
    if ranked is not None:
        info["top_k"] = [{"index": i, "value": v} for i, v in ranked]
    return info


def save_outputs(dest: Path, outputs: dict[str, np.ndarray]) -> None:
    """Write every output into an .npz (atomically)."""
    import numpy as np

    from trtimport.core.files import atomic_path

    with atomic_path(dest) as tmp, tmp.open("wb") as f:
        np.savez(f, **outputs)  # type: ignore[arg-type]


def _shape(shape: list[int]) -> str:
    return "x".join(map(str, shape)) or "scalar"


def run(args: argparse.Namespace) -> int:
    """Run ``run``."""
    from trtimport.cli.output import print_json
    from trtimport.runners import make_runner
    from trtimport.runtime.inputs import make_feeds

    files, options = input_files_and_options(args)
    with make_runner(
        args.model, args.runtime, import_options=options, verbosity=args.verbose
    ) as runner:
        feeds = make_feeds(
            runner.inputs(), files, image_options(args), seed=args.seed, shapes=options.input_shapes
        )
        outputs = runner.infer(feeds.arrays)
        label = str(getattr(runner, "label", runner.name))
        notes = list(dict.fromkeys([*runner.notes, *feeds.notes]))
    if args.save_outputs is not None:
        save_outputs(args.save_outputs, outputs)
    described = [describe_output(n, a, args.top_k) for n, a in outputs.items()]
    if args.json:
        print_json(
            {
                "model": str(args.model),
                "runner": label,
                "inputs": [
                    {
                        "name": n,
                        "shape": list(a.shape),
                        "dtype": str(a.dtype),
                        "source": feeds.sources[n],
                    }
                    for n, a in feeds.arrays.items()
                ],
                "outputs": described,
                "saved": str(args.save_outputs) if args.save_outputs else None,
                "notes": notes,
            }
        )
        return 0
    if args.quiet:
        return 0
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{args.model}")
    print(f"  runner: {label}")
    print("  inputs:")
    for name, array in feeds.arrays.items():
        print(f"    {name}  {_shape(list(array.shape))}  {array.dtype}  <- {feeds.sources[name]}")
    print("  outputs:")
    for info in described:
        stats = ""
        if "min" in info:
            stats = (
                f"  min {info['min']:.6g}  max {info['max']:.6g}  mean {info['mean']:.6g}"
                f"  std {info['std']:.6g}"
            )
        print(f"    {info['name']}  {_shape(info['shape'])}  {info['dtype']}{stats}")
        if "top_k" in info:
            ranked = ", ".join(f"{t['index']} ({t['value']:.6g})" for t in info["top_k"])
            print(f"      top-{len(info['top_k'])}: {ranked}")
    if args.save_outputs is not None:
        print(f"  saved outputs to {args.save_outputs}")
    return 0
