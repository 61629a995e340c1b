"""ONNX plumbing: reading the wire format, building graphs, parsing into TensorRT, rewrites."""
