"""The monitoring files (deploy/prometheus/alerts.yml, deploy/grafana/watcher-dashboard.json) as
data, promtool, and a real Prometheus server started by a test.

Debian's `prometheus` package brings both binaries (`apt-get install prometheus`; it enables a
system service of its own, which these tests never use: they start their own server on a free port
of 127.0.0.1, with a configuration and a data folder in the test's temporary folder).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.process import REPO, free_port, wait_until

ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = REPO / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "watcher-dashboard.json"
RUNBOOK_BASE = "https://github.com/example/watcher/blob/main/README.md"
JOB = "watcher"  # the scrape job the alerts expect

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
MISSING_PROMTOOL = "promtool is not installed (Debian: apt-get install prometheus)"
MISSING_PROMETHEUS = "the prometheus server is not installed (Debian: apt-get install prometheus)"


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None, MISSING_PROMTOOL
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=120)


# --- the alert rules


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    duration: str | None
    labels: dict[str, str]
    annotations: dict[str, str]


def alerts(path: Path = ALERTS) -> list[Alert]:
    document = yaml.safe_load(path.read_text())
    found = []
    for group in document["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                found.append(
                    Alert(
                        rule["alert"],
                        rule["expr"],
                        rule.get("for"),
                        dict(rule.get("labels", {})),
                        dict(rule.get("annotations", {})),
                    )
                )
    return found


def runbook_url(alert_name: str) -> str:
    """The README heading "Runbook: <AlertName>" has this anchor on GitHub."""
    return f"{RUNBOOK_BASE}#runbook-{alert_name.lower()}"


def with_every_expr(path: Path, expr: str, into: Path) -> Path:
    """A copy of the rule file whose every alert expression is ``expr`` (to prove the tests bite)."""
    document = yaml.safe_load(path.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["expr"] = expr
    into.write_text(yaml.safe_dump(document, sort_keys=False))
    return into


# --- the dashboard


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref_id: str
    expr: str  # as written, with Grafana variables
    panel_type: str


def dashboard() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return result


def panels(board: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included, rows themselves excluded."""
    found: list[dict[str, Any]] = []
    for panel in (board or dashboard())["panels"]:
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def panel_queries(board: dict[str, Any] | None = None) -> list[PanelQuery]:
    return [
        PanelQuery(panel["title"], target["refId"], target["expr"], panel["type"])
        for panel in panels(board)
        for target in panel.get("targets", [])
    ]


def variable_queries(board: dict[str, Any] | None = None) -> dict[str, str]:
    """Template variable name -> its ``label_values(...)`` query."""
    return {var["name"]: var["definition"] for var in (board or dashboard())["templating"]["list"]}


def substitute(expr: str, variables: dict[str, str]) -> str:
    """Grafana's interpolation of ``$name`` / ``${name}`` / ``[[name]]`` with the given values."""

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in variables:
            raise KeyError(f"no value for the dashboard variable ${name} in {expr}")
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]", value, expr)


def metric_names(expr: str) -> set[str]:
    """The watcher metric names an expression reads."""
    return set(re.findall(r"\bwatcher_[a-z0-9_]+\b", expr))


def exported_sample_names() -> set[str]:
    """Every sample name watcher's own registry can export (counters as ``_total``, histograms as
    ``_bucket`` / ``_count`` / ``_sum``, infos as ``_info``), labelled or not."""
    from watcher.metrics import Metrics

    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "info": ("_info",),
        "gauge": ("",),
        "summary": ("", "_count", "_sum", "_created"),
    }
    return {
        family.name + suffix for family in Metrics().registry.collect() for suffix in suffixes.get(family.type, ("",))
    }


# --- a real Prometheus server


class PrometheusServer:
    """``prometheus`` on 127.0.0.1:<free port>, scraping ``targets`` every ``scrape_interval`` under
    job ``JOB``, with ``rule_files`` loaded. Stopped (SIGTERM, then SIGKILL) by ``stop``."""

    def __init__(self, workdir: Path, targets: list[str], rule_files: list[Path], scrape_interval: str = "1s") -> None:
        assert PROMETHEUS is not None, MISSING_PROMETHEUS
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": targets}]}],
        }
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "prometheus.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_until(self._ready, 60, 0.2, what=f"prometheus ready on {self.url} (log: {self.log_path})")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited {self.process.returncode}: {self.log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the ``data`` of a success, else an AssertionError with the error."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        if body.get("warnings"):
            raise AssertionError(f"{path} {params}: warnings {body['warnings']}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query; the result as a list of samples (scalars wrapped as one)."""
        data = self.api("query", query=expr, time=str(at if at is not None else time.time()))
        if data["resultType"] in ("vector", "matrix"):
            return list(data["result"])
        return [{"metric": {}, "value": data["result"]}]

    def targets_up(self) -> bool:
        active = self.api("targets", state="active")["activeTargets"]
        return bool(active) and all(target["health"] == "up" for target in active)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
