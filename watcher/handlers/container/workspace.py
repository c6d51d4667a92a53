"""Work directories of container jobs.

Layout: ``<work_dir>/area-<random>/`` belongs to one handler of one live process, which holds an
exclusive ``flock`` on ``<work_dir>/area-<random>.lock`` for as long as it lives. Each job gets
``<area>/<request id>-<random>/`` with ``input/`` and ``output/``. At start, any area whose lock can
be taken belongs to a process that died, and is removed: no pid files, so no confusion when a pid is
reused, and several workers may share one ``work_dir``.

What a job wrote is read by watcher.handlers.container.outputs, which trusts none of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from watcher.errors import ConfigError

_AREA_PREFIX = "area-"
_MAX_NAME_BYTES = 200  # well under NAME_MAX (255) on every common file system


def safe_file_name(key: str) -> str:
    """The last path element of a key, made safe as one file name inside ``input/``.

    No separators (``/``, ``\\``), no NUL or control characters, never ``.`` or ``..``, at most
    200 bytes (a long name keeps its extension and gains a hash, so distinct names stay distinct).
    """
    name = key.rsplit("/", 1)[-1].replace("\\", "_")
    # Control characters, and lone surrogates (a hand-made event may carry "\ud800"), which no
    # file system name or environment variable can hold.
    name = "".join("_" if ord(ch) < 32 or ord(ch) == 127 or 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in name)
    if name in ("", ".", ".."):
        name = "input"
    encoded = name.encode("utf-8")
    if len(encoded) > _MAX_NAME_BYTES:
        stem, dot, extension = name.rpartition(".")
        extension = extension if dot and stem and len(extension.encode()) <= 16 else ""
        digest = hashlib.sha256(encoded).hexdigest()[:16]
        keep = _MAX_NAME_BYTES - len(digest) - len(extension.encode()) - 2
        head = encoded[:keep].decode("utf-8", "ignore")
        name = f"{head}-{digest}" + (f".{extension}" if extension else "")
    return name


@dataclass(frozen=True, slots=True)
class JobDir:
    root: Path

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def log(self) -> Path:
        return self.root / "log.txt"

    @property
    def script(self) -> Path:
        return self.root / "script.sh"

    def create(self) -> None:
        self.root.mkdir(mode=0o700)
        self.input.mkdir()
        self.output.mkdir()
        # Explicit modes, whatever the umask: the job may run as another user than the worker
        # (``user:``) and must read input/ and write output/; both are reachable only through their
        # own bind mounts, as root/ is 0700.
        self.input.chmod(0o755)
        self.output.chmod(0o777)

    def write_script(self, text: str) -> None:
        self.script.write_text(text, encoding="utf-8")
        self.script.chmod(0o644)

    def remove(self) -> bool:
        """Remove the job folder; False (never an exception) when something could not be removed."""
        return _remove_tree(self.root)

    def log_tail(self, limit: int) -> str:
        """The last ``limit`` characters of the job's log (decoded leniently), without reading all
        of it."""
        if limit <= 0:
            return ""
        try:
            with open(self.log, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - limit * 4))
                text = handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        return text[-limit:]


class WorkArea:
    """One handler's folder of job directories, with the lock that says its owner is alive."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.path = base / f"{_AREA_PREFIX}{secrets.token_hex(6)}"
        self._lock_fd: int | None = None

    def open(self) -> None:
        self.base.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_private(self.base)
        lock_path = self.path.with_name(self.path.name + ".lock")
        while True:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            # Blocking: a worker sweeping at this moment may hold it briefly, taking it for the lock
            # of a dead worker; it then removes the file, so ours is only ours if still named so.
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _is_named(fd, lock_path):
                break
            os.close(fd)
        self._lock_fd = fd
        self.path.mkdir(mode=0o700)

    def close(self) -> None:
        _remove_tree(self.path)
        if self._lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.with_name(self.path.name + ".lock").unlink()
            os.close(self._lock_fd)
            self._lock_fd = None

    def plan_job(self, request_id: str) -> JobDir:
        """A job folder's path, not made yet (``JobDir.create``): the caller knows what to remove
        even when it is interrupted while the folder is being made."""
        return JobDir(self.path / f"{request_id[:16]}-{secrets.token_hex(4)}")

    def new_job(self, request_id: str) -> JobDir:
        job = self.plan_job(request_id)
        job.create()
        return job

    def sweep_stale(self) -> list[Path]:
        """Remove the areas (and their jobs) of processes that died; return what was removed."""
        removed: list[Path] = []
        if not self.base.is_dir():
            return removed
        for lock_path in self.base.glob(f"{_AREA_PREFIX}*.lock"):
            area = lock_path.with_name(lock_path.name[: -len(".lock")])
            fd = None if area == self.path else _take_lock(lock_path)
            if fd is None:
                continue
            try:  # under the lock, so that a worker opening this very area waits, then starts over
                if not _remove_tree(area):
                    continue  # keep the lock file: the next start tries again
                with contextlib.suppress(FileNotFoundError):
                    lock_path.unlink()
            finally:
                os.close(fd)
            removed.append(area)
        for area in self.base.glob(f"{_AREA_PREFIX}*"):  # an area whose lock file is already gone
            if area.is_dir() and not area.with_name(area.name + ".lock").exists() and _remove_tree(area):
                removed.append(area)
        return removed


