"""Loading plugins: built-ins, then third-party entry points, into one pluggy manager.

Environment switches:
    ``INVBENCH_DISABLE_PLUGINS=a,b``: block these plugins (by plugin name).
    ``INVBENCH_LOAD_PLUGINS=a,b``: load only these third-party entry points (empty: none).
    ``INVBENCH_TRACE_PLUGINS=1``: log every hook call and its result (pluggy's monitoring).

A plugin that fails in any way (its import raises, it implements a hook that does not
exist, its hook takes arguments the spec does not offer, its hook raises, or it registers a
name another plugin took) is unregistered and reported as one line (a warning when the
failure happens, and in ``invbench plugins``); every other plugin keeps working.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from invbench import hookspecs
from invbench.components import FAMILIES
from invbench.errors import InvbenchError
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
    """A plugin that could not be loaded or whose hook failed (it is unregistered)."""

    plugin: str
    stage: str
    error: str

    def line(self) -> str:
        """The one line that reports it."""
        return f"plugin {self.plugin!r} failed ({self.stage}): {self.error}"


@dataclass
class PluginHost:
    """The loaded plugin manager, where each plugin came from, and what failed."""

    pm: pluggy.PluginManager
    distributions: dict[str, tuple[str, str]] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    _registry: Registry | None = None

    @property
    def registry(self) -> Registry:
        """The component registry, built from the ``register_*`` hooks on first use."""
        if self._registry is None:
            self._registry = self._build_registry()
        return self._registry

    def reset_registry(self) -> None:
        """Forget the registry (after registering another plugin by hand)."""
        self._registry = None

    def call_each(self, hook_name: str, **kwargs: Any) -> None:
        """Call ``hook_name`` plugin by plugin, through pluggy, isolating failures.

        A plugin whose implementation raises is reported and unregistered.
        """
        caller = getattr(self.pm.hook, hook_name)
        names = [impl.plugin_name for impl in caller.get_hookimpls()]
        for name in names:
            others = [p for p in self.pm.get_plugins() if self.pm.get_name(p) != name]
            try:
                self.pm.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs)
            except Exception as exc:  # a broken plugin must not take the others down
                self.fail(name, f"hook {hook_name}", exc)

    def _build_registry(self) -> Registry:
        registry = Registry()
        for family, hook_name in FAMILY_HOOKS.items():
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():  # registration order: built-ins first
                name = impl.plugin_name
                if self.pm.get_plugin(name) is None:  # failed earlier in this loop
                    continue
                staged = Registry()
                others = [p for p in self.pm.get_plugins() if self.pm.get_name(p) != name]
                try:
                    self.pm.subset_hook_caller(hook_name, remove_plugins=others)(
                        register=_make_register(staged, family, name)
                    )
                    for entry in staged.entries(family):
                        registry.add(entry)
                except Exception as exc:  # a broken plugin must not take the others down
                    self.fail(name, f"hook {hook_name}", exc)
                    registry.drop_provider(name)
        return registry

    def fail(self, plugin: str, stage: str, exc: BaseException) -> None:
        """Record ``plugin``'s failure, warn once, and unregister it."""
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        error = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        failure = PluginFailure(plugin, stage, error)
        self.failures.append(failure)
        logger.warning("%s", failure.line())
        registered = self.pm.get_plugin(plugin)
        if registered is not None:
            self.pm.unregister(registered)
        self.pm.set_blocked(plugin)

    def plugin_info(self) -> list[dict[str, Any]]:
        """One dict per registered plugin: name, hooks, distribution, version."""
        rows = []
        for plugin in self.pm.get_plugins():
            name = self.pm.get_name(plugin) or repr(plugin)
            hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
            dist, version = self.dist_of(name)
            rows.append({"name": name, "hooks": hooks, "dist": dist, "version": version})
        return sorted(rows, key=lambda r: str(r["name"]))

    def dist_of(self, plugin_name: str) -> tuple[str, str]:
        """``(distribution, version)`` that provides ``plugin_name``."""
        return self.distributions.get(plugin_name, ("invbench", _own_version()))


def _own_version() -> str:
    from invbench import __version__

    return __version__


def _make_register(registry: Registry, family: str, provider: str) -> hookspecs.Register:
    def register(
        target: Any, lazy_target: str | None = None, /, *, aliases: Sequence[str] = ()
    ) -> None:
        if isinstance(target, str):
            if lazy_target is None:
                raise TypeError(
                    f"register({target!r}) needs the class, or register(name, 'module:Class')"
                )
            name, target = target, lazy_target
        elif lazy_target is not None:
            raise TypeError("register(cls) takes no second argument; the class has its name")
        else:
            name = getattr(target, "name", "") or ""
            if not name:
                raise TypeError(f"{target!r} has no name: set the class attribute `name`")
        registry.add(ComponentEntry(family, name, target, provider, tuple(aliases)))

    return register


def _env_list(var: str) -> list[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _register(host: PluginHost, plugin: Any, name: str, stage: str) -> bool:
    try:
        host.pm.register(plugin, name=name)
    except Exception as exc:  # wrong hook arguments: pluggy's PluginValidationError
        host.fail(name, stage, exc)
        return False
    return True


def _check_unknown_hooks(host: PluginHost) -> None:
    """Fail plugins that implement hooks no spec declares (a misspelt hook name)."""
    for hook_name, caller in list(vars(host.pm.hook).items()):
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            known = ", ".join(sorted(n for n, c in vars(host.pm.hook).items() if _has_spec(c)))
            host.fail(
                impl.plugin_name,
                "hook names",
                InvbenchError(f"unknown hook {hook_name!r} (invbench hooks: {known})"),
            )


def _has_spec(caller: Any) -> bool:
    return isinstance(caller, pluggy.HookCaller) and caller.has_spec()


def _monitor(tracer: Callable[..., None]) -> tuple[Callable[..., None], Callable[..., None]]:
    def before(name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        tracer("hook %s(%s) -> %s", name, ", ".join(kwargs), [i.plugin_name for i in impls])

    def after(outcome: Any, name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        exc = outcome.exception
        tracer("hook %s %s", name, f"raised {exc!r}" if exc else "returned")

    return before, after


def create_plugin_manager(*, builtins: bool = True, entry_points: bool | None = None) -> PluginHost:
    """Create a plugin manager with the built-ins and third-party plugins loaded.

    Args:
        builtins: Register :data:`DEFAULT_PLUGINS`.
        entry_points: Load third-party entry points of the group ``invbench``. ``None``
            means yes, except under the test suite (``sys._invbench_testing``).

    Returns:
        The loaded :class:`PluginHost`; failed plugins are in ``failures``.
    """
    pm = pluggy.PluginManager("invbench")
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm)
    for name in _env_list("INVBENCH_DISABLE_PLUGINS") or []:
        pm.set_blocked(name)
    if os.environ.get("INVBENCH_TRACE_PLUGINS"):
        pm.add_hookcall_monitoring(*_monitor(logger.info))
    if builtins:
        for module_name in DEFAULT_PLUGINS:
            if pm.is_blocked(module_name):
                continue
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                host.fail(module_name, "import", exc)
                continue
            _register(host, module, module_name, "hook arguments")
    if entry_points is None:
        entry_points = not getattr(sys, "_invbench_testing", False)
    if entry_points:
        load_entry_points(host)
    _check_unknown_hooks(host)
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
        except Exception as exc:
            host.fail(ep.name, f"import of entry point {ep.value!r}", exc)
            continue
        if not _register(host, plugin, ep.name, "hook arguments"):
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
