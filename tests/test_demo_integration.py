"""`make demo` end to end (scripts/demo.py as a real process, on LocalStack): the `fire-insights`
route is a real workflow call to the Fire-Insights-like server the demo starts, and the CSV goes
through the container job. The demo's own config with its bucket, queue and metrics port renamed,
so the test never touches what a newcomer's `make demo` made on the shared LocalStack."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.process import REPO, free_port

pytestmark = pytest.mark.integration


def test_the_demo_shows_the_workflow_run_the_marker_started_and_the_container_jobs_output(
    localstack_endpoint: str, unique: str, tmp_path: Path
) -> None:
    bucket, port = f"data-lake-{unique}", free_port()
    text = (REPO / "config" / "watcher.yaml").read_text()
    text = text.replace("bucket: data-lake", f"bucket: {bucket}").replace("s3://data-lake/", f"s3://{bucket}/")
    text = text.replace("name: watcher-events", f"name: watcher-demo-{unique}").replace("port: 9400", f"port: {port}")
    config = tmp_path / "watcher.yaml"
    config.write_text(text)

    result = subprocess.run(
        [sys.executable, "scripts/demo.py", "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    post = out.index("== Fire Insights: POST /api/v1/workflow/execute (Authorization: Bearer ***)")
    assert (
        f'{{"workflowId":"42","parameters":"--var datapath=s3://{bucket}/events/2026/11/23"}} -> 200, execution'
        in out[post:]
    )
    statuses = re.findall(r"GET /api/v1/workflow-executions/(\d+)/status -> 200 (\w+)", out)
    assert [status for _, status in statuses] == ["RUNNING", "RUNNING", "COMPLETED"]  # polled until it finished
    assert f"route=fire-insights outcome=ok dataset=s3://{bucket}/events/2026/11/23 http_status=200" in out
    assert out.index("status -> 200 COMPLETED") < out.index("route=fire-insights outcome=ok")
    assert f"route=raw-csv outcome=ok dataset=s3://{bucket}/raw/sales 2026-11.csv exit_code=0 outputs=1" in out
    assert "     | lines: 3" in out
    assert 'watcher_records_total{outcome="ok",route="fire-insights"} 1' in out
    assert 'watcher_http_requests_total{route="fire-insights",status="200"} 4' in out
    assert "Traceback" not in out + result.stderr
