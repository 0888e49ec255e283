"""Broken third-party plugins installed together never take invbench down.

A misspelt hook name, an import that raises and a hook with arguments the spec does not
offer are installed through real entry-point metadata; `invbench --help`, `invbench
plugins` and a run of the built-ins all work, and each failure is one line.
"""

import sys

import pytest
from click.testing import CliRunner

from invbench.cli.main import cli
from invbench.plugin_manager import create_plugin_manager, reset_host

BROKEN = {
    "typo": "tests.plugins.typo_plugin",
    "boom": "tests.plugins.raising_import_plugin",
    "badargs": "tests.plugins.wrong_args_plugin",
}


@pytest.fixture
def broken_plugins(tmp_path, monkeypatch):
    """The three broken plugins as installed distributions, and entry points switched on."""
    dist = tmp_path / "invbench_broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: invbench-broken\nVersion: 0.1\n")
    lines = [f"{name} = {module}" for name, module in BROKEN.items()]
    (dist / "entry_points.txt").write_text("[invbench]\n" + "\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("INVBENCH_LOAD_PLUGINS", ",".join(BROKEN))
    monkeypatch.delattr(sys, "_invbench_testing")
    reset_host()
    yield
    reset_host()
    cli._plugins_added = False  # type: ignore[attr-defined]
    for module in BROKEN.values():
        sys.modules.pop(module, None)


def test_each_failure_is_one_line_and_the_built_ins_still_load(broken_plugins):
    host = create_plugin_manager()
    failed = {f.plugin: f for f in host.failures}
    assert set(failed) == set(BROKEN), host.failures
    assert "unknown hook 'register_encoder'" in failed["typo"].error
    assert "cannot be imported on purpose" in failed["boom"].error
    assert "encoder" in failed["badargs"].error and failed["badargs"].stage == "hook arguments"
    assert all("\n" not in f.line() for f in host.failures)
    assert "dfd" in host.registry.names("inverter")
    assert "type1" in host.registry.names("protocol")
    for name in BROKEN:
        assert host.pm.get_plugin(name) is None


def test_help_plugins_and_a_run_work_with_broken_plugins(broken_plugins, tmp_path, caplog):
    runner = CliRunner()
    helped = runner.invoke(cli, ["--help"])
    assert helped.exit_code == 0, helped.output
    assert "check-plugin" in helped.output

    listed = runner.invoke(cli, ["plugins"])
    assert listed.exit_code == 0, listed.output
    failures = [line for line in listed.output.splitlines() if line.startswith("FAILED")]
    assert len(failures) == 3 and all(name in listed.output for name in BROKEN)
    assert "invbench_plugins.inverters" in listed.output

    fake = ["--encoder", "fake-projection", "--inverter", "fake-pinv", "--dataset", "fake-faces"]
    fake += ["--train-dataset", "fake-train-faces", "--protocol", "type1", "--no-progress"]
    ran = runner.invoke(cli, ["run", *fake, "--out", str(tmp_path / "out")])
    assert ran.exit_code == 0, ran.output
    assert "tar_type1@far=1e-2" in ran.output
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert sorted(w.split("'")[1] for w in warnings if "plugin '" in w) == sorted(BROKEN)
