"""Column roles and task inference."""

from mlsmith.schema._schema import (
    TASKS,
    ColumnInfo,
    Schema,
    Task,
    coerce_frame,
    infer_schema,
    infer_task,
)

__all__ = ["ColumnInfo", "Schema", "Task", "TASKS", "infer_schema", "infer_task", "coerce_frame"]
