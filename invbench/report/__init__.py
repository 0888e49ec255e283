"""The static HTML report of result records (``invbench report``).

:func:`~invbench.report.site.build_report` writes an index of the leaderboards and one page
per record with its provenance, every metric and figures drawn from its saved scores.
"""

from invbench.report.site import ReportSummary, build_report

__all__ = ["ReportSummary", "build_report"]
