"""Spec: the options of a ``container`` route, checked when the configuration loads. Every mistake
is reported at start, naming the route and the field (``routes[0] (r).handler.memory: ...``), never
on the first event. Also: where a job's outputs and log go, which images are ECR ones, and how
Docker's nanosecond timestamps are read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from watcher.app import parse_config
from watcher.config.schema import Config
from watcher.errors import ConfigError
from watcher.handlers.container.contract import CONTRACT_VARIABLES
from watcher.handlers.container.handler import ContainerHandler, log_key
from watcher.handlers.container.handler import parse as parse_options
from watcher.handlers.container.options import ContainerOptions, OutputTarget, RegistryAuth, parse_s3_uri
from watcher.handlers.container.runtimes.docker import _timestamp
from watcher.handlers.container.runtimes.docker_images import ecr_registry

QUEUE_URL = "http://127.0.0.1:4566/000000000000/watcher-events"
WHERE = "routes[0] (r).handler"
VALID = {"image": "busybox:1.36", "command": "true"}  # the smallest valid docker-runtime handler


def document(**handler: Any) -> dict[str, Any]:
    """One container route, watching a bucket none of these tests writes outputs to."""
    route = {"name": "r", "bucket": "uploads", "prefix": "in/", "handler": {"type": "container", **handler}}
    return {"queue": {"url": QUEUE_URL}, "routes": [route]}


def load(**handler: Any) -> Config:
    return parse_config(document(**handler), "test.yaml", {})


def options_of(**handler: Any) -> ContainerOptions:
    """The parsed options of a route that loads."""
    config = load(**handler)
    parsed, problems = parse_options(config.routes[0].handler.options)
    assert not problems and parsed is not None
    return parsed


def problems_of(**handler: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(**handler)
    return caught.value.problems


def one_problem(**handler: Any) -> str:
    problems = problems_of(**handler)
    assert len(problems) == 1, problems
    return problems[0]


# --- a valid route and its defaults ------------------------------------------------------------


def test_a_minimal_docker_route_loads_with_safe_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WATCHER_WORK_DIR", str(tmp_path / "jobs"))
    options = options_of(**VALID)
    assert options.image == "busybox:1.36"
    assert options.script == "true"
    assert options.runtime == "docker"
    assert options.outputs == ()
    assert options.request_id_folder is True
    assert dict(options.environment) == {}
    assert options.memory is None and options.cpus is None and options.timeout_seconds is None
    assert options.pids_limit == 256
    assert options.network == "none"  # no network unless the route asks for one
    assert options.user is None  # the worker's own uid:gid
    assert options.pull == "if-not-present"
    assert options.permanent_exit_codes == frozenset()
    assert options.registry_auth is None
    assert options.log_tail_chars == 2000
    assert options.upload_last == frozenset({"_SUCCESS"})  # Spark's marker goes after the files it vouches for
    assert options.work_dir == (tmp_path / "jobs").resolve()


def test_every_option_is_read(tmp_path: Path) -> None:
    options = options_of(
        image=" registry.example.com/ffmpeg:6 ",
        command='ffmpeg -i "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/out.mp4"',
        output="s3://media/encoded/",
        request_id_folder=False,
        environment={"QUALITY": 23, "FAST": True, "LABEL": "a b"},
        memory="512m",
        cpus=1.5,
        pids_limit=64,
        timeout_seconds=600,
        network="bridge",
        user=1000,
        pull="always",
        permanent_exit_codes=[3, 4],
        registry_auth="ecr",
        work_dir=str(tmp_path / "work"),
        log_tail_chars=0,
        upload_last=["_DONE", "manifest.json"],
    )
    assert options.image == "registry.example.com/ffmpeg:6"
    assert options.outputs == (OutputTarget("media", "encoded"),)
    assert options.request_id_folder is False
    assert dict(options.environment) == {"QUALITY": "23", "FAST": "true", "LABEL": "a b"}
    assert options.memory == 512 << 20
    assert options.cpus == 1.5
    assert options.pids_limit == 64
    assert options.timeout_seconds == 600.0 and isinstance(options.timeout_seconds, float)
    assert options.network == "bridge"
    assert options.user == "1000"
    assert options.pull == "always"
    assert options.permanent_exit_codes == frozenset({3, 4})
    assert options.registry_auth == RegistryAuth(ecr=True)
    assert options.work_dir == (tmp_path / "work").resolve()
    assert options.log_tail_chars == 0
    assert options.upload_last == frozenset({"_DONE", "manifest.json"})


def test_container_handler_validate_is_parse_options_problems() -> None:
    assert ContainerHandler.validate(VALID) == []
    assert ContainerHandler.validate({"command": "true"}) == [
        ".image: required for the docker runtime, e.g. image: my-registry/ffmpeg:6"
    ]


def test_an_unknown_field_names_the_known_ones() -> None:
    problem = one_problem(**VALID, memroy="1g")
    assert problem.startswith(f"{WHERE}.memroy: unknown field (did you mean memory?)")


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of(command="true", memory="lots", cpus=0, pull="sometimes")
    assert [p.split(":")[0] for p in problems] == [
        f"{WHERE}.image",
        f"{WHERE}.memory",
        f"{WHERE}.cpus",
        f"{WHERE}.pull",
    ]


# --- image and runtime -------------------------------------------------------------------------


@pytest.mark.parametrize("image", [None, "", "   ", 42])
def test_the_docker_runtime_requires_an_image(image: Any) -> None:
    handler = {"command": "true"} if image is None else {"command": "true", "image": image}
    assert one_problem(**handler) == (
        f"{WHERE}.image: required for the docker runtime, e.g. image: my-registry/ffmpeg:6"
    )
    assert one_problem(**handler, runtime="docker").startswith(f"{WHERE}.image: required")


def test_the_process_runtime_needs_no_image() -> None:
    options = options_of(runtime="process", command="true")
    assert options.runtime == "process"
    assert options.image is None


@pytest.mark.parametrize("runtime", ["podman", "", 1, None])
def test_an_unknown_runtime_is_refused(runtime: Any) -> None:
    assert one_problem(**VALID, runtime=runtime) == f"{WHERE}.runtime: must be one of docker, process, batch"


# --- script or command -------------------------------------------------------------------------


def test_script_is_a_file_whose_text_is_run(tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text('#!/bin/sh\nwc -l < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/lines.txt"\n')
    assert options_of(image="busybox", script=str(script)).script == script.read_text()


def test_script_and_command_together_are_refused(tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text("true\n")
    assert one_problem(image="busybox", script=str(script), command="true") == (
        f"{WHERE}.script: give either script (a file) or command, not both"
    )


def test_script_or_command_is_required() -> None:
    assert one_problem(image="busybox") == f"{WHERE}.script: required (a shell script file), or give command"


@pytest.mark.parametrize("command", ["", "   ", 42, ["echo", "hi"]])
def test_command_must_be_a_non_empty_shell_command(command: Any) -> None:
    assert one_problem(image="busybox", command=command) == f"{WHERE}.command: must be a non-empty shell command"


def test_a_missing_script_file_is_reported_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sh"
    assert one_problem(image="busybox", script=str(missing)) == (
        f"{WHERE}.script: cannot read {str(missing)!r}: No such file or directory"
    )


def test_a_folder_is_not_a_script(tmp_path: Path) -> None:
    assert one_problem(image="busybox", script=str(tmp_path)) == (
        f"{WHERE}.script: cannot read {str(tmp_path)!r}: Is a directory"
    )


def test_a_script_that_is_not_utf8_text_is_refused(tmp_path: Path) -> None:
    binary = tmp_path / "job.bin"
    binary.write_bytes(b"\x7fELF\xff\xfe\x00")
    problem = one_problem(image="busybox", script=str(binary))
    assert problem.startswith(f"{WHERE}.script: cannot read {str(binary)!r}: 'utf-8' codec can't decode")


# --- output ------------------------------------------------------------------------------------


def test_output_as_one_uri() -> None:
    (target,) = options_of(**VALID, output="s3://media/frames/").outputs
    assert target == OutputTarget("media", "frames", "", "")
    assert target.uri == "s3://media/frames"


def test_output_at_a_bucket_root() -> None:
    (target,) = options_of(**VALID, output="s3://media").outputs
    assert (target.bucket, target.key_prefix, target.uri) == ("media", "", "s3://media")


def test_output_as_a_list_with_path_filters() -> None:
    outputs = options_of(
        **VALID,
        output=[
            {"uri": "s3://media/frames/", "suffix": ".jpg"},
            {"uri": "s3://reports/", "prefix": "/summary/", "suffix": ".json"},
            "s3://archive/all",
        ],
    ).outputs
    assert outputs == (
        OutputTarget("media", "frames", "", ".jpg"),
        OutputTarget("reports", "", "summary/", ".json"),  # a leading slash means output/'s own root
        OutputTarget("archive", "all", "", ""),
    )


@pytest.mark.parametrize("uri", ["media/frames", "https://media.s3.amazonaws.com/x", "s3://", "s3:///frames", 42])
def test_output_must_be_an_s3_uri(uri: Any) -> None:
    assert one_problem(**VALID, output=uri) == (
        f"{WHERE}.output.uri: must be an S3 URI such as s3://bucket/outputs/ (got {uri!r})"
        if isinstance(uri, str)
        else f"{WHERE}.output: must be an S3 URI or a mapping {{uri, prefix, suffix}}"
    )


def test_a_bad_uri_in_a_list_names_its_index() -> None:
    problem = one_problem(**VALID, output=["s3://ok/", {"uri": "ftp://x/"}])
    assert problem == f"{WHERE}.output[1].uri: must be an S3 URI such as s3://bucket/outputs/ (got 'ftp://x/')"


def test_an_output_entry_without_uri_is_refused() -> None:
    assert one_problem(**VALID, output=[{"prefix": "a/"}]) == (
        f"{WHERE}.output[0].uri: must be an S3 URI such as s3://bucket/outputs/ (got None)"
    )


def test_unknown_fields_of_an_output_are_refused() -> None:
    assert one_problem(**VALID, output=[{"uri": "s3://media/", "sufix": ".jpg"}]) == (
        f"{WHERE}.output[0].sufix: unknown field (did you mean suffix?)"
    )


def test_output_filters_must_be_strings() -> None:
    assert one_problem(**VALID, output=[{"uri": "s3://media/", "suffix": 3}]) == (
        f"{WHERE}.output[0].suffix: must be a string"
    )


def test_an_output_entry_that_is_neither_uri_nor_mapping_is_refused() -> None:
    assert one_problem(**VALID, output=[["s3://media/"]]) == (
        f"{WHERE}.output[0]: must be an S3 URI or a mapping {{uri, prefix, suffix}}"
    )


def test_parse_s3_uri() -> None:
    assert parse_s3_uri("s3://bucket") == ("bucket", "")
    assert parse_s3_uri("s3://bucket/") == ("bucket", "")
    assert parse_s3_uri("s3://bucket/a/b/") == ("bucket", "a/b")
    assert parse_s3_uri("s3://bucket//a//") == ("bucket", "a")
    assert parse_s3_uri("S3://bucket/a") is None
    assert parse_s3_uri("") is None
    assert parse_s3_uri(None) is None


# --- where the files of a job go ---------------------------------------------------------------

REQUEST_ID = "0123456789abcdef0123456789abcdef"


def test_outputs_go_under_a_request_id_folder() -> None:
    assert OutputTarget("media", "frames").folder(REQUEST_ID, True) == f"frames/{REQUEST_ID}/"
    assert OutputTarget("media", "").folder(REQUEST_ID, True) == f"{REQUEST_ID}/"


def test_without_the_request_id_folder_outputs_go_straight_under_the_output() -> None:
    assert OutputTarget("media", "frames").folder(REQUEST_ID, False) == "frames/"
    assert OutputTarget("media", "").folder(REQUEST_ID, False) == ""  # the bucket's root
    assert OutputTarget("media", "a/b").folder(REQUEST_ID, False) == "a/b/"


@pytest.mark.parametrize(
    ("prefix", "suffix", "path", "wanted"),
    [
        ("", "", "anything/at/all.bin", True),
        ("", ".jpg", "frames/0001.jpg", True),
        ("", ".jpg", "frames/0001.jpeg", False),
        ("frames/", "", "frames/0001.jpg", True),
        ("frames/", "", "summary.json", False),
        ("frames/", ".jpg", "frames/0001.png", False),
        ("frames/", ".jpg", "other/frames/0001.jpg", False),  # a prefix of the path, not anywhere in it
    ],
)
def test_an_output_wants_the_paths_its_filters_match(prefix: str, suffix: str, path: str, wanted: bool) -> None:
    assert OutputTarget("media", "out", prefix, suffix).wants(path) is wanted


def test_the_job_log_goes_next_to_the_outputs() -> None:
    target = OutputTarget("media", "frames")
    assert log_key(target, REQUEST_ID, True) == f"frames/{REQUEST_ID}/.watcher/log.txt"
    assert log_key(OutputTarget("media", ""), REQUEST_ID, True) == f"{REQUEST_ID}/.watcher/log.txt"


def test_without_the_request_id_folder_each_job_log_still_has_its_own_key() -> None:
    target = OutputTarget("media", "frames")
    assert log_key(target, REQUEST_ID, False) == f"frames/.watcher/{REQUEST_ID}/log.txt"
    assert log_key(target, "f" * 32, False) != log_key(target, REQUEST_ID, False)
    assert log_key(OutputTarget("media", ""), REQUEST_ID, False) == f".watcher/{REQUEST_ID}/log.txt"


# --- resources ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512m", 512 << 20),
        ("512M", 512 << 20),
        ("1g", 1 << 30),
        (" 2G ", 2 << 30),
        ("8192k", 8 << 20),
        ("67108864", 64 << 20),  # plain bytes
        (67108864, 64 << 20),  # a YAML number: bytes
        ("6291456b", 6 << 20),  # exactly Docker's minimum
        # the other spellings Docker's own parser (units.RAMInBytes) takes
        ("512 m", 512 << 20),
        ("512mb", 512 << 20),
        ("512MiB", 512 << 20),
        ("1.5g", 3 << 29),
        ("1t", 1 << 40),
    ],
)
def test_memory_sizes(text: Any, size: int) -> None:
    assert options_of(**VALID, memory=text).memory == size


@pytest.mark.parametrize(
    "text",
    ["5m", "6291455", "1024", 0, "lots", "-1g", "1.5.1g", "512xb", "1p", True, ""],
)
def test_memory_that_docker_would_refuse_is_reported(text: Any) -> None:
    assert one_problem(**VALID, memory=text) == f"{WHERE}.memory: must be a size of at least 6m, such as 512m or 2g"


@pytest.mark.parametrize("cpus", [0.25, 1, 16])
def test_cpus(cpus: float) -> None:
    options = options_of(**VALID, cpus=cpus)
    assert options.cpus == cpus and isinstance(options.cpus, float)


@pytest.mark.parametrize("cpus", [0, -1, "2", True])
def test_cpus_must_be_a_positive_number(cpus: Any) -> None:
    assert one_problem(**VALID, cpus=cpus) == f"{WHERE}.cpus: must be a number above 0, such as 0.5 or 2"


@pytest.mark.parametrize("pids", [7, 0, -1, 8.5, "64", True])
def test_pids_limit_must_be_a_whole_number_of_at_least_8(pids: Any) -> None:
    assert one_problem(**VALID, pids_limit=pids) == f"{WHERE}.pids_limit: must be a whole number of at least 8"


def test_pids_limit_of_8_is_enough() -> None:
    assert options_of(**VALID, pids_limit=8).pids_limit == 8


@pytest.mark.parametrize("seconds", [0, -5, "60", False])
def test_timeout_seconds_must_be_a_positive_number(seconds: Any) -> None:
    assert one_problem(**VALID, timeout_seconds=seconds) == (
        f"{WHERE}.timeout_seconds: must be a number of seconds above 0"
    )


def test_a_fractional_timeout_is_fine() -> None:
    assert options_of(**VALID, timeout_seconds=0.5).timeout_seconds == 0.5


@pytest.mark.parametrize("tail", [-1, 100_001, "2000", True])
def test_log_tail_chars_is_bounded(tail: Any) -> None:
    assert (
        one_problem(**VALID, log_tail_chars=tail) == f"{WHERE}.log_tail_chars: must be a whole number from 0 to 100000"
    )


# --- image pulls, network, user ----------------------------------------------------------------


@pytest.mark.parametrize("pull", ["if-not-present", "always", "never"])
def test_pull_policies(pull: str) -> None:
    assert options_of(**VALID, pull=pull).pull == pull


@pytest.mark.parametrize("pull", ["missing", "Always", True])
def test_an_unknown_pull_policy_is_refused(pull: Any) -> None:
    assert one_problem(**VALID, pull=pull) == f"{WHERE}.pull: must be one of if-not-present, always, never"


@pytest.mark.parametrize("network", ["none", "bridge", "my-jobs"])
def test_network_is_a_docker_network_name(network: str) -> None:
    assert options_of(**VALID, network=network).network == network


@pytest.mark.parametrize("network", ["container:db", "", 1])
def test_sharing_another_containers_network_is_refused(network: Any) -> None:
    assert one_problem(**VALID, network=network) == (
        f'{WHERE}.network: must be a Docker network name ("none", "bridge", or one of yours)'
    )


@pytest.mark.parametrize(("user", "expected"), [("nobody", "nobody"), ("1000:1000", "1000:1000"), (0, "0")])
def test_user(user: Any, expected: str) -> None:
    assert options_of(**VALID, user=user).user == expected


@pytest.mark.parametrize("user", ["", "  ", True])
def test_a_blank_user_is_refused(user: Any) -> None:
    assert one_problem(**VALID, user=user) == f'{WHERE}.user: must be a user such as "1000:1000" or "nobody"'


@pytest.mark.parametrize("flag", ["yes", 1, None])
def test_request_id_folder_is_a_boolean(flag: Any) -> None:
    assert one_problem(**VALID, request_id_folder=flag) == f"{WHERE}.request_id_folder: must be true or false"


# --- permanent exit codes ----------------------------------------------------------------------


def test_permanent_exit_codes() -> None:
    assert options_of(**VALID, permanent_exit_codes=[1, 3, 255]).permanent_exit_codes == frozenset({1, 3, 255})
    assert options_of(**VALID, permanent_exit_codes=[]).permanent_exit_codes == frozenset()


@pytest.mark.parametrize("codes", [[0], [256], [-1], [3, True], [True], ["3"], 3, [2.0]])
def test_permanent_exit_codes_are_a_list_of_codes_from_1_to_255(codes: Any) -> None:
    assert one_problem(**VALID, permanent_exit_codes=codes) == (
        f"{WHERE}.permanent_exit_codes: must be a list of exit codes from 1 to 255"
    )


# --- environment -------------------------------------------------------------------------------


def test_environment_values_become_text() -> None:
    environment = options_of(**VALID, environment={"A": "x", "B": 2, "C": 0.5, "D": True, "E": False, "_F1": ""})
    assert dict(environment.environment) == {"A": "x", "B": "2", "C": "0.5", "D": "true", "E": "false", "_F1": ""}


def test_yaml_booleans_in_the_environment_are_written_true_and_false() -> None:
    text = f"""
