"""Reading tables from files and in-memory frames."""

from mlsmith.data._load import SUPPORTED_SUFFIXES, check_finite, load_table, row_name

__all__ = ["load_table", "check_finite", "row_name", "SUPPORTED_SUFFIXES"]
