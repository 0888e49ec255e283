"""Component contracts: the base classes every plugin component derives from."""

from invbench.components.aligner import Aligner
from invbench.components.base import Component, Options
from invbench.components.dataset import FaceDataset, FaceSample
from invbench.components.encoder import Encoder
from invbench.components.generator import Generator
from invbench.components.inverter import FitContext, Inverter, TrainingData
from invbench.components.protocol import Metric, Protocol

#: Family name -> base class, in pipeline order.
FAMILIES: dict[str, type[Component]] = {
    "dataset": FaceDataset,
    "aligner": Aligner,
    "encoder": Encoder,
    "generator": Generator,
    "inverter": Inverter,
    "protocol": Protocol,
}

__all__ = [
    "FAMILIES",
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
]
