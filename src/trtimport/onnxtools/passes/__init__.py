"""Rewrites of an ONNX model before it is parsed, one module per pass (run by ``rewrite``)."""
