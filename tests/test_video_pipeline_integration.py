"""The video pipeline end to end, as examples/video-pipeline/watcher.yaml wires it: a video uploaded to
S3 on LocalStack -> `watcher run` (a real process) -> split (ffmpeg) -> frames/<REQUEST_ID>/ and the
_SUCCESS marker -> detect (OpenCV) once per frame -> detections/<REQUEST_ID>/ -> summary (a workflow
call to the report endpoint, polled) -> reports/<REQUEST_ID>/report.json.

The jobs run in the Docker images built from Debian packages (build_images.py) and as host processes
with PyPI's ffmpeg and OpenCV (video_tools.py). The input is made on the spot from scikit-image's
astronaut photo; the camera path tells where her face is in each frame, which the boxes must match."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Queues
from tests.support.containers import areas_in, containers_of, keys, read, unit_lines
from tests.support.process import WatcherProcess, provision_named_queue
from tests.support.video import build_images, example_config, video_input, video_report, video_tools

pytestmark = pytest.mark.integration

FPS = 2  # the route's FPS: frames at 0, 0.5, ... 4.5 s
FRAMES = [f"frame-{n:04d}.jpg" for n in range(1, 11)]


@pytest.fixture(scope="session")
def tools() -> str:
    """PATH with PyPI's ffmpeg and OpenCV first (installed into their own virtualenv once)."""
    try:
        return video_tools.host_path()
    except (RuntimeError, OSError) as exc:  # no package registry: nothing to run the jobs with
        pytest.skip(f"cannot install {', '.join(video_tools.REQUIREMENTS)}: {exc}")


