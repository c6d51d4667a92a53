"""`watcher run` as a real subprocess, with its JSON log lines collected for assertions."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
_UNIT_SUMMARIES = ("unit finished", "message done", "message will be retried", "message dead-lettered")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class WatcherProcess:
    def __init__(self, config: dict[str, Any], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.metrics_port = free_port()
        config.setdefault("metrics", {})["port"] = self.metrics_port
        config["metrics"].setdefault("host", "127.0.0.1")
        config.setdefault("logging", {})["format"] = "json"
        self.config_path = workdir / f"watcher-{self.metrics_port}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.lines: list[dict[str, Any]] = []
        self.raw_output: list[str] = []
        self._lock = threading.Lock()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "-c", str(self.config_path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self.raw_output.append(line)
                with contextlib.suppress(ValueError):
                    self.lines.append(json.loads(line))

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [line for line in self.lines if line.get("event") == name]

    def wait_for_event(self, name: str, count: int = 1, timeout: float = 30) -> list[dict[str, Any]]:
        return list(
            wait_until(
                lambda: len(self.events(name)) >= count and self.events(name), timeout, what=f"{count}x {name!r}"
            )
        )

    def units(self) -> list[dict[str, Any]]:
        """The summary line of every unit of work, in order: ``unit finished`` for a message with
        several units; for a message with one, the message's own line, which carries the unit's
        fields (``message done``, ``message will be retried``, ``message dead-lettered``)."""
        with self._lock:
            return [line for line in self.lines if line.get("event") in _UNIT_SUMMARIES and "outcome" in line]

    def wait_for_units(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        found = wait_until(lambda: len(self.units()) >= count and self.units(), timeout, what=f"{count} unit(s)")
        return list(found)[:count]

    def wait_started(self, timeout: float = 30) -> None:
        self.wait_for_event("worker started", timeout=timeout)

    def http_get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The value of one sample scraped from /metrics over HTTP (0 when absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        _, text = self.http_get("/metrics")
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in (labels or {}).items()):
                    return float(sample.value)
        return 0.0

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        return int(self.process.returncode)

    def output(self) -> str:
        with self._lock:
            return "".join(self.raw_output)


def base_config(queue_url: str, routes: list[dict[str, Any]], **sections: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "aws": {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:4566"},
        "queue": {"url": queue_url, "wait_time_seconds": 1, "visibility_timeout": 30, "max_in_flight": 4},
        "worker": {"shutdown_grace_seconds": 5, "retry_initial_seconds": 1, "retry_max_seconds": 2},
        "routes": routes,
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config


def provision_named_queue(config: dict[str, Any], queue_name: str, workdir: Path) -> Path:
    """Point ``config`` at a queue by name and run `watcher provision` on it (a real subprocess):
    bucket, queue, DLQ and notifications. Returns the config file."""
    config["queue"].pop("url", None)
    config["queue"]["name"] = queue_name
    path = workdir / "provision.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "provision", "-c", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return path


def calls(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
