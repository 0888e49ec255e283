"""The common base of every component family: name, version, description, typed options.

A component declares its options model as the type argument of its family base::

    class MyEncoderOptions(Options):
        weights: str = "path/to/weights.pt"

    class MyEncoder(Encoder[MyEncoderOptions]):
        name = "my-encoder"
        ...

``self.options`` is then a validated ``MyEncoderOptions`` (typed for mypy and IDEs), and
``MyEncoder.Options`` is that model (used to parse ``--encoder-arg key=value``).

Profiles follow one convention everywhere: the options' defaults are the paper's (or the
only) setting, and :data:`PROFILES` other than ``paper`` are overrides of them.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, get_args

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from invbench.errors import OptionsError, PluginContractError

if TYPE_CHECKING:
    from invbench.assets import Asset

#: Run profiles. ``paper``: the options' defaults (the papers' settings, a GPU budget);
#: ``quick``: a few CPU minutes; ``smoke``: seconds, for conformance checks and tests.
PROFILES: tuple[str, ...] = ("paper", "quick", "smoke")


class Options(BaseModel):
    """Per-component options, validated by pydantic; unknown keys fail.

    Subclass it and give the subclass as the component's type argument. Options are
    settable from the CLI (``--inverter-arg epochs=3``) and from a TOML config file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


OptionsT = TypeVar("OptionsT", bound=Options)
#: ``Options`` under a name the class bodies below do not shadow (for annotations).
AnyOptions = Options


class Factory(Protocol):
    """Builds further components by name.

    :class:`~invbench.registry.ComponentFactory` implements it; an inverter receives one to
    build the components it needs (a perceptual network, a generator).
    """

    def build(
        self, family: str, name: str, options: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        """Instantiate component ``name`` of ``family`` with validated ``options``."""


def _declared_options(cls: type) -> type[Options] | None:
    """The options model given as a type argument in ``cls``'s bases, if any."""
    for base in getattr(cls, "__orig_bases__", ()):
        for arg in get_args(base):
            if isinstance(arg, type) and issubclass(arg, Options):
                return arg
    return None


class Component(Generic[OptionsT]):
    """Base of encoders, inverters, protocols, datasets, aligners and generators.

    Class attributes:
        name: The id users select the component by (``--encoder arcface``); required.
        version: Bump whenever a change alters results; records with another version are
            listed as stale on leaderboards.
        description: One line for ``invbench list`` (default: the docstring's first line).
        Options: The pydantic options model (set from the type argument).
        profiles: Option overrides per run profile (keys from :data:`PROFILES`, except
            ``paper``, which is the defaults).
        assets: Pinned files the component needs (``invbench fetch`` pre-fetches them).
    """

    family: ClassVar[str] = "component"
    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    Options: ClassVar[type[Options]] = Options
    profiles: ClassVar[dict[str, dict[str, Any]]] = {}
    assets: ClassVar[tuple[Asset, ...]] = ()

    options: OptionsT

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = _declared_options(cls)
        if declared is not None and "Options" not in cls.__dict__:
            cls.Options = declared
        unknown = set(cls.profiles) - set(PROFILES)
        if unknown:
            raise PluginContractError(
                f"{cls.__qualname__}.profiles has unknown profile(s) {sorted(unknown)}",
                hint=f"profiles are {', '.join(PROFILES)}",
            )
        if cls.profiles.get("paper"):
            raise PluginContractError(
                f"{cls.__qualname__}.profiles['paper'] overrides options",
                hint="the paper's settings are the options' defaults; put them there",
            )

    def __init__(
        self, options: OptionsT | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        self.options = options if options is not None else self.Options()  # type: ignore[assignment]
        if not isinstance(self.options, self.Options):
            raise PluginContractError(
                f"{self.family} {self.name!r} got options of type {type(self.options).__name__}, "
                f"not {self.Options.__name__}"
            )
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
    ) -> AnyOptions:
        """Build validated options: defaults, then the profile's overrides, then ``values``.

        Args:
            values: User-given option values (from the CLI or a config file).
            profile: One of :data:`PROFILES`; a profile the component does not declare
                leaves the defaults.

        Raises:
            OptionsError: When a value does not validate or a key is unknown; the hint
                lists the known options.
        """
        if profile is not None and profile not in PROFILES:
            raise OptionsError(
                f"unknown profile {profile!r}", hint=f"profiles are {', '.join(PROFILES)}"
            )
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
        from invbench.assets import fetch, verified_digest

        lines = []
        for a in cls.assets:
            path = fetch(a)
            lines.append(
                f"{a.id}: {path} (sha256 {verified_digest(path)[:12]}… verified; {a.license})"
            )
        return lines

    def provenance(self) -> dict[str, Any]:
        """Return extra provenance for the record (assets, sha256); override to add."""
        return {}
