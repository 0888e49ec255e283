"""A plugin whose hook raises: it must be reported and must not take others down."""

from invbench import hookimpl


@hookimpl
def register_encoders(register):
    raise RuntimeError("this plugin is broken on purpose")
