"""Building engines: the TensorRT builder configuration, the engine and its sidecar, logging."""
