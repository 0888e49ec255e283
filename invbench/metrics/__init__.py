"""Metric functions (pure numpy/torch): thresholds, verification scores, image similarity, CIs.

See ``docs/metrics.md`` for the definitions these implement exactly.
"""
