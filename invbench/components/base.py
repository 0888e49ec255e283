"""The common base of every component family: name, version, description and options."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from invbench.errors import OptionsError

if TYPE_CHECKING:
    from invbench.assets import Asset


class Options(BaseModel):
    """Per-component options, validated by pydantic.

    Subclass inside a component as ``class Options(Options): ...``. Options are settable
    from the CLI (``--inverter-arg epochs=3``) and from a config file; unknown keys fail.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class Component:
    """Base of encoders, inverters, protocols, datasets, aligners and generators.

    Class attributes:
        name: The id users select the component by (``--encoder arcface``). Set by the
            registry from the registered name when the class leaves it empty.
        version: Bump whenever a change alters results; records with another version are
            listed as stale on leaderboards.
        description: One line for ``invbench list``; defaults to the docstring's first line.
        Options: The pydantic options model.
        profiles: Option overrides per run profile (``{"quick": {...}, "paper": {...}}``).
        assets: Pinned files the component needs (``invbench fetch`` pre-fetches them).
    """

    family: ClassVar[str] = "component"
    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    Options: ClassVar[type[Options]] = Options
    profiles: ClassVar[dict[str, dict[str, Any]]] = {}
    assets: ClassVar[tuple[Asset, ...]] = ()

    def __init__(
        self, options: Options | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        self.options = options if options is not None else self.Options()
        self.device = torch.device(device)

    @classmethod
    def summary(cls) -> str:
        """Return the one-line description (``description`` or the docstring's first line)."""
        if cls.description:
            return cls.description
        doc = inspect.getdoc(cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @classmethod
    def make_options(
        cls, values: dict[str, Any] | None = None, profile: str | None = None
    ) -> Options:
        """Build validated options: class defaults, then the profile's, then ``values``.

        Args:
            values: User-given option values (from the CLI or a config file).
            profile: Run profile name (``quick`` or ``paper``); unknown profiles add nothing.

        Raises:
            OptionsError: When a value does not validate or a key is unknown.
        """
        merged: dict[str, Any] = {}
        if profile is not None:
            merged.update(cls.profiles.get(profile, {}))
        merged.update(values or {})
        try:
            return cls.Options(**merged)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '?'}: {err['msg']}"
                for err in exc.errors()
            )
            known = ", ".join(sorted(cls.Options.model_fields)) or "(none)"
            raise OptionsError(
                f"invalid options for {cls.family} {cls.name!r}: {problems}",
                hint=f"known options: {known}",
            ) from None

    @classmethod
    def fetch_assets(cls) -> list[str]:
        """Fetch and verify every pinned asset this component needs (``invbench fetch``).

        Returns:
            One line per asset saying where it is. Override when assets are not plain
            :class:`~invbench.assets.Asset` files (e.g. a whole folder of a wheel).
        """
        from invbench.assets import fetch

        return [f"{a.id}: {fetch(a)} (sha256 {a.sha256[:12]}…; {a.license})" for a in cls.assets]

    def provenance(self) -> dict[str, Any]:
        """Return extra provenance for the record (assets, sha256); override to add."""
        return {}
