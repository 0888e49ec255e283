"""Whether a record can be reproduced from public code: the rule for "unverified".

A leaderboard ranks a record only when someone else could re-run it from what is public.
A record is **verified** when both hold:

1. **The code is a commit.** ``record.invbench`` names a full git commit (40 hex digits)
   and ``dirty`` is ``false``: the invbench source tree that ran had no uncommitted changes
   to tracked files. A record without a commit (installed from an archive, git missing) or
   from a dirty tree cannot say which code produced it.
2. **Every component comes from that commit or from a public package.** A component of
   the built-in plugins (provider one of :data:`~invbench.plugin_manager.DEFAULT_PLUGINS`,
   distribution ``invbench``) is part of the commit. Any other component must come from a
   plugin distribution that is installed *here*, at the version the record names, from a
   package index: its metadata has no ``direct_url.json`` (PEP 610; pip and uv write one for
   installs from a local folder, an archive file, a VCS URL and for editable installs),
   and the version has no local label (``+...``, PEP 440). A component registered by hand
   (not through an entry point, so recorded under the ``invbench`` distribution with
   another provider) is never verified.

An unverified record is listed under the tables with its reasons and never ranked.
"""

from __future__ import annotations

import re
from importlib import metadata

from invbench.plugin_manager import DEFAULT_PLUGINS
from invbench.records import Record

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _index_install(dist: str, version: str) -> str | None:
    """Why ``dist`` at ``version`` is not known to be installed from a package index."""
    if "+" in version:
        return f"plugin distribution {dist} {version} has a local version label"
    try:
        installed = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return f"plugin distribution {dist} is not installed here, so it cannot be checked"
    if installed.version != version:
        return f"plugin distribution {dist} is {installed.version} here, the record has {version}"
    if installed.read_text("direct_url.json") is not None:
        return (
            f"plugin distribution {dist} is installed from a local folder, file or VCS URL, "
            "not from a package index"
        )
    return None


def unverified_reasons(record: Record) -> list[str]:
    """Why ``record`` cannot be reproduced from public code (empty when it can)."""
    reasons = []
    commit = record.invbench.get("commit")
    if not isinstance(commit, str) or not _COMMIT.match(commit):
        reasons.append("the code commit is not recorded")
    elif record.invbench.get("dirty") is not False:
        state = "dirty" if record.invbench.get("dirty") else "of unknown state"
        reasons.append(f"the source tree was {state} (uncommitted changes) at commit {commit[:12]}")
    for role, info in sorted(record.components.items()):
        if info.dist == "invbench":
            if info.provider not in DEFAULT_PLUGINS:
                reasons.append(
                    f"{role} {info.name} comes from plugin {info.provider}, registered by "
                    "hand rather than from a distribution"
                )
            continue
        why = _index_install(info.dist, info.dist_version)
        if why:
            reasons.append(f"{role} {info.name}: {why}")
    return list(dict.fromkeys(reasons))
