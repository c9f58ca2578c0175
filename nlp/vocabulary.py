"""Food vocabulary for tokenizers: dish, ingredient, kit and course names from catalog JSON files.

nlp sits below recsys, so it never imports the catalog code; it reads the same JSON files the catalog
import reads (recipes / ingredients / courses / kits, as shipped in recsys/data/catalog) and returns
plain words. Callers with another catalog pass its folder or their own word list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from nlp.text import normalize

PACKAGED_CATALOG = Path(__file__).resolve().parent.parent / "recsys" / "data" / "catalog"
MAX_WORD = 12
MAX_TITLE_PIECE = 6  # longer pieces of course titles are slogans (厨房小白的第一门课), not names
# Course and kit titles are phrases (川菜入门：家常四大名菜, 早茶点心材料包：虾饺+烧卖): split them
# at punctuation and list separators, keep the pieces short enough to be names.
_PIECES = re.compile(r"[：:、，,+＋/（）()\s与&·]+")
_NAME = re.compile(
    rf"^[\u4e00-\u9fff]{{2,{MAX_WORD}}}$"
)  # Chinese names only: jieba needs no help with Latin


def _pieces(title: str) -> list[str]:
    return [p for p in _PIECES.split(normalize(title)) if _NAME.match(p) and len(p) <= MAX_TITLE_PIECE]


def words_from_catalog(records: dict[str, list[dict]]) -> set[str]:
    """Names in catalog records keyed by file stem: recipe/kit/course titles, ingredient names, aliases."""
    words: set[str] = set()
    for kind, items in records.items():
        for item in items:
            if not isinstance(item, dict):
                continue
            names = [item.get("title"), item.get("name"), *(item.get("aliases") or [])]
            for name in (n for n in names if isinstance(n, str)):
                if kind in ("courses", "kits"):
                    words.update(_pieces(name))  # phrases: keep their name-like pieces
                elif _NAME.match(normalize(name)):
                    words.add(normalize(name))
    return words


def catalog_food_words(folder: Path = PACKAGED_CATALOG) -> set[str]:
    """Food words of the catalog JSON files in `folder` (missing files are skipped)."""
    records: dict[str, list[dict]] = {}
    for kind in ("recipes", "ingredients", "courses", "kits"):
        path = Path(folder) / f"{kind}.json"
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            records[kind] = data if isinstance(data, list) else []
    return words_from_catalog(records)


# Words of this trade that jieba's dictionary lacks (without them 食材包 falls apart into 食/材/包).
_DOMAIN = """食材 食材包 料包 材料包 调料包 半成品 预制菜 生鲜 冷链 冰袋 保温袋 鲜课 直播课 视频课 录播课
回放 讲师 助教 配送 骑手 售后 退款 优惠券 满减 团购 拼单"""
DOMAIN_WORDS = frozenset(_DOMAIN.split())


@lru_cache(maxsize=1)
def catalog_vocabulary() -> frozenset[str]:
    """The packaged catalog's dish, ingredient, kit and course names (empty without the files)."""
    return frozenset(catalog_food_words(PACKAGED_CATALOG))


@lru_cache(maxsize=1)
def food_vocabulary() -> frozenset[str]:
    """The packaged catalog's food words plus `DOMAIN_WORDS` (the catalog part is empty when its
    files are not installed)."""
    return catalog_vocabulary() | DOMAIN_WORDS


def merge_vocabularies(*groups: Iterable[str]) -> frozenset[str]:
    return frozenset(normalize(w) for group in groups for w in group if isinstance(w, str) and w.strip())
