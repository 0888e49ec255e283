"""The verification-protocol base: thresholds on real-vs-real scores, then attack acceptance.

Every threshold-based protocol (``type1``, ``type2``, ``sar``) works the same way: score the
real system (impostor and genuine comparisons of the evaluation set with the evaluation
encoder ``F'``), score an attack whose probe templates are ``F'`` of the reconstructions,
pick thresholds at the target rates on the real impostor scores, and report acceptance
rates with counts and intervals. The template-ignoring baseline is the same attack with
``EvalContext.baseline_templates`` as probes: the base runs :meth:`attack_scores` and
:meth:`attack_metrics` once for the attack and once for the baseline, stores the
baseline's arrays and metrics as ``baseline_<name>``, and notes the attack's margin over
the baseline in each attack metric's details.

A subclass declares its comparisons and metrics:

- :meth:`system_scores` (default: all real-vs-real pairs) and :meth:`system_metrics`;
- :meth:`attack_scores` and :meth:`attack_metrics`;
- ``attack_rates`` / ``system_rates``: rate-name prefixes reported as unavailable when
  there are no real impostor scores, and ``rate_kind`` (``far`` or ``fmr``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
from pydantic import Field, field_validator

from invbench.components import EvalContext, Metric, Options, Protocol
from invbench.metrics.thresholds import ThresholdResult
from invbench.metrics.verification import as_unit_rows, identity_codes
from invbench_plugins.protocols.metric_builders import (
    acquisition_arrays,
    add_baseline,
    cached_real_score_sets,
    impostor_arrays,
    proportion_metric,
    rate_metric,
    rate_name,
    similarity_metric,
    thresholds,
    unavailable_rates,
)

#: Prefix of the baseline's score arrays and metrics.
BASELINE = "baseline_"


class VerificationOptions(Options):
    """Options shared by the threshold-based protocols.

    Attributes:
        fars: Target false-match rates; one threshold and one rate per value.
        min_false_matches: A rate at ``alpha`` is reported only when ``|I| * alpha`` reaches
            this; below, it is unavailable with the reason (the impostor set cannot place a
            threshold there).
        threshold_source: ``same``: real-vs-real impostor scores of this evaluation set
            with the evaluation encoder; ``file``: impostor scores from ``impostor_file``
            (e.g. the ``impostor.npy`` of a run on a dev split).
        impostor_file: ``.npy`` of 1-D real impostor scores, for ``threshold_source=file``.
        max_impostor_pairs: Keep at most this many non-mated comparisons (a seeded
            uniform sample when there are more; recorded as ``impostor_sampled``). The
            default, 1e6, keeps ``|I| * alpha >= 10`` down to ``alpha = 1e-5`` and the
            score file at 8 MB; ORL-sized sets (78,000 pairs) always use all pairs.
        seed: Seed of the impostor sample and of the bootstrap.
        n_bootstrap: Bootstrap replicates (identities resampled) for pair-based rates.
    """

    fars: list[float] = Field(default_factory=lambda: [1e-2, 1e-3])
    threshold_source: Literal["same", "file"] = "same"
    impostor_file: str | None = None
    max_impostor_pairs: int = Field(default=1_000_000, ge=1)
    seed: int = 0
    n_bootstrap: int = Field(default=1000, ge=10)
    min_false_matches: int = Field(
        default=10,
        ge=1,
        description="report a rate at target alpha only when |I|*alpha reaches this (else "
        "unavailable: the impostor set cannot place the threshold)",
    )

    @field_validator("fars")
    @classmethod
    def _check_fars(cls, value: list[float]) -> list[float]:
        if not value or any(not 0.0 < a < 1.0 for a in value):
            raise ValueError("fars must be a non-empty list of rates in (0, 1)")
        return value


VerificationOptionsT = TypeVar("VerificationOptionsT", bound=VerificationOptions)


class VerificationProtocol(Protocol[VerificationOptionsT]):
    """Threshold-based attack protocol; see the module docstring for what subclasses declare.

    Class attributes:
        attack_rates: Prefixes of the attack's rates (``"tar_type1"``).
        system_rates: Prefixes of the real system's own rates (``"tar_original"``).
        rate_kind: ``"far"`` or ``"fmr"``, the operating-point label in rate names.
    """

    attack_rates: ClassVar[tuple[str, ...]] = ()
    system_rates: ClassVar[tuple[str, ...]] = ()
    rate_kind: ClassVar[str] = "far"

    # ------------------------------------------------------------ what subclasses declare
    def system_scores(self, real: np.ndarray, codes: np.ndarray) -> dict[str, np.ndarray]:
        """The real system's comparisons: ``impostor`` (thresholds come from it) and more.

        Args:
            real: ``(N, D')`` unit-norm real templates ``F'(x_i)``.
            codes: ``(N,)`` integer identity codes.

        Returns:
            Default: every real non-mated pair ``i < j`` (a seeded sample above
            ``max_impostor_pairs``) as ``impostor``, with the sampling facts.
        """
        sets = cached_real_score_sets(real, codes, self.options)
        return impostor_arrays(self.options, sets.impostor, sets.n_nonmated_pairs, sets.sampled)

    def attack_scores(
        self, probes: np.ndarray, real: np.ndarray, codes: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Score arrays of one attack.

        Args:
            probes: ``(N, D')`` unit-norm probe templates, row ``i`` standing for sample
                ``i`` (``F'`` of its reconstruction, or of the baseline image).
            real: ``(N, D')`` unit-norm real templates.
            codes: ``(N,)`` identity codes.
        """
        raise NotImplementedError

    def attack_metrics(
        self, scores: dict[str, np.ndarray], prefix: str, thrs: list[ThresholdResult]
    ) -> dict[str, Metric]:
        """Metrics of one attack from its arrays ``scores[prefix + name]``.

        Args:
            scores: Every saved array.
            prefix: ``""`` for the attack, ``"baseline_"`` for the baseline.
            thrs: One threshold per target rate (empty without impostor scores).

        Returns:
            Metrics under their unprefixed names (the base prefixes the baseline's).
        """
        raise NotImplementedError

    def system_metrics(
        self, scores: dict[str, np.ndarray], thrs: list[ThresholdResult]
    ) -> dict[str, Metric]:
        """Metrics of the real system itself (its own TAR/TMR, FTA); default none."""
        return {}

    # ------------------------------------------------------------------ the machinery
    def rates(
        self,
        rate: str,
        trials: np.ndarray,
        thrs: list[ThresholdResult],
        scores: dict[str, np.ndarray],
        *,
        what: str,
        groups: np.ndarray | None = None,
        extra: Callable[[ThresholdResult], dict[str, Any]] | None = None,
    ) -> dict[str, Metric]:
        """``{<rate>@<kind>=<alpha>: Metric}``: the share of ``trials`` at or above each threshold.

        Args:
            rate: The rate's name prefix (``"tar_type1"``).
            trials: ``(N,)`` one score per trial (NaN counts as rejected).
            thrs: The thresholds.
            scores: Every saved array (threshold and FTA facts).
            what: What a trial is, recorded in the metric's ``implementation``.
            groups: ``(N,)`` identity per trial when trials of one identity are not
                independent (the interval is then a bootstrap over identities).
            extra: Further details per threshold.
        """
        return {
            rate_name(rate, thr.alpha, self.rate_kind): rate_metric(
                trials,
                thr,
                what=what,
                scores=scores,
                options=self.options,
                groups=groups,
                extra=extra(thr) if extra is not None else None,
            )
            for thr in thrs
        }

    def probe_text(self, prefix: str) -> str:
        """What the probe of an attack is, for metric descriptions."""
        return "F'(mean training face)" if prefix else "F'(x_hat)"

    def scores(self, ctx: EvalContext) -> dict[str, np.ndarray]:
        """The system's, the attack's and the baseline's score arrays, and FTA counts."""
        real = as_unit_rows(ctx.real_templates)
        codes = identity_codes(ctx.identities)
        out = {
            **self.system_scores(real, codes),
            **acquisition_arrays(ctx.n_total, ctx.n_failed_to_acquire),
        }
        probes = {"": ctx.recon_templates, BASELINE: ctx.baseline_templates}
        for prefix, templates in probes.items():
            if templates is not None:
                arrays = self.attack_scores(as_unit_rows(templates), real, codes)
                out.update({prefix + name: array for name, array in arrays.items()})
        return out

    def metrics(self, scores: dict[str, np.ndarray]) -> dict[str, Metric]:
        """Attack metrics, the baseline's as ``baseline_*``, then the system's."""
        has_base = any(name.startswith(BASELINE) for name in scores)
        prefixes = ["", BASELINE] if has_base else [""]
        wanted = [p + r for p in prefixes for r in self.attack_rates] + list(self.system_rates)
        out: dict[str, Metric] = unavailable_rates(scores, self.options, wanted, self.rate_kind)
        thrs = thresholds(scores, self.options)
        for prefix in prefixes:
            for name, metric in self.attack_metrics(scores, prefix, thrs).items():
                if prefix:
                    add_baseline(out, name, metric)
                else:
                    out[name] = metric
        out.update(self.system_metrics(scores, thrs))
        return out


class IdentityAttackProtocol(VerificationProtocol[VerificationOptionsT]):
    """An attack scored against real images of the source identity (type-I, type-II).

    The subclass's :meth:`attack_scores` saves ``<attack>`` (one score per trial) and
    ``rank1_<attack>`` (closed-set identification, one flag per probe); this reports
    ``tar_<attack>@far=*``, ``identity_similarity_<attack>`` and ``rank1_<attack>``.

    Class attributes:
        attack: The attack's name (``"type1"``).
        trial_text: What a trial is (``{probe}``: the probe template's description).
        rank1_text: What the rank-1 probe and gallery are.
        trial_identity: The array holding each trial's identity code (``<prefix>`` is
            tried first, for arrays the baseline has its own copy of).
        rank1_identity: The array holding each rank-1 probe's identity code.

    Intervals follow the sampling: trials that share identities get the identity bootstrap
    (see ``metric_builders.interval``), independent ones Clopper–Pearson.
    """

    attack: ClassVar[str] = ""
    trial_text: ClassVar[str] = ""
    rank1_text: ClassVar[str] = ""
    trial_identity: ClassVar[str] = "identity"
    rank1_identity: ClassVar[str] = "rank1_identity"

    def attack_metrics(
        self, scores: dict[str, np.ndarray], prefix: str, thrs: list[ThresholdResult]
    ) -> dict[str, Metric]:
        """TAR per FAR, mean similarity over trials, rank-1."""
        a, probe = self.attack, self.probe_text(prefix)
        trials = scores[prefix + a]
        groups = scores.get(prefix + self.trial_identity, scores.get(self.trial_identity))
        what = self.trial_text.format(probe=probe)
        out = self.rates(f"tar_{a}", trials, thrs, scores, what=f"{what} >= tau", groups=groups)
        out[f"identity_similarity_{a}"] = similarity_metric(trials, what=what)
        out[f"rank1_{a}"] = proportion_metric(
            scores[f"{prefix}rank1_{a}"],
            what=self.rank1_text.format(probe=probe),
            options=self.options,
            groups=scores.get(prefix + self.rank1_identity, scores.get(self.rank1_identity)),
        )
        return out
