"""The package's shape, checked: the dependency rule of docs/architecture.md (import-linter contracts
in pyproject.toml), no import cycle anywhere (imports inside functions included), small modules, and
a `watcher explain` of a log-only configuration that imports neither Docker, aiohttp nor tenacity."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest
import yaml

from tests.support.fixtures import fixture_path
from tests.support.process import REPO

PACKAGE = REPO / "watcher"
MAX_MODULE_LINES = 350
HEAVY = ("docker", "aiohttp", "tenacity")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("watcher", cache_dir=None)


def test_the_import_linter_contracts_hold() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter), "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_graph_sees_imports_made_inside_functions(graph: grimp.ImportGraph) -> None:
    # watcher.config.refs imports watcher.config.secrets (boto3) inside the resolver, on first use:
    # the cycle check below would be blind if such imports were not in the graph.
    assert "watcher.config.secrets" in graph.find_modules_directly_imported_by("watcher.config.refs")


def test_no_import_cycle_anywhere(graph: grimp.ImportGraph) -> None:
    cycles = _strongly_connected(graph)
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


@pytest.mark.parametrize("module", ["watcher.config.schema", "watcher.records", "watcher.errors"])
def test_the_data_at_the_bottom_imports_nothing_of_ours(graph: grimp.ImportGraph, module: str) -> None:
    assert graph.find_modules_directly_imported_by(module) == set()


def test_every_module_is_small() -> None:
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n >= MAX_MODULE_LINES} == {}


def _imported_modules(config: dict[str, object], tmp_path: Path) -> set[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    body = fixture_path("s3_success_marker")
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "watcher", "explain", "-c", str(path), str(body)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # importtime lines: "import time: self [us] | cumulative | imported package"
    return {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


def _config(handler: dict[str, object]) -> dict[str, object]:
    return {
        "queue": {"url": "http://127.0.0.1:4566/000000000000/q"},
        "routes": [{"name": "a", "bucket": "data-lake", "prefix": "events/", "handler": handler}],
    }


def test_explain_of_a_log_route_imports_no_docker_aiohttp_or_tenacity(tmp_path: Path) -> None:
    imported = _imported_modules(_config({"type": "log"}), tmp_path)
    assert "watcher.dispatch" in imported  # the check below looks at the right process
    assert sorted(name for name in imported if name.split(".")[0] in HEAVY) == []


def test_a_workflow_route_does_import_aiohttp_and_tenacity(tmp_path: Path) -> None:
    # The control for the test above: the measurement does see these imports when they happen.
    imported = _imported_modules(_config({"type": "workflow", "url": "http://x/run", "workflow_id": 1}), tmp_path)
    assert {"aiohttp", "tenacity"} <= imported


def _strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Tarjan's algorithm, iterative: the groups of modules that import each other, in a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[set[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            step = next(successors, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = counter
                    counter += 1
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph.find_modules_directly_imported_by(step)))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found
