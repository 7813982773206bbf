"""The names other tools imported from the bench before it was split into modules.

``bench/adoption.py`` (and anything written against the earlier one-file
bench) keeps working; new code imports from the modules themselves.
"""

from bench.cli import main
from bench.databases import Databases
from bench.workloads.migrations import build_legacy_v1

__all__ = ["Databases", "build_legacy_v1", "main"]
