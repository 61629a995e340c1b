"""Runners: execute a model or engine on one runtime behind one interface."""

#: Values of ``--backend`` for running: TensorRT if a usable GPU exists, else ONNX Runtime.
RUNNER_BACKENDS = ("auto", "tensorrt", "onnxruntime")
