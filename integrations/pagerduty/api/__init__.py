"""PagerDuty REST v2 and Webhooks v3, as PagerDuty defines them: imports nothing of the app."""
