"""A plugin whose hook takes an argument the spec does not offer."""

from invbench import hookimpl


@hookimpl
def register_inverters(register, encoder):
    raise AssertionError("a hook with unknown arguments must never be called")
