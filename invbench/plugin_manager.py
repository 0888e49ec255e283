"""Loading plugins: built-ins, then third-party entry points, into one pluggy manager.

Environment switches:
    ``INVBENCH_DISABLE_PLUGINS=a,b``: block these plugins (by plugin name).
    ``INVBENCH_LOAD_PLUGINS=a,b``: load only these third-party entry points (empty: none).
    ``INVBENCH_TRACE_PLUGINS=1``: log every hook call and its result.

A plugin that fails to import, or whose hook raises, is reported (``invbench plugins``
and a warning) with its name and error and does not take the others down.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from invbench import hookspecs
from invbench.components import FAMILIES
from invbench.errors import DuplicateComponentError
from invbench.registry import ComponentEntry, Registry

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "invbench"

#: Built-in plugins, registered through the same hooks as third-party ones.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "invbench_plugins.datasets",
    "invbench_plugins.aligners",
    "invbench_plugins.encoders",
    "invbench_plugins.generators",
    "invbench_plugins.inverters",
    "invbench_plugins.protocols",
    "invbench.testing.plugin",
)

#: Hook name registering each component family.
FAMILY_HOOKS: dict[str, str] = {family: f"register_{family}s" for family in FAMILIES}


@dataclass
class PluginFailure:
    """A plugin that could not be loaded or whose hook raised."""

    plugin: str
    stage: str
    error: str


@dataclass
class PluginHost:
    """The loaded plugin manager, where each plugin came from, and what failed."""

    pm: pluggy.PluginManager
    distributions: dict[str, tuple[str, str]] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    trace: bool = False
    _registry: Registry | None = None

    @property
    def registry(self) -> Registry:
        """The component registry, built from the ``register_*`` hooks on first use."""
        if self._registry is None:
            self._registry = self._build_registry()
        return self._registry

    def _build_registry(self) -> Registry:
        registry = Registry()
        for family, hook_name in FAMILY_HOOKS.items():
            caller = getattr(self.pm.hook, hook_name)
            for impl in reversed(caller.get_hookimpls()):
                register = _make_register(registry, family, impl.plugin_name)
                if self.trace:
                    logger.info("hook %s(register) -> plugin %s", hook_name, impl.plugin_name)
                try:
                    impl.function(*[{"register": register}[a] for a in impl.argnames])
                except DuplicateComponentError:
                    raise
                except Exception as exc:  # a broken plugin must not take the others down
                    self._fail(impl.plugin_name, hook_name, exc)
        return registry

    def _fail(self, plugin: str, stage: str, exc: BaseException) -> None:
        failure = PluginFailure(plugin, stage, f"{type(exc).__name__}: {exc}")
        self.failures.append(failure)
        logger.warning("plugin %r failed in %s: %s", plugin, stage, failure.error)

    def plugin_info(self) -> list[dict[str, Any]]:
        """One dict per registered plugin: name, hooks, distribution, version."""
        rows = []
        for plugin in self.pm.get_plugins():
            name = self.pm.get_name(plugin) or repr(plugin)
            hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
            dist, version = self.distributions.get(name, ("invbench", _own_version()))
            rows.append({"name": name, "hooks": hooks, "dist": dist, "version": version})
        return sorted(rows, key=lambda r: str(r["name"]))

    def dist_of(self, plugin_name: str) -> tuple[str, str]:
        """``(distribution, version)`` that provides ``plugin_name``."""
        return self.distributions.get(plugin_name, ("invbench", _own_version()))


def _own_version() -> str:
    from invbench import __version__

    return __version__


def _make_register(registry: Registry, family: str, provider: str) -> Any:
    def register(
        target: Any,
        name: str | None = None,
        /,
        *,
        description: str | None = None,
        aliases: tuple[str, ...] | list[str] = (),
    ) -> None:
        if isinstance(target, str):
            if name is None:
                # register("name", "module:Class"): the name comes first for readability
                raise TypeError("lazy registration needs register(name, 'module:Class')")
            name, target = target, name
        elif name is None:
            name = getattr(target, "name", "") or ""
        if not name:
            raise TypeError(f"{target!r} has no name: set the class attribute `name`")
        if description is None and not isinstance(target, str):
            description = target.summary()
        registry.add(
            ComponentEntry(
                family=family,
                name=name,
                target=target,
                provider=provider,
                description=description or "",
                aliases=tuple(aliases),
            )
        )

    return register


def _env_list(var: str) -> list[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def create_plugin_manager(*, builtins: bool = True, entry_points: bool | None = None) -> PluginHost:
    """Create a plugin manager with the built-ins and third-party plugins loaded.

    Args:
        builtins: Register :data:`DEFAULT_PLUGINS`.
        entry_points: Load third-party entry points of the group ``invbench``. ``None``
            means yes, except under the test suite (``sys._invbench_testing``).

    Returns:
        The loaded :class:`PluginHost`.
    """
    pm = pluggy.PluginManager("invbench")
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm)
    for name in _env_list("INVBENCH_DISABLE_PLUGINS") or []:
        pm.set_blocked(name)
    if os.environ.get("INVBENCH_TRACE_PLUGINS"):
        host.trace = True
        pm.add_hookcall_monitoring(
            lambda name, impls, kwargs: logger.info(
                "hook %s(%s) -> %s", name, ", ".join(kwargs), [i.plugin_name for i in impls]
            ),
            lambda outcome, name, impls, kwargs: logger.info(
                "hook %s returned %r", name, outcome.get_result()
            ),
        )
    if builtins:
        for module_name in DEFAULT_PLUGINS:
            if pm.is_blocked(module_name):
                continue
            try:
                pm.register(importlib.import_module(module_name), name=module_name)
            except Exception as exc:
                host._fail(module_name, "import", exc)
    if entry_points is None:
        entry_points = not getattr(sys, "_invbench_testing", False)
    if entry_points:
        load_entry_points(host)
    pm.check_pending()
    return host


def load_entry_points(host: PluginHost) -> None:
    """Load third-party plugins from the ``invbench`` entry-point group into ``host``."""
    only = _env_list("INVBENCH_LOAD_PLUGINS")
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if only is not None and ep.name not in only:
            continue
        if host.pm.is_blocked(ep.name) or host.pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
            host.pm.register(plugin, name=ep.name)
        except Exception as exc:
            host._fail(ep.name, f"import of entry point {ep.value!r}", exc)
            continue
        dist = ep.dist
        if dist is not None:
            host.distributions[ep.name] = (dist.metadata["Name"], dist.version)


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, created on first use."""
    global _HOST
    if _HOST is None:
        _HOST = create_plugin_manager()
    return _HOST


def reset_host(host: PluginHost | None = None) -> None:
    """Replace the process-wide host (tests, or after installing a plugin)."""
    global _HOST
    _HOST = host
