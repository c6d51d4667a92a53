"""What a configuration for AWS Lambda may not contain, checked by ``watcher check`` and ``watcher
package lambda`` (for a configuration with a ``lambda`` section) and by the function at cold start.

- A ``container`` route with the ``docker`` or ``process`` runtime: Lambda has no Docker engine, and
  a job is no Lambda workload (a read-only file system outside ``/tmp``, 15 minutes at most). Such a
  route belongs to the AWS Batch runtime or to the worker (``watcher run``).
- The ``sqlite`` idempotency store: each execution environment of a function has its own ``/tmp``,
  so it would not see what the others ran. The ``dynamodb`` store is shared.
"""

from __future__ import annotations

from watcher.config.schema import Config

HOST_RUNTIMES = ("docker", "process")  # container runtimes that run the job on the worker's host
DEFAULT_RUNTIME = "docker"  # the container handler's default (watcher.handlers.container.options)


def lambda_problems(config: Config) -> list[str]:
    """Every reason ``config`` cannot run as a Lambda function, each naming its route or field."""
    problems: list[str] = []
    for index, route in enumerate(config.routes):
        if route.handler.type != "container":
            continue
        runtime = str(route.handler.options.get("runtime", DEFAULT_RUNTIME))
        if runtime in HOST_RUNTIMES:
            need = "a Docker engine" if runtime == "docker" else "to run the script on the function's own host"
            problems.append(
                f"routes[{index}] ({route.name}).handler.runtime: a container route with runtime {runtime} needs "
                f"{need}, which AWS Lambda does not offer: use the AWS Batch runtime for this route, or run it "
                "in the worker (watcher run) instead of Lambda"
            )
    if config.idempotency is not None and config.idempotency.backend == "sqlite":
        problems.append(
            "idempotency.backend: sqlite keeps its file in one execution environment, which the function's other "
            "environments do not see: use backend dynamodb in AWS Lambda"
        )
    return problems
