"""Pinyin order for lists of Chinese names (拼音排序), the same on PostgreSQL and SQLite.

Neither database orders Chinese by pronunciation on its own: SQLite compares code points,
PostgreSQL's collations depend on how the server was built. So every table whose lists are
ordered by a name stores a sort key next to it, `name_sort`, computed here in Python from the
name whenever the name is written:

- `pinyin_key("重庆银行")` is `"chong qing yin hang"`: phrase-aware (polyphones such as 重/长/
  行 come out as the word reads), tones stripped, one space between syllables (so 西安 `xi an`
  sorts before 先 `xian`), anything that is not Chinese lower-cased and kept as it is.
- `keep_name_sort(Model)` registers ORM hooks that refresh the key on every insert and update
  of a model instance; statements that write names without the ORM unit of work
  (`update(Model).values(...)`) pass their values through `with_name_sort`.
- `name_order(Model)` is the ORDER BY: the key, then the name, then the id, each compared byte
  by byte (`COLLATE "C"` on PostgreSQL, SQLite's default BINARY), so both databases return the
  same order whatever the server's locale.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Any

from sqlalchemy import String, event
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

# The longest toneless syllable ("zhuang") plus its separator: room for a name of N
# characters is `SORT_KEY_CHARS_PER_NAME_CHAR * N`.
SORT_KEY_CHARS_PER_NAME_CHAR = 7


@lru_cache(maxsize=4096)
def pinyin_key(name: str) -> str:
    """The sort key of `name`: toneless pinyin syllables and lower-cased other text, separated
    by single spaces."""
    # Imported here: the phrase dictionaries take a moment to load, and only writes need them.
    from pypinyin import Style, lazy_pinyin

    text = unicodedata.normalize("NFKC", name)
    tokens = lazy_pinyin(text, style=Style.NORMAL, errors="default", v_to_u=False)
    words: list[str] = []
    for token in tokens:
        words.extend(token.casefold().split())
    return " ".join(words)


def with_name_sort(values: dict[str, Any]) -> dict[str, Any]:
    """`values` for an UPDATE statement, with `name_sort` added when `name` is among them."""
    if values.get("name") is not None:
        values["name_sort"] = pinyin_key(values["name"])
    return values


def _refresh_key(_mapper: Any, _connection: Any, target: Any) -> None:
    if target.name is not None:
        target.name_sort = pinyin_key(target.name)


def keep_name_sort(model: type[Any]) -> None:
    """Compute `model.name_sort` from `model.name` on every ORM insert and update."""
    event.listen(model, "before_insert", _refresh_key)
    event.listen(model, "before_update", _refresh_key)


class bytewise(FunctionElement[str]):  # noqa: N801  (reads as a SQL function)
    """`expr` compared byte by byte: `expr COLLATE "C"` on PostgreSQL, `expr` on SQLite
    (whose default collation already is BINARY)."""

    type = String()
    name = "bytewise"
    inherit_cache = True


@compiles(bytewise)
def _bytewise_default(element: bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(bytewise, "postgresql")
def _bytewise_postgresql(element: bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    return f'{compiler.process(element.clauses, **kw)} COLLATE "C"'


def name_order(model: Any) -> tuple[Any, Any, Any]:
    """ORDER BY for a list of `model` rows by name: pinyin key, then name, then id."""
    return bytewise(model.name_sort), bytewise(model.name), model.id


def region_tree_key(path: str, keys: dict[int, tuple[str, str, int]]) -> tuple[Any, ...]:
    """Sort key of a region in tree order with siblings in pinyin order: the (key, name, id)
    of every region on its materialized path `/1/4/9/`, root first. `keys` maps region ids
    to their (name_sort, name, id)."""
    return tuple(keys[int(part)] for part in path.strip("/").split("/") if part)
