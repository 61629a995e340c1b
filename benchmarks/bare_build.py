"""The baseline: what a TensorRT-RTX user writes by hand to turn an ONNX file into an engine.

``python bare_build.py MODEL.onnx OUT.engine``
"""

from __future__ import annotations

import sys

import tensorrt_rtx as trt


def main(model: str, engine: str) -> None:
    """Parse ``model`` and write the serialized engine to ``engine``."""
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(model):
        sys.exit("parse failed")
    config = builder.create_builder_config()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        sys.exit("build failed")
    with open(engine, "wb") as f:
        f.write(serialized)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
