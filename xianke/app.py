"""Composition root: builds settings, store and models once and hands them to the front doors."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from core.settings import Settings, load_settings
from core.store import Store
from nlp.embedder import Embedder


class App:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or load_settings()

    def open_store(self, path: Path | None = None) -> Store:
        """A fresh connection (one per thread); migrations are applied on open."""
        return Store(path or self.settings.database_path)

    @cached_property
    def store(self) -> Store:
        return self.open_store()

    @cached_property
    def embedder(self) -> Embedder:
        return Embedder(self.settings.encoder_model, self.settings.models_dir)
