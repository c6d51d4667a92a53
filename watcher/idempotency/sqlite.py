"""The embedded backend: one SQLite file per host (the worker's state directory).

One connection per process, in WAL mode, used from one thread of its own (watcher.idempotency.store
runs every call there): readers never block the writer, and a process killed at any instant leaves
the database consistent (a committed claim is in the WAL; an uncommitted one never happened).
Several workers on one host may share the file: each claim is one ``BEGIN IMMEDIATE`` transaction,
and a busy database is waited for, not failed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from watcher.idempotency.backend import COMPLETED, IN_PROGRESS, ClaimRequest, ClaimResult, ClaimState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    route TEXT NOT NULL,
    request_id TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT NOT NULL,
    lease_until REAL NOT NULL,
    expires_at REAL NOT NULL,
    completed_at REAL,
    subject TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (route, request_id)
) WITHOUT ROWID
"""
# Taken when there is no record, the record expired, an in-progress lease expired, or (force) the
# record is completed: the same condition as the DynamoDB backend's.
_CLAIM = f"""
INSERT INTO claims (route, request_id, status, owner, lease_until, expires_at, subject)
VALUES (:route, :request_id, '{IN_PROGRESS}', :owner, :lease_until, :expires_at, :subject)
ON CONFLICT (route, request_id) DO UPDATE SET
    status = '{IN_PROGRESS}', owner = excluded.owner, lease_until = excluded.lease_until,
    expires_at = excluded.expires_at, completed_at = NULL, subject = excluded.subject
WHERE claims.expires_at < :now
    OR (claims.status = '{IN_PROGRESS}' AND claims.lease_until < :now)
    OR (:force AND claims.status = '{COMPLETED}')
"""
_BUSY_TIMEOUT_MS = 30_000


class SqliteBackend:
    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are ours (BEGIN IMMEDIATE), not the module's.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")  # WAL: a process crash loses no commit
        self._db.execute(_SCHEMA)

    def claim(self, request: ClaimRequest) -> ClaimResult:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            changed = db.execute(
                _CLAIM,
                {
                    "route": request.route,
                    "request_id": request.request_id,
                    "owner": request.owner,
                    "lease_until": request.lease_until,
                    "expires_at": request.expires_at,
                    "subject": request.subject,
                    "now": request.now,
                    "force": int(request.force),
                },
            ).rowcount
            row = None
            if changed == 0:
                row = db.execute(
                    "SELECT status, owner, lease_until, completed_at FROM claims WHERE route = ? AND request_id = ?",
                    (request.route, request.request_id),
                ).fetchone()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if changed:
            return ClaimResult("acquired", request.owner, request.lease_until)
        if row is None:  # released between the two statements: cannot be, inside one transaction
            raise RuntimeError(f"claim of {request.route}/{request.request_id} neither taken nor found")
        status, owner, lease_until, completed_at = row
        state: ClaimState = "completed" if status == COMPLETED else "in_progress"
        return ClaimResult(state, owner, lease_until, completed_at)

    def complete(self, route: str, request_id: str, owner: str, now: float, expires_at: float) -> bool:
        return self._change(
            f"UPDATE claims SET status = '{COMPLETED}', completed_at = ?, expires_at = ?, lease_until = ? "
            f"WHERE route = ? AND request_id = ? AND owner = ? AND status = '{IN_PROGRESS}'",
            (now, expires_at, now, route, request_id, owner),
        )

    def release(self, route: str, request_id: str, owner: str) -> bool:
        return self._change(
            f"DELETE FROM claims WHERE route = ? AND request_id = ? AND owner = ? AND status = '{IN_PROGRESS}'",
            (route, request_id, owner),
        )

    def renew(self, route: str, request_id: str, owner: str, lease_until: float) -> bool:
        return self._change(
            f"UPDATE claims SET lease_until = ? WHERE route = ? AND request_id = ? AND owner = ? "
            f"AND status = '{IN_PROGRESS}'",
            (lease_until, route, request_id, owner),
        )

    def forget_expired(self, now: float) -> int:
        """Delete what expired (SQLite has no TTL of its own); called now and then."""
        return int(self._db.execute("DELETE FROM claims WHERE expires_at < ?", (now,)).rowcount)

    def _change(self, statement: str, parameters: tuple[object, ...]) -> bool:
        return bool(self._db.execute(statement, parameters).rowcount == 1)

    def close(self) -> None:
        self._db.close()
