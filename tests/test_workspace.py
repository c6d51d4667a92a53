"""Spec: the job's files on the host. An object's key becomes one safe file name inside ``input/``
whatever it holds; what a script leaves in ``output/`` is untrusted, so only regular files wholly
inside it are read; work directories vanish after the job, and a worker starting after a crash
removes those of dead workers but never those of live ones."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.handlers.container import outputs, workspace
from watcher.handlers.container.outputs import (
    MAX_OUTPUT_DEPTH,
    OutputFile,
    SkippedOutput,
    collect_outputs,
    open_output,
)
from watcher.handlers.container.workspace import WorkArea, is_abandoned, safe_file_name

# --- input file names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("in put/file 1.txt", "file 1.txt"),
        ("video.mp4", "video.mp4"),
        ("../../etc/passwd", "passwd"),
        ("a/b/../../../etc/shadow", "shadow"),
        ("a/..", "input"),
        ("..", "input"),
        ("a/.", "input"),
        (".", "input"),
        ("folder/", "input"),
        ("", "input"),
        ("...", "..."),  # three dots is an ordinary name
        (".hidden", ".hidden"),
        ("a\\..\\..\\windows\\system32", "a_.._.._windows_system32"),
        ("dir\\..", "dir_.."),
        ("x\0y.txt", "x_y.txt"),
        ("x/\0", "_"),
        ("line\nbreak\r\t.txt", "line_break__.txt"),
        ("bell\x07del\x7f", "bell_del_"),
        ("données/été.csv", "été.csv"),
    ],
)
def test_safe_file_name(key: str, name: str) -> None:
    assert safe_file_name(key) == name


def _check_safe(name: str) -> None:
    assert name not in ("", ".", "..")
    assert "/" not in name and "\\" not in name and "\0" not in name
    assert all(ord(ch) >= 32 and ord(ch) != 127 for ch in name)
    encoded = os.fsencode(name)  # the file system takes it as it is
    assert 0 < len(encoded) <= 200


@pytest.mark.parametrize(
    "key",
    [
        "a" * 1000,
        "a" * 996 + ".txt",
        "x/" + "b" * 5000 + ".tar.gz",
        "." * 300,
        "é" * 600,  # 1200 bytes of two-byte characters
        "日本語" * 200,  # three-byte characters
        "😀" * 100 + ".png",  # four-byte characters
        "a" * 199 + "é",  # the cut falls inside a character
    ],
)
def test_a_long_name_is_cut_to_200_bytes_of_valid_utf8(key: str) -> None:
    name = safe_file_name(key)
    _check_safe(name)
    name.encode("utf-8")  # no half character left at the cut


def test_a_long_name_keeps_its_extension() -> None:
    assert safe_file_name("a" * 996 + ".txt").endswith(".txt")
    assert safe_file_name("b" * 5000 + ".tar.gz").endswith(".gz")


def test_distinct_long_names_stay_distinct() -> None:
    first = safe_file_name("a" * 1000 + "1.txt")
    second = safe_file_name("a" * 1000 + "2.txt")
    assert first != second
    assert len({safe_file_name("é" * 300 + str(n)) for n in range(50)}) == 50


def test_a_name_of_exactly_200_bytes_is_kept() -> None:
    key = "a" * 196 + ".txt"
    assert safe_file_name(key) == key


def test_the_name_is_stable_for_a_key() -> None:
    key = "a" * 1000 + ".csv"
    assert safe_file_name(key) == safe_file_name(key)


@pytest.mark.parametrize("key", ["a/\ud800.txt", "\udcff", "x/" + "b" * 300 + ".\ud800", "b" * 300 + "\udfff"])
def test_a_key_that_is_not_valid_unicode_still_gives_a_usable_name(key: str) -> None:
    # S3 keys are UTF-8, but a hand-made message can carry a lone surrogate ("\ud800" in JSON).
    _check_safe(safe_file_name(key))


def test_a_safe_name_stays_inside_input(tmp_path: Path) -> None:
    input_dir = tmp_path / "input"
    input_dir.mkdir()
    for key in ("../../etc/passwd", "..", "a/..", "x\\..\\..\\y", "/abs/olute", "a" * 1000):
        path = input_dir / safe_file_name(key)
        assert path.parent == input_dir
        path.write_text("x")  # creatable: a valid, not too long, name
        path.unlink()


# --- collecting the outputs --------------------------------------------------------------------


@pytest.fixture
def output(tmp_path: Path) -> Path:
    folder = tmp_path / "job" / "output"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def host_file(tmp_path: Path) -> Path:
    """A file outside the job: what a malicious script would like to leak."""
    secret = tmp_path / "host-secret.txt"
    secret.write_text("root:x:0:0\n")
    return secret


def relatives(files: list[OutputFile]) -> list[str]:
    return [f.relative for f in files]


def test_regular_files_in_subfolders_are_collected_with_slash_paths(output: Path) -> None:
    (output / "summary.json").write_text("{}")
    (output / "frames" / "hd").mkdir(parents=True)
    (output / "frames" / "0001.jpg").write_bytes(b"\xff" * 10)
    (output / "frames" / "hd" / "0001.jpg").write_bytes(b"\xff" * 20)
    (output / "empty-folder").mkdir()
    files, skipped = collect_outputs(output)
    assert relatives(files) == ["frames/0001.jpg", "frames/hd/0001.jpg", "summary.json"]
    assert [f.size for f in files] == [10, 20, 2]
    assert skipped == []


def test_an_empty_output_has_nothing_to_upload(output: Path) -> None:
    assert collect_outputs(output) == ([], [])


def test_names_with_spaces_and_unicode_are_kept(output: Path) -> None:
    (output / "my results").mkdir()
    (output / "my results" / "été 1.txt").write_text("x")
    files, _ = collect_outputs(output)
    assert relatives(files) == ["my results/été 1.txt"]


def test_a_symlink_to_a_host_file_is_skipped(output: Path, host_file: Path) -> None:
    (output / "result.txt").write_text("ok")
    (output / "passwd").symlink_to(host_file)
    (output / "relative").symlink_to("../../host-secret.txt")
    files, skipped = collect_outputs(output)
    assert relatives(files) == ["result.txt"]
    assert sorted(skipped, key=lambda s: s.relative) == [
        SkippedOutput("passwd", "symlink"),
        SkippedOutput("relative", "symlink"),
    ]


def test_a_symlink_is_never_even_opened(output: Path, tmp_path: Path) -> None:
    # Its target is a FIFO with no writer: opening it, or reading it, would block for ever.
    fifo = tmp_path / "trap"
    os.mkfifo(fifo)
    (output / "trap").symlink_to(fifo)
    files, skipped = _collect_within(output, seconds=10)
    assert files == []
    assert skipped == [SkippedOutput("trap", "symlink")]


def test_a_symlink_inside_output_is_skipped_too(output: Path) -> None:
    # Nothing is uploaded through a link, even one that stays inside: the file itself is.
    (output / "real.txt").write_text("x")
    (output / "alias.txt").symlink_to("real.txt")
    files, skipped = collect_outputs(output)
    assert relatives(files) == ["real.txt"]
    assert skipped == [SkippedOutput("alias.txt", "symlink")]


def test_a_dangling_symlink_is_skipped(output: Path) -> None:
    (output / "gone").symlink_to("/nonexistent/at/all")
    assert collect_outputs(output) == ([], [SkippedOutput("gone", "symlink")])


def test_a_symlinked_folder_is_not_followed(output: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "private.key").write_text("-----BEGIN PRIVATE KEY-----")
    (output / "etc").symlink_to(elsewhere, target_is_directory=True)
    (output / "root").symlink_to("/", target_is_directory=True)
    files, skipped = collect_outputs(output)
    assert files == []
    assert sorted(skipped, key=lambda s: s.relative) == [
        SkippedOutput("etc", "symlink"),
        SkippedOutput("root", "symlink"),
    ]


def test_a_hard_link_to_a_file_outside_output_is_skipped(output: Path, host_file: Path) -> None:
    os.link(host_file, output / "passwd")
    (output / "ok.txt").write_text("ok")
    files, skipped = collect_outputs(output)
    assert relatives(files) == ["ok.txt"]
    assert skipped == [SkippedOutput("passwd", "hardlink")]


def test_a_hard_link_in_a_subfolder_to_a_file_outside_is_skipped(output: Path, host_file: Path) -> None:
    (output / "deep" / "er").mkdir(parents=True)
    os.link(host_file, output / "deep" / "er" / "x")
    os.link(host_file, output / "y")  # two names inside, a third outside: still not wholly ours
    files, skipped = collect_outputs(output)
    assert files == []
    assert sorted(skipped, key=lambda s: s.relative) == [
        SkippedOutput("deep/er/x", "hardlink"),
        SkippedOutput("y", "hardlink"),
    ]


def test_hard_links_that_are_all_inside_output_are_all_uploaded(output: Path) -> None:
    (output / "a.txt").write_text("same")
    (output / "sub").mkdir()
    os.link(output / "a.txt", output / "sub" / "b.txt")
    files, skipped = collect_outputs(output)
    assert relatives(files) == ["a.txt", "sub/b.txt"]
    assert skipped == []
    assert files[0].inode == files[1].inode


def test_a_fifo_is_skipped_as_special_without_blocking(output: Path) -> None:
    os.mkfifo(output / "pipe")
    (output / "ok.txt").write_text("ok")
    files, skipped = _collect_within(output, seconds=10)
    assert relatives(files) == ["ok.txt"]
    assert skipped == [SkippedOutput("pipe", "special")]


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device file needs root")
def test_a_device_file_is_skipped_as_special(output: Path) -> None:
    os.mknod(output / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    assert collect_outputs(output) == ([], [SkippedOutput("null", "special")])


def test_too_many_files_are_cut_off(output: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outputs, "MAX_OUTPUT_FILES", 3)
    for n in range(5):
        (output / f"{n}.txt").write_text(str(n))
    files, skipped = collect_outputs(output)
    assert len(files) == 3
    assert [s.reason for s in skipped] == ["too_many", "too_many"]
    assert sorted(relatives(files) + [s.relative for s in skipped]) == [f"{n}.txt" for n in range(5)]


def _collect_within(output: Path, seconds: float) -> tuple[list[OutputFile], list[SkippedOutput]]:
    """collect_outputs in a thread, failing (rather than hanging the suite) when it blocks."""
    result: list[tuple[list[OutputFile], list[SkippedOutput]]] = []
    thread = threading.Thread(target=lambda: result.append(collect_outputs(output)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "collect_outputs blocked"
    return result[0]


# --- reading a collected output ----------------------------------------------------------------


def test_a_collected_output_is_read_as_it_was(output: Path) -> None:
    (output / "sub").mkdir()
    (output / "sub" / "r.txt").write_bytes(b"result")
    (collected,), _ = collect_outputs(output)
    with open_output(output, collected) as handle:
        assert handle.read() == b"result"


def test_a_file_replaced_after_collection_is_refused(output: Path) -> None:
    (output / "r.txt").write_text("the script's result")
    (collected,), _ = collect_outputs(output)
    swapped = output / "swap.tmp"
    swapped.write_text("something else")  # made while the first exists: another inode for sure
    os.replace(swapped, output / "r.txt")
    with pytest.raises(PermissionError, match=r"r\.txt changed after the job ended"), open_output(output, collected):
        pytest.fail("a swapped file must not be opened")


def test_a_symlink_swapped_in_after_collection_is_refused(output: Path, host_file: Path) -> None:
    (output / "r.txt").write_text("the script's result")
    (collected,), _ = collect_outputs(output)
    (output / "r.txt").unlink()
    (output / "r.txt").symlink_to(host_file)
    with pytest.raises(OSError), open_output(output, collected):  # ELOOP: O_NOFOLLOW
        pytest.fail("a symlink must not be followed")


def test_a_folder_swapped_for_a_symlink_after_collection_is_refused(output: Path, tmp_path: Path) -> None:
    (output / "sub").mkdir()
    (output / "sub" / "r.txt").write_text("the script's result")
    (collected,), _ = collect_outputs(output)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "r.txt").write_text("a host file")
    (output / "sub").rename(tmp_path / "old-sub")  # keeps the collected inode alive
    (output / "sub").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(PermissionError), open_output(output, collected):
        pytest.fail("a file reached through a swapped-in folder must not be opened")


def test_a_fifo_swapped_in_after_collection_is_refused_without_blocking(output: Path) -> None:
    (output / "r.txt").write_text("x")
    (collected,), _ = collect_outputs(output)
    (output / "r.txt").rename(output / "kept")
    os.mkfifo(output / "r.txt")
    with pytest.raises(PermissionError), open_output(output, collected):
        pytest.fail("a FIFO must not be read")


# --- work areas and job directories ------------------------------------------------------------


@pytest.fixture
def area(tmp_path: Path) -> Iterator[WorkArea]:
    work_area = WorkArea(tmp_path / "jobs")
    work_area.open()
    yield work_area
    work_area.close()


def lock_of(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def test_open_makes_the_work_dir_a_private_area_and_its_lock(tmp_path: Path) -> None:
    area = WorkArea(tmp_path / "deep" / "jobs")
    area.open()
    try:
        assert area.path.parent == tmp_path / "deep" / "jobs"
        assert area.path.name.startswith("area-")
        assert stat.S_IMODE(area.path.stat().st_mode) == 0o700
        assert lock_of(area.path).is_file()
        assert not is_abandoned(area.path)  # its lock is held for as long as it is open
    finally:
        area.close()


def test_a_job_gets_input_and_a_world_writable_output(area: WorkArea) -> None:
    job = area.new_job("0123456789abcdef0123456789abcdef")
    assert job.root.parent == area.path
    assert job.root.name.startswith("0123456789abcdef-")
    assert job.input.is_dir() and job.output.is_dir()
    assert stat.S_IMODE(job.output.stat().st_mode) == 0o777  # the job may run as another user
    assert stat.S_IMODE(job.root.stat().st_mode) == 0o700  # but nobody else gets to it
    assert (job.log, job.script) == (job.root / "log.txt", job.root / "script.sh")


def test_two_jobs_of_the_same_object_get_their_own_directories(area: WorkArea) -> None:
    first, second = area.new_job("same-request-id"), area.new_job("same-request-id")
    assert first.root != second.root


def test_removing_a_job_removes_everything_in_it(area: WorkArea, host_file: Path) -> None:
    job = area.new_job("r")
    (job.output / "deep" / "er").mkdir(parents=True)
    (job.output / "deep" / "er" / "f").write_text("x")
    (job.output / "link").symlink_to(host_file)
    (job.input / "in.txt").write_text("x")
    os.mkfifo(job.output / "pipe")
    (job.output / "deep" / "er").chmod(0o500)
    job.remove()
    assert not job.root.exists()
    assert host_file.read_text() == "root:x:0:0\n"  # a symlink's target is left alone
    assert list(area.path.iterdir()) == []


def test_close_removes_the_area_and_its_lock(tmp_path: Path) -> None:
    area = WorkArea(tmp_path / "jobs")
    area.open()
    job = area.new_job("r")
    (job.output / "f").write_text("x")
    area.close()
    assert list((tmp_path / "jobs").iterdir()) == []
    area.close()  # twice is harmless


def _dead_area(base: Path, name: str = "area-dead0000") -> Path:
    """What a worker killed by SIGKILL leaves: its area with a job in it, and an unlocked lock file."""
    area = base / name
    (area / "0123-abcd" / "output" / "sub").mkdir(parents=True)
    (area / "0123-abcd" / "output" / "sub" / "half-written.bin").write_bytes(b"\0" * 100)
    (area / "0123-abcd" / "input").mkdir()
    lock_of(area).touch()
    return area


def test_sweep_removes_the_area_of_a_dead_worker(area: WorkArea) -> None:
    dead = _dead_area(area.base)
    assert is_abandoned(dead)
    assert area.sweep_stale() == [dead]
    assert not dead.exists()
    assert not lock_of(dead).exists()
    assert area.path.is_dir() and lock_of(area.path).exists()  # its own is kept


def test_sweep_removes_an_area_whose_lock_file_is_gone(area: WorkArea) -> None:
    dead = _dead_area(area.base, "area-nolock000")
    lock_of(dead).unlink()
    assert is_abandoned(dead)
    assert area.sweep_stale() == [dead]
    assert not dead.exists()


def test_sweep_leaves_files_that_are_not_areas(area: WorkArea) -> None:
    (area.base / "README").write_text("not ours")
    (area.base / "other-tool").mkdir()
    assert area.sweep_stale() == []
    assert (area.base / "README").exists() and (area.base / "other-tool").is_dir()


def test_sweep_of_a_work_dir_that_does_not_exist_finds_nothing(tmp_path: Path) -> None:
    assert WorkArea(tmp_path / "never-made").sweep_stale() == []


def test_sweep_keeps_the_area_of_another_live_worker(area: WorkArea) -> None:
    other = WorkArea(area.base)
    other.open()  # another handler, in this process: its lock is held
    try:
        job = other.new_job("r")
        assert area.sweep_stale() == []
        assert job.root.is_dir()
    finally:
        other.close()


def test_sweep_keeps_the_area_of_a_live_worker_in_another_process(area: WorkArea) -> None:
    live = _dead_area(area.base, "area-live0000")
    holder = _hold_lock(lock_of(live))
    try:
        assert not is_abandoned(live)
        assert area.sweep_stale() == []
        assert (live / "0123-abcd" / "output" / "sub" / "half-written.bin").exists()
        assert lock_of(live).exists()
    finally:
        holder.kill()
        holder.wait()
    # Once that process has died, its lock is free and its area is swept.
    assert is_abandoned(live)
    assert area.sweep_stale() == [live]
    assert not live.exists()


def test_a_worker_starting_while_another_sweeps_keeps_its_area(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Worker B sweeps exactly while worker A has made its lock file but not locked it yet: B must
    # not take A for dead and leave A's area without a lock file, for a third to remove.
    base = tmp_path / "jobs"
    starting, sweeping = WorkArea(base), WorkArea(base)
    sweeping.open()
    real_flock = workspace.fcntl.flock
    swept: list[list[Path]] = []

    def flock_after_a_sweep(fd: int, operation: int) -> None:
        if not swept:
            swept.append([])  # the sweep's own flock calls pass straight through
            swept[0] = sweeping.sweep_stale()
        real_flock(fd, operation)

    monkeypatch.setattr(workspace.fcntl, "flock", flock_after_a_sweep)
    starting.open()
    monkeypatch.setattr(workspace.fcntl, "flock", real_flock)
    try:
        assert lock_of(starting.path).exists()
        assert not is_abandoned(starting.path)
        job = starting.new_job("r")
        third = WorkArea(base)
        third.open()
        try:
            assert starting.path not in third.sweep_stale()
        finally:
            third.close()
        assert job.root.is_dir()
    finally:
        starting.close()
        sweeping.close()


def _hold_lock(lock: Path) -> subprocess.Popen[str]:
    """Another process that holds ``lock`` the way a live worker does, until killed."""
    code = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "locked":
        process.kill()
        process.wait()
        pytest.fail("the lock holder did not start")
    return process


# --- hostile shapes of output --------------------------------------------------------------------


def _nest(root: Path, depth: int) -> Path:
    """``depth`` folders inside ``root``, made with relative paths (an absolute one would exceed PATH_MAX)."""
    here = os.getcwd()
    os.chdir(root)
    try:
        for _ in range(depth):
            os.mkdir("d")
            os.chdir("d")
        Path("deep.txt").write_text("deep")
    finally:
        os.chdir(here)
    return root


def test_folders_nested_past_the_recursion_limit_are_cut_off_not_a_crash(area: WorkArea) -> None:
    job = area.new_job("0" * 32)
    _nest(job.output, 1200)  # deeper than Python's default recursion limit (1000)
    (job.output / "ok.txt").write_text("ok")
    files, skipped = collect_outputs(job.output)
    assert relatives(files) == ["ok.txt"]
    assert [s.reason for s in skipped] == ["too_deep"]
    assert skipped[0].relative == "d/" * MAX_OUTPUT_DEPTH
    assert job.remove() is True  # shutil.rmtree alone would raise RecursionError
    assert not job.root.exists()


def test_a_name_that_is_not_utf8_is_skipped_as_bad_name(output: Path) -> None:
    os.close(os.open(os.fsencode(output) + b"/caf\xe9.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    (output / "fine.txt").write_text("x")
    files, skipped = collect_outputs(output)
    assert relatives(files) == ["fine.txt"]
    assert [(s.relative, s.reason) for s in skipped] == [("caf\ufffd.txt", "bad_name")]


def test_job_folders_are_readable_by_another_user_whatever_the_umask(area: WorkArea) -> None:
    previous = os.umask(0o077)
    try:
        job = area.new_job("1" * 32)
        job.write_script("echo hi\n")
    finally:
        os.umask(previous)
    modes = {path.name: path.stat().st_mode & 0o777 for path in (job.root, job.input, job.output, job.script)}
    assert modes == {job.root.name: 0o700, "input": 0o755, "output": 0o777, "script.sh": 0o644}


def test_a_planned_job_is_made_only_when_created_and_removing_it_before_is_harmless(area: WorkArea) -> None:
    job = area.plan_job("2" * 32)
    assert not job.root.exists()
    assert job.remove() is True
    job.create()
    assert job.input.is_dir() and job.output.is_dir()
