"""State shared by the audit checks: the table, the encoded target and the decisions so far."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlsmith.schema import Schema

__all__ = ["AuditContext", "ID_NAME"]

#: column names that say "key" (the schema's pattern, with more separators and an "id_" prefix)
ID_NAME = re.compile(r"(^|[_\s.-])(id|uuid|guid|key|index|idx|row)$|^(id|uuid)[_\s.-]|"
                     r"^unnamed: ?\d+$", re.IGNORECASE)


@dataclass
class AuditContext:
    """What every check reads, and where it records columns and rows to remove.

    ``y`` holds class codes ``0..K-1`` (classification) or floats (regression); ``valid`` marks
    rows whose target is present.
    """

    df: pd.DataFrame
    target: str
    schema: Schema
    y: np.ndarray
    valid: np.ndarray
    classification: bool
    n_classes: int
    class_names: list[Any]
    n_folds: int
    seed: int
    time_column: str | None
    allow: frozenset[str]
    clock: Callable[[], float]
    deadline: float
    sample_rows: int
    drop_columns: list[str] = field(default_factory=list)
    drop_rows: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.intp))
    recommendations: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.df)

    def out_of_time(self) -> bool:
        return self.clock() > self.deadline

    def role(self, name: str) -> str | None:
        try:
            return self.schema.column(name).role
        except KeyError:
            return None

    def feature_columns(self) -> list[str]:
        """The schema's features that the audit keeps."""
        return [c for c in self.schema.features if c in self.df.columns
                and c not in self.drop_columns]

    def numeric_features(self, codes: bool = False) -> list[str]:
        """Features with the numeric role (and integer-coded categoricals when ``codes``)."""
        out = []
        for c in self.feature_columns():
            info = self.schema.column(c)
            if info.role == "numeric" or (codes and info.role == "categorical"
                                          and info.numeric_codes):
                if pd.api.types.is_numeric_dtype(self.df[c].dtype) \
                        and not pd.api.types.is_bool_dtype(self.df[c].dtype):
                    out.append(c)
        return out

    def kept_rows(self) -> np.ndarray:
        """Positions of rows that stay (not removed) and have a target."""
        keep = self.valid.copy()
        keep[self.drop_rows] = False
        return np.flatnonzero(keep)
