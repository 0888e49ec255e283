"""A plugin implementing every non-registering hook, recording the calls."""

import click

from invbench import hookimpl

CALLS: list[tuple[str, object]] = []


@hookimpl
def register_commands(cli):
    @cli.command(name="hello-plugin")
    def hello():
        """Say hello (added by a plugin)."""
        click.echo("hello from a plugin")


@hookimpl
def run_started(spec):
    CALLS.append(("run_started", spec))


@hookimpl
def run_finished(spec, record):
    CALLS.append(("run_finished", record))


@hookimpl
def register_aligners(register):
    from invbench.testing.fakes import FakeProjectionEncoder  # noqa: F401

    register("toy-aligner", "tests.plugins.toy_components:ToyAligner")


@hookimpl
def register_generators(register):
    register("toy-generator", "tests.plugins.toy_components:ToyGenerator")
