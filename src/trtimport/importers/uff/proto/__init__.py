"""trtimport's UFF schema (``uff.proto``) and its generated stubs (``uff_pb2``)."""
