"""Option values the command line offers before it imports anything heavy.

``trtimport --help`` builds its parsers from these; :mod:`trtimport.core.options` (dataclasses,
and with them ``inspect``, ``ast`` and ``dis``: ~8 ms) is imported only once a command runs.
"""

#: INT8 calibration methods (:mod:`trtimport.onnxtools.passes.calibrate`).
CALIB_METHODS = ("max", "percentile", "entropy", "mse")
#: The default: the only method at >= 97 % top-1 agreement with fp32 on every model and data
#: set measured in docs/precision.md (entropy fell to 88 % on sparse images).
DEFAULT_CALIB_METHOD = "percentile"
