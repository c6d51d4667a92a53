"""`make demo-video`: the video pipeline end to end on the embedded LocalStack.

Builds the two images (first time only) or, without Docker, uses PyPI's ffmpeg and OpenCV on the host;
makes the input video; provisions examples/video-pipeline/watcher.yaml (bucket media, queue
video-events and its DLQ, the notifications); starts the report endpoint and `watcher run`; uploads
the video; shows each unit as it finishes; then says where the frames, detections, annotated images
and report are, with counts and timings, and copies the report and the annotated images to
build/video-demo/<REQUEST_ID>/.

    python examples/video-pipeline/video_demo.py [--runtime auto|docker|process] [--video FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for folder in (REPO, HERE):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import boto3  # noqa: E402
import build_images  # noqa: E402
import video_input  # noqa: E402
import video_report  # noqa: E402
import video_tools  # noqa: E402

from scripts.demo import is_unit_summary, read_lines  # noqa: E402
from watcher.app import load_config  # noqa: E402
from watcher.commands.provision import provision  # noqa: E402
from watcher.route_graph import feeds  # noqa: E402

CONFIG = HERE / "watcher.yaml"
OUT = REPO / "build" / "video-demo"
PREFIXES = ("video/in/", "frames/", "detections/", "reports/")


class Clock:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.start


def shown(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def unit_text(line: dict[str, Any]) -> str:
    """One progress line: the route, the outcome, what the unit did."""
    route, key = line["route"], line.get("key", "")
    tail = (line.get("output_tail") or "").strip().splitlines()
    said = tail[-1].split(": ", 1)[-1] if tail else ""  # the script's last line, after "<what> <file>: "
    if route == "summary":
        said = f"report endpoint answered {line.get('http_status')}, polled until the report was written"
    timing = f" (script {line['script_ms'] / 1000:.1f}s)" if "script_ms" in line else ""
    error = f" error: {line['error']}" if line.get("error") else ""
    return f"{route:<9} {line['outcome']:<4} {key.rsplit('/', 1)[-1]:<18} {said}{timing}{error}"


def clear(s3: Any, bucket: str) -> int:
    """Remove what a previous run of the demo left (S3 gives the same video the same request id)."""
    removed = 0
    for prefix in PREFIXES:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            batch = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if batch:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": batch})
                removed += len(batch)
    return removed


def prepare(args: argparse.Namespace, runtime: str, tools: Path) -> tuple[Any, str, Path]:
    """The input video, the config provisioned, the bucket emptied of a previous run's objects."""
    video = args.video
    if video is None:
        video = video_tools.make_video(args.out / "astronaut.mp4")
        print(
            f"== input {shown(video)}: {video.stat().st_size // 1024} KiB, {video_input.DURATION:g} s,"
            f" scikit-image's astronaut photo zoomed and panned, then a cup (no face) from {video_input.CUT} s"
        )
    os.environ.update(VIDEO_RUNTIME=runtime, PATH=f"{tools}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    config = load_config(args.config)
    bucket = next(route.bucket for route in config.routes if route.bucket)
    print(f"== provisioning {shown(args.config)}; the routes chain this way:")
    for source, targets in feeds(config.routes).items():
        for target, uri in targets:
            print(f"   {source} writes to {uri}, which {target} reads")
    provision(config, say=lambda line: print("  ", line))
    s3 = boto3.client(
        "s3",
        endpoint_url=config.aws.endpoint_url,
        region_name=config.aws.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    if removed := clear(s3, bucket):
        print(f"   removed {removed} objects a previous run left in s3://{bucket}")
    return s3, bucket, video


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="make demo-video: the video pipeline end to end on LocalStack")
    parser.add_argument("--runtime", choices=("auto", "docker", "process"), default="auto")
    parser.add_argument("--video", type=Path, help="upload this file instead of the astronaut video")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the report")
    parser.add_argument("--config", type=Path, default=CONFIG, help="another config (same routes, other names)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to copy the results (default {OUT})")
    args = parser.parse_args(argv)
    clock = Clock()
    runtime = args.runtime if args.runtime != "auto" else ("docker" if video_tools.docker_answers() else "process")
    print(f"== make demo-video: video -> frames -> faces -> report (jobs run with runtime: {runtime})")
    setup: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=1) as pool:
        images = None
        if runtime == "docker":  # built while the rest is prepared: the first time, minutes
            print("== images from Debian packages (the first time: a few minutes; then cached)")
            images = pool.submit(build_images.build, say=lambda line: print("  ", line, flush=True))
        started = clock()
        tools = video_tools.ensure(say=lambda line: print("  ", line, flush=True))
        setup["tools"] = clock() - started
        s3, bucket, video = prepare(args, runtime, tools)
        if images is not None:
            for tag, seconds in images.result().items():
                print(f"   {tag}: ready in {seconds:.0f}s")
            setup["images ready at"] = clock()
    with video_report.ReportService(s3) as service:
        os.environ["VIDEO_REPORT_URL"] = service.url  # the summary route's endpoint
        print(f"== report endpoint {service.url}{video_report.EXECUTE} (video_report.py)")
        worker = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "-c", str(args.config)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "WATCHER_LOGGING_FORMAT": "json"},
        )
        lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=read_lines, args=(worker.stdout, lines), daemon=True).start()
        try:
            return follow(args, s3, bucket, video, service, worker, lines, clock, setup)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)


