"""Result records: one JSON file per grid cell, validated on load."""

from invbench.records.record import (
    SCHEMA_VERSION,
    CellInfo,
    ComponentInfo,
    Record,
    load_record,
    record_schema,
    save_record,
)

__all__ = [
    "SCHEMA_VERSION",
    "CellInfo",
    "ComponentInfo",
    "Record",
    "load_record",
    "record_schema",
    "save_record",
]
