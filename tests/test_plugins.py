"""Plugin loading: hooks, switches, failures, and real entry-point metadata."""

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from invbench.plugin_manager import DEFAULT_PLUGINS, create_plugin_manager, load_entry_points
from invbench.registry import ComponentFactory
from invbench.runner.cache import Cache
from invbench.runner.cell import run_cell
from invbench.runner.grid import expand_grid
from tests.plugins import broken_plugin, duplicate_plugin, hooks_plugin

EXAMPLE_SRC = Path(__file__).resolve().parents[1] / "examples" / "invbench-example-plugin" / "src"


@pytest.fixture
def host():
    return create_plugin_manager(entry_points=False)


def test_every_builtin_plugin_loads(host):
    assert host.failures == []
    loaded = {host.pm.get_name(p) for p in host.pm.get_plugins()}
    assert set(DEFAULT_PLUGINS) <= loaded


@pytest.mark.parametrize(
    ("family", "names"),
    [
        ("encoder", {"arcface", "dlib", "mobileface", "insightface", "onnx"}),
        ("inverter", {"dfd", "nbnet-a", "nbnet-b", "dcnn", "icip2022", "mlp-stylegan", "ridge"}),
        ("protocol", {"type1", "type2", "sar", "image-quality"}),
        ("dataset", {"orl", "dcgan-faces", "folder", "lfw"}),
        ("aligner", {"mtcnn", "resize"}),
        ("generator", {"dcgan-faces", "stylegan2"}),
    ],
)
def test_builtin_families_register_through_hooks(host, family, names):
    assert names <= set(host.registry.names(family))
    for name in names:
        assert host.registry.get(family, name).provider == f"invbench_plugins.{family}s"
        assert host.registry.load(family, name).name == name


def test_hook_register_encoders(host):
    assert "fake-projection" in host.registry.names("encoder")
    assert host.registry.get("encoder", "fake-projection").provider == "invbench.testing.plugin"


def test_hook_register_inverters(host):
    assert {"fake-pinv", "fake-linear"} <= set(host.registry.names("inverter"))


def test_hook_register_protocols(host):
    assert {"type1", "type2"} <= set(host.registry.names("protocol"))


def test_hook_register_datasets(host):
    assert {"fake-faces", "fake-train-faces"} <= set(host.registry.names("dataset"))


def test_hook_register_aligners(host):
    host.pm.register(hooks_plugin, name="hooks")
    host._registry = None
    aligner = ComponentFactory(host.registry).build("aligner", "toy-aligner")
    import torch

    faces, ok = aligner.align([torch.rand(3, 20, 20), torch.zeros(3, 9, 9)], (8, 8))
    assert faces.shape == (2, 3, 8, 8) and ok.tolist() == [True, False]


def test_hook_register_generators(host):
    host.pm.register(hooks_plugin, name="hooks")
    host._registry = None
    gen = ComponentFactory(host.registry).build("generator", "toy-generator")
    assert gen.mean_latent(16).shape == (1, 4)


def test_hook_register_commands(monkeypatch):
    from invbench.cli.main import cli

    host = create_plugin_manager(entry_points=False)
    host.pm.register(hooks_plugin, name="hooks")
    host.pm.hook.register_commands(cli=cli)
    result = CliRunner().invoke(cli, ["hello-plugin"])
    assert result.output.strip() == "hello from a plugin"


def test_hook_run_started(host, tmp_path):
    _run_fake_cell(host, tmp_path)
    started = [c for c in hooks_plugin.CALLS if c[0] == "run_started"]
    assert started and started[-1][1].inverter == "fake-pinv"


def test_hook_run_finished(host, tmp_path):
    _run_fake_cell(host, tmp_path)
    finished = [c for c in hooks_plugin.CALLS if c[0] == "run_finished"]
    assert finished[-1][1]["status"] == "ok"
    assert finished[-1][1]["metrics"]["type1"]["tar_type1@far=1e-2"]["value"] == 1.0


