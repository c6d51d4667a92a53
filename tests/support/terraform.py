"""Real Terraform for the tests: where it comes from, a private copy of deploy/terraform per test
(so `.terraform`, state and variables never land in the repository), and checkov in a virtualenv
of its own under $WATCHER_HOME.

Terraform is not on PyPI: it comes from HashiCorp's releases or apt repository. The AWS provider
comes from a filesystem mirror (`terraform init -plugin-dir=...`, default /opt/tf-plugins,
WATCHER_TF_PLUGIN_DIR moves it), so the tests need no registry access."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.tool_venv import tool_venv

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "terraform"
FIXTURES = REPO / "tests" / "fixtures" / "terraform"
PLUGIN_DIR = Path(os.environ.get("WATCHER_TF_PLUGIN_DIR", "/opt/tf-plugins"))
CHECKOV_VERSION = "3.3.30"

MODULES = ("queue", "bucket-notifications", "worker-iam", "ecs-service", "wiring")
EXAMPLES = ("basic", "ecs")


def missing_terraform() -> str | None:
    """Why the Terraform tests cannot run here, or None."""
    if shutil.which("terraform") is None:
        return (
            "terraform is not installed (it is not on PyPI: get it from HashiCorp's releases or apt "
            "repository, https://developer.hashicorp.com/terraform/install)"
        )
    provider = PLUGIN_DIR / "registry.terraform.io" / "hashicorp" / "aws"
    if not provider.is_dir():
        return (
            f"no AWS provider in the plugin mirror {PLUGIN_DIR} (set WATCHER_TF_PLUGIN_DIR, or fill it with "
            "`terraform providers mirror` on a machine with registry access)"
        )
    return None


requires_terraform = pytest.mark.skipif(missing_terraform() is not None, reason=str(missing_terraform()))


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.stdout)


class TerraformError(AssertionError):
    pass


class Terraform:
    """`terraform` run in one root module of a private copy of deploy/terraform."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env = {
            **os.environ,
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",  # no call home to checkpoint-api.hashicorp.com
        }

    def run(self, *args: str, check: bool = True, timeout: float = 900) -> Result:
        started = time.monotonic()
        done = subprocess.run(
            ["terraform", *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        result = Result(tuple(args), done.returncode, done.stdout, done.stderr, time.monotonic() - started)
        if check and done.returncode != 0:
            raise TerraformError(
                f"terraform {' '.join(args)} exited {done.returncode} in {self.workdir}:\n"
                f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            )
        return result

    def init(self, *extra: str) -> Result:
        # -plugin-dir links the provider from the mirror: about 2 s, no download, no cache needed.
        return self.run("init", "-input=false", "-no-color", f"-plugin-dir={PLUGIN_DIR}", *extra)

    def outputs(self) -> dict[str, Any]:
        raw = self.run("output", "-json").json()
        return {name: value["value"] for name, value in raw.items()}


def copy_deploy_tree(destination: Path) -> Path:
    """A copy of deploy/terraform (modules and examples keep their relative paths), without any
    working files a developer may have left in the repository."""
    target = destination / "terraform"
    shutil.copytree(
        DEPLOY,
        target,
        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*", "*.auto.tfvars.json"),
    )
    return target


def renamed(text: str, unique: str) -> str:
    """The three-shapes fixtures name everything watcher-tf-*: give every run names of its own."""
    return text.replace("watcher-tf", f"watcher-tf-{unique}")


# ---- checkov ---------------------------------------------------------------------------------------


def checkov() -> Path:
    """The checkov executable, installed from PyPI into its own virtualenv on first use (about 30 s;
    its pins clash with ours). Returns its path."""
    return tool_venv("checkov-venv", f"checkov=={CHECKOV_VERSION}", "checkov")
