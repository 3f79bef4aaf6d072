"""Reading tables from files and in-memory frames."""

from mlsmith.data._load import SUPPORTED_SUFFIXES, check_finite, load_table

__all__ = ["load_table", "check_finite", "SUPPORTED_SUFFIXES"]