def _run_fake_cell(host, tmp_path):
    hooks_plugin.CALLS.clear()
    host.pm.register(hooks_plugin, name="hooks")
    (spec,) = expand_grid(
        encoders=["fake-projection"],
        inverters=["fake-pinv"],
        datasets=["fake-faces"],
        train_datasets=["fake-train-faces"],
        eval_encoders=[],
        seeds=[0],
        aligner="none",
        protocols=["type1"],
        profile="quick",
        options={},
        device="cpu",
        out=tmp_path / "out",
    )
    return run_cell(spec, host, Cache(tmp_path / "cache"), command=["test"], progress=False)


def test_disable_switch_blocks_a_plugin(monkeypatch):
    monkeypatch.setenv("INVBENCH_DISABLE_PLUGINS", "invbench.testing.plugin")
    host = create_plugin_manager(entry_points=False)
    assert "fake-projection" not in host.registry.names("encoder")
    assert "type1" in host.registry.names("protocol")


def test_a_broken_plugin_is_reported_and_the_others_still_work(host):
    host.pm.register(broken_plugin, name="broken")
    host._registry = None
    assert "fake-projection" in host.registry.names("encoder")
    (failure,) = host.failures
    assert failure.plugin == "broken" and "broken on purpose" in failure.error


def test_a_duplicate_name_fails_the_later_plugin_naming_both(host):
    host.pm.register(duplicate_plugin, name="dupes")
    host.reset_registry()
    registry = host.registry
    (failure,) = host.failures
    assert failure.plugin == "dupes" and "DuplicateComponentError" in failure.error
    assert "dupes" in failure.error and "invbench.testing.plugin" in failure.error
    assert registry.get("encoder", "fake-projection").provider == "invbench.testing.plugin"
    assert host.pm.get_plugin("dupes") is None


@pytest.fixture
def example_dist(tmp_path, monkeypatch):
    """Expose the example plugin through real entry-point metadata (a dist-info folder)."""
    dist = tmp_path / "invbench_example-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: invbench-example\nVersion: 0.1.0\n"
    )
    (dist / "entry_points.txt").write_text("[invbench]\nexample = invbench_example\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(EXAMPLE_SRC))
    yield
    sys.modules.pop("invbench_example", None)
    sys.modules.pop("invbench_example.components", None)


def test_third_party_plugin_loads_from_entry_point_metadata(example_dist, host):
    load_entry_points(host)
    assert host.dist_of("example") == ("invbench-example", "0.1.0")
    entry = host.registry.get("encoder", "example-pixels")
    assert entry.provider == "example"
    from invbench.testing.conformance import check_component

    examples = [("encoder", "example-pixels"), ("inverter", "example-ridge")]
    examples += [("inverter", "example-mlp"), ("protocol", "example-cosine")]
    for family, name in examples:
        checks = check_component(host.registry, family, name)
        assert all(c.passed for c in checks), [c for c in checks if not c.passed]


def test_load_plugins_switch_limits_entry_points(example_dist, host, monkeypatch):
    monkeypatch.setenv("INVBENCH_LOAD_PLUGINS", "someone-else")
    load_entry_points(host)
    assert "example-pixels" not in host.registry.names("encoder")


def test_entry_point_that_fails_to_import_is_reported(tmp_path, monkeypatch, host):
    dist = tmp_path / "bad-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bad\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[invbench]\nbad = no_such_module_abc\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    load_entry_points(host)
    assert any(f.plugin == "bad" and "no_such_module_abc" in f.error for f in host.failures)
    assert "fake-projection" in host.registry.names("encoder")


def test_trace_switch_logs_hook_calls(monkeypatch, caplog):
    monkeypatch.setenv("INVBENCH_TRACE_PLUGINS", "1")
    with caplog.at_level("INFO", logger="invbench.plugin_manager"):
        _ = create_plugin_manager(entry_points=False).registry
    assert any("register_encoders" in r.message for r in caplog.records)
