"""Logging as `watcher run` configures it: JSON lines on stdout, levels filtered, secrets masked by
field name (nested too) and by value (in fields, tracebacks and library lines). Each case runs in a
fresh interpreter: configure_logging sets process-wide state."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from typing import Any

from tests.support.process import REPO

SECRET = 'pa"ss\\word-7f3a9c'  # a quote and a backslash: JSON escapes them, masking must not care


def run(code: str) -> list[dict[str, Any]]:
    script = textwrap.dedent(
        f"""
        import logging
        from watcher.logs import configure_logging, get_logger, log_enabled, register_secret
        configure_logging("info", "json")
        log = get_logger("watcher.test")
        SECRET = {SECRET!r}
        """
    ) + textwrap.dedent(code)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout and json.dumps(SECRET)[1:-1] not in result.stdout
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_one_json_object_per_line_with_event_level_and_timestamp() -> None:
    [line] = run('log.info("message done", action="deleted", units=1)')
    assert line["event"] == "message done" and line["level"] == "info" and line["action"] == "deleted"
    assert line["timestamp"].endswith("Z")


def test_levels_below_the_configured_one_are_not_written() -> None:
    lines = run(
        """
        import json
        log.debug("hidden")
        print(json.dumps({"event": "enabled", "debug": log_enabled(logging.DEBUG), "info": log_enabled(logging.INFO)}))
        """
    )
    assert lines == [{"event": "enabled", "debug": False, "info": True}]


def test_fields_named_like_secrets_are_masked_at_any_depth() -> None:
    [line] = run(
        "import collections\n"
        'log.info("call", token="abc123", headers={"Authorization": "Bearer x", "accept": "json"}, n=[{"password": 1}],'
        ' ordered=collections.OrderedDict(api_key="k"))'  # a subclass of dict: not taken for a plain value
    )
    assert line["token"] == "***"
    assert line["headers"] == {"Authorization": "***", "accept": "json"}
    assert line["n"] == [{"password": "***"}]
    assert line["ordered"] == {"api_key": "***"}


def test_a_registered_secret_is_masked_wherever_its_value_appears() -> None:
    lines = run(
        """
        register_secret(SECRET)
        log.info("request", url="https://x/?k=" + SECRET, detail=["a", SECRET])
        try:
            raise ValueError("refused " + SECRET)
        except ValueError:
            log.exception("handler raised an unexpected error")
        logging.getLogger("botocore.x").warning("library says %s", SECRET)
        """
    )
    assert [line["event"] for line in lines] == ["request", "handler raised an unexpected error", "library says ***"]
    assert lines[0]["url"] == "https://x/?k=***" and lines[0]["detail"] == ["a", "***"]
    assert "ValueError: refused ***" in lines[1]["exception"]
    assert lines[2]["logger"] == "botocore.x" and lines[2]["level"] == "warning"


def test_timestamps_are_utc_with_microseconds_and_the_current_time() -> None:
    lines = run(
        """
        import time
        log.info("first")
        time.sleep(1.1)  # into another second: the cached date and time must move on
        log.info("second")
        """
    )
    stamps = [line["timestamp"] for line in lines]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp) for stamp in stamps), stamps
    first, second = (datetime.fromisoformat(stamp.replace("Z", "+00:00")) for stamp in stamps)
    assert abs((datetime.now(UTC) - second).total_seconds()) < 30
    assert 1.1 <= (second - first).total_seconds() < 10


def test_bound_fields_reach_later_lines_of_the_task_and_of_tasks_it_starts_not_earlier_ones() -> None:
    lines = run(
        """
        import asyncio
        from watcher.logs import bind_log_fields

        async def child(name):
            await asyncio.sleep(0.05)
            log.info(name)

        async def message():
            bind_log_fields(message_id="m-1", route="a")
            early = asyncio.create_task(child("started before the unit's fields"))
            bind_log_fields(route="b", outcome="ok")
            late = asyncio.create_task(child("started after"))
            await asyncio.gather(early, late)
            log.info("own field wins", outcome="retry")
            logging.getLogger("botocore.x").warning("library line")

        asyncio.run(message())
        log.info("outside the task")
        """
    )
    by_event = {line.pop("event"): line for line in lines}
    fields = {"message_id", "route", "outcome"}
    seen = {event: {k: v for k, v in line.items() if k in fields} for event, line in by_event.items()}
    assert seen == {
        "started before the unit's fields": {"message_id": "m-1", "route": "a"},
        "started after": {"message_id": "m-1", "route": "b", "outcome": "ok"},
        "own field wins": {"message_id": "m-1", "route": "b", "outcome": "retry"},
        "library line": {"message_id": "m-1", "route": "b", "outcome": "ok"},
        "outside the task": {},
    }


def test_a_library_line_with_a_saved_exc_info_keeps_its_traceback() -> None:
    [line] = run(
        """
        try:
            raise ValueError("refused")
        except ValueError as exc:
            saved = (type(exc), exc, exc.__traceback__)
        logging.getLogger("botocore.x").error("later", exc_info=saved)  # outside the except block
        """
    )
    assert "ValueError: refused" in line["exception"]
