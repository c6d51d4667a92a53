"""The summary stage's HTTP endpoint: gathers the detections of one video into one report.

The ``summary`` route is a ``workflow`` route: when ``frames/<REQUEST_ID>/_SUCCESS`` lands, watcher
POSTs ``{"frames": "s3://media/frames/<REQUEST_ID>", "detections": ..., "report": ...}`` to
``/api/v1/reports`` and polls ``/api/v1/reports/{id}/status`` until it says COMPLETED (or FAILED), the
way it drives a Fire Insights workflow run. A run reads the marker (the list of frames ``split.sh``
wrote), waits until ``detect`` has written ``detections/<REQUEST_ID>/<frame>.json`` for every one of
them (they arrive as the frames are processed, possibly after the marker), then writes
``reports/<REQUEST_ID>/report.json``: per frame its time, boxes and annotated image, and the totals.

Runs are kept in memory; an ``Idempotency-Key`` seen before returns the same run (a new one when that
run failed). Run it beside ``watcher run``:

    python examples/video-pipeline/video_report.py --port 9420 --endpoint-url http://127.0.0.1:4566
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

EXECUTE = "/api/v1/reports"
STATUS = "/api/v1/reports/{run_id}/status"
MARKER = "_SUCCESS"
Say = Callable[[str], None]


@dataclass
class Run:
    id: str
    frames_uri: str
    detections_uri: str
    report_uri: str
    status: str = "RUNNING"
    frames: int | None = None  # how many the marker lists
    detections: int = 0  # how many of them have their detection JSON
    report: str | None = None  # where the report was written
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> ("bucket", "some/prefix")."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, prefix.strip("/")


def join_key(*parts: str) -> str:
    """Key parts joined with ``/``, empty ones (a bucket's root) left out."""
    return "/".join(part.strip("/") for part in parts if part.strip("/"))


def detection_key(prefix: str, video: str, frame: str) -> str:
    return join_key(prefix, video, f"{frame.rsplit('.', 1)[0]}.json")


def build_report(
    manifest: dict[str, Any], detections: dict[str, dict[str, Any]], *, video_uri: str | None, uris: dict[str, str]
) -> dict[str, Any]:
    """The report of one video from its marker and its frames' detections (frame name -> JSON)."""
    fps = float(manifest.get("fps") or 1)
    timeline = []
    for index, frame in enumerate(manifest["frames"]):
        found = detections[frame]
        stem = frame.rsplit(".", 1)[0]
        timeline.append(
            {
                "frame": frame,
                "time_s": round(index / fps, 3),
                "faces": found.get("faces", []),
                "annotated": f"{uris['detections']}/{stem}.annotated.jpg",
            }
        )
    with_faces = [entry for entry in timeline if entry["faces"]]
    detectors = sorted({str(d.get("detector")) for d in detections.values() if d.get("detector")})
    return {
        "video": video_uri,
        "request_id": manifest.get("request_id"),
        "frames_uri": uris["frames"],
        "detections_uri": uris["detections"],
        "fps": manifest.get("fps"),
        "frames": len(timeline),
        "frames_with_faces": len(with_faces),
        "faces": sum(len(entry["faces"]) for entry in timeline),
        "first_face_s": with_faces[0]["time_s"] if with_faces else None,
        "detector": detectors[0] if len(detectors) == 1 else detectors,
        "timeline": timeline,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class ReportService:
    """The endpoint, served from a thread of its own on ``host:port`` (0: a free port)."""

    def __init__(
        self,
        s3: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        wait_seconds: float = 600.0,
        poll_seconds: float = 0.25,
        say: Say | None = None,
    ) -> None:
        self.s3 = s3  # a boto3 S3 client (its calls run in threads)
        self.host, self.port = host, port
        self.wait_seconds, self.poll_seconds = wait_seconds, poll_seconds
        self.runs: dict[str, Run] = {}
        self._say = say or (lambda _: None)
        self._by_key: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ReportService:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="video-report", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> ReportService:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_post(EXECUTE, self._execute)
        app.router.add_get(STATUS, self._status)
        app.router.add_get(EXECUTE + "/{run_id}", self._status)
        return app

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.application(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = int(self._runner.addresses[0][1])  # the one chosen, when asked for port 0

    async def _stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        assert self._runner is not None
        await self._runner.cleanup()

    # --- the API -------------------------------------------------------------------------------

    async def _execute(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            frames, detections, report = (str(body[name]).rstrip("/") for name in ("frames", "detections", "report"))
            for uri in (frames, detections, report):
                split_uri(uri)
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": f"expected frames, detections and report S3 URIs: {exc}"}, status=400)
        key = request.headers.get("Idempotency-Key")
        existing = self.runs.get(self._by_key.get(key, "")) if key else None
        if existing is not None and existing.status != "FAILED":
            return web.json_response({"id": existing.id, "status": existing.status})
        run = Run(f"report-{next(self._ids)}", frames, detections, report)
        self.runs[run.id] = run
        if key:
            self._by_key[key] = run.id
        task = asyncio.ensure_future(self._gather(run))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._say(f"{run.id}: gathering the detections of {run.frames_uri}")
        return web.json_response({"id": run.id, "status": run.status})

    async def _status(self, request: web.Request) -> web.Response:
        run = self.runs.get(request.match_info["run_id"])
        if run is None:
            return web.json_response({"error": "no such run"}, status=404)
        return web.json_response(asdict(run))

    # --- one run -------------------------------------------------------------------------------

    async def _gather(self, run: Run) -> None:
        try:
            await self._build(run)
        except asyncio.CancelledError:
            run.status, run.error = "KILLED", "the report service stopped"
            raise
        except Exception as exc:
            run.status, run.error = "FAILED", f"{type(exc).__name__}: {exc}"
            self._say(f"{run.id}: FAILED: {run.error}")
        finally:
            run.finished = time.time()

    async def _build(self, run: Run) -> None:
        bucket, frames_prefix = split_uri(run.frames_uri)
        video = frames_prefix.rpartition("/")[2]
        marker = await asyncio.to_thread(self.s3.get_object, Bucket=bucket, Key=f"{frames_prefix}/{MARKER}")
        manifest = json.loads(marker["Body"].read())
        names = [str(name) for name in manifest["frames"]]
        run.frames = len(names)
        det_bucket, det_prefix = split_uri(run.detections_uri)
        wanted = {detection_key(det_prefix, video, name): name for name in names}
        deadline = time.monotonic() + self.wait_seconds
        while True:
            present = await asyncio.to_thread(self._keys, det_bucket, join_key(det_prefix, video) + "/")
            run.detections = len(present & wanted.keys())
            if run.detections == len(wanted):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{run.detections} of {len(wanted)} detections after {self.wait_seconds:g}s")
            await asyncio.sleep(self.poll_seconds)
        bodies = await asyncio.gather(*(asyncio.to_thread(self._read_json, det_bucket, key) for key in wanted))
        detections = {wanted[key]: body for key, body in zip(wanted, bodies, strict=True)}
        uris = {
            "frames": f"s3://{bucket}/{frames_prefix}",
            "detections": f"s3://{det_bucket}/{join_key(det_prefix, video)}",
        }
        source = marker.get("Metadata", {}).get("watcher-source")
        report = build_report(manifest, detections, video_uri=source, uris=uris)
        report_bucket, report_prefix = split_uri(run.report_uri)
        key = join_key(report_prefix, video, "report.json")
        body = json.dumps(report, indent=2).encode()
        await asyncio.to_thread(
            self.s3.put_object, Bucket=report_bucket, Key=key, Body=body, ContentType="application/json"
        )
        run.report, run.status = f"s3://{report_bucket}/{key}", "COMPLETED"
        self._say(f"{run.id}: {report['frames_with_faces']} of {report['frames']} frames with a face -> {run.report}")

    def _keys(self, bucket: str, prefix: str) -> set[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def _read_json(self, bucket: str, key: str) -> dict[str, Any]:
        return dict(json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()))


def main(argv: Sequence[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9420)
    parser.add_argument("--endpoint-url", default=None, help="S3 endpoint, e.g. http://127.0.0.1:4566 (LocalStack)")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    extra = {"aws_access_key_id": "test", "aws_secret_access_key": "test"} if args.endpoint_url else {}
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url, region_name=args.region, **extra)
    service = ReportService(s3, host=args.host, port=args.port, say=lambda line: print(line, flush=True))
    web.run_app(service.application(), host=args.host, port=args.port, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
