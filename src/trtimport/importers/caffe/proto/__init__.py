"""trtimport's Caffe schema (``caffe.proto``) and its generated stubs (``caffe_pb2``)."""
