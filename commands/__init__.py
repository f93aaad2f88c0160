"""The one command grammar shared by Slack's `/im <text>` and the terminal's `im <args>`."""
