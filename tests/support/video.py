"""The video pipeline of examples/video-pipeline for the tests: its Python modules (the folder's name
has a hyphen, so it goes on sys.path), and its own config with the bucket renamed."""

from __future__ import annotations

import sys
from typing import Any

import yaml

from tests.support.process import REPO

EXAMPLE = REPO / "examples" / "video-pipeline"
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))

import build_images  # noqa: E402
import video_input  # noqa: E402
import video_report  # noqa: E402
import video_tools  # noqa: E402

__all__ = ["EXAMPLE", "build_images", "example_config", "example_text", "video_input", "video_report", "video_tools"]


def example_text(bucket: str = "media") -> str:
    """examples/video-pipeline/watcher.yaml as written, its bucket renamed."""
    text = (EXAMPLE / "watcher.yaml").read_text()
    return text.replace("bucket: media", f"bucket: {bucket}").replace("s3://media/", f"s3://{bucket}/")


def example_config(bucket: str = "media") -> dict[str, Any]:
    config = yaml.safe_load(example_text(bucket))
    assert isinstance(config, dict)
    return config
