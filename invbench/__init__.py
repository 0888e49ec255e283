"""invbench: a benchmark suite for face template inversion."""

from invbench.components import (
    Aligner,
    Component,
    Encoder,
    FaceDataset,
    FaceSample,
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
    "Aligner",
    "Component",
    "Encoder",
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
