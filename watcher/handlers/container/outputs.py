"""Reading what a job wrote, without trusting it.

The output folder is walked without following symlinks, and a file is uploaded only if it is a
regular file whose every hard link is inside ``output/``. The file is re-opened with ``O_NOFOLLOW``
and must still be the same inode, so nothing swapped in after the walk is read.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAX_OUTPUT_FILES = 10_000  # uploaded per job; the rest are skipped as too_many
MAX_OUTPUT_ENTRIES = 100_000  # looked at per job
MAX_OUTPUT_DEPTH = 64  # folder levels under output/


@dataclass(frozen=True, slots=True)
class OutputFile:
    relative: str  # "/"-separated path under output/
    size: int
    device: int
    inode: int

    @property
    def name(self) -> str:
        """The last part of the path: ``frames/_SUCCESS`` -> ``_SUCCESS``."""
        return self.relative.rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class SkippedOutput:
    relative: str
    reason: str  # symlink | hardlink | special | bad_name | too_deep | too_many


def collect_outputs(output_dir: Path) -> tuple[list[OutputFile], list[SkippedOutput]]:
    """The regular files under ``output_dir`` safe to upload, and what was left out and why."""
    files: list[OutputFile] = []
    skipped: list[SkippedOutput] = []
    links: dict[tuple[int, int], int] = {}
    candidates: list[tuple[OutputFile, int]] = []
    for relative, entry, reason in _walk(output_dir):
        if reason is not None:
            skipped.append(SkippedOutput(relative, reason))
            continue
        assert entry is not None
        if entry.is_symlink():
            skipped.append(SkippedOutput(relative, "symlink"))
            continue
        info = entry.stat(follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode):
            skipped.append(SkippedOutput(relative, "special"))
            continue
        key = (info.st_dev, info.st_ino)
        links[key] = links.get(key, 0) + 1
        candidates.append((OutputFile(relative, info.st_size, info.st_dev, info.st_ino), info.st_nlink))
    for output, link_count in candidates:
        # A hard link whose other names are not all under output/ exposes a file from elsewhere.
        if links[(output.device, output.inode)] < link_count:
            skipped.append(SkippedOutput(output.relative, "hardlink"))
        elif len(files) >= MAX_OUTPUT_FILES:
            skipped.append(SkippedOutput(output.relative, "too_many"))
        else:
            files.append(output)
    files.sort(key=lambda f: f.relative)
    return files, skipped


def _walk(directory: Path) -> Iterator[tuple[str, os.DirEntry[str] | None, str | None]]:
    """(relative path, entry, None) for each non-folder entry, or (relative path, None, reason)
    for what is not looked at: a name that is not UTF-8 (it cannot become an S3 key), a folder
    deeper than ``MAX_OUTPUT_DEPTH``, anything past ``MAX_OUTPUT_ENTRIES``. Iterative: a script
    may nest folders deeper than Python's recursion limit."""
    pending: list[tuple[Path, str, int]] = [(directory, "", 0)]
    seen = 0
    while pending:
        folder, prefix, depth = pending.pop()
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda e: e.name, reverse=True)
        subfolders = []
        for entry in reversed(entries):
            relative = f"{prefix}{entry.name}"
            seen += 1
            if seen > MAX_OUTPUT_ENTRIES:
                yield relative, None, "too_many"
                return
            try:
                relative.encode("utf-8")
            except UnicodeEncodeError:  # undecodable bytes in the name, kept as surrogates
                yield relative.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), None, "bad_name"
                continue
            if entry.is_dir(follow_symlinks=False):
                if depth + 1 >= MAX_OUTPUT_DEPTH:
                    yield relative + "/", None, "too_deep"
                else:
                    subfolders.append((Path(entry.path), relative + "/", depth + 1))
            else:
                yield relative, entry, None
        pending.extend(reversed(subfolders))


@contextlib.contextmanager
def open_output(output_dir: Path, output: OutputFile) -> Iterator[BinaryIO]:
    """Open a collected output for reading, refusing anything that changed since the walk."""
    fd = os.open(output_dir / output.relative, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != (output.device, output.inode):
        os.close(fd)
        raise PermissionError(f"{output.relative} changed after the job ended")
    with os.fdopen(fd, "rb") as handle:
        yield handle
