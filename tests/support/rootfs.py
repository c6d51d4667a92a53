"""Docker images built on this machine from Debian packages: nothing can be pulled here.

``rootfs_image(spec, tag)`` makes an image in two cached steps:

1. a root file system: ``debootstrap --variant=minbase --include=<packages> bookworm`` from the machine's own
   apt mirror, then optional ``pip install --target`` of manylinux wheels and extra files, with the
   documentation and apt caches removed; kept as ``$WATCHER_HOME/rootfs/<name>-<hash of the inputs>.tar``
   (``WATCHER_HOME`` defaults to ``~/.cache/watcher``) so only the first run pays for it;
2. ``docker import`` of that tarball with ``--change`` lines (``ENV``, ``WORKDIR``, ``ENTRYPOINT``...) and a
   ``watcher.rootfs`` label naming the inputs, skipped when the tag already carries that label.

Used for the Lambda python3.11 runtime image (``tests/support/lambda_bed.py``) and meant for the other local
images (a python3.11 base for watcher's Dockerfile, ffmpeg and OpenCV images). It needs root (debootstrap)
and installs Debian's ``debootstrap`` with apt when it is missing.

Also a command: ``python -m tests.support.rootfs --name ffmpeg --package ffmpeg --tag watcher-local/ffmpeg:1``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from watcher.local import service

BUILDER_VERSION = 1  # bump when the build steps change in a way the inputs do not show
LABEL = "watcher.rootfs"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Never needed at run time; about a third of a minbase + python3 tree.
DEFAULT_REMOVE = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/cache/debconf/templates.dat-old",
    "var/log/bootstrap.log",
)
_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
Log = Callable[[str], None]


@dataclass(frozen=True)
class PipInstall:
    """Wheels installed with the host's pip into ``target`` inside the root file system (binary wheels only,
    chosen for ``python_version`` and ``platform``, so no compiler and no Python of that version on the host)."""

    requirements: tuple[str, ...]
    target: str = "/usr/local/lib/python3.11/dist-packages"  # on Debian python3's sys.path
    python_version: str = "3.11"
    platform: str = "manylinux2014_x86_64"


@dataclass(frozen=True)
class RootfsSpec:
    """What goes into one image. ``files`` maps an absolute path in the image to (content, mode)."""

    name: str
    packages: tuple[str, ...] = ()
    pip: tuple[PipInstall, ...] = ()
    files: Mapping[str, tuple[bytes, int]] = field(default_factory=dict)
    changes: tuple[str, ...] = ()  # docker import --change lines, added to the defaults below
    suite: str = "bookworm"
    variant: str = "minbase"
    remove: tuple[str, ...] = DEFAULT_REMOVE

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", self.name):
            raise ValueError(f"rootfs name {self.name!r}: use lower-case letters, digits, '.', '_' and '-'")
        for path in self.files:
            if not path.startswith("/"):
                raise ValueError(f"rootfs file {path!r}: give an absolute path inside the image")

    def rootfs_digest(self, mirror: str) -> str:
        """A hash of everything that goes into the tarball (not the docker changes)."""
        inputs = {
            "builder": BUILDER_VERSION,
            "suite": self.suite,
            "variant": self.variant,
            "mirror": mirror,
            "packages": sorted(self.packages),
            "pip": [[list(p.requirements), p.target, p.python_version, p.platform] for p in self.pip],
            "files": {k: [hashlib.sha256(v[0]).hexdigest(), v[1]] for k, v in sorted(self.files.items())},
            "remove": list(self.remove),
        }
        return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]

    def all_changes(self) -> tuple[str, ...]:
        return (f"ENV PATH={DEFAULT_PATH}", "ENV LANG=C.UTF-8", *self.changes)


def watcher_home() -> Path:
    return service.home()


def cache_dir() -> Path:
    return watcher_home() / "rootfs"


def debian_mirror(suite: str = "bookworm") -> str:
    """The Debian archive this machine's apt uses for ``suite`` (``WATCHER_DEBIAN_MIRROR`` overrides it)."""
    override = os.environ.get("WATCHER_DEBIAN_MIRROR")
    if override:
        return override
    for uri, suites in _apt_sources():
        if suite in suites and not uri.rstrip("/").endswith("-security"):
            return uri
    return "http://deb.debian.org/debian"


def _apt_sources() -> Iterator[tuple[str, list[str]]]:
    files: list[Path] = []
    for source in _SOURCES:
        if source.is_file():
            files.append(source)
        elif source.is_dir():
            files.extend(sorted(p for p in source.iterdir() if p.suffix in (".list", ".sources")))
    for path in files:
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":  # deb822 stanzas
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.MULTILINE))
                if "deb" in fields.get("Types", "").split() and fields.get("Enabled", "yes") != "no":
                    for uri in fields.get("URIs", "").split():
                        yield uri, fields.get("Suites", "").split()
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    yield words[1], [words[2]]


def ensure_debootstrap() -> str:
    found = shutil.which("debootstrap") or next(
        (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if Path(p).exists()), None
    )
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("debootstrap is missing and only root can install it: apt-get install -y debootstrap")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], check=True, env=env, stdout=subprocess.DEVNULL)
    return "/usr/sbin/debootstrap"


def tarball_path(spec: RootfsSpec) -> Path:
    return cache_dir() / f"{spec.name}-{spec.rootfs_digest(debian_mirror(spec.suite))}.tar"


