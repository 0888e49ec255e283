"""The runner: grid expansion, cached stages, evaluation context, cell records."""