@pytest.fixture(scope="session")
def videos(tools: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    for name in ("astronaut.mp4", "astronaut.avi"):
        video_tools.make_video(folder / name)
    (folder / "not-a-video.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom but nothing else")
    return folder


@pytest.fixture(scope="session")
def images() -> None:
    """The two images, built from Debian packages on first use (minutes), then cached. The host tools
    are installed meanwhile (the input video needs them whatever the runtime)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        tools = pool.submit(video_tools.ensure, lambda _: None)
        build_images.build()
        with contextlib.suppress(RuntimeError, OSError):  # the `tools` fixture says why, and skips
            tools.result()


@pytest.fixture(params=["docker", "process"])
def runtime(request: pytest.FixtureRequest) -> str:
    if request.param == "docker":
        request.getfixturevalue("images")
    return str(request.param)


class Pipeline:
    """The example's config on a bucket and queue of the test's own, its report endpoint, a worker."""

    def __init__(self, runtime: str, tools: str, s3: Any, unique: str, tmp_path: Path) -> None:
        self.bucket, self.s3 = f"media-{unique}", s3
        self.work_dir = tmp_path / "work"
        config = example_config(self.bucket)
        config["queue"]["wait_time_seconds"] = 1
        config["worker"]["shutdown_grace_seconds"] = 5
        for route in config["routes"]:
            if route["handler"]["type"] == "container":
                route["handler"]["work_dir"] = str(self.work_dir)
        self.service = video_report.ReportService(s3, wait_seconds=240).start()
        env = {"VIDEO_RUNTIME": runtime, "VIDEO_REPORT_URL": self.service.url, "PATH": tools}
        self.queue = f"watcher-video-{unique}"
        provision_named_queue(config, self.queue, tmp_path)
        self.worker = WatcherProcess(config, tmp_path, env=env)

    def close(self) -> None:
        try:
            assert self.worker.stop() == 0
        finally:
            self.service.stop()
        assert containers_of(self.work_dir) == [] and areas_in(self.work_dir) == []

    def upload(self, video: Path) -> None:
        self.s3.upload_file(str(video), self.bucket, f"video/in/{video.name}")


@pytest.fixture
def pipeline(runtime: str, tools: str, s3: Any, unique: str, tmp_path: Path) -> Iterator[Pipeline]:
    built = Pipeline(runtime, tools, s3, unique, tmp_path)
    try:
        built.worker.wait_started(60)
        yield built
    finally:
        built.close()


def frame_boxes(detection: dict[str, Any]) -> list[video_input.Box]:
    return [video_input.Box(f["x"], f["y"], f["w"], f["h"]) for f in detection["faces"]]


def test_a_video_becomes_frames_faces_and_one_report(pipeline: Pipeline, runtime: str, videos: Path) -> None:
    bucket, s3 = pipeline.bucket, pipeline.s3
    pipeline.upload(videos / "astronaut.mp4")
    lines = unit_lines(pipeline.worker, 12, timeout=240)  # split, 10 x detect, summary
    assert all(line["outcome"] == "ok" for line in lines), [line for line in lines if line["outcome"] != "ok"]
    assert Counter(line["route"] for line in lines) == {"split": 1, "detect": 10, "summary": 1}
    [split] = [line for line in lines if line["route"] == "split"]
    assert split["runtime"] == runtime and split["outputs"] == 11  # 10 frames + the marker
    video = split["request_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", video)
    assert lines[-1]["route"] == "summary" and lines[-1]["http_status"] == 200  # done once all detections were in

    # split: the frames and the marker in the video's request id folder, the job's log beside them.
    frames = keys(s3, bucket, "frames/")
    assert frames == sorted(
        [f"frames/{video}/{name}" for name in FRAMES]
        + [f"frames/{video}/.watcher/log.txt"]
        + [f"frames/{video}/_SUCCESS"]
    )
    marker = json.loads(read(s3, bucket, f"frames/{video}/_SUCCESS"))
    assert marker == {"request_id": video, "fps": FPS, "count": 10, "frames": FRAMES}
    detect_keys = sorted(line["key"] for line in lines if line["route"] == "detect")
    assert detect_keys == [f"frames/{video}/{name}" for name in FRAMES]  # never a .watcher/ log, never a detection

    # detect: boxes near the face in every frame that shows it, none in the frame of the cup.
    found = keys(s3, bucket, f"detections/{video}/")
    assert found == sorted(
        [f"detections/{video}/{n[:-4]}.json" for n in FRAMES]
        + [f"detections/{video}/{n[:-4]}.annotated.jpg" for n in FRAMES]
    )
    for index, name in enumerate(FRAMES, start=1):
        detection = json.loads(read(s3, bucket, f"detections/{video}/{name[:-4]}.json"))
        assert detection["source"] == f"s3://{bucket}/frames/{video}/{name}"
        expected = video_input.face_at(video_input.frame_time(index, FPS))
        boxes = frame_boxes(detection)
        if expected is None:
            assert boxes == [], f"{name}: no face in the frame, found {boxes}"
        else:
            assert len(boxes) == 1, f"{name}: one face expected near {expected}, found {boxes}"
            assert boxes[0].iou(expected) >= 0.5, f"{name}: {boxes[0]} is not near the face at {expected}"
    annotated = s3.get_object(Bucket=bucket, Key=f"detections/{video}/frame-0005.annotated.jpg")["Body"].read()
    assert annotated[:3] == b"\xff\xd8\xff"  # a JPEG

    # summary: one report for the video.
    report = json.loads(read(s3, bucket, f"reports/{video}/report.json"))
    assert report["video"] == f"s3://{bucket}/video/in/astronaut.mp4"
    assert (report["frames"], report["frames_with_faces"], report["faces"]) == (10, 9, 9)
    assert [entry["frame"] for entry in report["timeline"]] == FRAMES
    assert report["timeline"][9]["faces"] == [] and report["timeline"][9]["time_s"] == 4.5
    assert report["detector"].startswith("OpenCV 4.")
    [run] = pipeline.service.runs.values()
    assert run.status == "COMPLETED" and run.report == f"s3://{bucket}/reports/{video}/report.json"

    # Nothing the pipeline wrote triggers anything else: no cycle.
    time.sleep(3)
    assert len(pipeline.worker.units()) == 12
    assert pipeline.worker.metric("watcher_container_jobs_total", {"route": "detect", "result": "ok"}) == 10


@pytest.mark.parametrize("runtime", ["process"])  # the same scripts and routes in Docker: once is enough here
def test_an_avi_goes_the_same_way_and_a_file_that_is_no_video_goes_to_the_dlq(
    pipeline: Pipeline, videos: Path, sqs: Any
) -> None:
    pipeline.upload(videos / "not-a-video.mp4")
    pipeline.upload(videos / "astronaut.avi")
    lines = unit_lines(pipeline.worker, 13, timeout=180)  # the bad one, then split-avi, 10 x detect, summary
    by_route = Counter((line["route"], line["outcome"]) for line in lines)
    assert by_route == {("split", "permanent"): 1, ("split-avi", "ok"): 1, ("detect", "ok"): 10, ("summary", "ok"): 1}
    [bad] = [line for line in lines if line["outcome"] == "permanent"]
    assert bad["exit_code"] == 65 and "is not a video ffmpeg can read" in bad["error"]
    [avi] = [line for line in lines if line["route"] == "split-avi"]
    report = json.loads(read(pipeline.s3, pipeline.bucket, f"reports/{avi['request_id']}/report.json"))
    assert (report["frames"], report["frames_with_faces"]) == (10, 9)
    [message] = Queues.existing(sqs, pipeline.queue).wait_for_dead_letters(1, 20)  # the file that is no video
    attributes = message["MessageAttributes"]
    assert attributes["watcher.route"]["StringValue"] == "split"
    assert "script exited with code 65 (listed in permanent_exit_codes)" in attributes["watcher.error"]["StringValue"]
    # Of the failed job, only its log: outputs are uploaded on success only, so no marker, no summary.
    failed = keys(pipeline.s3, pipeline.bucket, f"frames/{bad['request_id']}/")
    assert failed == [f"frames/{bad['request_id']}/.watcher/log.txt"]
    assert "moov atom not found" in read(pipeline.s3, pipeline.bucket, failed[0])