def rootfs_tarball(spec: RootfsSpec, log: Log | None = None) -> Path:
    """The cached tarball of ``spec``'s root file system, built first when absent."""
    say = log or _stderr
    target = tarball_path(spec)
    if target.exists():
        return target
    with service.locked(cache_dir() / f".{spec.name}.lock"):
        if target.exists():  # built by someone else while we waited
            return target
        if os.geteuid() != 0:
            raise RuntimeError(f"building the {spec.name} root file system needs root (debootstrap)")
        started = time.monotonic()
        work = cache_dir() / f"build-{spec.name}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        try:
            root = work / "root"
            _debootstrap(spec, root, say)
            for install in spec.pip:
                _pip_install(install, root, say)
            for path, (content, mode) in spec.files.items():
                destination = root / path.lstrip("/")
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(content)
                destination.chmod(mode)
            for relative in spec.remove:
                _empty(root / relative)
            partial = work / "rootfs.tar"
            subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], check=True)
            partial.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for stale in cache_dir().glob(f"{spec.name}-*.tar"):  # earlier inputs of the same image
            if stale != target and re.fullmatch(rf"{re.escape(spec.name)}-[0-9a-f]{{16}}\.tar", stale.name):
                stale.unlink(missing_ok=True)
        size = target.stat().st_size / 2**20
        say(f"rootfs {target.name}: built in {time.monotonic() - started:.0f}s, {size:.0f} MiB")
    return target


def _debootstrap(spec: RootfsSpec, root: Path, say: Log) -> None:
    mirror = debian_mirror(spec.suite)
    command = [ensure_debootstrap(), f"--variant={spec.variant}", "--arch=amd64"]
    if spec.packages:
        command.append("--include=" + ",".join(spec.packages))
    command += [spec.suite, str(root), mirror]
    say(f"rootfs {spec.name}: debootstrap {spec.suite} from {mirror} (first time only, about a minute) ...")
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        log_file = root / "debootstrap" / "debootstrap.log"
        detail = log_file.read_text(errors="replace")[-3000:] if log_file.exists() else result.stderr[-3000:]
        raise RuntimeError(f"debootstrap failed ({result.returncode}):\n{result.stdout[-1000:]}\n{detail}")


def _pip_install(install: PipInstall, root: Path, say: Log) -> None:
    target = root / install.target.lstrip("/")
    say(f"rootfs: pip install --target {install.target} {' '.join(install.requirements)}")
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-cache-dir", "--disable-pip-version-check"]
    command += ["--no-warn-conflicts", "--root-user-action=ignore"]  # about the host's packages: not ours
    command += ["--target", str(target), "--only-binary=:all:", "--implementation", "cp"]
    command += ["--python-version", install.python_version, "--platform", install.platform]
    result = subprocess.run([*command, *install.requirements], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pip install into the root file system failed:\n{result.stderr[-3000:]}")


def _empty(path: Path) -> None:
    """Remove a file, or the contents of a folder (the folder itself stays: packages expect it)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


def image_label(spec: RootfsSpec) -> str:
    changes = hashlib.sha256("\n".join(spec.all_changes()).encode()).hexdigest()[:8]
    return f"{spec.name}-{spec.rootfs_digest(debian_mirror(spec.suite))}-{changes}"


def rootfs_image(spec: RootfsSpec, tag: str, log: Log | None = None) -> str:
    """``tag`` holding ``spec``'s root file system, imported unless it already carries the same label."""
    import docker
    import docker.errors

    say = log or _stderr
    client = docker.from_env(timeout=600)
    label = image_label(spec)
    previous = None
    with contextlib.suppress(docker.errors.ImageNotFound):
        previous = client.images.get(tag)
        if previous.labels.get(LABEL) == label:
            return tag
    tarball = rootfs_tarball(spec, say)
    started = time.monotonic()
    repository, _, version = tag.rpartition(":") if ":" in tag.rsplit("/", 1)[-1] else (tag, "", "latest")
    changes = [*spec.all_changes(), f"LABEL {LABEL}={label}"]
    client.api.import_image_from_file(str(tarball), repository=repository, tag=version, changes=changes)
    image = client.images.get(tag)
    if image.labels.get(LABEL) != label:
        raise RuntimeError(f"docker import of {tarball} did not produce {tag} with label {label}")
    if previous is not None and LABEL in previous.labels:  # an older build of ours: drop it once nothing names it
        with contextlib.suppress(docker.errors.APIError):
            previous.reload()
            if not previous.tags:
                client.images.remove(previous.id)
    size = int(image.attrs.get("Size", 0)) / 2**20
    say(f"image {tag}: imported in {time.monotonic() - started:.0f}s, {size:.0f} MiB")
    return tag


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--name", required=True)
    parser.add_argument("--tag", required=True, help="image tag, e.g. watcher-local/ffmpeg:1")
    parser.add_argument("--package", action="append", default=[], help="a Debian package (repeatable)")
    parser.add_argument("--pip", action="append", default=[], help="a requirement installed as a wheel")
    parser.add_argument("--pip-target", default=PipInstall.__dataclass_fields__["target"].default)
    parser.add_argument("--change", action="append", default=[], help="a docker import --change line")
    args = parser.parse_args(argv)
    pip = (PipInstall(tuple(args.pip), args.pip_target),) if args.pip else ()
    spec = RootfsSpec(name=args.name, packages=tuple(args.package), pip=pip, changes=tuple(args.change))
    print(rootfs_image(spec, args.tag))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
