"""Component contracts: the base classes every plugin component derives from.

Plugins import them from :mod:`invbench` (its ``__all__`` is the public list).
"""

from invbench.components.aligner import Aligner as Aligner
from invbench.components.base import PROFILES as PROFILES
from invbench.components.base import Component as Component
from invbench.components.base import Factory as Factory
from invbench.components.base import Options as Options
from invbench.components.dataset import FaceDataset as FaceDataset
from invbench.components.dataset import FaceSample as FaceSample
from invbench.components.decoder import DecoderInverter as DecoderInverter
from invbench.components.decoder import DecoderOptions as DecoderOptions
from invbench.components.encoder import Encoder as Encoder
from invbench.components.generator import Generator as Generator
from invbench.components.inverter import FitContext as FitContext
from invbench.components.inverter import Inverter as Inverter
from invbench.components.inverter import TrainingData as TrainingData
from invbench.components.protocol import EvalContext as EvalContext
from invbench.components.protocol import Metric as Metric
from invbench.components.protocol import Protocol as Protocol

#: Family name -> base class, in pipeline order.
FAMILIES: dict[str, type[Component]] = {
    "dataset": FaceDataset,
    "aligner": Aligner,
    "encoder": Encoder,
    "generator": Generator,
    "inverter": Inverter,
    "protocol": Protocol,
}
