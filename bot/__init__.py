"""im: incident response run from Slack, kept in step with PagerDuty."""

__version__ = "0.1.0"
