"""The Fire-Insights-like server for tests: it lives in scripts/fire_insights.py, which `make demo`
starts too (one implementation for the demo and the tests)."""

from scripts.fire_insights import EXECUTE, STATUS, Canned, FireServer, Recorded

__all__ = ["EXECUTE", "STATUS", "Canned", "FireServer", "Recorded"]
