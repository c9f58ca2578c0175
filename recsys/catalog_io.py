"""Catalog import/export in JSON and CSV, validated whole before anything is written.

A bad row is reported with its file, line and field; if any row is bad nothing is
imported (the write itself is one transaction, so a crash cannot half-import either).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from core.domain import Course, Ingredient, Kit, Line, Recipe
from core.repos.catalog import CatalogBundle, CatalogRepository
from core.validation import CsvProblem, InputRejected, csv_dicts, decode_bytes, loads_json, poison_reason

KINDS: dict[str, type[BaseModel]] = {"courses": Course, "ingredients": Ingredient, "recipes": Recipe, "kits": Kit}
PREFIX_TO_KIND = {"course": "courses", "ingredient": "ingredients", "recipe": "recipes", "kit": "kits"}
_LIST_FIELDS = {"diet_tags", "outline", "tags", "season", "allergens", "aliases"}
_LINE_FIELDS = {"ingredients", "items"}
_FIELD_LABEL_ZH = {"slug": "编号", "title": "标题", "name": "名称", "price_cents": "价格(分)", "allergens": "过敏原"}


@dataclass(frozen=True)
class RowProblem:
    source: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: field '{self.field}': {self.message}"


class CatalogImportError(ValueError):
    def __init__(self, problems: list[RowProblem]):
        self.problems = problems
        head = "; ".join(str(p) for p in problems[:5])
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{len(problems)} bad row(s), nothing imported: {head}{more}")


@dataclass
class RawRow:
    kind: str
    data: dict[str, Any]
    source: str
    line: int


# -- reading ----------------------------------------------------------------
def _read_text(path: Path) -> str:
    """The file as text under the shared input policy (core.validation): binary or an unknown encoding
    is one clear problem, not a UnicodeDecodeError."""
    try:
        return decode_bytes(path.read_bytes())[0]
    except InputRejected as exc:
        raise CatalogImportError([RowProblem(path.name, 1, "-", str(exc))]) from None


def _json_rows(path: Path) -> Iterator[RawRow]:
    text = _read_text(path)
    try:
        payload = loads_json(text)
    except InputRejected as exc:
        raise CatalogImportError([RowProblem(path.name, 1, "-", f"invalid JSON: {exc}")]) from None
    lines = text.splitlines()

    def line_of(slug: Any, fallback: int) -> int:
        needle = json.dumps(slug, ensure_ascii=False)
        for number, content in enumerate(lines, start=1):
            if needle in content:
                return number
        return fallback

    if isinstance(payload, list):  # a single-kind file, kind from the slug prefixes
        groups = {"": payload}
    elif isinstance(payload, dict):
        unknown = set(payload) - set(KINDS)
        if unknown:
            raise CatalogImportError([RowProblem(path.name, 1, sorted(unknown)[0], "unknown section")])
        groups = payload
    else:
        raise CatalogImportError([RowProblem(path.name, 1, "-", "expected an object or a list")])
    for section, items in groups.items():
        if not isinstance(items, list):
            raise CatalogImportError([RowProblem(path.name, 1, section, "expected a list")])
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                yield RawRow(section or "?", {"_error": "expected an object"}, path.name, index + 1)
                continue
            kind = section or PREFIX_TO_KIND.get(str(item.get("slug", "")).split("/", 1)[0], "?")
            yield RawRow(kind, item, path.name, line_of(item.get("slug"), index + 1))


def _csv_cell(field: str, value: str) -> Any:
    value = value.strip()
    if field in _LIST_FIELDS:
        if not value:
            return []
        if value.startswith("["):
            return loads_json(value)
        parts = [p.strip() for p in value.split("|") if p.strip()]
        return [int(p) for p in parts] if field == "season" else parts
    if field in _LINE_FIELDS:
        lines = []
        for part in filter(None, (p.strip() for p in value.split("|"))):
            slug, _, quantity = part.partition(":")
            lines.append({"ingredient": slug.strip(), "quantity": quantity.strip()})
        return lines
    return value if value != "" else None


def _csv_rows(path: Path) -> Iterator[RawRow]:
    header, records = csv_dicts(_read_text(path))
    if "slug" not in header:
        raise CatalogImportError([RowProblem(path.name, 1, "slug", "CSV header must include a 'slug' column")])
    for line, record in records:
        if isinstance(record, CsvProblem):
            yield RawRow("?", {"_error": record.reason}, path.name, line)
            continue
        data: dict[str, Any] = {}
        try:
            for field, value in record.items():
                if value is None:
                    continue
                cell = _csv_cell(field, value)
                if cell is not None:
                    data[field] = cell
        except ValueError as exc:  # includes InputRejected and json errors
            data = {"_error": str(exc)}
        kind = PREFIX_TO_KIND.get(str(record.get("slug") or "").split("/", 1)[0], "?")
        yield RawRow(kind, data, path.name, line)


def read_rows(path: Path) -> list[RawRow]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in {".json", ".csv"})
        if not files:
            raise CatalogImportError([RowProblem(path.name, 0, "-", "no .json or .csv files in folder")])
        return [row for file in files for row in read_rows(file)]
    if not path.is_file():
        raise CatalogImportError([RowProblem(str(path), 0, "-", "file not found")])
    suffix = path.suffix.lower()
    if suffix in (".json", ".csv"):
        rows = list(_json_rows(path) if suffix == ".json" else _csv_rows(path))
        for row in rows:  # text SQLite cannot store (lone surrogates) or numbers it cannot bind
            reason = poison_reason(row.data)
            if reason:
                row.data = {"_error": reason}
        return rows
    raise CatalogImportError([RowProblem(path.name, 0, "-", "use a .json or .csv file (or a folder of them)")])


# -- validation -------------------------------------------------------------
def validate(rows: Iterable[RawRow], known_slugs: set[str] = frozenset()) -> CatalogBundle:  # type: ignore[assignment]
    bundle = CatalogBundle()
    problems: list[RowProblem] = []
    seen: dict[str, RawRow] = {}
    for row in rows:
        if "_error" in row.data:
            problems.append(RowProblem(row.source, row.line, "-", str(row.data["_error"])))
            continue
        model = KINDS.get(row.kind)
        if model is None:
            problems.append(RowProblem(row.source, row.line, "slug", "slug must start with course/, ingredient/, recipe/ or kit/"))
            continue
        try:
            record = model.model_validate(row.data)
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"]) or "-"
                problems.append(RowProblem(row.source, row.line, field, error["msg"]))
            continue
        slug = record.slug  # type: ignore[attr-defined]
        if slug in seen:
            first = seen[slug]
            problems.append(RowProblem(row.source, row.line, "slug", f"duplicate of {first.source}:{first.line}"))
            continue
        seen[slug] = row
        getattr(bundle, row.kind).append(record)
    available = set(known_slugs) | set(seen)
    for kind, field in (("recipes", "ingredients"), ("kits", "items")):
        for record in getattr(bundle, kind):
            row = seen[record.slug]
            if record.course and record.course not in available:
                problems.append(RowProblem(row.source, row.line, "course", f"unknown course {record.course!r}"))
            for index, line in enumerate(getattr(record, field)):
                if line.ingredient not in available:
                    problems.append(
                        RowProblem(row.source, row.line, f"{field}.{index}", f"unknown ingredient {line.ingredient!r}")
                    )
    if problems:
        raise CatalogImportError(problems)
    return bundle


def import_catalog(repo: CatalogRepository, path: Path) -> dict[str, int]:
    known = {r["slug"] for t in ("courses", "ingredients") for r in repo.store.query(f"SELECT slug FROM {t}")}
    bundle = validate(read_rows(path), known)
    return repo.upsert(bundle)


def shipped_catalog_dir() -> Path:
    return Path(str(resources.files("recsys") / "data" / "catalog"))


def load_shipped(repo: CatalogRepository) -> dict[str, int]:
    return import_catalog(repo, shipped_catalog_dir())


# -- export -----------------------------------------------------------------
def export_bundle(repo: CatalogRepository) -> dict[str, list[dict[str, Any]]]:
    lines: dict[str, list[dict[str, str]]] = {}
    for table in ("recipe_ingredients", "kit_items"):
        for row in repo.lines(table):
            lines.setdefault(row["owner"], []).append({"ingredient": row["ingredient"], "quantity": row["quantity"]})
    out: dict[str, list[dict[str, Any]]] = {}
    for kind, model in KINDS.items():
        rows = getattr(repo, kind)()
        fields = list(model.model_fields)
        records = []
        for row in rows:
            record = {f: row.get(f) for f in fields if f not in _LINE_FIELDS}
            if kind == "courses":
                record["outline"] = row["outline"]
            for f in _LINE_FIELDS & set(fields):
                record[f] = lines.get(row["slug"], [])
            records.append({k: v for k, v in record.items() if v is not None})
        out[kind] = records
    return out


def export_json(repo: CatalogRepository, path: Path) -> dict[str, int]:
    bundle = export_bundle(repo)
    path.write_text(json.dumps(bundle, ensure_ascii=False, indent=1), encoding="utf-8")
    return {k: len(v) for k, v in bundle.items()}


def export_csv(repo: CatalogRepository, folder: Path) -> dict[str, int]:
    folder.mkdir(parents=True, exist_ok=True)
    bundle = export_bundle(repo)
    for kind, records in bundle.items():
        fields = list(KINDS[kind].model_fields)
        with (folder / f"{kind}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            for record in records:
                writer.writerow({f: _csv_out(f, record.get(f)) for f in fields})
    return {k: len(v) for k, v in bundle.items()}


def _csv_out(field: str, value: Any) -> Any:
    if value is None:
        return ""
    if field in _LINE_FIELDS:
        return "|".join(f"{Line.model_validate(v).ingredient}:{v.get('quantity', '')}" for v in value)
    if field in _LIST_FIELDS:
        return "|".join(str(v) for v in value)
    return value
