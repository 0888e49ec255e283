"""invbench: a benchmark suite for face template inversion.

The names exported here are the contracts a plugin is written against (see
``CONTRIBUTING.md``); ``invbench.components.__all__`` lists the same names.
"""

from invbench.components import (
    PROFILES,
    Aligner,
    Component,
    DecoderInverter,
    DecoderOptions,
    Encoder,
    EvalContext,
    FaceDataset,
    FaceSample,
    Factory,
    FitContext,
    Generator,
    Inverter,
    Metric,
    Options,
    Protocol,
    TrainingData,
)
from invbench.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "PROFILES",
    "Aligner",
    "Component",
    "DecoderInverter",
    "DecoderOptions",
    "Encoder",
    "EvalContext",
    "Factory",
    "FaceDataset",
    "FaceSample",
    "FitContext",
    "Generator",
    "Inverter",
    "Metric",
    "Options",
    "Protocol",
    "TrainingData",
    "__version__",
    "hookimpl",
]
