"""Write an ONNX model with several GB of external data, without holding its weights.

``python benchmarks/big_onnx.py FOLDER [--gib 3.0]`` writes ``FOLDER/big.onnx`` and
``FOLDER/big.onnx.data``: a chain of 8192x8192 float32 MatMul + Relu layers (256 MiB of
weights each, enough of them for the size asked), input ``x`` 1x8192, seeded uniform weights
scaled so the activations stay finite. The weights are generated and written 64 MiB at a time,
so the script needs little memory whatever the size; the model file itself is a few KB.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

WIDTH = 8192
CHUNK_ROWS = 2048  # 64 MiB of float32 rows per write


def write_big_onnx(folder: Path, gib: float) -> Path:
    """Write the model and its data file into ``folder``; returns the model's path."""
    import onnx
    from onnx import TensorProto, helper

    layers = math.ceil(gib * 2**30 / (WIDTH * WIDTH * 4))
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / "big.onnx"
    data_name = model_path.name + ".data"
    rng = np.random.default_rng(0)
    scale = np.float32(2.0 / WIDTH)
    initializers = []
    nodes = []
    current = "x"
    with (folder / data_name).open("wb") as data:
        for i in range(layers):
            offset = data.tell()
            for _ in range(0, WIDTH, CHUNK_ROWS):
                data.write((rng.random((CHUNK_ROWS, WIDTH), np.float32) * scale).tobytes())
            tensor = TensorProto(name=f"w{i}", dims=[WIDTH, WIDTH], data_type=TensorProto.FLOAT)
            tensor.data_location = TensorProto.EXTERNAL
            length = WIDTH * WIDTH * 4
            for key, value in (("location", data_name), ("offset", offset), ("length", length)):
                tensor.external_data.add(key=key, value=str(value))
            initializers.append(tensor)
            out = "y" if i == layers - 1 else f"h{i}"
            nodes.append(helper.make_node("MatMul", [current, f"w{i}"], [f"m{i}"], name=f"fc{i}"))
            nodes.append(helper.make_node("Relu", [f"m{i}"], [out], name=f"relu{i}"))
            current = out
    graph = helper.make_graph(
        nodes,
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, WIDTH])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model_path.write_bytes(model.SerializeToString())
    onnx.checker.check_model(str(model_path))
    return model_path


def main() -> None:
    """Command line: the folder and the size in GiB."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--gib", type=float, default=3.0)
    args = parser.parse_args()
    path = write_big_onnx(args.folder, args.gib)
    data = path.with_name(path.name + ".data")
    print(f"wrote {path} ({path.stat().st_size} bytes) and {data} ({data.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
