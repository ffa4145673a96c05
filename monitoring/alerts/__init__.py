"""Telling people: alert messages, their delivery from the outbox to Slack, and
the alerts raised when a pipeline run fails. The only place that talks to Slack.
"""
