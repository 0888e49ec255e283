"""``aggregation``: inverting templates built from several images of a person.

Each identity's faces are split in order: the first half is the enrolment pool, the second
half is held out. The leaked template is built from the pool by the attacked encoder ``F``:

- ``k=<n>``: the normalised mean of the first ``n`` pool templates (``n`` capped at the pool
  size; ``k=all`` is the whole pool);
- ``cluster``: the normalised centroid of the largest of two agglomerative clusters of the
  pool (cosine, average linkage; scikit-learn), a mean that leaves outliers out.

Its reconstruction, encoded by ``F'``, is compared with every held-out face of the identity:
``tar_type2@far=α@<c>`` (per pair, identity bootstrap) and ``identity_similarity_type2@<c>``.
DFD reports that aggregation "normalises" the template towards a frontal neutral face; the
question here is whether identity similarity rises with ``k``. With ``k=1`` the scores are
``type2``'s for the pairs (first face, held-out face).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from pydantic import Field, field_validator

from invbench.components import EvalContext, Metric
from invbench.metrics.thresholds import ThresholdResult
from invbench.metrics.verification import as_unit_rows, identity_codes
from invbench_plugins.protocols.metric_builders import similarity_metric
from invbench_plugins.protocols.robustness.base import (
    RobustnessOptions,
    RobustnessProtocol,
    condition_name,
)

_KS: tuple[int | str, ...] = (1, 2, 4, "all")


class AggregationOptions(RobustnessOptions):
    """Pool sizes, and whether to add the clustered centroid.

    Attributes:
        ks: Numbers of pool templates averaged (``"all"``: the whole pool).
        cluster: Also evaluate the largest agglomerative cluster's centroid.
    """

    ks: list[int | str] = Field(default_factory=lambda: list(_KS))
    cluster: bool = True

    @field_validator("ks")
    @classmethod
    def _sizes(cls, value: list[int | str]) -> list[int | str]:
        if not value or any(not (k == "all" or (isinstance(k, int) and k >= 1)) for k in value):
            raise ValueError("ks must be pool sizes >= 1 or 'all'")
        return value


def split_pool(codes: np.ndarray) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Per identity code: its first ``ceil(n/2)`` rows (pool) and the rest (held out)."""
    pool, held = {}, {}
    for code in np.unique(codes):
        rows = np.flatnonzero(codes == code)
        half = (rows.size + 1) // 2
        pool[int(code)], held[int(code)] = rows[:half], rows[half:]
    return pool, held


def largest_cluster_centroid(templates: np.ndarray) -> np.ndarray:
    """The mean of the largest of two cosine/average-linkage clusters of ``(n, D)`` rows."""
    if len(templates) < 3:
        return templates.mean(axis=0)
    from sklearn.cluster import AgglomerativeClustering

    labels = AgglomerativeClustering(n_clusters=2, metric="cosine", linkage="average").fit_predict(
        templates
    )
    biggest = np.bincount(labels).argmax()
    return templates[labels == biggest].mean(axis=0)


class AggregationProtocol(RobustnessProtocol[AggregationOptions]):
    """Type-II attack on templates aggregated from k images or a cluster (DFD Sec. 5)."""

    name: ClassVar[str] = "aggregation"
    main_metric: ClassVar[str] = "identity_similarity_type2@k=all"
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "tar_type2@far=1e-3@k=1",
        "tar_type2@far=1e-3@k=all",
        "identity_similarity_type2@k=1",
        "identity_similarity_type2@k=all",
    )
    table_columns: ClassVar[tuple[str, ...]] = ("tar_type2", "identity_similarity_type2")

    def aggregation_names(self) -> list[str]:
        """``k=<n>`` for each pool size, then ``cluster``."""
        names = [condition_name("k", k) for k in self.options.ks]
        return names + (["cluster"] if self.options.cluster else [])

    def condition_scores(self, ctx: EvalContext, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Aggregate each identity's pool, invert, compare with its held-out faces."""
        if ctx.invert is None or ctx.eval_encoder is None:
            raise ValueError("aggregation needs the context's invert and eval_encoder")
        codes = identity_codes(ctx.identities)
        leaked, real = as_unit_rows(ctx.templates), as_unit_rows(ctx.real_templates)
        pool, held = split_pool(codes)
        ids = [c for c in pool if held[c].size]
        out: dict[str, np.ndarray] = {}
        for name in self.aggregation_names():
            k = name.partition("=")[2]
            built = []
            for c in ids:
                members = leaked[pool[c]]
                if name == "cluster":
                    built.append(largest_cluster_centroid(members))
                else:
                    built.append(members[: len(members) if k == "all" else int(k)].mean(axis=0))
            recon = ctx.invert(torch.nn.functional.normalize(torch.tensor(np.stack(built)), dim=1))
            judged = as_unit_rows(ctx.eval_encoder.templates(recon))
            pair_id = np.concatenate([np.full(held[c].size, i) for i, c in enumerate(ids)])
            pair_real = np.concatenate([held[c] for c in ids])
            out[f"{name}__type2"] = np.einsum("nd,nd->n", judged[pair_id], real[pair_real])
            out[f"{name}__type2_identity"] = codes[pair_real]
            out[f"{name}__type2_real_index"] = pair_real
        return out

    def extra_metrics(
        self, scores: dict[str, np.ndarray], thrs: list[ThresholdResult]
    ) -> dict[str, Metric]:
        """Type-II TAR and identity similarity per aggregation."""
        out: dict[str, Metric] = {}
        for name in self.aggregation_names():
            key = f"{name}__type2"
            if key not in scores:
                continue
            groups = scores[f"{name}__type2_identity"]
            what = f"type-II of the reconstruction of the {name} template vs held-out faces"
            out.update(self.rates(scores, "tar_type2", key, name, thrs, what=what, groups=groups))
            out[f"identity_similarity_type2@{name}"] = similarity_metric(scores[key], what=what)
        return out

    def figures(
        self, scores: dict[str, np.ndarray], metrics: dict[str, Metric]
    ) -> dict[str, bytes]:
        """Identity similarity and type-II TAR against ``k``."""
        return {
            "similarity": self.curve_figure(
                metrics, "identity_similarity_type2", title="aggregation: identity", xlabel="k"
            ),
            "tar": self.curve_figure(
                metrics, "tar_type2", title="aggregation: type-II TAR", xlabel="k"
            ),
        }
