"""The run directory and the Run object."""

from mlsmith.run._run import Run, load
from mlsmith.run._rundir import (
    MANIFEST,
    RunWriter,
    check_destination,
    is_run_dir,
    library_versions,
    read_manifest,
    verify,
)

__all__ = ["Run", "load", "RunWriter", "MANIFEST", "check_destination", "is_run_dir",
           "library_versions", "read_manifest", "verify"]
