"""Test images built on this machine: there is no registry to pull from.

``busybox_image()`` imports a root file system holding Debian's static busybox (``/bin/busybox``
plus one symlink per applet, ``/tmp``, a minimal ``/etc/passwd``) as ``watcher-test/busybox:1``,
once per Docker engine: the same image a user's ``image:`` would name, only built locally.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
from pathlib import Path

import docker
import docker.errors

BUSYBOX_IMAGE = "watcher-test/busybox:1"
_BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")


def docker_client() -> docker.DockerClient:
    """The local engine, or a failure saying how to get one (these tests never skip silently)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            client = docker.from_env(timeout=120)
            client.ping()
            return client
        except docker.errors.DockerException as exc:
            if time.monotonic() > deadline:
                hint = "run scripts/ensure-docker.sh (installs docker.io and starts dockerd)"
                raise RuntimeError(f"no Docker engine answers ({exc}); {hint}") from None
            time.sleep(1)


def _static_busybox() -> Path:
    for candidate in _BUSYBOX_PATHS:
        path = Path(candidate)
        # A dynamic binary names its loader (PT_INTERP) near the start of the file.
        if path.is_file() and b"ld-linux" not in path.read_bytes()[:65536]:
            return path
    raise RuntimeError("no static busybox on this machine: apt-get install -y busybox-static")


def _rootfs_tar(busybox: Path) -> bytes:
    applets = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def directory(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def text(name: str, content: str) -> None:
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))

        for name in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "home"):
            directory(name)
        directory("tmp", 0o1777)
        info = tar.gettarinfo(str(busybox), "bin/busybox")
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        with open(busybox, "rb") as handle:
            tar.addfile(info, handle)
        for applet in applets:
            if applet == "bin/busybox":
                continue
            link = tarfile.TarInfo(applet)
            link.type, link.linkname = tarfile.SYMTYPE, "/bin/busybox"
            tar.addfile(link)
        text("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        text("etc/group", "root:x:0:\nnogroup:x:65534:\n")
    return buffer.getvalue()


def busybox_image() -> str:
    client = docker_client()
    try:
        client.images.get(BUSYBOX_IMAGE)
        return BUSYBOX_IMAGE
    except docker.errors.ImageNotFound:
        pass
    repository, tag = BUSYBOX_IMAGE.split(":")
    client.api.import_image_from_data(_rootfs_tar(_static_busybox()), repository=repository, tag=tag)
    client.images.get(BUSYBOX_IMAGE)  # raises if the import did not produce it
    return BUSYBOX_IMAGE
