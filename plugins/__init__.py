"""invbench's built-in plugins (importable as ``invbench_plugins``): one folder per family."""
