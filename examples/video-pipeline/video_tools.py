"""ffmpeg, OpenCV and scikit-image on the host, from PyPI, in a virtualenv of their own.

The pipeline's jobs can run as host processes (``runtime: process``) instead of in the Docker
images: they then need an ``ffmpeg`` and a ``python3`` with OpenCV on PATH. PyPI has both:
``imageio-ffmpeg`` ships a static ffmpeg binary and ``opencv-python-headless`` ships the Haar
cascades (``cv2.data.haarcascades``). ``scikit-image`` ships the photograph the input video is made
of. They go into ``$WATCHER_HOME/video-venv`` (``~/.cache/watcher/video-venv``; ``WATCHER_VIDEO_VENV``
moves it), created on first use (about a minute), not into watcher's own environment: numpy, scipy
and OpenCV are large, and the worker does not import them. ``make demo-video``, the tests and the
benchmark use it; the input video is always made with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from watcher.local.service import home, locked

# OpenCV 5 moved the Haar cascade detector out of the main modules: stay on 4.x.
REQUIREMENTS = ("imageio-ffmpeg>=0.5", "opencv-python-headless>=4.8,<5", "scikit-image>=0.22")
_PROBE = "import cv2, imageio_ffmpeg, skimage; cv2.CascadeClassifier; imageio_ffmpeg.get_ffmpeg_exe()"
HERE = Path(__file__).resolve().parent


def venv_dir() -> Path:
    return Path(os.environ.get("WATCHER_VIDEO_VENV", home() / "video-venv"))


def _python() -> Path:
    return venv_dir() / "bin" / "python"


def ready() -> bool:
    python = _python()
    return python.exists() and subprocess.run([str(python), "-c", _PROBE], capture_output=True).returncode == 0


def ensure(say: Callable[[str], None] | None = None) -> Path:
    """The virtualenv's ``bin`` folder, holding ``python3`` (with OpenCV) and, through imageio-ffmpeg,
    an ffmpeg; installed first when missing."""
    if not ready():
        with locked(venv_dir().parent / f".{venv_dir().name}.lock"):  # a demo and a test session at once
            if not ready():
                (say or print)(f"installing {', '.join(REQUIREMENTS)} into {venv_dir()} (first time only) ...")
                subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv_dir())], check=True)
                pip = [str(_python()), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
                result = subprocess.run([*pip, *REQUIREMENTS], capture_output=True, text=True)
                if result.returncode != 0:
                    raise RuntimeError(f"pip install {' '.join(REQUIREMENTS)} failed:\n{result.stderr[-3000:]}")
                if not ready():
                    raise RuntimeError(f"{venv_dir()}: installed, but `{_PROBE}` still fails")
    return venv_dir() / "bin"


def docker_answers() -> bool:
    """Whether a Docker engine answers here (the pipeline's images run on it), within 5 s."""
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return True
    except Exception:
        return False


def host_path() -> str:
    """PATH for a worker whose jobs run as host processes: the virtualenv's tools first."""
    return f"{ensure()}{os.pathsep}{os.environ.get('PATH', os.defpath)}"


def make_video(path: Path) -> Path:
    """Write the astronaut video (video_input.py) to ``path`` (``.mp4`` or ``.avi``), with the tools."""
    subprocess.run([str(ensure() / "python"), str(HERE / "video_input.py"), str(path)], check=True, capture_output=True)
    return path
