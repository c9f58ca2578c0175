"""Listening: ingest and connectors, analysis pipeline, alerts, retention, digests."""
