"""Runners: execute a model or engine on one runtime behind one interface."""

#: Values of ``--runtime`` (``make_runner(runtime=...)``): TensorRT if a usable GPU exists, else
#: ONNX Runtime. "Backend" is reserved for the TensorRT flavour (``trtimport.get_backend``).
RUNTIMES = ("auto", "tensorrt", "onnxruntime")

#: What trtexec does when no flag says otherwise, by major version: copy inputs and outputs
#: (trtexec 10; 11 leaves transfers out), capture CUDA graphs and spin-wait on events (11 only).
#: ``bench --trtexec 10|11`` starts from one of these; explicit flags override each setting.
TRTEXEC_DEFAULTS: dict[int, dict[str, bool]] = {
    10: {"data_transfers": True, "cuda_graph": False, "spin_wait": False},
    11: {"data_transfers": False, "cuda_graph": True, "spin_wait": True},
}
