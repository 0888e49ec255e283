"""The result record (schema version 1) and its JSON file.

A record is written as ``record.json`` (sorted keys, indent 2) in the cell's folder, with
the raw score files in ``scores/<protocol>/<name>.npy`` beside it, so metrics can be
recomputed later (``invbench metrics``). Loading validates against the schema and refuses
other schema versions. The JSON schema is generated from :class:`Record`
(``invbench/records/record.schema.json``; a test keeps the file current).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from invbench.components.protocol import Metric
from invbench.errors import RecordError
from invbench.io import atomic_write_bytes

SCHEMA_VERSION: Literal[1] = 1
SCHEMA_PATH = Path(__file__).with_name("record.schema.json")


class ComponentInfo(BaseModel):
    """Which component ran, in which version, with which options, from where."""

    model_config = ConfigDict(extra="forbid")

    family: str
    name: str
    version: str
    options: dict[str, Any] = {}
    provider: str = Field(description="plugin that registered it")
    dist: str = Field(description="distribution that ships the plugin")
    dist_version: str
    provenance: dict[str, Any] = Field(
        default={}, description="assets (id, sha256), fingerprints, substitutes used"
    )


class CellInfo(BaseModel):
    """The grid cell: the choices that distinguish this record from its neighbours."""

    model_config = ConfigDict(extra="forbid")

    encoder: str
    inverter: str
    dataset: str
    train_dataset: str
    eval_encoder: str
    aligner: str
    protocols: list[str]
    seed: int
    profile: str
    surrogate: str | None = None


class Record(BaseModel):
    """One grid cell's result with full provenance.

    ``metrics`` maps protocol name -> metric name -> :class:`Metric`; ``scores`` maps
    protocol name -> score name -> file path relative to the record's folder.
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    status: Literal["ok", "error"]
    error: str | None = None
    run_id: str
    created_at: str = Field(description="UTC time the record was written (ISO 8601)")
    command: list[str] = Field(description="the command line that produced this record")
    cell: CellInfo
    invbench: dict[str, Any] = Field(description="version, git commit, dirty flag")
    components: dict[str, ComponentInfo] = Field(
        description="role (encoder, eval_encoder, inverter, dataset, train_dataset, aligner, "
        "protocol:NAME) -> component"
    )
    data: dict[str, Any] = Field(
        default={}, description="sample counts: evaluated, failed to acquire, training"
    )
    environment: dict[str, Any]
    timings_s: dict[str, float] = {}
    cache: dict[str, dict[str, int]] = Field(
        default={}, description="per stage: artefacts reused from the cache / computed"
    )
    training: dict[str, Any] = Field(default={}, description="the inverter's fit summary")
    threat: dict[str, Any] = Field(
        default={},
        description="threat model: attacked_encoder (leaked the templates), access "
        "(white-box, black-box, or black-box through an adapter), surrogate, "
        "victim_queries (faces encoded by the victim for training), judged_by",
    )
    metrics: dict[str, dict[str, Metric]] = {}
    scores: dict[str, dict[str, str]] = {}
    score_digests: dict[str, dict[str, str]] = Field(
        default={}, description="protocol -> score name -> sha256 of its .npy file"
    )
    artifacts: dict[str, str] = Field(default={}, description="name -> relative path")


def record_schema() -> dict[str, Any]:
    """The JSON schema of :class:`Record`."""
    schema = Record.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"invbench result record v{SCHEMA_VERSION}"
    return schema


def save_record(record: Record, path: Path) -> None:
    """Write ``record`` as sorted, indented JSON with a trailing newline (atomically)."""
    data = json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(path, data.encode())


def load_record(path: Path) -> Record:
    """Load and validate a record.

    Raises:
        RecordError: When the file is not JSON, has another schema version or does not
            validate.
    """
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RecordError(f"cannot read record {path}: {exc}") from None
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if version != SCHEMA_VERSION:
        raise RecordError(
            f"record {path} has schema_version {version!r}; this invbench reads {SCHEMA_VERSION}",
            hint="upgrade invbench, or re-run the cell to write a current record",
        )
    try:
        return Record.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RecordError(
            f"record {path} does not validate: {where}: {first['msg']} "
            f"({exc.error_count()} error(s))"
        ) from None
