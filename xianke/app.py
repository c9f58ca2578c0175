"""Composition root: builds settings, store and models once and hands them to the front doors."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from core.repos import CatalogRepository
from core.settings import Settings, load_settings
from core.store import Store
from nlp.embedder import Embedder
from nlp.sentiment import SentimentModel, load_sentiment
from recsys.catalog_io import load_shipped
from recsys.service import RecsysService


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

    @cached_property
    def sentiment(self) -> SentimentModel:
        return load_sentiment(self.settings.sentiment_model, self.embedder, self.settings.models_dir)

    @property
    def index_dir(self) -> Path:
        return self.settings.data_dir / "index"

    def open_recsys(self, store: Store | None = None, index_dir: Path | None = None) -> RecsysService:
        """The engine over `store` (default: the app's); loads the demo catalog if the store has none."""
        store = store or self.store
        catalog = CatalogRepository(store)
        if catalog.counts()["courses"] == 0:
            load_shipped(catalog)
        return RecsysService(store, self.embedder, index_dir or self.index_dir)

    @cached_property
    def recsys(self) -> RecsysService:
        return self.open_recsys()
