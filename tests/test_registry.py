import pytest

from invbench.components import Encoder
from invbench.errors import DuplicateComponentError, PluginContractError, UnknownComponentError
from invbench.registry import ComponentEntry, Registry
from invbench.testing.fakes import FakeProjectionEncoder


def entry(name, target="invbench.testing.fakes:FakeProjectionEncoder", provider="p1", aliases=()):
    return ComponentEntry("encoder", name, target, provider, aliases=tuple(aliases))


def test_unknown_name_suggests_the_closest_and_lists_known():
    reg = Registry()
    reg.add(entry("arcface"))
    reg.add(entry("dlib"))
    with pytest.raises(UnknownComponentError) as err:
        reg.get("encoder", "arcfase")
    assert "did you mean 'arcface'?" in str(err.value)
    assert "arcface, dlib" in err.value.hint


def test_duplicate_names_fail_naming_both_providers():
    reg = Registry()
    reg.add(entry("arcface", provider="first-plugin"))
    with pytest.raises(DuplicateComponentError) as err:
        reg.add(entry("arcface", provider="second-plugin"))
    assert "first-plugin" in str(err.value) and "second-plugin" in str(err.value)


def test_alias_clash_is_a_duplicate_too():
    reg = Registry()
    reg.add(entry("arcface", aliases=["r100"]))
    with pytest.raises(DuplicateComponentError):
        reg.add(entry("r100", provider="other"))
    assert reg.get("encoder", "r100").name == "arcface"


def test_lazy_target_is_imported_only_on_load_and_checked():
    reg = Registry()
    reg.add(entry("fake-projection", target="invbench.testing.fakes:FakeProjectionEncoder"))
    e = reg.get("encoder", "fake-projection")
    assert e._loaded is None
    assert e.load() is FakeProjectionEncoder
    reg.add(entry("missing", target="no_such_module_xyz:Thing"))
    with pytest.raises(PluginContractError, match="cannot be imported"):
        reg.load("encoder", "missing")
    reg.add(entry("wrong", target="invbench.testing.fakes:FakeFaces"))
    with pytest.raises(PluginContractError, match="not a subclass of invbench.Encoder"):
        reg.load("encoder", "wrong")


def test_the_class_is_the_one_source_of_its_name():
    class Nameless(Encoder):
        pass

    reg = Registry()
    reg.add(ComponentEntry("encoder", "given-name", Nameless, "p"))
    with pytest.raises(PluginContractError, match="whose name is ''"):
        reg.load("encoder", "given-name")
    assert Nameless.name == ""  # the registry never writes names onto classes
    reg.add(entry("other-name"))
    with pytest.raises(PluginContractError, match="whose name is 'fake-projection'"):
        reg.load("encoder", "other-name")