def check_private(base: Path) -> None:
    """Refuse a work folder that someone else could tamper with: jobs' inputs and outputs pass
    through it, so it must be ours and writable by nobody else (``/tmp`` itself would not do)."""
    info = base.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError([f"work_dir {base}: not a directory (a symlink is not accepted)"])
    if info.st_uid != os.geteuid():
        raise ConfigError([f"work_dir {base}: owned by uid {info.st_uid}, not by this process (uid {os.geteuid()})"])
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError([f"work_dir {base}: writable by group or others (mode {info.st_mode & 0o777:o})"])


def is_abandoned(area: Path) -> bool:
    """True when no live process holds the area's lock (its lock can be taken, or is gone)."""
    try:
        fd = os.open(area.with_name(area.name + ".lock"), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def mount_namespace(pid: str = "self") -> str:
    """A process's mount namespace ("4026531841" of "mnt:[4026531841]"), "unknown" when unreadable:
    two services with private /tmp folders see different files under the same paths, and must not
    judge each other's work areas, jobs or processes."""
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt").removeprefix("mnt:[").removesuffix("]")
    except OSError:
        return "unknown"


def _take_lock(lock_path: Path) -> int | None:
    """The lock of a dead worker's area, held; None when a live process holds it or it is gone."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if not _is_named(fd, lock_path):  # removed and made again meanwhile
        os.close(fd)
        return None
    return fd


def _is_named(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the open file ``fd``."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _remove_tree(path: Path) -> bool:
    """Remove a folder and everything in it; True when it is gone. Never raises: it runs in
    ``finally`` blocks and sweeps, where an exception would hide the real outcome or stop a start."""

    def make_writable_and_retry(function: object, name: str, _: object) -> None:
        # A job running as another user may leave read-only folders behind.
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(name), 0o700)
            if os.path.isdir(name) and not os.path.islink(name):
                os.chmod(name, 0o700)
                shutil.rmtree(name, ignore_errors=True)
            else:
                os.unlink(name)

    if not (path.exists() or path.is_symlink()):
        return True
    try:
        shutil.rmtree(path, onerror=make_writable_and_retry)
    except (RecursionError, OSError):
        # shutil.rmtree recurses once per level (Python 3.11): a script can nest folders deeper
        # than the interpreter's recursion limit. rm(1) walks them iteratively.
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], check=False, capture_output=True)
    return not (path.exists() or path.is_symlink())
