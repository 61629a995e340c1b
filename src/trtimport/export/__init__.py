"""A TensorRT network written back out as ONNX: the writer, the converters per layer family."""
