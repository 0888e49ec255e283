"""The report from the committed records, opened in a real browser (Chromium via Playwright).

Chromium comes from the Debian package (``apt-get install -y chromium``, done by ``.ci/run``)
and Playwright drives it through ``executable_path``: nothing is downloaded. Without a
``chromium`` on the PATH the test is skipped, except where ``INVBENCH_REQUIRE_BROWSER`` is
set (CI), where a missing browser fails it. The screenshots of the index and of one record
page are written to ``docs/images/`` (the README shows them).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from invbench.leaderboard.collect import collect
from invbench.leaderboard.headline import group_of, inverter_class, seed_group_of
from invbench.plugin_manager import get_host
from invbench.report import build_report

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "leaderboards" / "results"
IMAGES = ROOT / "docs" / "images"
VIEWPORT = {"width": 1280, "height": 900}


def _browser() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None or not _has_playwright():
        why = "no chromium on PATH" if path is None else "playwright is not installed"
        if os.environ.get("INVBENCH_REQUIRE_BROWSER"):
            pytest.fail(f"{why}, but INVBENCH_REQUIRE_BROWSER is set (CI installs both)")
        pytest.skip(f"{why} (apt-get install -y chromium; pip install playwright)")
    return path


def _has_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def _local(url: str) -> Path | None:
    """The file a ``file://`` URL names (``None`` for other schemes)."""
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def _shot(page: Any, path: Path, height: int = 1400) -> None:
    """A screenshot of the top ``height`` pixels of the whole page (for the README)."""
    full = int(page.evaluate("document.documentElement.scrollHeight"))
    clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": min(height, full)}
    page.screenshot(path=str(path), full_page=True, clip=clip)


def test_report_in_chromium(tmp_path):
    executable = _browser()
    from playwright.sync_api import sync_playwright

    host = get_host()
    site = tmp_path / "site"
    summary = build_report([RESULTS], site, host)
    assert summary.pages > 0
    collected = collect(RESULTS, host)
    seed_groups = {
        (group_of(r), seed_group_of(r))
        for _, r in collected.ranked
        if not getattr(inverter_class(host, r.cell.inverter), "reference", False)
    }
    pages = sorted(site.rglob("*.html"))
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport=VIEWPORT)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"failed to load {r.url}"))
        for path in pages:
            page.goto(path.as_uri(), wait_until="load")
            assert not errors, f"{path}: {errors}"
            broken = page.evaluate(
                "Array.from(document.images)"
                ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
            )
            assert not broken, f"{path}: images that do not load: {broken}"
            for href in page.evaluate("Array.from(document.links).map(a => a.href)"):
                target = _local(href)
                if target is not None:  # URLs elsewhere (papers) are not fetched here
                    assert target.is_file(), f"{path} links {href}, which does not exist"

        page.goto((site / "index.html").as_uri())
        rows = page.locator("div[data-kind=headline] tr.ranked").count()
        assert rows == len(seed_groups), "one headline row per ranked record / seed group"
        assert page.locator("table.records tr.record").count() == len(collected.ranked)
        not_ranked = page.locator("tr[data-standing]").count()
        assert not_ranked == (
            len(collected.stale)
            + len(collected.failed)
            + len(collected.invalid)
            + len(collected.unverified)
        )
        IMAGES.mkdir(parents=True, exist_ok=True)
        _shot(page, IMAGES / "report-index.png")
        ranked = [p for p, _ in collected.ranked] or sorted(RESULTS.rglob("record.json"))
        record_page = site / "records" / ranked[0].parent.relative_to(RESULTS) / "index.html"
        page.goto(record_page.as_uri())
        _shot(page, IMAGES / "report-record.png")
        assert not errors, errors
        browser.close()
