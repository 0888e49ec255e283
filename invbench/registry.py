"""The component registry: names -> classes, filled through the ``register_*`` hooks."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from invbench.components import FAMILIES, Component
from invbench.errors import (
    DuplicateComponentError,
    PluginContractError,
    UnknownComponentError,
)


class Register(Protocol):
    """The callable passed to every ``register_*`` hook."""

    def __call__(
        self,
        target: type[Component] | str,
        name: str | None = None,
        /,
        *,
        description: str | None = None,
        aliases: Sequence[str] = (),
    ) -> None:
        """Register ``target`` (a class, or ``name`` plus a lazy ``"module:Class"``)."""


@dataclass
class ComponentEntry:
    """One registered component.

    Attributes:
        family: ``encoder``, ``inverter``, ``protocol``, ``dataset``, ``aligner``,
            ``generator``.
        name: The id users select it by.
        target: The class, or a lazy ``"module:Class"`` string.
        provider: Name of the plugin that registered it.
        description: One line for listings.
        aliases: Other accepted names.
    """

    family: str
    name: str
    target: type[Component] | str
    provider: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    _loaded: type[Component] | None = field(default=None, repr=False)

    def load(self) -> type[Component]:
        """Import (if lazy) and check the class.

        Raises:
            PluginContractError: When the target cannot be imported or is not a subclass
                of the family's base class.
        """
        if self._loaded is not None:
            return self._loaded
        cls: Any = self.target
        if isinstance(cls, str):
            module_name, _, attr = cls.partition(":")
            try:
                cls = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise PluginContractError(
                    f"{self.family} {self.name!r} from plugin {self.provider!r} cannot be "
                    f"imported from {self.target!r}: {exc}",
                    hint="install the plugin's dependencies, or disable it with "
                    f"INVBENCH_DISABLE_PLUGINS={self.provider}",
                ) from exc
        base = FAMILIES[self.family]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginContractError(
                f"{self.family} {self.name!r} from plugin {self.provider!r} is {cls!r}, "
                f"not a subclass of invbench.{base.__name__}"
            )
        if not cls.name:
            cls.name = self.name
        self._loaded = cls
        return cls

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description for ``invbench list --json``."""
        target = self.target
        if not isinstance(target, str):
            target = f"{target.__module__}:{target.__qualname__}"
        return {
            "family": self.family,
            "name": self.name,
            "description": self.description,
            "provider": self.provider,
            "target": target,
            "aliases": list(self.aliases),
        }


class Registry:
    """All components registered by the loaded plugins, by family and name."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, ComponentEntry]] = {f: {} for f in FAMILIES}
        self._aliases: dict[str, dict[str, str]] = {f: {} for f in FAMILIES}

    def add(self, entry: ComponentEntry) -> None:
        """Add ``entry``.

        Raises:
            DuplicateComponentError: When the name (or an alias) is taken, naming both
                providers.
        """
        family = self._entries[entry.family]
        for key in (entry.name, *entry.aliases):
            existing_name = key if key in family else self._aliases[entry.family].get(key)
            if existing_name is not None:
                other = family[existing_name]
                raise DuplicateComponentError(
                    f"{entry.family} name {key!r} is registered twice: by plugin "
                    f"{other.provider!r} ({other.as_dict()['target']}) and by plugin "
                    f"{entry.provider!r} ({entry.as_dict()['target']})",
                    hint="rename one of them, or disable a plugin with "
                    "INVBENCH_DISABLE_PLUGINS=NAME",
                )
        family[entry.name] = entry
        for alias in entry.aliases:
            self._aliases[entry.family][alias] = entry.name

    def names(self, family: str) -> list[str]:
        """Sorted names registered in ``family``."""
        return sorted(self._entries[family])

    def entries(self, family: str | None = None) -> list[ComponentEntry]:
        """Entries of ``family`` (all families when ``None``), sorted by family and name."""
        families = [family] if family else list(FAMILIES)
        return [self._entries[f][n] for f in families for n in sorted(self._entries[f])]

    def get(self, family: str, name: str) -> ComponentEntry:
        """Look up a component by name or alias.

        Raises:
            UnknownComponentError: With the known names and a "did you mean".
        """
        entries = self._entries[family]
        name = self._aliases[family].get(name, name)
        if name in entries:
            return entries[name]
        known = sorted([*entries, *self._aliases[family]])
        close = difflib.get_close_matches(name, known, n=1)
        suggestion = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownComponentError(
            f"unknown {family} {name!r}{suggestion}",
            hint=f"known {family}s: {', '.join(known) or '(none)'} (see `invbench list`)",
        )

    def load(self, family: str, name: str) -> type[Component]:
        """Return the class registered as ``name`` in ``family``."""
        return self.get(family, name).load()


class ComponentFactory:
    """Builds component instances from names and option dicts.

    Inverters use it to build the further components they need (a perceptual network,
    a generator) by name, so those stay pluggable too.
    """

    def __init__(
        self, registry: Registry, *, device: str | torch.device = "cpu", profile: str = "quick"
    ) -> None:
        self.registry = registry
        self.device = torch.device(device)
        self.profile = profile

    def build(
        self, family: str, name: str, options: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        """Instantiate ``name`` from ``family`` with validated ``options``.

        Extra ``kwargs`` go to the constructor (``encoder=`` for inverters).
        """
        cls = self.registry.load(family, name)
        opts = cls.make_options(options, self.profile)
        if family == "inverter":
            return cls(kwargs.pop("encoder"), opts, device=self.device, factory=self, **kwargs)
        return cls(opts, device=self.device, **kwargs)
