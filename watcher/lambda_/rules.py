"""What a configuration for AWS Lambda may not contain, checked by ``watcher check`` (for a
configuration with a ``lambda`` section), by ``watcher package lambda`` (always, unless
``--no-check``) and by the function at cold start.

- A ``container`` route with the ``docker`` or ``process`` runtime: Lambda has no Docker engine, and
  a job is no Lambda workload (a read-only file system outside ``/tmp``, 15 minutes at most). Such a
  route belongs to the AWS Batch runtime or to the worker (``watcher run``).
- The ``sqlite`` idempotency store: each execution environment of a function has its own ``/tmp``,
  so it would not see what the others ran. The ``dynamodb`` store is shared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watcher.config.schema import Config

HOST_RUNTIMES = ("docker", "process")  # container runtimes that run the job on the worker's host
DEFAULT_RUNTIME = "docker"  # the container handler's default (watcher.handlers.container.options)


def lambda_problems(config: Config) -> list[str]:
    """Every reason ``config`` cannot run as a Lambda function, each naming its route or field."""
    problems = [
        problem
        for index, route in enumerate(config.routes)
        if (problem := _route_problem(index, route.name, route.handler.type, route.handler.options)) is not None
    ]
    if config.idempotency is not None and config.idempotency.backend == "sqlite":
        problems.append(
            "idempotency.backend: sqlite keeps its file in one execution environment, which the function's other "
            "environments do not see: use backend dynamodb in AWS Lambda"
        )
    return problems


def document_problems(document: Any) -> list[str]:
    """The routes' problems, found in the YAML document before it is validated: validating a container
    route imports the Docker SDK, which a Lambda package does not hold (the function would only say
    ``No module named 'docker'``)."""
    routes = document.get("routes") if isinstance(document, Mapping) else None
    problems: list[str] = []
    for index, route in enumerate(routes if isinstance(routes, list) else []):
        handler = route.get("handler") if isinstance(route, Mapping) else None
        if isinstance(handler, Mapping):
            problem = _route_problem(index, str(route.get("name")), str(handler.get("type")), handler)
            if problem is not None:
                problems.append(problem)
    return problems


def _route_problem(index: int, name: str, handler_type: str, options: Mapping[str, Any]) -> str | None:
    if handler_type != "container":
        return None
    runtime = str(options.get("runtime", DEFAULT_RUNTIME))
    if runtime not in HOST_RUNTIMES:
        return None
    need = "a Docker engine" if runtime == "docker" else "to run the script on the function's own host"
    return (
        f"routes[{index}] ({name}).handler.runtime: a container route with runtime {runtime} needs {need}, which "
        "AWS Lambda does not offer: use the AWS Batch runtime for this route, or run it in the worker (watcher run) "
        "instead of Lambda"
    )
