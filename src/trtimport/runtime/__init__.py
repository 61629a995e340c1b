"""Runners: execute a model or engine on one runtime behind one interface."""

#: Values of ``--runtime`` (``make_runner(runtime=...)``): TensorRT if a usable GPU exists, else
#: ONNX Runtime. "Backend" is reserved for the TensorRT flavour (``trtimport.get_backend``).
RUNTIMES = ("auto", "tensorrt", "onnxruntime")
