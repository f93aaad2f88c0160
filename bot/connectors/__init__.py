"""Connectors to other incident tools (PagerDuty), on the app side: configuration, secrets, outbound
jobs, inbound webhooks and reconciliation. Protocol details live in `integrations/`."""
