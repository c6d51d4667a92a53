"""Where a Lambda function's configuration comes from, read once per cold start:

- ``WATCHER_CONFIG=ssm:/watcher/config``: the YAML text of an SSM parameter (a SecureString is
  decrypted), read with the function's role in ``AWS_REGION``;
- ``WATCHER_CONFIG=PATH``: a file, relative to the function's code (``LAMBDA_TASK_ROOT``) unless
  absolute;
- nothing: ``watcher.yaml`` next to the code, where ``watcher package lambda`` puts it.

Then, as for the worker, ``WATCHER_*`` overrides from the function's environment, ``${...}``
references, and the same validation (watcher.app.parse_config), plus the Lambda rules
(watcher.lambda_.rules).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from watcher.app import parse_config
from watcher.config.loader import read_document
from watcher.config.schema import AwsConfig, Config
from watcher.errors import ConfigError, ReferenceProblem
from watcher.lambda_.rules import document_problems, lambda_problems

CONFIG_VARIABLE = "WATCHER_CONFIG"
PACKAGED_CONFIG = "watcher.yaml"  # at the root of the deployment package
SSM_PREFIX = "ssm:"


def config_source(environ: Mapping[str, str]) -> str:
    """``ssm:/name`` or the path of the configuration file, as this environment says."""
    source = environ.get(CONFIG_VARIABLE) or PACKAGED_CONFIG
    if source.startswith(SSM_PREFIX):
        return source
    path = Path(source)
    if not path.is_absolute():
        path = Path(environ.get("LAMBDA_TASK_ROOT") or os.getcwd()) / path
    return str(path)


def load(environ: Mapping[str, str] | None = None) -> Config:
    """The validated configuration, Lambda rules included; ``ConfigError`` with every problem."""
    environ = os.environ if environ is None else environ
    source = config_source(environ)
    if source.startswith(SSM_PREFIX):
        document = _read_parameter(source[len(SSM_PREFIX) :], environ)
    else:
        document = read_document(source)
    problems = document_problems(document)  # before the handlers' own checks (a container route's need Docker)
    if problems:
        raise ConfigError(problems, source)
    config = parse_config(document, source, environ)
    problems = lambda_problems(config)
    if problems:
        raise ConfigError(problems, source)
    return config


def _read_parameter(name: str, environ: Mapping[str, str]) -> object:
    from watcher.config.secrets import from_ssm  # boto3: only for a configuration kept in SSM

    aws = AwsConfig(
        region=environ.get("WATCHER_AWS_REGION") or environ.get("AWS_REGION") or "us-east-1",
        endpoint_url=environ.get("WATCHER_AWS_ENDPOINT_URL") or None,
    )
    try:
        text = from_ssm(name, aws)
    except ReferenceProblem as exc:
        raise ConfigError([f"cannot read the configuration: {exc}"], f"{SSM_PREFIX}{name}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], f"{SSM_PREFIX}{name}") from None
    return document if document is not None else {}
