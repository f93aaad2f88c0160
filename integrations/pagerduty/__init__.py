"""All of PagerDuty: the pure REST v2 / Webhooks v3 layer in `api/` (imports nothing of the app), and the
connector beside it (outbound jobs, webhook intake, applying remote changes, reconciliation, on-call,
metrics, config, mapping). It knows nothing of Slack."""
