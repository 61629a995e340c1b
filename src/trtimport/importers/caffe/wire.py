"""Field numbers of Caffe's messages (``caffe.proto``), for code that walks their wire format.

Kept apart from :mod:`~trtimport.importers.caffe.weights` (numpy, the generated stubs) so that
format detection can use them without importing either.
"""

# Field numbers (caffe.proto).
NET_LAYER, NET_LAYERS = 100, 2
LAYER_NAME, LAYER_BLOBS = 1, 7
V1_NAME, V1_BLOBS, V1_V0 = 4, 6, 1
V0_NAME, V0_BLOBS = 1, 50
BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH = 1, 2, 3, 4
BLOB_DATA, BLOB_SHAPE, BLOB_DOUBLE_DATA = 5, 7, 8
BLOB_RAW_DATA_TYPE, BLOB_RAW_DATA = 10, 12  # NVCaffe
SHAPE_DIM = 1
