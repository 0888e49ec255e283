"""Inverters for the Dask executor tests: one that raises, one that stalls once.

The tests register this module by hand on the client; Dask workers import it by name
(``tests.plugins.grid_components``), as they would any plugin module.
"""

import os
import time
from pathlib import Path
from typing import ClassVar

from invbench import hookimpl
from invbench.components import Options
from invbench.testing.fakes import FakePseudoInverse


class RaisingInverter(FakePseudoInverse):
    """The fake pseudo-inverse, except that every inversion raises."""

    name: ClassVar[str] = "fake-raising"

    def invert(self, templates):
        raise RuntimeError("boom: this inverter always fails")


class StallOptions(Options):
    """``marker``: a file; the first fit writes its pid there and stalls for ``stall_s``."""

    marker: str = ""
    stall_s: float = 120.0


class StallingInverter(FakePseudoInverse):
    """Trains once: the first ``fit`` (no marker yet) stalls, long enough to be killed."""

    name: ClassVar[str] = "fake-stalling"
    requires_training: ClassVar[bool] = True
    Options: ClassVar[type[Options]] = StallOptions

    def fit(self, data, ctx):
        marker = Path(self.options.marker)
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            time.sleep(self.options.stall_s)
        return {"trained": True}


@hookimpl
def register_inverters(register):
    register(RaisingInverter)
    register(StallingInverter)
