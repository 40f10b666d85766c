"""The typed record of a finished run: every committed ``metrics.json`` loads into it, and it round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replication.errors import ReplicationError
from replication.training.evaluate import NLL
from replication.training.record import RunRecord, read_record, write_record

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "results").rglob("metrics/*.json"))


def test_every_committed_metrics_file_loads_into_the_record():
    assert len(COMMITTED) >= 80
    for path in COMMITTED:
        record = read_record(path)
        assert isinstance(record.test_nll, NLL) and record.test_nll.nats > 0, path
        assert record.identity is not None and record.paper.nll > 0 and record.split == "test", path
        raw = json.loads(path.read_text())
        assert record["test_nll"].nats == raw["test_nll"]["nats"] and ("samples" in record) == ("samples" in raw)


def test_a_record_round_trips_through_its_file(tmp_path):
    record = read_record(COMMITTED[0])
    write_record(record, tmp_path / "metrics.json")
    again = read_record(tmp_path / "metrics.json")
    assert again == record
    write_record(again, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == (tmp_path / "metrics.json").read_text()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda raw: raw.pop("epochs"), "lacks the field 'epochs'"),
        (lambda raw: raw.update(epochs="12"), "field 'epochs' is malformed"),
        (lambda raw: raw.update(stopped_early=1), "field 'stopped_early' is malformed"),
        (lambda raw: raw["test_nll"].update(nats=None), "field 'test_nll' is malformed"),
        (lambda raw: raw.update(model_config=[]), "field 'model_config' is malformed"),
        (lambda raw: raw["train_config"].update(optimizer="rmsprop"), "field 'train_config' is malformed"),
    ],
)
def test_a_malformed_record_is_reported_with_its_path_and_field(tmp_path, change, message):
    raw = json.loads(COMMITTED[0].read_text())
    change(raw)
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ReplicationError, match=message) as error:
        read_record(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_an_unreadable_record_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"epochs": 3')  # truncated
    with pytest.raises(ReplicationError, match="not readable JSON") as error:
        read_record(path)
    assert str(path) in str(error.value)
    path.write_text("[1, 2]")
    with pytest.raises(ReplicationError, match="not a metrics record"):
        RunRecord.from_dict(json.loads(path.read_text()), path)
