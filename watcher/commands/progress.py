"""Progress of a long interactive command (replay, backfill, export): a rich progress bar on a
terminal, JSON lines otherwise (every ``interval`` seconds and one at the end, on stderr, so that a
command's own output on stdout stays clean), then a summary a person can read."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO


class Progress:
    def __init__(
        self,
        title: str,
        counters: Iterable[str],
        *,
        total: int | None = None,
        main: str | None = None,
        stream: TextIO | None = None,
        interval: float = 2.0,
    ) -> None:
        """``counters`` are what is counted (``listed``, ``sent``...); ``main`` is the one the bar
        and the rate follow (the first by default), against ``total`` when known."""
        self.counts = dict.fromkeys(counters, 0)
        self._main = main or next(iter(self.counts))
        self._title = title
        self._total = total
        self._stream = stream or sys.stderr
        self._interval = interval
        self._started = time.monotonic()
        self._last = 0.0
        self._bar: Any = None
        self._task: Any = None
        if self._stream.isatty():
            from rich.console import Console  # only on a terminal: rich is not needed otherwise
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.0f}/s"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[counts]}"),
                console=Console(file=self._stream),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(title, total=total, rate=0.0, counts="")

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self._started
        return self.counts[self._main] / elapsed if elapsed > 0 else 0.0

    def set_total(self, total: int | None) -> None:
        self._total = total
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def advance(self, **counts: int) -> None:
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value
        self._show()

    def _show(self, final: bool = False) -> None:
        now = time.monotonic()
        if self._bar is not None:
            others = " ".join(f"{k}={v}" for k, v in self.counts.items() if k != self._main)
            self._bar.update(self._task, completed=self.counts[self._main], rate=self.rate, counts=others)
            return
        if final or now - self._last >= self._interval:
            self._last = now
            line = {"progress": self._title, **self.counts, "total": self._total, "per_second": round(self.rate, 1)}
            self._stream.write(json.dumps(line) + "\n")
            self._stream.flush()

    def close(self, summary: Iterable[str] = (), out: TextIO | None = None) -> None:
        """Stop the bar (or write the last JSON line), then print the summary."""
        if self._bar is not None:
            self._show()
            self._bar.stop()
        else:
            self._show(final=True)
        elapsed = time.monotonic() - self._started
        target = out or sys.stdout
        counts = ", ".join(f"{v} {k}" for k, v in self.counts.items())
        print(f"{self._title}: {counts} in {elapsed:.1f}s ({self.rate:.0f}/s)", file=target)
        for line in summary:
            print(f"  {line}", file=target)


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``2h``, ``7d``, ``1w`` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    unit = units.get(text[-1:])
    number = text[:-1] if unit is not None else text
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 30m, 2h, 7d)") from None
    if value < 0:
        raise ValueError(f"not a duration: {text!r}")
    return value * (unit or 1)
