"""Courses, ingredients, recipes and kits, addressed by stable slugs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.domain import Course, Ingredient, Kit, Recipe
from core.store import Store, dumps, loads


@dataclass
class CatalogBundle:
    courses: list[Course] = field(default_factory=list)
    ingredients: list[Ingredient] = field(default_factory=list)
    recipes: list[Recipe] = field(default_factory=list)
    kits: list[Kit] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("courses", "ingredients", "recipes", "kits")}


class CatalogError(ValueError):
    """A reference in the catalog does not resolve."""


_JSON_FIELDS = ("diet_tags", "outline", "tags", "season", "allergens", "aliases")


def _row(model: Any, drop: Sequence[str] = ()) -> dict[str, Any]:
    data = model.model_dump(exclude=set(drop))
    return {k: dumps(v) if k in _JSON_FIELDS else v for k, v in data.items()}


class CatalogRepository:
    def __init__(self, store: Store):
        self.store = store

    # -- writes -------------------------------------------------------------
    def upsert(self, bundle: CatalogBundle) -> dict[str, int]:
        """Insert or update everything in one transaction; any bad reference rolls it all back."""
        db = self.store.db
        with self.store.transaction():
            for course in bundle.courses:
                db["courses"].upsert(_row(course), pk="slug", alter=False)
                course_id = self.id_of("courses", course.slug)
                db.execute("DELETE FROM lessons WHERE course_id = ?", [course_id])
                db["lessons"].insert_all(
                    {"course_id": course_id, "position": i + 1, "title": t} for i, t in enumerate(course.outline)
                )
            for ingredient in bundle.ingredients:
                db["ingredients"].upsert(_row(ingredient), pk="slug", alter=False)
            for recipe in bundle.recipes:
                row = _row(recipe, drop=("course", "ingredients"))
                row["course_id"] = self.id_of("courses", recipe.course) if recipe.course else None
                db["recipes"].upsert(row, pk="slug", alter=False)
                self._replace_lines("recipe_ingredients", "recipe_id", self.id_of("recipes", recipe.slug), recipe.ingredients)
            for kit in bundle.kits:
                row = _row(kit, drop=("course", "items"))
                row["course_id"] = self.id_of("courses", kit.course) if kit.course else None
                db["kits"].upsert(row, pk="slug", alter=False)
                self._replace_lines("kit_items", "kit_id", self.id_of("kits", kit.slug), kit.items)
        return bundle.counts()

    def _replace_lines(self, table: str, owner_column: str, owner_id: int, lines: Sequence[Any]) -> None:
        db = self.store.db
        db.execute(f"DELETE FROM {table} WHERE {owner_column} = ?", [owner_id])
        db[table].insert_all(
            {owner_column: owner_id, "ingredient_id": self.id_of("ingredients", line.ingredient), "quantity": line.quantity}
            for line in lines
        )

    def id_of(self, table: str, slug: str) -> int:
        if table not in {"courses", "ingredients", "recipes", "kits"}:
            raise ValueError(table)
        row = self.store.db.execute(f"SELECT id FROM {table} WHERE slug = ?", [slug]).fetchone()
        if row is None:
            raise CatalogError(f"unknown {table[:-1]} {slug!r}")
        return int(row[0])

    # -- reads --------------------------------------------------------------
    def courses(self) -> list[dict[str, Any]]:
        return [_decode(r) for r in self.store.query("SELECT * FROM courses WHERE active = 1 ORDER BY id")]

    def ingredients(self) -> list[dict[str, Any]]:
        return [_decode(r) for r in self.store.query("SELECT * FROM ingredients WHERE active = 1 ORDER BY id")]

    def kits(self) -> list[dict[str, Any]]:
        rows = self.store.query(
            """SELECT k.*, c.slug AS course FROM kits k LEFT JOIN courses c ON c.id = k.course_id
               WHERE k.active = 1 ORDER BY k.id"""
        )
        return [_decode(r) for r in rows]

    def recipes(self) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT r.*, c.slug AS course FROM recipes r LEFT JOIN courses c ON c.id = r.course_id ORDER BY r.id"
        )
        return [_decode(r) for r in rows]

    def lines(self, table: str) -> list[dict[str, Any]]:
        """(owner slug, ingredient slug, quantity) rows of recipe_ingredients or kit_items."""
        owner, column = {"recipe_ingredients": ("recipes", "recipe_id"), "kit_items": ("kits", "kit_id")}[table]
        return self.store.query(
            f"""SELECT o.slug AS owner, i.slug AS ingredient, l.quantity FROM {table} l
                JOIN {owner} o ON o.id = l.{column} JOIN ingredients i ON i.id = l.ingredient_id
                ORDER BY o.id, i.id"""
        )

    def counts(self) -> dict[str, int]:
        return {t: int(self.store.scalar(f"SELECT count(*) FROM {t}")) for t in ("courses", "ingredients", "recipes", "kits")}


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    return {k: loads(v, []) if k in _JSON_FIELDS and isinstance(v, str) else v for k, v in row.items()}
