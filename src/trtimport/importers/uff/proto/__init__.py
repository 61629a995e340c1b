"""trtimport's UFF schema (``uff_schema.proto``) and its generated stubs (``uff_schema_pb2``)."""
