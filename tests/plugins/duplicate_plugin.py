"""A plugin that registers a name the fake plugin already uses."""

from invbench import hookimpl


@hookimpl
def register_encoders(register):
    register("fake-projection", "invbench.testing.fakes:FakeProjectionEncoder")
