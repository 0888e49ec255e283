import json

import pytest

from invbench.errors import RecordError
from invbench.records import load_record, record_schema, save_record
from invbench.records.record import SCHEMA_PATH, CellInfo, Record


def minimal(**over):
    data = dict(
        status="ok",
        run_id="r1",
        created_at="2026-01-01T00:00:00+00:00",
        command=["invbench", "run"],
        cell=CellInfo(
            encoder="e",
            inverter="i",
            dataset="d",
            train_dataset="t",
            eval_encoder="e",
            aligner="a",
            protocols=["type1"],
            seed=0,
            profile="quick",
        ),
        invbench={"version": "0.1.0"},
        components={},
        environment={},
    )
    data.update(over)
    return Record(**data)


def test_schema_file_is_current():
    """Regenerate with: python -c 'from invbench.records.record import *; ...' (see docs)."""
    assert json.loads(SCHEMA_PATH.read_text()) == record_schema()


def test_round_trip_is_sorted_and_stable(tmp_path):
    path = tmp_path / "record.json"
    save_record(minimal(), path)
    text = path.read_text()
    assert text.endswith("\n") and json.loads(text)["schema_version"] == 1
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert load_record(path) == minimal()


def test_other_schema_versions_are_refused(tmp_path):
    path = tmp_path / "record.json"
    save_record(minimal(), path)
    data = json.loads(path.read_text())
    data["schema_version"] = 2
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match="schema_version 2"):
        load_record(path)


def test_invalid_records_are_refused_with_the_field(tmp_path):
    path = tmp_path / "record.json"
    save_record(minimal(), path)
    data = json.loads(path.read_text())
    data["metrics"] = {"type1": {"tar": {"value": "high"}}}
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match="metrics.type1.tar"):
        load_record(path)
