"""Robustness protocols: the attack when faces move, are covered or attacked, or leak degraded.

``--protocol robustness`` runs all five: ``geometric``, ``occlusion``, ``adversarial``,
``aggregation`` and ``leak``.
"""
