"""Core: settings, SQLite store, domain types, logging. Imports nothing else of ours."""
