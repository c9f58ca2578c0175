"""Web front door (aiohttp): ingest endpoint, order webhook, health/metrics."""
