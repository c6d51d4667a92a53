"""The pipeline's input, made on the spot: a short video of a real photograph with a face.

scikit-image ships NASA's portrait of astronaut Eileen Collins (``skimage.data.astronaut()``, 512 x 512).
The video shows it for 4.26 s, zooming in on her face and then panning, and ends on scikit-image's
``coffee`` photo (a cup, no face) for the last 0.74 s: 5 s at 25 frames/s, 384 x 384. Because the
camera path is known, so is where the face is at any moment (``face_at``), which is what the tests
compare the detector's boxes with. Written with ffmpeg: the one on PATH, else the binary PyPI's
``imageio-ffmpeg`` ships.

    python examples/video-pipeline/video_input.py astronaut.mp4 [more.avi ...]
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SIZE = 384  # frames are SIZE x SIZE
RATE = 25  # frames per second of the video
DURATION = 5.0  # seconds
CUT = 4.26  # from here on, the photo without a face (0.24 s away from the 2-per-second samples)
PHOTO = 512  # the astronaut photo's side


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def iou(self, other: Box) -> float:
        """Intersection over union of two boxes (1 for the same box, 0 when apart)."""
        left, top = max(self.x, other.x), max(self.y, other.y)
        right, bottom = min(self.x + self.w, other.x + other.w), min(self.y + self.h, other.y + other.h)
        inter = max(0.0, right - left) * max(0.0, bottom - top)
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union else 0.0


# Her face in the photo, hairline to chin and ear to ear, as read off the picture (OpenCV's Haar
# cascade finds [177, 67, 93, 93] on it).
FACE = Box(176, 64, 96, 100)

# The camera: (time, centre x, centre y, side) of the square of the photo shown, in photo pixels;
# linear in between. The whole photo, then a zoom on the face, then a pan to the right and down.
_PATH = ((0.0, 256.0, 256.0, 512.0), (2.0, 228.0, 150.0, 250.0), (CUT, 292.0, 186.0, 300.0))


def window(t: float) -> tuple[float, float, float]:
    """(left, top, side) of the part of the photo on screen at time ``t`` (while it is shown)."""
    for (t0, x0, y0, s0), (t1, x1, y1, s1) in itertools.pairwise(_PATH):
        if t <= t1:
            a = min(max((t - t0) / (t1 - t0), 0.0), 1.0)
            x, y, side = x0 + a * (x1 - x0), y0 + a * (y1 - y0), s0 + a * (s1 - s0)
            return x - side / 2, y - side / 2, side
    return window(_PATH[-1][0])


def face_at(t: float) -> Box | None:
    """Where the face is in the frame shown at time ``t``; None when the frame has no face."""
    if t >= CUT:
        return None
    left, top, side = window(t)
    scale = SIZE / side
    return Box((FACE.x - left) * scale, (FACE.y - top) * scale, FACE.w * scale, FACE.h * scale)


def frame_time(index: int, fps: float) -> float:
    """When frame number ``index`` (1, 2, ... as ``ffmpeg -vf fps=N`` numbers them) was taken."""
    return (index - 1) / fps


def frames() -> Iterator[Any]:
    """The video's frames, RGB uint8 arrays of SIZE x SIZE x 3."""
    import cv2
    import numpy as np
    from skimage import data

    photo, coffee = data.astronaut(), data.coffee()
    cup = coffee.shape[0]  # 400 x 600: a square from its left part
    for n in range(round(DURATION * RATE)):
        t = n / RATE
        if t < CUT:
            left, top, side = window(t)
            scale = SIZE / side  # an affine crop-and-zoom: sub-pixel camera moves, no jitter
            matrix = np.array([[scale, 0, -left * scale], [0, scale, -top * scale]], dtype=np.float64)
            yield cv2.warpAffine(photo, matrix, (SIZE, SIZE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
        else:  # a slow pan over the cup
            offset = int((t - CUT) * 60)
            yield cv2.resize(coffee[:, offset : offset + cup], (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def ffmpeg_binary() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        raise RuntimeError("no ffmpeg: install Debian's ffmpeg, or pip install imageio-ffmpeg") from None
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def write_video(path: Path) -> Path:
    """Encode the video to ``path``: H.264 for ``.mp4``, MPEG-4 part 2 for ``.avi``."""
    codec = ["-c:v", "mpeg4", "-q:v", "3"] if path.suffix == ".avi" else ["-c:v", "libx264", "-preset", "veryfast"]
    command = [ffmpeg_binary(), "-y", "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24"]
    command += ["-s", f"{SIZE}x{SIZE}", "-r", str(RATE), "-i", "-", *codec, "-pix_fmt", "yuv420p", str(path)]
    path.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None and process.stderr is not None
    try:
        for frame in frames():
            process.stdin.write(frame.tobytes())
    finally:
        process.stdin.close()
        error = process.stderr.read().decode(errors="replace")
        process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"ffmpeg could not write {path} ({process.returncode}): {error[-1000:]}")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("paths", nargs="+", type=Path, help="files to write (.mp4 or .avi)")
    for path in parser.parse_args(argv).paths:
        write_video(path)
        print(f"{path}: {path.stat().st_size} bytes, {DURATION:g} s, {SIZE}x{SIZE} at {RATE} frames/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
