"""The video pipeline's configuration and pieces, without LocalStack: `watcher check` prints the chain
split -> detect / summary and refuses the variants that would loop; the report is built from the
marker and the detections; the input video's camera path says where the face is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.process import REPO
from tests.support.video import EXAMPLE, example_text, video_input, video_report

CONFIG = EXAMPLE / "watcher.yaml"
FEEDS = [
    "feeds: route split writes to s3://media/frames, which route detect reads",
    "feeds: route split writes to s3://media/frames, which route summary reads",
    "feeds: route split-avi writes to s3://media/frames, which route detect reads",
    "feeds: route split-avi writes to s3://media/frames, which route summary reads",
]


def check(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher", "check", "-c", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


def variant(tmp_path: Path, old: str, new: str) -> Path:
    text = example_text()
    assert old in text
    path = tmp_path / "variant.yaml"
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize("runtime", ["docker", "process"])
def test_watcher_check_prints_the_chain_and_finds_no_cycle(runtime: str) -> None:
    result = check(CONFIG.relative_to(REPO), VIDEO_RUNTIME=runtime)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "examples/video-pipeline/watcher.yaml: valid (4 routes: split, split-avi, detect, summary)"
    assert lines[1:] == FEEDS  # detect writes under detections/, which no route reads; summary writes nothing


def test_detect_writing_under_frames_would_feed_itself_and_is_refused(tmp_path: Path) -> None:
    path = variant(tmp_path, "output: s3://media/detections/", "output: s3://media/frames/annotated/")
    result = check(path)
    assert result.returncode == 2
    assert "routes[2] (detect).handler.output: s3://media/frames/annotated is watched by the route itself" in (
        result.stderr
    )
    assert "(detect -> detect)" in result.stderr


def test_the_check_knows_request_id_folders(tmp_path: Path) -> None:
    # split writing to s3://media/video/ puts its files under video/<32 hex digits>/..., which the
    # route's own prefix video/in/ never matches: no cycle.
    path = variant(tmp_path, "output: s3://media/frames/ ", "output: s3://media/video/ ")
    result = check(path)
    assert result.returncode == 0, result.stderr
    assert "feeds: route split writes to s3://media/video" not in result.stdout
    # Without the request id folder, its files could be video/in/...: refused.
    path = variant(
        tmp_path, "output: s3://media/frames/ ", "output: s3://media/video/\n      request_id_folder: false "
    )
    result = check(path)
    assert result.returncode == 2
    assert "routes[0] (split).handler.output: s3://media/video is watched by the route itself" in result.stderr


def test_split_refuses_an_fps_that_is_not_a_number_before_running_ffmpeg(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "FPS": "2; rm -rf /", "TMP_OUTPUT_DIR": str(tmp_path)}
    result = subprocess.run(["/bin/sh", str(EXAMPLE / "split.sh")], env=env, capture_output=True, text=True)
    assert result.returncode == 64  # listed in the route's permanent_exit_codes
    assert "FPS must be a number" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_report_lists_every_frame_with_its_time_boxes_and_annotated_image() -> None:
    manifest = {"request_id": "r" * 32, "fps": 2, "count": 3, "frames": ["frame-0001.jpg", "frame-0002.jpg", "f.jpg"]}
    face = {"x": 10, "y": 20, "w": 30, "h": 30}
    detections: dict[str, dict[str, Any]] = {
        "frame-0001.jpg": {"faces": [], "detector": "OpenCV 4.6.0 Haar"},
        "frame-0002.jpg": {"faces": [face, face], "detector": "OpenCV 4.6.0 Haar"},
        "f.jpg": {"faces": [face], "detector": "OpenCV 4.6.0 Haar"},
    }
    uris = {"frames": "s3://media/frames/" + "r" * 32, "detections": "s3://media/detections/" + "r" * 32}
    report = video_report.build_report(manifest, detections, video_uri="s3://media/video/in/a.mp4", uris=uris)
    assert (report["frames"], report["frames_with_faces"], report["faces"]) == (3, 2, 3)
    assert report["first_face_s"] == 0.5
    assert report["video"] == "s3://media/video/in/a.mp4" and report["detector"] == "OpenCV 4.6.0 Haar"
    assert [entry["time_s"] for entry in report["timeline"]] == [0.0, 0.5, 1.0]
    assert report["timeline"][2] == {
        "frame": "f.jpg",
        "time_s": 1.0,
        "faces": [face],
        "annotated": f"s3://media/detections/{'r' * 32}/f.annotated.jpg",
    }


def test_report_keys_skip_empty_prefixes() -> None:
    assert video_report.detection_key("detections", "abc", "frame-0001.jpg") == "detections/abc/frame-0001.json"
    assert video_report.detection_key("", "abc", "frame-0001.jpg") == "abc/frame-0001.json"
    assert video_report.split_uri("s3://media/frames/abc/") == ("media", "frames/abc")
    with pytest.raises(ValueError):
        video_report.split_uri("media/frames")


def test_the_camera_path_keeps_the_face_in_view_until_the_cut_and_none_after() -> None:
    scale = video_input.SIZE / video_input.PHOTO
    first = video_input.face_at(0.0)
    assert first is not None
    assert (first.x, first.y, first.w) == pytest.approx(
        (video_input.FACE.x * scale, video_input.FACE.y * scale, video_input.FACE.w * scale)
    )
    for tenth in range(0, round(video_input.CUT * 10)):
        box = video_input.face_at(tenth / 10)
        assert box is not None
        assert box.x >= 0 and box.x + box.w <= video_input.SIZE and box.y >= 0 and box.y + box.h <= video_input.SIZE
    zoomed = video_input.face_at(2.0)
    assert zoomed is not None and zoomed.w > 1.8 * first.w  # zoomed in
    assert video_input.face_at(video_input.CUT) is None
    assert video_input.frame_time(10, 2) == 4.5  # frame-0010 of `ffmpeg -vf fps=2`: after the cut
    assert video_input.Box(0, 0, 10, 10).iou(video_input.Box(5, 0, 10, 10)) == pytest.approx(1 / 3)
