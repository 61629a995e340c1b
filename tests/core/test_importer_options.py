"""Typed per-importer options: defaults, typed values, values read back from a sidecar."""

from __future__ import annotations

import pytest

from trtimport.core.options import ImportOptions
from trtimport.errors import UsageError
from trtimport.importers.tensorflow.options import TensorFlowOptions


def test_defaults_when_none_given() -> None:
    assert ImportOptions().importer_options_for(TensorFlowOptions) == TensorFlowOptions()


def test_typed_value_is_returned_as_given() -> None:
    given = TensorFlowOptions(inputs_as_nchw=("a", "b"))
    options = ImportOptions(importer_options={TensorFlowOptions.key: given})
    assert options.importer_options_for(TensorFlowOptions) is given


def test_recorded_mapping_round_trips() -> None:
    given = TensorFlowOptions(inputs_as_nchw=("a:0",))
    recorded = given.as_dict()
    assert recorded == {"inputs_as_nchw": ["a:0"]}
    options = ImportOptions(importer_options={"tensorflow": recorded})
    assert options.importer_options_for(TensorFlowOptions) == given


def test_unknown_recorded_field_is_usage_error() -> None:
    options = ImportOptions(importer_options={"tensorflow": {"inputs_as_nhwc": ["a"]}})
    with pytest.raises(UsageError, match="tensorflow options have no 'inputs_as_nhwc'"):
        options.importer_options_for(TensorFlowOptions)


def test_wrong_types_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="inputs_as_nchw must be a tuple"):
        TensorFlowOptions(inputs_as_nchw="x")  # type: ignore[arg-type]
    options = ImportOptions(importer_options={"tensorflow": 3})  # type: ignore[dict-item]
    with pytest.raises(UsageError, match="takes TensorFlowOptions"):
        options.importer_options_for(TensorFlowOptions)
