"""`make demo-video` end to end (examples/video-pipeline/video_demo.py as a real process, on LocalStack,
jobs as host processes): the progress lines of every unit, then where the results are. On the
example's config with its bucket, queue and metrics port renamed, and its copies in a folder of the
test's own, so it never touches what a newcomer's `make demo-video` made."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.process import REPO, free_port
from tests.support.video import EXAMPLE, example_text, video_tools

pytestmark = pytest.mark.integration


def test_the_video_demo_shows_each_unit_and_where_the_frames_faces_and_report_are(
    localstack_endpoint: str, unique: str, tmp_path: Path
) -> None:
    try:
        video_tools.ensure()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"cannot install {', '.join(video_tools.REQUIREMENTS)}: {exc}")
    bucket = f"media-{unique}"
    text = example_text(bucket).replace("name: video-events", f"name: watcher-demo-video-{unique}")
    config = tmp_path / "watcher.yaml"
    config.write_text(text.replace("port: 9401", f"port: {free_port()}"))
    out = tmp_path / "out"

    command = [sys.executable, str(EXAMPLE / "video_demo.py"), "--runtime", "process"]
    result = subprocess.run(
        [*command, "--config", str(config), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    stdout = result.stdout
    assert result.returncode == 0, stdout + result.stderr
    assert "   split writes to s3://" + bucket + "/frames, which detect reads" in stdout
    progress = re.findall(r"^   \[ *[\d.]+s\] (\S+) +(\S+) +(\S+) +(.*)$", stdout, re.MULTILINE)
    assert [route for route, *_ in progress].count("detect") == 10
    assert (progress[0][0], progress[-1][0]) == ("split", "summary")
    assert all(outcome == "ok" for _, outcome, *_ in progress)
    faces = {name: said for route, _, name, said in progress if route == "detect"}
    assert faces["frame-0010.jpg"].startswith("0 face(s)")  # the cup
    assert faces["frame-0001.jpg"].startswith("1 face(s) [")
    video = re.search(r"== done: request id ([0-9a-f]{32})", stdout)
    assert video is not None
    request_id = video.group(1)
    assert f"frames       s3://{bucket}/frames/{request_id}/  10 frames + _SUCCESS" in stdout
    assert "10 files, 9 frames with a face, 9 faces" in stdout
    assert f"report       s3://{bucket}/reports/{request_id}/report.json" in stdout
    assert re.search(r"== timings: upload -> frames [\d.]+s, -> last detection [\d.]+s, -> report [\d.]+s", stdout)
    copied = sorted(path.name for path in (out / request_id).iterdir())
    assert copied == sorted(["report.json"] + [f"frame-{n:04d}.annotated.jpg" for n in range(1, 11)])
    assert json.loads((out / request_id / "report.json").read_text())["frames_with_faces"] == 9
