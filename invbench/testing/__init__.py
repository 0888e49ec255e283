"""Fakes and conformance checks for invbench tests and plugin authors."""
