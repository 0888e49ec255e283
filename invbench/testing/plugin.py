"""Registers the tiny fake components (``fake-*``) used for smoke runs and conformance."""

from __future__ import annotations

from invbench.hookspecs import hookimpl
from invbench.registry import Register