queue: {{url: "{QUEUE_URL}"}}
routes:
  - name: r
    handler:
      type: container
      image: busybox
      command: "true"
      environment: {{VERBOSE: yes, DRY_RUN: false, THREADS: 4}}
"""
    config = parse_config(yaml.safe_load(text), "test.yaml", {})
    parsed, _ = parse_options(config.routes[0].handler.options)
    assert parsed is not None
    assert dict(parsed.environment) == {"VERBOSE": "true", "DRY_RUN": "false", "THREADS": "4"}


@pytest.mark.parametrize("name", ["1ST", "MY-VAR", "A B", "", "X=Y", "É"])
def test_environment_names_must_be_shell_names(name: str) -> None:
    assert one_problem(**VALID, environment={name: "v"}) == f"{WHERE}.environment.{name}: not a valid variable name"


def test_a_number_is_not_a_variable_name() -> None:
    assert one_problem(**VALID, environment={1: "v"}) == f"{WHERE}.environment.1: not a valid variable name"


@pytest.mark.parametrize("name", CONTRACT_VARIABLES)
def test_the_contracts_own_variables_cannot_be_replaced(name: str) -> None:
    assert one_problem(**VALID, environment={name: "/etc/passwd"}) == (
        f"{WHERE}.environment.{name}: set by watcher for every job; choose another name"
    )


def test_the_contract_variables_are_the_scar_and_oscar_ones() -> None:
    assert set(CONTRACT_VARIABLES) == {
        "INPUT_FILE_PATH",
        "TMP_INPUT_DIR",
        "TMP_OUTPUT_DIR",
        "STORAGE_OBJECT_KEY",
        "STORAGE_BUCKET",
        "EVENT",
        "REQUEST_ID",
        "SCAR_INPUT_FILE",
        "SCAR_OUTPUT_DIR",
    }


def test_a_nul_character_cannot_be_passed_in_the_environment() -> None:
    assert one_problem(**VALID, environment={"A": "x\0y"}) == (f"{WHERE}.environment.A: cannot contain a NUL character")


@pytest.mark.parametrize("value", [None, ["a"], {"a": 1}])
def test_environment_values_must_be_scalars(value: Any) -> None:
    assert one_problem(**VALID, environment={"A": value}) == (
        f"{WHERE}.environment.A: must be a string, number or boolean"
    )


def test_environment_must_be_a_mapping() -> None:
    assert one_problem(**VALID, environment=["A=1"]) == (
        f"{WHERE}.environment: must be a mapping of variable names to values"
    )


def test_each_bad_variable_is_reported() -> None:
    problems = problems_of(**VALID, environment={"OK": 1, "REQUEST_ID": "x", "2X": "y"})
    assert problems == [
        f"{WHERE}.environment.REQUEST_ID: set by watcher for every job; choose another name",
        f"{WHERE}.environment.2X: not a valid variable name",
    ]


# --- registry credentials ----------------------------------------------------------------------


def test_registry_auth_ecr() -> None:
    assert options_of(**VALID, registry_auth="ecr").registry_auth == RegistryAuth(ecr=True)


def test_registry_auth_with_a_username_and_password() -> None:
    auth = options_of(**VALID, registry_auth={"username": "robot", "password": "s3cr3t"}).registry_auth
    assert auth == RegistryAuth(ecr=False, username="robot", password="s3cr3t")
    assert "s3cr3t" not in repr(auth)  # never printed with the options


@pytest.mark.parametrize(
    "auth",
    [
        "ECR",
        "docker",
        {"username": "robot"},
        {"password": "x"},
        {"username": "", "password": "x"},
        {"username": "robot", "password": 123},
        {"username": "robot", "password": "x", "registry": "r.example.com"},
        ["ecr"],
    ],
)
def test_bad_registry_auth_is_refused(auth: Any) -> None:
    assert one_problem(**VALID, registry_auth=auth) == (
        f'{WHERE}.registry_auth: must be "ecr" or {{username, password}} (e.g. password: ${{secretsmanager:NAME}})'
    )


def test_registry_password_may_come_from_the_environment() -> None:
    config = parse_config(
        document(**VALID, registry_auth={"username": "robot", "password": "${env:REGISTRY_PASSWORD}"}),
        "test.yaml",
        {"REGISTRY_PASSWORD": "from-env"},
    )
    parsed, _ = parse_options(config.routes[0].handler.options)
    assert parsed is not None and parsed.registry_auth is not None
    assert parsed.registry_auth.password == "from-env"


# --- the route's name in every problem ---------------------------------------------------------


def test_problems_name_the_route_by_index_and_name() -> None:
    doc = {
        "queue": {"url": QUEUE_URL},
        "routes": [
            {"name": "ok", "handler": {"type": "log"}},
            {"name": "video", "handler": {"type": "container", "command": "true", "memory": "1k"}},
        ],
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(doc, "test.yaml", {})
    assert caught.value.problems == [
        "routes[1] (video).handler.image: required for the docker runtime, e.g. image: my-registry/ffmpeg:6",
        "routes[1] (video).handler.memory: must be a size of at least 6m, such as 512m or 2g",
    ]


# --- ECR images --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/ffmpeg:6", ("123456789012", "eu-west-1")),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/tool@sha256:abc", ("123456789012", "us-east-1")),
        ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/x", ("123456789012", "us-gov-west-1")),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/x:1", ("123456789012", "cn-north-1")),
        ("busybox:1.36", None),
        ("docker.io/library/busybox", None),
        ("public.ecr.aws/docker/library/busybox:latest", None),  # public ECR needs no login
        ("12345678901.dkr.ecr.eu-west-1.amazonaws.com/x", None),  # account ids have 12 digits
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example/x", None),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", None),  # a registry, not an image
    ],
)
def test_ecr_registry(image: str, registry: tuple[str, str] | None) -> None:
    assert ecr_registry(image) == registry


# --- Docker's timestamps -----------------------------------------------------------------------


def test_docker_timestamps_with_nanoseconds() -> None:
    # 2024-05-01T12:00:00Z is 1714564800 seconds after the epoch
    assert _timestamp("2024-05-01T12:00:00.123456789Z") == pytest.approx(1714564800.123456789, abs=1e-6)
    assert _timestamp("2024-05-01T12:00:00Z") == 1714564800.0
    assert _timestamp("2024-05-01T12:00:00.5Z") == 1714564800.5


def test_docker_timestamps_with_an_offset() -> None:
    assert _timestamp("2024-05-01T14:00:00.25+02:00") == pytest.approx(1714564800.25)
    assert _timestamp("2024-05-01T10:00:00-02:00") == 1714564800.0


def test_the_difference_of_two_docker_timestamps_keeps_sub_microsecond_precision() -> None:
    started = _timestamp("2024-05-01T12:00:00.000000100Z")
    finished = _timestamp("2024-05-01T12:00:01.250000100Z")
    assert started is not None and finished is not None
    assert finished - started == pytest.approx(1.25, abs=1e-6)


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00Z",  # Docker's "never" (a container that did not start or finish)
        "",
        "yesterday",
        "2024-05-01 12:00:00Z",
        "2024-05-01T12:00:00",  # no zone
        None,
        1714564800,
    ],
)
def test_what_is_not_a_docker_timestamp(text: Any) -> None:
    assert _timestamp(text) is None


@pytest.mark.parametrize("value", ["_SUCCESS", ["frames/_SUCCESS"], [""], [1], {"_SUCCESS": True}])
def test_upload_last_is_a_list_of_file_names(value: Any) -> None:
    assert one_problem(**VALID, upload_last=value) == (
        "routes[0] (r).handler.upload_last: must be a list of file names such as [_SUCCESS] (no folders)"
    )


def test_upload_last_may_be_empty() -> None:
    assert options_of(**VALID, upload_last=[]).upload_last == frozenset()
