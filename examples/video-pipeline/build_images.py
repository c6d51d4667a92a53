"""Build the pipeline's two Docker images on this machine, from Debian packages (nothing is pulled).

- ``watcher-video/ffmpeg:1``: Debian bookworm (minbase) + ``ffmpeg`` (5.1), for ``split.sh``;
- ``watcher-video/opencv:1``: Debian bookworm (minbase) + ``python3-opencv`` (4.6) + ``opencv-data``
  (the Haar cascades, ``/usr/share/opencv4/haarcascades``), for ``detect.sh``.

Each is a debootstrap root file system imported with ``docker import``, made by the project's image
builder (``tests/support/rootfs.py``): the tarball is cached under ``$WATCHER_HOME/rootfs``
(default ``~/.cache/watcher/rootfs``) and the import is skipped when the tag already holds the same
inputs, so only the first run pays (a few minutes: see README.md). Needs root (debootstrap) and a
Docker engine.

    python examples/video-pipeline/build_images.py            # both, at the same time
    python examples/video-pipeline/build_images.py --only ffmpeg
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: the builder lives in the repository's tests/support
    sys.path.insert(0, str(REPO))

from tests.support.rootfs import DEFAULT_REMOVE, RootfsSpec, rootfs_image  # noqa: E402

FFMPEG_IMAGE = "watcher-video/ffmpeg:1"
OPENCV_IMAGE = "watcher-video/opencv:1"
# Mesa's GPU drivers and the LLVM they JIT with come in through ffmpeg's and OpenCV's GL/Vulkan
# dependencies: loaded only to draw on a GPU, which a job never does. About 160 MB of each image.
_NO_GPU = (
    "usr/lib/x86_64-linux-gnu/dri",
    "usr/lib/x86_64-linux-gnu/libLLVM-15.so.1",
    "usr/lib/x86_64-linux-gnu/libz3.so.4",
)

SPECS = {
    "ffmpeg": (
        RootfsSpec(name="video-ffmpeg", packages=("ffmpeg",), remove=DEFAULT_REMOVE + _NO_GPU),
        FFMPEG_IMAGE,
    ),
    "opencv": (
        RootfsSpec(
            name="video-opencv",
            packages=("python3-opencv", "opencv-data"),
            remove=DEFAULT_REMOVE + _NO_GPU,
        ),
        OPENCV_IMAGE,
    ),
}


def build(names: Sequence[str] = tuple(SPECS), say: Callable[[str], None] | None = None) -> dict[str, float]:
    """Build (or find up to date) the images named, at the same time (debootstrap mostly waits on
    downloads and disk); seconds each took."""

    def one(name: str) -> tuple[str, float]:
        spec, tag = SPECS[name]
        started = time.monotonic()
        rootfs_image(spec, tag, say)
        return tag, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=len(names) or 1) as pool:
        return dict(pool.map(one, names))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", choices=sorted(SPECS), action="append", help="build only this image (repeatable)")
    args = parser.parse_args(argv)
    for tag, seconds in build(args.only or tuple(SPECS)).items():
        print(f"{tag}: ready ({seconds:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
