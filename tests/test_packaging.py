"""The distribution ships every package, and the docs describe every hook exactly."""

import inspect
import re
import subprocess
import tomllib
from pathlib import Path

from invbench import hookspecs

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for top, name in (("invbench", "invbench"), ("plugins", "invbench_plugins")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            found.add(".".join([name, *rel.parts]))
    assert found == listed


def _hooks():
    return {
        name: fn
        for name, fn in vars(hookspecs).items()
        if callable(fn) and hasattr(fn, "invbench_spec")
    }


def test_every_hook_is_documented_with_its_exact_signature():
    doc = (ROOT / "CONTRIBUTING.md").read_text()
    for name, fn in _hooks().items():
        args = ", ".join(inspect.signature(fn).parameters)
        assert re.search(rf"^#+ `{name}\({re.escape(args)}\)`", doc, re.M), (
            f"CONTRIBUTING.md lacks a heading `{name}({args})`"
        )


def test_every_hook_has_a_test():
    tests = (ROOT / "tests" / "test_plugins.py").read_text()
    for name in _hooks():
        assert f"def test_hook_{name}(" in tests, f"no test_hook_{name}"


def _ci_reads(tag: str) -> str:
    """The command .ci/run extracts from README.md for ``tag``, with .ci/run's own awk."""
    ci = (ROOT / ".ci" / "run").read_text()
    (program,) = re.findall(r"awk -v tag=\"# \$1\" '([^']+)' README.md", ci)
    out = subprocess.run(
        ["awk", "-v", f"tag=# {tag}", program, "README.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_ci_runs_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    for tag, var in (("tests", "tests_cmd"), ("slow tests", "slow_cmd"), ("main job", "main_cmd")):
        assert f'{var}=$(readme_command "{tag}")' in ci
        assert f'bash -c "${var}' in ci or f'bash -c "${{{var}}}' in ci, f"CI never runs {var}"
    tests = _ci_reads("tests")
    assert tests.endswith('python -m pytest -m "not slow"'), tests
    assert _ci_reads("slow tests") == "python -m pytest -m slow"
    assert _ci_reads("main job").endswith("invbench run --encoder arcface --inverter dfd")


def test_ci_checks_types_and_formatting():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "mypy invbench plugins" in ci
    assert "ruff format --check" in ci and "ruff check" in ci
    # the leaderboards are checked through the script the workflows run too
    assert "scripts/leaderboards.sh check" in ci
    script = (ROOT / "scripts" / "leaderboards.sh").read_text()
    assert "leaderboard --check" in script
