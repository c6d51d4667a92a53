"""The systemd units in deploy/systemd: they load cleanly (`systemd-analyze verify`), they are
sandboxed (`systemd-analyze security --offline=true`), they say what the worker needs (notify,
watchdog, stop timeout above the drain), and the worker really runs under their
MemoryDenyWriteExecute=yes.

`systemd-analyze verify` checks that ExecStart's program exists and is executable, so it is run with
``--root=`` on a temporary tree: the distribution's own units (sysinit.target, basic.target,
network-online.target... which the unit's dependencies need) copied from this machine, our units in
``etc/systemd/system``, and at the unit's ExecStart path a copy of the real ``watcher`` console
script of the environment running the tests. The unit is the file from the repository, unchanged.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.fixtures import s3_event
from tests.support.process import REPO, WatcherProcess, base_config, wait_until
from watcher.config.schema import WorkerConfig

UNITS = REPO / "deploy" / "systemd"
DOCKER_DROP_IN = UNITS / "docker.conf"
MAX_EXPOSURE = 2.5
# Above shutdown_grace_seconds, the stop timeout must leave room for the hand-back (visibility 0 for
# every unfinished message, three tries each), the flush of pending deletes and the handlers' close
# (containers removed): one minute. In an SQS outage the hand-back cannot succeed anyway; SIGKILL
# cuts it short and the messages reappear after their visibility timeout, as after a crash.
HAND_BACK_SECONDS = 60

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian: apt-get install systemd)"
)

# (unit name as loaded, file in deploy/systemd, with the docker drop-in)
CASES = [
    ("watcher.service", "watcher.service", False),
    ("watcher@ingest.service", "watcher@.service", False),
    ("watcher.service", "watcher.service", True),
    ("watcher@ingest.service", "watcher@.service", True),
]
CASE_IDS = ["single", "instance", "single+docker", "instance+docker"]


def unit_settings(path: Path) -> dict[tuple[str, str], list[str]]:
    """Every ``Key=value`` of a unit file by (section, key), in order (keys may repeat)."""
    settings: dict[tuple[str, str], list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault((section, key.strip()), []).append(value.strip())
    return settings


def seconds(value: str) -> float:
    """A systemd time span of the forms these units use: ``90``, ``90s``, ``2min``, ``1min 30s``."""
    units = {"": 1.0, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


def distribution_unit_dir() -> Path:
    for candidate in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if (candidate / "sysinit.target").exists():
            return candidate
    pytest.skip("no distribution unit directory with sysinit.target on this machine")


def installed_tree(tmp_path: Path, unit_file: str, docker: bool) -> Path:
    """A root for ``--root=``: the unit installed as the README says, its ExecStart present."""
    root = tmp_path / "root"
    shutil.copytree(distribution_unit_dir(), root / "usr/lib/systemd/system", symlinks=True)
    (root / "lib").symlink_to("usr/lib")
    system = root / "etc/systemd/system"
    system.mkdir(parents=True)
    shutil.copy(UNITS / unit_file, system / unit_file)
    if docker:
        drop_ins = system / f"{unit_file}.d"
        drop_ins.mkdir()
        shutil.copy(DOCKER_DROP_IN, drop_ins / "docker.conf")
    executable = unit_settings(UNITS / unit_file)[("Service", "ExecStart")][0].split()[0]
    console_script = Path(sys.executable).parent / "watcher"
    assert console_script.is_file(), f"no watcher console script next to {sys.executable}"
    target = root / executable.lstrip("/")
    target.parent.mkdir(parents=True)
    shutil.copy(console_script, target)
    return root


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run([SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=60)


def overall_exposure(root: Path, unit: str) -> float:
    result = analyze("security", "--offline=true", f"--root={root}", "--no-pager", unit)
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert match, f"no overall exposure in:\n{result.stdout}\n{result.stderr}"
    return float(match.group(1))


@needs_systemd_analyze
@pytest.mark.parametrize(("unit", "unit_file", "docker"), CASES, ids=CASE_IDS)
def test_systemd_analyze_verify_accepts_the_unit_silently(
    tmp_path: Path, unit: str, unit_file: str, docker: bool
) -> None:
    # verify exits 0 even on unknown keys or unparseable values: it only prints them. Silence is the check.
    result = analyze("verify", "--man=no", f"--root={installed_tree(tmp_path, unit_file, docker)}", unit)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@needs_systemd_analyze
def test_verify_reports_a_misspelt_key_and_a_missing_program(tmp_path: Path) -> None:
    """The check above can fail: the same tree with one key misspelt, then without the program."""
    root = installed_tree(tmp_path, "watcher.service", docker=False)
    unit_path = root / "etc/systemd/system/watcher.service"
    unit_path.write_text(unit_path.read_text().replace("KillMode=mixed", "KilMode=mixed"))
    misspelt = analyze("verify", "--man=no", f"--root={root}", "watcher.service")
    assert "Unknown key 'KilMode'" in misspelt.stderr

    (root / "opt/watcher/venv/bin/watcher").unlink()
    missing = analyze("verify", "--man=no", f"--root={root}", "watcher.service")
    assert missing.returncode != 0
    assert "/opt/watcher/venv/bin/watcher" in missing.stderr


@needs_systemd_analyze
@pytest.mark.parametrize(("unit", "unit_file"), [CASES[0][:2], CASES[1][:2]], ids=CASE_IDS[:2])
def test_exposure_without_docker_access_is_at_most_2_5(tmp_path: Path, unit: str, unit_file: str) -> None:
    exposure = overall_exposure(installed_tree(tmp_path, unit_file, docker=False), unit)
    print(f"systemd-analyze security --offline=true {unit}: overall exposure {exposure}")
    assert exposure <= MAX_EXPOSURE


@needs_systemd_analyze
def test_the_docker_drop_in_applies_and_its_cost_is_measured(tmp_path: Path) -> None:
    """The figure barely moves (the score cannot know that the docker group is root on the host: the
    drop-in says so); what is checked here is that the drop-in is loaded and what it relaxes."""
    without = overall_exposure(installed_tree(tmp_path / "a", "watcher.service", docker=False), "watcher.service")
    root = installed_tree(tmp_path / "b", "watcher.service", docker=True)
    with_docker = overall_exposure(root, "watcher.service")
    print(f"overall exposure: {without} without Docker access, {with_docker} with docker.conf")
    assert with_docker > without
    table = analyze("security", "--offline=true", f"--root={root}", "--no-pager", "watcher.service").stdout
    assert re.search(r"✗ SupplementaryGroups=", table)
    assert re.search(r"✗ PrivateUsers=", table)


def test_the_unit_says_what_the_worker_needs() -> None:
    unit = unit_settings(UNITS / "watcher.service")

    def one(key: str) -> str:
        values = unit[("Service", key)]
        assert len(values) == 1, f"{key} set {len(values)} times"
        return values[0]

    assert (one("Type"), one("NotifyAccess"), one("Restart")) == ("notify", "main", "on-failure")
    assert (one("KillSignal"), one("KillMode")) == ("SIGTERM", "mixed")
    watchdog = seconds(one("WatchdogSec"))
    assert 10 <= watchdog <= 120, "the worker pings at half of it: long enough for a busy loop, short enough to act"
    grace = WorkerConfig().shutdown_grace_seconds
    assert seconds(one("TimeoutStopSec")) >= grace + HAND_BACK_SECONDS
    assert one("ExecStart").split()[1:] == ["run", "-c", "/etc/watcher/watcher.yaml"]
    assert one("EnvironmentFile") == "-/etc/watcher/watcher.env"
    assert one("StateDirectory") == "watcher"
    assert one("DynamicUser") == "yes"
    assert "WATCHER_WORK_DIR=/var/cache/watcher/jobs" in unit[("Service", "Environment")]
    assert one("CacheDirectory") == "watcher"
    assert one("CapabilityBoundingSet") == ""
    for key in ("NoNewPrivileges", "PrivateTmp", "PrivateDevices", "ProtectHome", "LockPersonality"):
        assert one(key) == "yes", key
    for key in ("ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups"):
        assert one(key) == "yes", key
    assert one("MemoryDenyWriteExecute") == "yes"
    assert one("ProtectSystem") == "strict"
    assert one("RestrictAddressFamilies") == "AF_UNIX AF_INET AF_INET6"
    assert unit[("Service", "SystemCallFilter")][0] == "@system-service"


def test_the_template_differs_from_the_single_unit_only_by_its_instance() -> None:
    single = unit_settings(UNITS / "watcher.service")
    template = unit_settings(UNITS / "watcher@.service")
    expected = dict(single)
    expected[("Unit", "Description")] = [single[("Unit", "Description")][0].replace("watcher:", "watcher (%i):")]
    expected[("Service", "ExecStart")] = ["/opt/watcher/venv/bin/watcher run -c /etc/watcher/%i.yaml"]
    expected[("Service", "EnvironmentFile")] = ["-/etc/watcher/watcher.env", "-/etc/watcher/%i.env"]
    expected[("Service", "StateDirectory")] = ["watcher/%i"]
    expected[("Service", "CacheDirectory")] = ["watcher/%i"]
    expected[("Service", "Environment")] = [
        value.replace("/var/cache/watcher/jobs", "/var/cache/watcher/%i/jobs")
        for value in single[("Service", "Environment")]
    ]
    assert template == expected


# --- MemoryDenyWriteExecute=yes: does Python, with everything watcher loads, live without W+X memory?
# systemd implements it with a seccomp filter; the kernel's own PR_SET_MDWE (Linux 6.3+) refuses the
# same mappings (and is inherited across fork and exec), so the worker is run under that.

PR_MDWE_REFUSE_EXEC_GAIN = 1
HANDLER = "tests.support.handlers:record"

SITECUSTOMIZE = textwrap.dedent(
    """
    import ctypes, os
    _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        raise SystemExit(f"PR_SET_MDWE failed: errno {ctypes.get_errno()}")
    with open(os.environ["MDWE_MARKER"], "a") as _marker:
        _marker.write(f"{os.getpid()} {_libc.prctl(66, 0, 0, 0, 0)}\\n")  # PR_GET_MDWE
    """
)


def kernel_has_mdwe() -> bool:
    probe = "import ctypes,sys; sys.exit(ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) != 0)"
    return subprocess.run([sys.executable, "-c", probe], timeout=30).returncode == 0


needs_mdwe = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not kernel_has_mdwe(),
    reason="the kernel has no PR_SET_MDWE (Linux 6.3+), which stands in for systemd's MemoryDenyWriteExecute",
)


def mdwe_environment(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "mdwe-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {"PYTHONPATH": f"{site}{os.pathsep}{REPO}", "MDWE_MARKER": str(tmp_path / "mdwe-marker")}


@needs_mdwe
def test_writable_executable_memory_is_refused_under_the_stand_in(tmp_path: Path) -> None:
    """The stand-in really bites: an anonymous W+X mapping fails in a process that set it."""
    probe = "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **mdwe_environment(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Permission denied" in result.stderr


@needs_mdwe
@pytest.mark.integration
def test_the_worker_runs_its_handlers_without_writable_executable_memory(
    make_queues: Any, s3: Any, unique: str, tmp_path: Path
) -> None:
    """log, python and a container job (runtime: process) under the stand-in, end to end."""
    queues = make_queues()
    bucket = f"mdwe-{unique}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="jobs/in.txt", Body=b"abc")
    script = tmp_path / "copy.sh"
    script.write_text('cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/copy.txt"\n')
    job = {
        "type": "container",
        "runtime": "process",
        "script": str(script),
        "output": f"s3://{bucket}/out/",
        "work_dir": str(tmp_path / "work"),
    }
    python = {"type": "python", "function": HANDLER, "options": {"calls_file": str(tmp_path / "calls.jsonl")}}
    routes = [
        {"name": "logged", "bucket": bucket, "prefix": "logs/", "handler": {"type": "log"}},
        {"name": "called", "bucket": bucket, "prefix": "calls/", "handler": python},
        {"name": "job", "bucket": bucket, "prefix": "jobs/", "handler": job},
    ]
    worker = WatcherProcess(base_config(queues.url, routes), tmp_path, env=mdwe_environment(tmp_path))
    try:
        worker.wait_started()
        for key in ("logs/a.txt", "calls/b.txt", "jobs/in.txt"):
            queues.send(s3_event(bucket, key))
        worker.wait_for_units(3)
        wait_until(lambda: worker.metric("watcher_sqs_messages_deleted_total") == 3, 30, what="three deletes")
    finally:
        code = worker.stop()
    assert code == 0, worker.output()
    assert sorted((line["route"], line["outcome"]) for line in worker.units()) == [
        ("called", "ok"),
        ("job", "ok"),
        ("logged", "ok"),
    ]
    outputs = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="out/").get("Contents", [])]
    assert any(key.endswith("/copy.txt") for key in outputs), outputs
    marker = (tmp_path / "mdwe-marker").read_text().split()
    assert marker == [str(worker.process.pid), str(PR_MDWE_REFUSE_EXEC_GAIN)], "the worker ran under PR_SET_MDWE"
