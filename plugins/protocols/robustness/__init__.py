"""Robustness protocols: the attack when faces are moved, covered, attacked, or aggregated,
or the leaked template is degraded (``--protocol robustness`` runs all five)."""
