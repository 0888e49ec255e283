"""Hook specifications: every way a plugin can extend invbench.

Each ``register_*`` hook receives a ``register`` callable. Call it once per component::

    register(MyEncoder)                                    # a class; its `name` selects it
    register("my-enc", "my_pkg.encoders:MyEncoder")        # lazy: imported only when used

Registering classes (or lazy ``"module:Class"`` strings), never instances, keeps discovery
cheap: no weights are loaded until a run asks for the component. The name and description
live on the class only; a lazy registration's name must equal the class's ``name``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import click

    from invbench.components import Component
    from invbench.runner.grid import CellSpec

hookspec = pluggy.HookspecMarker("invbench")
hookimpl = pluggy.HookimplMarker("invbench")


class Register(Protocol):
    """The callable passed to every ``register_*`` hook."""

    def __call__(
        self,
        target: type[Component] | str,
        lazy_target: str | None = None,
        /,
        *,
        aliases: Sequence[str] = (),
    ) -> None:
        """Register a class, or a name and a lazy ``"module:Class"`` (imported on use)."""


@hookspec
def register_encoders(register: Register) -> None:
    """Register face-recognition encoders (:class:`invbench.Encoder` subclasses).

    Selected with ``invbench run --encoder NAME`` (and ``--eval-encoder NAME``).
    """


@hookspec
def register_inverters(register: Register) -> None:
    """Register template inverters (:class:`invbench.Inverter` subclasses).

    Selected with ``invbench run --inverter NAME``.
    """


@hookspec
def register_protocols(register: Register) -> None:
    """Register evaluation protocols (:class:`invbench.Protocol` subclasses).

    Selected with ``invbench run --protocol NAME``; those with ``default = True`` run
    when no ``--protocol`` is given.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register face datasets (:class:`invbench.FaceDataset` subclasses).

    Selected with ``--dataset NAME`` (evaluation) and ``--train-dataset NAME``.
    """


@hookspec
def register_aligners(register: Register) -> None:
    """Register face aligners (:class:`invbench.Aligner` subclasses).

    Selected with ``--aligner NAME``; they turn raw photos into aligned crops.
    """


@hookspec
def register_generators(register: Register) -> None:
    """Register face image generators (:class:`invbench.Generator` subclasses).

    Inverters that decode through a generator (``mlp-stylegan``) and synthetic datasets
    build them by name.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``invbench`` command line (a :class:`click.Group`)."""


@hookspec
def run_started(spec: CellSpec) -> None:
    """Called before each grid cell runs, with its fully resolved specification.

    For loggers and exporters; must not change ``spec``.
    """


@hookspec
def run_finished(spec: CellSpec, record: dict[str, Any]) -> None:
    """Called after each grid cell, with its written result record (a JSON-ready dict).

    Called for failed cells too (``record["status"] == "error"``). Must not change
    ``record``.
    """
