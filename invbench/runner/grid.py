"""Run specifications: the user's choices, expanded into a grid of cells."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invbench.registry import Registry


def default_dataset(registry: Registry, role: str) -> str:
    """The dataset whose class declares ``role`` (``evaluation``/``training``) its default."""
    return registry.default("dataset", f"{role} dataset", lambda c: role in c.default_for)


def default_aligner(registry: Registry) -> str:
    """The aligner whose class declares itself the default."""
    return registry.default("aligner", "aligner", lambda c: c.default)


def expand_protocols(registry: Registry, names: list[str]) -> list[str]:
    """Protocol names with group names (``robustness``) replaced by their members.

    Raises:
        UnknownComponentError: For a name that is neither a protocol nor a group.
    """
    out: list[str] = []
    for name in names:
        members = [
            e.name
            for e in registry.entries("protocol")
            if name not in registry.names("protocol") and name in getattr(e.load(), "groups", ())
        ]
        for member in members or [registry.get("protocol", name).name]:
            if member not in out:
                out.append(member)
    return out


def default_protocols(registry: Registry) -> list[str]:
    """Names of the protocols that declare ``default = True``."""
    return [e.name for e in registry.entries("protocol") if getattr(e.load(), "default", False)]


@dataclass(frozen=True)
class CellSpec:
    """One grid cell: a fully resolved run of one encoder x inverter x datasets x seed.

    Attributes:
        encoder: The attacked encoder ``F``.
        inverter: The inversion method.
        dataset: Evaluation dataset.
        train_dataset: Dataset the inverter trains on.
        eval_encoder: The encoder ``F'`` that judges reconstructions (``F`` by default).
        aligner: Aligner for datasets that are not already aligned.
        protocols: Protocols evaluated in this cell (``()``: every default protocol).
        seed: Run seed; component seeds derive from it.
        profile: ``quick`` or ``paper``.
        options: Per-role user options, scoped by component name:
            ``{"inverter": {"*": {"epochs": 3}, "dfd": {"width": 0.5}}, ...}`` (``"*"``
            applies to every component of the role).
        device: ``cpu`` / ``cuda`` / ``cuda:1``.
        out: Results folder; the cell writes to ``out / cell_dirname``.
        surrogate: An encoder ``A`` the attacker owns (black-box attack through an
            adapter): the inverter is trained for ``A``, and the victim's leaked templates
            are mapped ``F -> A`` by an adapter fitted on the attacker's training faces.
        adapter: The adapter kind (``ridge`` or ``mlp``), with a ``surrogate``.
    """

    encoder: str
    inverter: str
    dataset: str
    train_dataset: str
    eval_encoder: str
    aligner: str
    protocols: tuple[str, ...]
    seed: int
    profile: str
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    device: str = "cpu"
    out: Path = Path("invbench-results")
    surrogate: str | None = None
    adapter: str = "ridge"

    @property
    def dirname(self) -> str:
        """Folder of this cell inside ``out``: ``<dataset>/<encoder>__<inverter>...``.

        Runs of named protocols get their own folder (``...__seed0__geometric+leak``), so
        they never replace the record of the default protocols of the same cell.
        """
        parts = [self.encoder, self.inverter]
        if self.surrogate is not None:
            parts.append(f"via-{self.surrogate}-{self.adapter}")
        if self.eval_encoder != self.encoder:
            parts.append(f"eval-{self.eval_encoder}")
        parts += [f"train-{self.train_dataset}", f"{self.profile}", f"seed{self.seed}"]
        if self.protocols:
            parts.append("+".join(sorted(self.protocols)))
        return f"{self.dataset}/" + "__".join(parts)

    @property
    def folder(self) -> Path:
        """Where this cell's record, scores and pictures go."""
        return self.out / self.dirname

    def describe(self) -> str:
        """A short human label for logs and progress."""
        label = f"{self.encoder} x {self.inverter} on {self.dataset}"
        if self.surrogate is not None:
            label += f" (trained for {self.surrogate}, {self.adapter} adapter)"
        if self.eval_encoder != self.encoder:
            label += f" (judged by {self.eval_encoder})"
        return f"{label}, seed {self.seed}, {self.profile}"


def expand_grid(
    *,
    encoders: list[str],
    inverters: list[str],
    datasets: list[str],
    train_datasets: list[str],
    eval_encoders: list[str],
    seeds: list[int],
    aligner: str,
    protocols: list[str],
    profile: str,
    options: dict[str, Any],
    device: str,
    out: Path,
    surrogates: list[str | None] | None = None,
    adapter: str = "ridge",
) -> list[CellSpec]:
    """The cartesian product of every repeated choice, one :class:`CellSpec` per cell.

    An empty ``eval_encoders`` means "judge with the attacked encoder itself"; an empty
    ``surrogates`` means "no adapter" (the inverter is trained for the attacked encoder).
    """
    cells = []
    for enc, inv, ds, tds, seed, sur in itertools.product(
        encoders, inverters, datasets, train_datasets, seeds, surrogates or [None]
    ):
        for ev in eval_encoders or [enc]:
            cells.append(
                CellSpec(
                    enc,
                    inv,
                    ds,
                    tds,
                    ev,
                    aligner,
                    tuple(protocols),
                    seed,
                    profile,
                    options,
                    device,
                    out,
                    sur,
                    adapter,
                )
            )
    return cells
