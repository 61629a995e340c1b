"""One converter per TensorRT layer type: layer attributes and weights -> ONNX nodes.

Each converter gets the :class:`~trtimport.export.graph.GraphWriter` and the layer (already cast
to its subclass) and emits nodes: the main one carries the layer's name, helpers are named
``LAYER/...``, and the layer's output tensors keep their TensorRT names. A variant ONNX
cannot express raises :class:`~trtimport.errors.UnsupportedLayerError` with the reason.

One module per layer family, each with its own :class:`~trtimport.export.layers.common.Converters`
table; :mod:`trtimport.export.registry` lists the families and merges their tables.
"""
