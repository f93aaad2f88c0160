"""PagerDuty REST v2 client, models and Webhooks v3 helpers (no Slack, no database)."""
