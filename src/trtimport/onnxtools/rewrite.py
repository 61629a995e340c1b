"""The ONNX rewrites asked for by import options: dynamic batch, INT8 Q/DQ, fp16/bf16.

They run in that order on the ONNX model every ONNX-based importer hands to TensorRT's parser
(:func:`trtimport.onnxtools.parse.prepare_onnx`): the batch first so calibration can batch,
then INT8 calibration on the float model, then the precision rewrite around the Q/DQ pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trtimport.core.importer import ImportContext


#: With ``--batch`` alone, external tensors of this many bytes or more are not read (shape
#: constants, which the batch rewrite reads and changes, are far smaller).
KEEP_EXTERNAL_FROM = 1 << 20


def rewrite_onnx(ctx: ImportContext, path: Path) -> Path:
    """Apply ``--batch``, ``--int8`` and ``--precision`` (with ``--keep-fp32``/``--max-error``)
    to ``path``; returns the file to parse."""
    options = ctx.options
    precision = options.precision
    if options.batch is None and not precision.active:
        return path
    from trtimport.onnxtools.external_data import link_external_data, load_model
    from trtimport.onnxtools.graph import save_model

    # --batch alone changes the graph, not the weights: big ones stay in their files, unread.
    weights_kept = not precision.active
    model = load_model(path, keep_external_from=KEEP_EXTERNAL_FROM if weights_kept else None)
    if options.batch is not None:
        from trtimport.onnxtools.passes.batch import make_batch_dynamic

        model, notes = make_batch_dynamic(model)
        ctx.notes.extend(notes)
    if precision.active:
        from trtimport.onnxtools.passes.calibrate import default_calib_cache
        from trtimport.onnxtools.passes.lowering import lower_model

        model, notes, report = lower_model(
            model,
            precision,
            ctx.backend.name,
            ctx.workdir,
            precision.calib_cache or default_calib_cache(ctx.source, None),
            options.input_shapes,
        )
        ctx.notes.extend(notes)
        if report is not None:
            ctx.records["precision"] = report.as_dict()
    dest = ctx.workdir / f"{path.stem}.prepared.onnx"
    if weights_kept:
        link_external_data(model, path, dest.parent)
    save_model(model, dest)
    return dest
