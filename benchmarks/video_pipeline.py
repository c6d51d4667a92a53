"""Video pipeline benchmark: N videos at once through the pipeline, against the same scripts run by
hand, one job after another.

An on-demand benchmark, not a test. Needs LocalStack (``watcher local up``); with ``--runtime docker``
(the default when a Docker engine answers) the images of examples/video-pipeline/build_images.py
(built on first use), else PyPI's ffmpeg and OpenCV on the host (examples/video-pipeline/video_tools.py)::

    python benchmarks/video_pipeline.py                      # 4 videos
    python benchmarks/video_pipeline.py --videos 8 --runtime process --repeat 3

The input is the astronaut video of examples/video-pipeline/video_input.py (5 s, 10 frames at the
route's 2 frames/s), uploaded under N names.

(a) ``watcher run`` (a subprocess) with examples/video-pipeline/watcher.yaml on a bucket and queue of
    its own, and its report endpoint: the N videos are uploaded at once; timed from the first upload
    until the last video's report is written. Per video: split, one detect per frame, the summary;
    up to ``queue.max_in_flight`` (8) jobs at a time, S3 transfers and SQS included.
(b) by hand: for each video in turn, ``split.sh`` on the local file, then ``detect.sh`` on each frame,
    then the report built by the same function as the report endpoint; each job a ``docker run --rm``
    of the same image with the same contract variables and mounts (or ``/bin/sh`` with them, for the
    process runtime). No S3, no queue.

Reported (medians over ``--repeat`` rounds of (a) then (b)): wall time, videos/minute, frames/s, the
speed-up b/a, and how many of (a)'s scripts ran at once on average. Results go to
benchmarks/results/video-<timestamp>.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support, when run as a script

from benchmarks.throughput import REGION, check_endpoint  # noqa: E402
from tests.support.process import WatcherProcess, provision_named_queue  # noqa: E402
from tests.support.video import EXAMPLE, build_images, example_config, video_report, video_tools  # noqa: E402
from watcher import __version__  # noqa: E402

RESULTS_DIR = REPO / "benchmarks" / "results"
FPS = "2"  # as the route's environment sets it


def aws(endpoint: str, service: str) -> Any:
    import boto3

    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


def through_watcher(endpoint: str, runtime: str, video: Path, count: int, workdir: Path) -> dict[str, Any]:
    s3 = aws(endpoint, "s3")
    unique = uuid.uuid4().hex[:8]
    bucket = f"bench-media-{unique}"
    config = example_config(bucket)
    config["aws"]["endpoint_url"] = endpoint
    config["queue"]["wait_time_seconds"] = 1
    config["logging"] = {"level": "info"}
    for route in config["routes"]:
        if route["handler"]["type"] == "container":
            route["handler"]["work_dir"] = str(workdir / "work")
    provision_named_queue(config, f"watcher-bench-video-{unique}", workdir)
    with video_report.ReportService(s3, wait_seconds=1800) as service:
        env = {"VIDEO_RUNTIME": runtime, "VIDEO_REPORT_URL": service.url, "PATH": video_tools.host_path()}
        worker = WatcherProcess(config, workdir, env=env)
        try:
            worker.wait_started(60)
            started = time.time()
            keys = [f"video/in/bench-{index:02d}.mp4" for index in range(count)]
            with ThreadPoolExecutor(max_workers=count) as pool:
                list(pool.map(lambda key: s3.upload_file(str(video), bucket, key), keys))
            deadline = time.monotonic() + 1800
            while sum(run.finished is not None for run in service.runs.values()) < count:
                if time.monotonic() > deadline:
                    raise SystemExit("(a) the reports did not come within 30 minutes")
                time.sleep(0.05)
            runs = list(service.runs.values())
            failed = [run for run in runs if run.status != "COMPLETED"]
            if failed:
                raise SystemExit(f"(a) a report failed: {failed[0]}")
            wall = max(run.finished or 0.0 for run in runs) - started
            units = worker.wait_for_units(count * 12, timeout=60)  # the summaries see COMPLETED at their next poll
        finally:
            worker.stop()
    bad = [line for line in units if line["outcome"] != "ok"]
    if bad:
        raise SystemExit(f"(a) a unit failed: {bad[0]}")
    frames = sum(run.frames or 0 for run in runs)
    return {
        "wall_s": wall,
        "frames": frames,
        "units": len(units),
        "script_s": sum(line.get("script_ms", 0) for line in units) / 1000,
        "bucket": bucket,
    }


class ByHand:
    """The same scripts on local files, one after another: ``docker run --rm`` or ``/bin/sh``."""

    def __init__(self, runtime: str, workdir: Path) -> None:
        self.runtime, self.workdir = runtime, workdir
        self.path = video_tools.host_path()
        self.script_s = 0.0

    def job(self, script: str, image: str, source: Path, key: str, request_id: str) -> Path:
        folder = Path(tempfile.mkdtemp(dir=self.workdir))
        (folder / "input").mkdir()
        (folder / "output").mkdir()
        (folder / "output").chmod(0o777)  # as watcher makes it, for a job running as another user
        shutil.copy(source, folder / "input" / source.name)
        inside = "/watcher" if self.runtime == "docker" else str(folder)
        contract = {
            "INPUT_FILE_PATH": f"{inside}/input/{source.name}",
            "TMP_INPUT_DIR": f"{inside}/input",
            "TMP_OUTPUT_DIR": f"{inside}/output",
            "STORAGE_OBJECT_KEY": key,
            "STORAGE_BUCKET": "media",
            "REQUEST_ID": request_id,
            "FPS": FPS,
        }
        if self.runtime == "docker":
            command = ["docker", "run", "--rm", "--network", "none", "--user", f"{os.getuid()}:{os.getgid()}"]
            command += ["-v", f"{folder / 'input'}:/watcher/input:ro", "-v", f"{folder / 'output'}:/watcher/output"]
            command += ["-v", f"{EXAMPLE / script}:/watcher/script.sh:ro", "-w", "/watcher"]
            command += [arg for name, value in contract.items() for arg in ("-e", f"{name}={value}")]
            command += [image, "/bin/sh", "/watcher/script.sh"]
            env = None
        else:
            command = ["/bin/sh", str(EXAMPLE / script)]
            env = {"PATH": self.path, "HOME": str(folder), "LANG": "C.UTF-8", **contract}
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env, cwd=folder)
        self.script_s += time.perf_counter() - started
        return folder / "output"

    def video(self, video: Path, index: int) -> int:
        request_id = uuid.uuid4().hex
        frames = self.job("split.sh", build_images.FFMPEG_IMAGE, video, f"video/in/bench-{index:02d}.mp4", request_id)
        manifest = json.loads((frames / "_SUCCESS").read_text())
        detections = {}
        for name in manifest["frames"]:
            key = f"frames/{request_id}/{name}"
            out = self.job("detect.sh", build_images.OPENCV_IMAGE, frames / name, key, uuid.uuid4().hex)
            detections[name] = json.loads((out / request_id / f"{name[:-4]}.json").read_text())
        uris = {"frames": f"frames/{request_id}", "detections": f"detections/{request_id}"}
        report = video_report.build_report(manifest, detections, video_uri=str(video), uris=uris)
        (frames.parent / "report.json").write_text(json.dumps(report))
        return len(manifest["frames"])


def by_hand(runtime: str, video: Path, count: int, workdir: Path) -> dict[str, Any]:
    hand = ByHand(runtime, workdir)
    started = time.perf_counter()
    frames = sum(hand.video(video, index) for index in range(count))
    return {"wall_s": time.perf_counter() - started, "frames": frames, "script_s": hand.script_s}


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--runtime", choices=("docker", "process"), default=None)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of (a) then (b); medians are reported")
    parser.add_argument("--endpoint", default="http://127.0.0.1:4566")
    args = parser.parse_args()
    check_endpoint(args.endpoint)
    runtime = args.runtime or ("docker" if shutil.which("docker") and video_tools.docker_answers() else "process")
    if runtime == "docker":
        build_images.build()
    before = load_average()
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="watcher-bench-video-") as tmp:
        video = video_tools.make_video(Path(tmp) / "astronaut.mp4")
        for index in range(args.repeat):
            folder = Path(tmp) / f"round-{index}"
            (folder / "a").mkdir(parents=True)
            (folder / "b").mkdir()
            a = through_watcher(args.endpoint, runtime, video, args.videos, folder / "a")
            b = by_hand(runtime, video, args.videos, folder / "b")
            rounds.append({"watcher": a, "by_hand": b, "speedup": b["wall_s"] / a["wall_s"]})
            print(f"round {index + 1}: (a) {a['wall_s']:.1f}s, (b) {b['wall_s']:.1f}s, b/a {rounds[-1]['speedup']:.2f}")
    after = load_average()
    a_wall = statistics.median(r["watcher"]["wall_s"] for r in rounds)
    b_wall = statistics.median(r["by_hand"]["wall_s"] for r in rounds)
    frames = rounds[0]["watcher"]["frames"]
    cpus = os.cpu_count()
    print(f"{args.videos} videos x 10 frames, runtime {runtime}, {cpus} CPUs; medians of {args.repeat} rounds")
    print("| phase | wall s | videos/min | frames/s |")
    print("|---|---:|---:|---:|")
    for label, wall in (("(a) watcher run, all at once", a_wall), ("(b) by hand, one after another", b_wall)):
        print(f"| {label} | {wall:.1f} | {args.videos / wall * 60:.1f} | {frames / wall:.2f} |")
    a = rounds[-1]["watcher"]
    print(
        f"speed-up: median of b/a per round {statistics.median(r['speedup'] for r in rounds):.2f}; "
        f"(a) of the last round: {a['units']} units, the scripts' own time summed {a['script_s']:.1f}s, "
        f"{a['script_s'] / a['wall_s']:.2f} running at once on average"
    )
    print(f"load average before: {before}; after: {after}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = {
        "version": __version__,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "videos": args.videos,
        "runtime": runtime,
        "rounds": rounds,
        "load_average": [before, after],
    }
    path = RESULTS_DIR / f"video-{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"results: {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
