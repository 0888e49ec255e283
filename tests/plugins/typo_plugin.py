"""A plugin with a misspelt hook name (``register_encoder`` without the ``s``)."""

from invbench import hookimpl


@hookimpl
def register_encoder(register):
    raise AssertionError("a hook no spec declares must never be called")
