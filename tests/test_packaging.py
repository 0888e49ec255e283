"""The distribution ships every package, and the docs describe every hook exactly."""

import inspect
import re
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


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    (command,) = re.findall(r"^(python -m pytest[^\n]*)$", readme, re.M)[:1]
    assert "README.md" in ci and command in readme
