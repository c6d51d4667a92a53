"""The backfill checkpoint: batches finish out of order, and the checkpoint only ever names a key
before which every batch finished; it belongs to one source and set of routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.commands.backfill.checkpoint import Checkpoint, default_path


def test_the_checkpoint_advances_only_over_a_run_of_finished_batches(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path / "c.json", "s3://b/p", ["r"])
    checkpoint.finished(1, "k19", 10)
    checkpoint.finished(2, "k29", 10)
    assert checkpoint.last_key is None  # batch 0 is still under way
    checkpoint.finished(0, "k09", 10)
    assert checkpoint.last_key == "k29" and checkpoint.sent == 30
    checkpoint.finished(4, "k49", 10)
    checkpoint.write()
    resumed = Checkpoint(tmp_path / "c.json", "s3://b/p", ["r"])
    assert resumed.resume() == "k29"  # batch 3 never finished: resume sends 3 (and 4) again


def test_a_checkpoint_of_another_backfill_is_refused(tmp_path: Path) -> None:
    path = default_path(tmp_path, "s3://b/p", ["r"])
    first = Checkpoint(path, "s3://b/p", ["r"])
    first.finished(0, "k", 1)
    first.write()
    with pytest.raises(ValueError, match="checkpoint of another backfill"):
        Checkpoint(path, "s3://b/other", ["r"]).resume()
    assert default_path(tmp_path, "s3://b/p", ["r"]) != default_path(tmp_path, "s3://b/p", ["r", "s"])
