"""The Slack adapter: Bolt listeners, Block Kit rendering and delivery of outbox jobs to the Web API."""
