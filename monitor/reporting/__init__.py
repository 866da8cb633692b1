"""The post-incident report: where the team learns what happened and how customers were told.

``figures`` makes the report from what the store keeps (pure: records and a moment in, a
``Report`` out); ``markdown`` words it for a postmortem document and ``html`` makes a page of
that. The web serves it (``GET /api/v1/incidents/ID/report``, JSON from the same figures) and
``monitor report ID`` asks the web.
"""

from monitor.reporting.figures import Report, build_report
from monitor.reporting.html import report_html
from monitor.reporting.markdown import report_markdown

__all__ = ["Report", "build_report", "report_html", "report_markdown"]
