"""Bolt listeners by kind, each module registering itself on the app."""
