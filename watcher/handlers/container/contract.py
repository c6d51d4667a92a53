"""The SCAR / OSCAR job contract: what a job's script is told through its environment.

``INPUT_FILE_PATH``, ``TMP_INPUT_DIR``, ``TMP_OUTPUT_DIR``, ``STORAGE_OBJECT_KEY``, ``STORAGE_BUCKET``,
``EVENT`` and ``REQUEST_ID``, plus SCAR's older ``SCAR_INPUT_FILE`` and ``SCAR_OUTPUT_DIR``. Paths are
as the script sees them (inside a container they are mount points), which the runtime decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from watcher.routing import Unit

# The contract's own variables: a route's environment may not replace them.
CONTRACT_VARIABLES = (
    "INPUT_FILE_PATH",
    "TMP_INPUT_DIR",
    "TMP_OUTPUT_DIR",
    "STORAGE_OBJECT_KEY",
    "STORAGE_BUCKET",
    "EVENT",
    "REQUEST_ID",
    "SCAR_INPUT_FILE",
    "SCAR_OUTPUT_DIR",
)


@dataclass(frozen=True, slots=True)
class JobPaths:
    """Where the script sees its input folder, output folder and script file."""

    input: str
    output: str
    script: str
    workdir: str


def contract_environment(unit: Unit, paths: JobPaths, input_name: str) -> dict[str, str]:
    """The variables every SCAR / OSCAR script expects. Environment values cannot hold NUL, so a
    key with one is passed with it percent-encoded, as S3 would in an event."""
    record = unit.record
    input_file = f"{paths.input}/{input_name}"
    return {
        "INPUT_FILE_PATH": input_file,
        "TMP_INPUT_DIR": paths.input,
        "TMP_OUTPUT_DIR": paths.output,
        "STORAGE_OBJECT_KEY": record.key.replace("\0", "%00"),
        "STORAGE_BUCKET": record.bucket,
        "EVENT": record.event_json().replace("\0", "%00"),
        "REQUEST_ID": unit.request_id,
        "SCAR_INPUT_FILE": input_file,
        "SCAR_OUTPUT_DIR": paths.output,
    }
