"""The long-running service: the runner and the schedule, the health endpoint
with its status page and metrics, the webhook server, alerts."""
