"""Per-family preprocessing pipelines and input preparation."""

from mlsmith.preprocess._prepare import InputWarning, prepare_features
from mlsmith.preprocess._transformers import (
    NATIVE_MAX_LEVELS,
    ONEHOT_MAX_LEVELS,
    DatetimeExpander,
    build_preprocessor,
    make_model_pipeline,
)

__all__ = ["prepare_features", "InputWarning", "DatetimeExpander", "build_preprocessor",
           "make_model_pipeline", "ONEHOT_MAX_LEVELS", "NATIVE_MAX_LEVELS"]
