"""The component registry: names -> classes, filled through the ``register_*`` hooks."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from invbench.components import FAMILIES, Component
from invbench.errors import (
    DuplicateComponentError,
    PluginContractError,
    UnknownComponentError,
)


@dataclass
class ComponentEntry:
    """One registered component.

    Attributes:
        family: ``encoder``, ``inverter``, ``protocol``, ``dataset``, ``aligner``,
            ``generator``.
        name: The id users select it by.
        target: The class, or a lazy ``"module:Class"`` string.
        provider: Name of the plugin that registered it.
        aliases: Other accepted names.
    """

    family: str
    name: str
    target: type[Component] | str
    provider: str
    aliases: tuple[str, ...] = ()
    _loaded: type[Component] | None = field(default=None, repr=False)

    def load(self) -> type[Component]:
        """Import (if lazy) and check the class.

        Raises:
            PluginContractError: When the target cannot be imported, is not a subclass
                of the family's base class, or its ``name`` is not the registered name.
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
        if cls.name != self.name:
            raise PluginContractError(
                f"{self.family} registered as {self.name!r} by plugin {self.provider!r} is "
                f"{cls.__qualname__}, whose name is {cls.name!r}",
                hint="set the class attribute `name` to the registered name (the class is "
                "the one source of its name)",
            )
        self._loaded = cls
        return cls

    @property
    def target_path(self) -> str:
        """``module:Class`` of the target."""
        target = self.target
        return target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"

    def description(self) -> str:
        """The class's one-line summary, or why the class cannot be loaded."""
        try:
            return self.load().summary()
        except PluginContractError as exc:
            return f"(cannot be loaded: {exc})"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description for ``invbench list --json`` (loads the class)."""
        return {
            "family": self.family,
            "name": self.name,
            "description": self.description(),
            "provider": self.provider,
            "target": self.target_path,
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
                    f"{other.provider!r} ({other.target_path}) and by plugin "
                    f"{entry.provider!r} ({entry.target_path})",
                    hint="rename one of them, or disable a plugin with "
                    "INVBENCH_DISABLE_PLUGINS=NAME",
                )
        family[entry.name] = entry
        for alias in entry.aliases:
            self._aliases[entry.family][alias] = entry.name

    def drop_provider(self, provider: str) -> None:
        """Remove every entry (and alias) registered by plugin ``provider``."""
        for family, entries in self._entries.items():
            for name in [n for n, e in entries.items() if e.provider == provider]:
                del entries[name]
            aliases = self._aliases[family]
            for alias in [a for a, n in aliases.items() if n not in entries]:
                del aliases[alias]

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

    def default(self, family: str, what: str, is_default: Callable[[Any], bool]) -> str:
        """The one component of ``family`` whose class declares itself the default.

        Args:
            family: The family searched.
            what: What the default is for, for messages (``"evaluation dataset"``).
            is_default: Predicate on the class (e.g. ``lambda c: c.default``).

        Raises:
            UnknownComponentError: When none or several components declare it.
        """
        found = [e.name for e in self.entries(family) if _loads(e) and is_default(e.load())]
        if len(found) == 1:
            return found[0]
        some = f"several {family}s declare themselves the default {what}: {', '.join(found)}"
        raise UnknownComponentError(
            some if found else f"no {family} declares itself the default {what}",
            hint=f"name one explicitly (known: {', '.join(self.names(family)) or 'none'})",
        )


def _loads(entry: ComponentEntry) -> bool:
    """Whether ``entry`` can be loaded (failures are reported by ``invbench plugins``)."""
    try:
        entry.load()
    except PluginContractError:
        return False
    return True


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
        cls: Any = self.registry.load(family, name)
        opts = cls.make_options(options, self.profile)
        if family == "inverter":
            return cls(kwargs.pop("encoder"), opts, device=self.device, factory=self, **kwargs)
        return cls(opts, device=self.device, **kwargs)
