"""Alerts from monitoring: `POST /alerts/{source}` in PagerDuty's Events API v2 shape or Alertmanager's
webhook shape, turned into incidents by bot/domain/alert_flow.py after the intake's commit."""
