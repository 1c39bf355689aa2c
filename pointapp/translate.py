"""The Japanese notebooks, generated from the English ones: one source, two languages.

The English notebooks in ``notebooks/`` are the source. The catalog ``notebooks/i18n/ja.yaml`` holds,
per notebook and per markdown cell (keyed by the cell's nbformat id), the hash of the English text it
translates and the Japanese text::

    01_network.ipynb:
      cell-00:
        en: 1f0c2a9b3d4e   # english_hash() of the English cell it translates
        ja: |-
          # ステップ 1: ネットワーク

The generator writes ``notebooks/ja/<same name>.ipynb``: the English notebook with every markdown cell
replaced by its translation. Code cells (source, id, tags, the parameters cell) are copied unchanged, so
the two languages run the same code. A changed English cell no longer matches its hash and is reported
as stale until it is re-translated.

``python -m pointapp.translate`` writes the Japanese notebooks; ``--check`` only says whether they are
current (exit 1 if not); ``--stale`` prints each English cell that needs a (new) translation with its hash.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pointapp.errors import PointappError
from pointapp.runbook import NOTEBOOKS

CATALOG = NOTEBOOKS / "i18n" / "ja.yaml"
JAPANESE = NOTEBOOKS / "ja"


class TranslationError(PointappError):
    """The catalog does not translate the English notebooks as they are now."""


@dataclass(frozen=True)
class Stale:
    """One English markdown cell without a current translation."""

    notebook: str
    cell_id: str
    english: str
    reason: str  # "missing": never translated; "changed": the English text changed since its translation

    def __str__(self) -> str:
        what = "the English text changed, re-translate it" if self.reason == "changed" else "no translation yet, translate it"
        return f"{self.notebook} cell {self.cell_id}: {what} (catalog {self.notebook} / {self.cell_id}, en: {english_hash(self.english)})"


def english_hash(text: str) -> str:
    """The short hash of an English cell's text that the catalog records next to its translation."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


Catalog = dict[str, dict[str, dict[str, str]]]


def load_catalog(path: Path = CATALOG) -> Catalog:
    """The catalog: notebook file name -> cell id -> {"en": hash of the English text, "ja": translation}."""
    if not path.exists():
        return {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader where PyYAML has it: 10 times faster
    data: Catalog | None = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    return data or {}


def english_notebooks(notebooks: Path = NOTEBOOKS) -> list[Path]:
    """The source notebooks, in file-name order."""
    return sorted(notebooks.glob("*.ipynb"))


def _read(path: Path) -> dict[str, Any]:
    notebook: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return notebook


def _markdown(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "markdown"]


def _text(cell: dict[str, Any]) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _stale_in(name: str, notebook: dict[str, Any], catalog: Catalog) -> list[Stale]:
    translated = catalog.get(name) or {}
    stale = []
    for cell in _markdown(notebook):
        entry = translated.get(cell.get("id", ""))
        if entry is None:
            stale.append(Stale(name, cell.get("id", "(no id)"), _text(cell), "missing"))
        elif entry.get("en") != english_hash(_text(cell)):
            stale.append(Stale(name, cell["id"], _text(cell), "changed"))
    return stale


def stale_cells(notebooks: Path = NOTEBOOKS, catalog: Path = CATALOG) -> list[Stale]:
    """Every English markdown cell the catalog does not translate as it is now, in notebook order."""
    entries = load_catalog(catalog)
    return [stale for path in english_notebooks(notebooks) for stale in _stale_in(path.name, _read(path), entries)]


def _translate(path: Path, catalog: Catalog) -> str:
    english = _read(path)
    stale = _stale_in(path.name, english, catalog)
    if stale:
        raise TranslationError(f"{stale[0]}" + (f" (and {len(stale) - 1} more)" if len(stale) > 1 else ""))
    japanese = copy.deepcopy(english)
    for cell in _markdown(japanese):
        cell["source"] = catalog[path.name][cell["id"]]["ja"].splitlines(keepends=True)
    # nbformat's own layout (what JupyterLab saves): one-space indent, sorted keys, UTF-8 as is.
    return json.dumps(japanese, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def translate(path: Path, catalog: Path = CATALOG) -> str:
    """The Japanese notebook of the English notebook ``path``, as the text of its file."""
    return _translate(path, load_catalog(catalog))


def _expected(notebooks: Path, catalog: Path) -> dict[str, str]:
    entries = load_catalog(catalog)
    return {path.name: _translate(path, entries) for path in english_notebooks(notebooks)}


def generate(notebooks: Path = NOTEBOOKS, catalog: Path = CATALOG, output: Path = JAPANESE) -> list[Path]:
    """Write the Japanese notebook of every English notebook into ``output``; return the files written.

    A Japanese notebook whose English source is gone is removed, so the two folders hold the same names.
    """
    texts = _expected(notebooks, catalog)
    output.mkdir(parents=True, exist_ok=True)
    for old in output.glob("*.ipynb"):
        if old.name not in texts:
            old.unlink()
    written = []
    for name, text in texts.items():
        target = output / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def outdated(notebooks: Path = NOTEBOOKS, catalog: Path = CATALOG, output: Path = JAPANESE) -> list[str]:
    """The Japanese notebooks that differ from what :func:`generate` would write (or are missing, or extra)."""
    expected = _expected(notebooks, catalog)
    present = {path.name for path in output.glob("*.ipynb")}
    wrong = [name for name, text in expected.items()
             if name not in present or (output / name).read_text(encoding="utf-8") != text]
    return sorted(wrong + sorted(present - set(expected)))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pointapp.translate [--check | --stale]``; exit 0 when current, 1 when not."""
    parser = argparse.ArgumentParser(prog="python -m pointapp.translate",
                                     description="write notebooks/ja/ from the English notebooks and the catalog")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="change nothing; exit 1 if notebooks/ja/ is not current")
    mode.add_argument("--stale", action="store_true", help="print the English cells that need a (new) translation")
    args = parser.parse_args(argv)
    stale = stale_cells()
    if args.stale:
        for cell in stale:
            print(f"{cell}\n{cell.english}\n")
        print(f"{len(stale)} cell(s) to translate in {CATALOG.relative_to(NOTEBOOKS.parent)}")
        return 1 if stale else 0
    try:
        if args.check:
            wrong = outdated()
            if wrong:
                print("not what the generator writes: " + ", ".join(wrong) + " (run `make notebooks-ja`)")
            return 1 if wrong else 0
        written = generate()
    except TranslationError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{len(written)} Japanese notebooks in {JAPANESE.relative_to(NOTEBOOKS.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
