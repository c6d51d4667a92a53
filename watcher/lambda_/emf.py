"""Metrics of a Lambda function as CloudWatch Embedded Metric Format (EMF) lines on stdout: nobody
scrapes a Lambda function, and CloudWatch Logs turns these lines into metrics.

After each invocation, what changed in the registry (watcher.metrics, the worker's metrics) since
the previous invocation of this execution environment: the metric names and labels are the
Prometheus ones, the labels becoming dimensions. One JSON line per set of label values:

    {"_aws": {"Timestamp": 1764400000000, "CloudWatchMetrics": [{"Namespace": "watcher",
      "Dimensions": [["route", "outcome"]], "Metrics": [{"Name": "watcher_records_total", "Unit": "Count"}]}]},
     "route": "raw-csv", "outcome": "ok", "watcher_records_total": 3}

- counters: ``<name>_total``, the increase during the invocation (omitted when zero);
- histograms: ``<name>_sum`` and ``<name>_count``, their increase (CloudWatch's SUM(sum) / SUM(count)
  is the mean; the buckets are not sent);
- gauges: their value, when it changed (from 0 at first).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

import orjson
from prometheus_client import CollectorRegistry

_MAX_METRICS = 100  # per EMF directive
Key = tuple[str, tuple[tuple[str, str], ...]]  # (sample name, sorted labels)


def _kind(family_type: str, name: str) -> str | None:
    """``delta`` (sent as the increase), ``gauge`` (sent as it is) or None (not sent)."""
    if family_type == "counter":
        return "delta" if name.endswith("_total") else None
    if family_type == "histogram":
        return "delta" if name.endswith(("_sum", "_count")) else None
    return "gauge" if family_type == "gauge" else None


def _unit(name: str) -> str:
    if name.endswith("_count"):
        return "Count"
    if "_bytes" in name:
        return "Bytes"
    if "_seconds" in name:
        return "Seconds"
    return "Count" if name.endswith("_total") else "None"


class EmfWriter:
    def __init__(self, registry: CollectorRegistry, namespace: str, stream: IO[bytes] | None = None) -> None:
        self._registry = registry
        self._namespace = namespace
        self._stream = stream
        self._last: dict[Key, float] = {}

    def _samples(self) -> Iterator[tuple[Key, str, float]]:
        """(key, kind, value) of every sample worth sending: counters, histogram sums and counts,
        gauges (not the ``_created`` timestamps, buckets or info)."""
        for family in self._registry.collect():
            for sample in family.samples:
                name = sample.name
                kind = _kind(family.type, name)
                if kind is not None:
                    yield (name, tuple(sorted(sample.labels.items()))), kind, float(sample.value)

    def documents(self) -> list[dict[str, Any]]:
        """The EMF documents of what changed since the last call, one per set of label values."""
        grouped: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}
        for key, kind, value in self._samples():
            if not math.isfinite(value):  # a gauge not measured yet (NaN): EMF values must be numbers
                continue
            previous = self._last.get(key)
            self._last[key] = value
            if kind == "delta":
                change = value - (previous or 0.0)
                if change == 0:
                    continue
                grouped.setdefault(key[1], {})[key[0]] = change
            elif value != (previous or 0.0):
                grouped.setdefault(key[1], {})[key[0]] = value
        stamp = int(time.time() * 1000)
        documents: list[dict[str, Any]] = []
        for labels, values in sorted(grouped.items()):
            names = sorted(values)
            for start in range(0, len(names), _MAX_METRICS):
                chunk = names[start : start + _MAX_METRICS]
                directive = {
                    "Namespace": self._namespace,
                    "Dimensions": [[label for label, _ in labels]],
                    "Metrics": [{"Name": name, "Unit": _unit(name)} for name in chunk],
                }
                document: dict[str, Any] = {"_aws": {"Timestamp": stamp, "CloudWatchMetrics": [directive]}}
                document.update(labels)
                document.update({name: values[name] for name in chunk})
                documents.append(document)
        return documents

    def flush(self) -> int:
        """Write the documents of this invocation, one line each; how many."""
        documents = self.documents()
        if not documents:
            return 0
        stream = self._stream if self._stream is not None else sys.stdout.buffer
        stream.write(b"".join(orjson.dumps(document) + b"\n" for document in documents))
        stream.flush()
        return len(documents)