def follow(
    args: argparse.Namespace,
    s3: Any,
    bucket: str,
    video: Path,
    service: video_report.ReportService,
    worker: subprocess.Popen[str],
    lines: queue.Queue[dict[str, Any]],
    clock: Clock,
    setup: dict[str, float],
) -> int:
    deadline = time.monotonic() + 60
    while (line := next_line(lines, deadline)) is not None and line.get("event") != "worker started":
        pass
    if line is None:
        print("the worker did not start within 60 s", file=sys.stderr)
        return 1
    key = f"video/in/{video.name}"
    print(f"== worker started; uploading s3://{bucket}/{key}")
    uploaded = time.monotonic()
    s3.upload_file(str(video), bucket, key)
    seen: dict[str, float] = {}  # route -> seconds from the upload to its last unit
    units: list[dict[str, Any]] = []
    deadline = uploaded + args.timeout
    while (line := next_line(lines, deadline)) is not None:
        if not is_unit_summary(line):
            continue
        units.append(line)
        seen[line["route"]] = time.monotonic() - uploaded
        print(f"   [{seen[line['route']]:5.1f}s] {unit_text(line)}")
        if line["route"] == "summary" or (line["route"].startswith("split") and line["outcome"] != "ok"):
            break
    failed = [unit for unit in units if unit["outcome"] != "ok"]
    split = next((unit for unit in units if unit["route"].startswith("split") and unit["outcome"] == "ok"), None)
    if line is None or failed or split is None:
        print(f"the pipeline did not finish within {args.timeout:g} s" if line is None else "a unit failed")
        return 1
    return summarise(s3, bucket, split["request_id"], service, units, seen, clock, setup, args.out)


def next_line(lines: queue.Queue[dict[str, Any]], deadline: float) -> dict[str, Any] | None:
    try:
        return lines.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        return None


def summarise(
    s3: Any,
    bucket: str,
    video: str,
    service: video_report.ReportService,
    units: list[dict[str, Any]],
    seen: dict[str, float],
    clock: Clock,
    setup: dict[str, float],
    out: Path,
) -> int:
    run = next(run for run in service.runs.values() if run.frames_uri.endswith(video))
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"reports/{video}/report.json")["Body"].read())
    local = out / video
    local.mkdir(parents=True, exist_ok=True)
    (local / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    for entry in report["timeline"]:
        name = entry["annotated"].rsplit("/", 1)[-1]
        s3.download_file(bucket, f"detections/{video}/{name}", str(local / name))
    frames = [key for key in keys(s3, bucket, f"frames/{video}/") if key.endswith(".jpg")]
    detections = keys(s3, bucket, f"detections/{video}/")
    jsons = [key for key in detections if key.endswith(".json")]
    annotated = [key for key in detections if key.endswith(".annotated.jpg")]
    split = next(route for route in seen if route.startswith("split"))
    detect_seconds = sum(unit.get("script_ms", 0) for unit in units if unit["route"] == "detect") / 1000
    print(f"== done: request id {video}")
    print(f"   frames       s3://{bucket}/frames/{video}/  {len(frames)} frames + _SUCCESS  [{seen[split]:.1f}s]")
    print(
        f"   detections   s3://{bucket}/detections/{video}/*.json  {len(jsons)} files, "
        f"{report['frames_with_faces']} frames with a face, {report['faces']} faces  [{seen.get('detect', 0):.1f}s]"
    )
    print(f"   annotated    s3://{bucket}/detections/{video}/*.annotated.jpg  {len(annotated)} images")
    print(f"   report       {run.report}  [{seen['summary']:.1f}s]")
    print(f"   copied       {shown(local)}/ (report.json and the annotated images)")
    setup_text = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in setup.items())
    print(
        f"== timings: upload -> frames {seen[split]:.1f}s, -> last detection {seen.get('detect', 0):.1f}s, "
        f"-> report {seen['summary']:.1f}s; {len(frames)} frames in {seen.get('detect', 0) - seen[split]:.1f}s "
        f"({detect_seconds:.1f}s of detector scripts); set-up {setup_text}; whole demo {clock():.0f}s"
    )
    return 0


def keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


if __name__ == "__main__":
    sys.exit(main())
