"""The typed record of a finished run: every committed ``metrics.json`` loads into it, and it round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replication.errors import ReplicationError
from replication.experiment_record import ExperimentRecord
from replication.training.evaluate import NLL
from replication.training.record import RunRecord, read_record, write_record

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "results").rglob("metrics/*.json"))


def test_every_committed_metrics_file_loads_into_the_record():
    assert len(COMMITTED) >= 80
    for path in COMMITTED:
        record = read_record(path, ExperimentRecord)
        assert isinstance(record.test_nll, NLL) and record.test_nll.nats > 0, path
        assert record.identity is not None and record.paper.nll > 0 and record.split == "test", path
        raw = json.loads(path.read_text())
        assert record["test_nll"].nats == raw["test_nll"]["nats"] and ("samples" in record) == ("samples" in raw)


def test_every_committed_record_round_trips_to_the_same_fields_in_the_same_order(tmp_path):
    """Read and written back, each committed experiment record is its own content again (the older records' repeated
    ``train_config.seed`` aside), keys in the same order, and the written file reads back to an equal record."""
    for path in COMMITTED:
        record = read_record(path, ExperimentRecord)
        write_record(record, tmp_path / "metrics.json")
        original, again = json.loads(path.read_text()), json.loads((tmp_path / "metrics.json").read_text())
        original["train_config"].pop("seed", None)
        assert again == original and list(again) == list(original), path
        assert list(again["model_config"]) == list(original["model_config"]), path
        assert read_record(tmp_path / "metrics.json", ExperimentRecord) == record


def test_a_run_record_holds_only_what_training_measured():
    run = read_record(COMMITTED[0])  # as a run folder's record: the plan's fields are the study's
    assert type(run) is RunRecord and not hasattr(run, "paper")
    assert ExperimentRecord.of(run, name="x").name == "x" and ExperimentRecord.of(run).test_nll == run.test_nll


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
