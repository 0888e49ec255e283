"""A plugin whose import raises."""

raise ImportError("this plugin cannot be imported on purpose")
