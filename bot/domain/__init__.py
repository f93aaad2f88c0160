"""The incident domain: lifecycle, timeline and the outbox they feed. Knows nothing of Slack or PagerDuty."""
