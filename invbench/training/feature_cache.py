"""Perceptual features of the training originals, computed once per image instead of per step.

A perceptual loss compares ``φ(x̂)`` with ``φ(x)``. The reconstruction's side changes every
step; the original's does not, yet a plain loop recomputes it whenever the image is drawn
(every epoch). :class:`TargetFeatureCache` computes ``φ(target(images))`` once for every
training image and hands out the rows of a batch by sample index.

Same numbers: the cached maps are computed in batches of exactly the training batch size
(the last batch padded with copies of its first image), through the same functions as the
loop, in eval mode without gradient, as the loop's ``torch.no_grad`` target pass. A
convolutional φ maps each image of a batch independently of the others, so each row is the
value the loop would have computed for that image; ``tests/test_feature_cache.py`` trains a
decoder with and without the cache and compares the weights bit for bit, and the
``dfd`` main job's records are unchanged by it (``docs/performance.md``).

Memory: the maps of every training image are held at once (about 1.2 MB per image for the
arcface MobileFaceNet's four maps, float32) on φ's device. When they would exceed
:func:`budget_bytes` (``INVBENCH_FEATURE_CACHE_MB``, default 4096 MiB; ``0`` turns caching
off) no cache is built and the loss computes the targets' features every step, as before
(same numbers, slower).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

#: Default memory budget of a cache, in MiB.
DEFAULT_BUDGET_MIB = 4096
#: Environment variable overriding the budget (MiB; 0 disables caching).
BUDGET_ENV = "INVBENCH_FEATURE_CACHE_MB"


def budget_bytes() -> int:
    """The memory a feature cache may take: ``INVBENCH_FEATURE_CACHE_MB`` MiB (default 4096).

    Raises:
        ValueError: When the variable is set to something that is not a whole number >= 0.
    """
    raw = os.environ.get(BUDGET_ENV, "").strip()
    if not raw:
        return DEFAULT_BUDGET_MIB * 2**20
    try:
        mib = int(raw)
    except ValueError:
        raise ValueError(f"{BUDGET_ENV}={raw!r}: expected a whole number of MiB (0: off)") from None
    if mib < 0:
        raise ValueError(f"{BUDGET_ENV}={raw!r}: expected a whole number of MiB >= 0 (0: off)")
    return mib * 2**20


class TargetFeatureCache:
    """Feature maps of ``N`` training originals, one row per sample index.

    Args:
        maps: ``[(N, C_k, h_k, w_k), ...]``, row ``i`` = the maps of sample ``i``.
    """

    def __init__(self, maps: Sequence[Tensor]) -> None:
        if not maps or len({m.shape[0] for m in maps}) != 1:
            raise ValueError("a feature cache needs one or more maps with a common first size")
        self.maps = list(maps)

    def __len__(self) -> int:
        return self.maps[0].shape[0]

    @property
    def nbytes(self) -> int:
        """Memory held by the maps."""
        return sum(m.numel() * m.element_size() for m in self.maps)

    def __getitem__(self, index: Tensor) -> list[Tensor]:
        """The maps of samples ``index`` ``(B,)``: ``[(B, C_k, h_k, w_k), ...]``."""
        index = index.to(self.maps[0].device)
        return [m.index_select(0, index) for m in self.maps]

    @classmethod
    def build(
        cls,
        images: Tensor,
        features: Callable[[Tensor], list[Tensor]],
        batch_size: int,
        *,
        budget: int | None = None,
        device: str | torch.device = "cpu",
        progress: bool = False,
        desc: str = "target features",
    ) -> TargetFeatureCache | None:
        """Compute ``features`` of every image in fixed-size batches, or ``None`` over budget.

        Args:
            images: ``(N, ...)`` training images as the loss's batches hold them (uint8).
            features: One batch of ``images`` (on ``device``) -> its maps
                ``[(B, C_k, h_k, w_k), ...]``: the loss's own target pass (target transform,
                then φ's selected maps).
            batch_size: The training batch size; every call gets exactly this many images.
            budget: Bytes the maps may take (default :func:`budget_bytes`); estimated from
                the first batch before the rest is computed.
            device: Where the batches go and the maps stay.
            progress: Show a progress bar.
            desc: Label for the progress bar and the log.

        Returns:
            The cache, or ``None`` when the maps of all ``N`` images would exceed the budget
            (logged; the loss then computes them per step).
        """
        n = images.shape[0]
        if n == 0 or batch_size < 1:
            return None
        limit = budget_bytes() if budget is None else budget
        if limit <= 0:  # caching off (or the budget spent): not even one batch is computed
            logger.info(
                "%s: no feature cache (budget 0, %s); computed every step", desc, BUDGET_ENV
            )
            return None
        maps: list[Tensor] = []
        bar = tqdm(total=n, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
        try:
            with torch.no_grad():
                for start in range(0, n, batch_size):
                    chunk = images[start : start + batch_size]
                    real = chunk.shape[0]
                    if real < batch_size:  # keep the batch shape the kernels were chosen for
                        pad = chunk[:1].expand(batch_size - real, *chunk.shape[1:])
                        chunk = torch.cat([chunk, pad])
                    feats = [f.detach() for f in features(chunk.to(device))]
                    if not maps:
                        per_image = sum(f[0].numel() * f.element_size() for f in feats)
                        if per_image * n > limit:
                            logger.info(
                                "%s: %d images need %.0f MiB, over the %.0f MiB budget (%s); "
                                "computing them every step instead",
                                desc,
                                n,
                                per_image * n / 2**20,
                                limit / 2**20,
                                BUDGET_ENV,
                            )
                            return None
                        maps = [f.new_empty((n, *f.shape[1:])) for f in feats]
                    for m, f in zip(maps, feats, strict=True):
                        m[start : start + real] = f[:real]
                    bar.update(real)
        finally:
            bar.close()
        cache = cls(maps)
        logger.info("%s: %d images cached, %.0f MiB", desc, n, cache.nbytes / 2**20)
        return cache
