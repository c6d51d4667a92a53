"""The SQLite store survives kill -9: a writer killed at an arbitrary instant (three times, at
different points) leaves a database that passes `PRAGMA integrity_check`, in which every unit the
writer reported completed is completed."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.support.process import REPO
from watcher.idempotency.backend import ClaimRequest
from watcher.idempotency.sqlite import SqliteBackend

WRITER = textwrap.dedent(
    """
    import sys, time
    from watcher.idempotency.backend import ClaimRequest
    from watcher.idempotency.sqlite import SqliteBackend

    store = SqliteBackend(sys.argv[1])
    n = int(sys.argv[2])
    while True:
        n += 1
        now = time.time()
        rid = f"{n:032x}"
        store.claim(ClaimRequest("r", rid, "writer", now, now + 60, now + 3600, "s3://b/k"))
        if n % 3:  # two in three complete; the others stay in progress, as a killed unit's would
            store.complete("r", rid, "writer", now, now + 3600)
            print(rid, flush=True)
    """
)


def test_killed_writers_leave_a_sound_database_with_every_reported_completion(tmp_path: Path) -> None:
    path = tmp_path / "idempotency.db"
    reported: list[str] = []
    for run, after in enumerate((150, 700, 1500)):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(run * 1_000_000)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        lines = [writer.stdout.readline().strip() for _ in range(after)]
        writer.send_signal(signal.SIGKILL)  # mid-transaction, most likely: it never stops writing
        writer.wait()
        reported += [line for line in lines if line]
        time.sleep(0.05)
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    completed = {row[0] for row in check.execute("SELECT request_id FROM claims WHERE status = 'completed'")}
    check.close()
    assert len(reported) == 150 + 700 + 1500
    assert set(reported) <= completed
    # And the store goes on working: a completed unit is a duplicate, a new one is taken.
    store = SqliteBackend(str(path))
    now = time.time()
    assert store.claim(ClaimRequest("r", reported[-1], "next", now, now + 60, now + 3600)).state == "completed"
    assert store.claim(ClaimRequest("r", "f" * 32, "next", now, now + 60, now + 3600)).state == "acquired"
    store.close()
