"""The Japanese notebooks: generated from the English ones and the catalog, current, the same code."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from pointapp import translate
from pointapp.runbook import NOTEBOOKS
from pointapp.translate import CATALOG, JAPANESE, TranslationError, english_hash, load_catalog

ENGLISH = translate.english_notebooks()
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`[^`\n]+`")
JAPANESE_TEXT = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _cells(path: Path) -> list[dict[str, object]]:
    cells: list[dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return cells


def _markdown(path: Path) -> dict[str, str]:
    return {str(c["id"]): "".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown"}  # type: ignore[arg-type]


def test_every_markdown_cell_has_a_current_translation() -> None:
    stale = translate.stale_cells()
    assert not stale, "\n".join(map(str, stale)) + "\n(python -m pointapp.translate --stale shows their English text)"


def test_the_catalog_translates_only_cells_that_exist() -> None:
    present = {path.name: set(_markdown(path)) for path in ENGLISH}
    unused = [f"{notebook} / {cell}" for notebook, cells in load_catalog().items() for cell in cells
              if cell not in present.get(notebook, set())]
    assert not unused, "catalog entries for cells no English notebook has (remove them): " + ", ".join(unused)


def test_a_changed_english_cell_asks_for_a_new_translation(tmp_path: Path) -> None:
    notebook = nbformat.read(str(NOTEBOOKS / "01_network.ipynb"), as_version=4)
    notebook.cells[0].source += "\n\nA sentence added later."
    nbformat.write(notebook, str(tmp_path / "01_network.ipynb"))
    (stale,) = translate.stale_cells(tmp_path)
    assert (stale.notebook, stale.cell_id, stale.reason) == ("01_network.ipynb", "cell-00", "changed")
    message = str(stale)
    assert "01_network.ipynb cell cell-00" in message and "re-translate" in message
    assert english_hash(notebook.cells[0].source) in message  # the hash to record with the new translation
    with pytest.raises(TranslationError, match=r"01_network.ipynb cell cell-00: the English text changed, re-translate"):
        translate.translate(tmp_path / "01_network.ipynb")


def test_a_new_english_cell_asks_for_a_translation(tmp_path: Path) -> None:
    notebook = nbformat.read(str(NOTEBOOKS / "05_registry.ipynb"), as_version=4)
    notebook.cells.append(nbformat.v4.new_markdown_cell("A new explanation.", id="added-later"))
    nbformat.write(notebook, str(tmp_path / "05_registry.ipynb"))
    (stale,) = translate.stale_cells(tmp_path)
    assert (stale.cell_id, stale.reason) == ("added-later", "missing")
    with pytest.raises(TranslationError, match=r"05_registry.ipynb cell added-later: no translation yet, translate it"):
        translate.translate(tmp_path / "05_registry.ipynb")


def test_japanese_notebooks_are_what_the_generator_writes() -> None:
    assert sorted(p.name for p in JAPANESE.glob("*.ipynb")) == [p.name for p in ENGLISH]
    assert translate.outdated() == [], "run `make notebooks-ja` (python -m pointapp.translate)"


def test_a_hand_edit_or_a_stray_file_is_found(tmp_path: Path) -> None:
    output = tmp_path / "ja"
    shutil.copytree(JAPANESE, output)
    edited = output / "07_cache.ipynb"
    edited.write_text(edited.read_text(encoding="utf-8").replace("Redis", "Valkey", 1), encoding="utf-8")
    (output / "13_extra.ipynb").write_text("{}", encoding="utf-8")
    assert translate.outdated(output=output) == ["07_cache.ipynb", "13_extra.ipynb"]
    written = translate.generate(output=output)
    assert [p.name for p in written] == [p.name for p in ENGLISH] and translate.outdated(output=output) == []


@pytest.mark.parametrize("english", ENGLISH, ids=lambda p: p.name)
def test_same_code_same_cells(english: Path) -> None:
    """The Japanese notebook differs only in the markdown: code cells, ids, tags and metadata are the English ones."""
    japanese = JAPANESE / english.name
    en, ja = json.loads(english.read_text(encoding="utf-8")), json.loads(japanese.read_text(encoding="utf-8"))
    assert ja["metadata"] == en["metadata"]
    assert [(c["id"], c["cell_type"]) for c in ja["cells"]] == [(c["id"], c["cell_type"]) for c in en["cells"]]
    for en_cell, ja_cell in zip(en["cells"], ja["cells"], strict=True):
        if en_cell["cell_type"] == "code":
            assert "".join(ja_cell["source"]) == "".join(en_cell["source"]), ja_cell["id"]
            assert {k: v for k, v in ja_cell.items() if k != "source"} == {k: v for k, v in en_cell.items() if k != "source"}
        else:
            assert ja_cell["metadata"] == en_cell["metadata"]


@pytest.mark.parametrize("english", ENGLISH, ids=lambda p: p.name)
def test_japanese_markdown_keeps_code_spans_and_links(english: Path) -> None:
    """Translated prose, the same code spans and link targets (a translation may add some, never drop one)."""
    japanese = _markdown(JAPANESE / english.name)
    for cell, text in _markdown(english).items():
        assert JAPANESE_TEXT.search(japanese[cell]), f"{english.name} {cell}: not translated"
        missing = set(CODE_SPAN.findall(text)) - set(CODE_SPAN.findall(japanese[cell]))
        assert not missing, f"{english.name} {cell}: the translation lost {sorted(missing)}"
        assert set(LINK.findall(text)) <= set(LINK.findall(japanese[cell])), f"{english.name} {cell}: a link was lost"
        assert japanese[cell].count("```") == text.count("```"), f"{english.name} {cell}: code blocks differ"


@pytest.mark.parametrize("english", ENGLISH, ids=lambda p: p.name)
def test_links_in_japanese_notebooks_stay_in_japanese(english: Path) -> None:
    """A link to a notebook opens the Japanese one (same folder); only the English original may be linked up."""
    for cell, text in _markdown(JAPANESE / english.name).items():
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:|#", target):
                continue
            path = target.split("#")[0]
            assert (JAPANESE / path).exists(), f"{english.name} {cell}: the link {target} leads nowhere"
            if path.endswith(".ipynb"):
                assert "/" not in path or path == f"../{english.name}", f"{english.name} {cell}: {target} leaves ja/"


def test_japanese_titles_number_the_steps_as_the_english_ones() -> None:
    for english in ENGLISH:
        en_title = "".join(_cells(english)[0]["source"]).splitlines()[0]  # type: ignore[arg-type]
        ja_title = "".join(_cells(JAPANESE / english.name)[0]["source"]).splitlines()[0]  # type: ignore[arg-type]
        number = re.match(r"# Step (\d+): ", en_title)
        assert bool(number) == ja_title.startswith("# ステップ "), english.name
        if number:
            assert ja_title.startswith(f"# ステップ {number.group(1)}: "), (english.name, ja_title)


def test_the_japanese_start_page_says_the_output_stays_english() -> None:
    start = "\n".join(_markdown(JAPANESE / "00_start_here.ipynb").values())
    assert "英語のまま" in start and "](../00_start_here.ipynb)" in start


@pytest.mark.parametrize("english", ENGLISH, ids=lambda p: p.name)
def test_cell_ids_are_stable_through_papermill_and_saving(english: Path) -> None:
    """The catalog's keys are cell ids: every cell has one, unique, and they survive papermill's parameter
    injection and a save through nbformat (what JupyterLab's server writes with)."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    notebook = nbformat.read(str(english), as_version=4)
    ids = [cell.get("id") for cell in notebook.cells]
    assert all(ids) and len(set(ids)) == len(ids)
    injected = parameterize_notebook(load_notebook_node(str(english)), {"env": "staging"})
    assert [c.id for c in injected.cells if "injected-parameters" not in c.metadata.get("tags", [])] == ids
    saved = nbformat.reads(nbformat.writes(nbformat.from_dict(json.loads(english.read_text(encoding="utf-8")))), as_version=4)
    assert [c.id for c in saved.cells] == ids
    japanese = (JAPANESE / english.name).read_text(encoding="utf-8")
    assert nbformat.writes(nbformat.reads(japanese, as_version=4)) + "\n" == japanese  # a save leaves it as generated


def test_catalog_is_yaml_with_hashes_and_text() -> None:
    catalog = load_catalog(CATALOG)
    assert set(catalog) == {p.name for p in ENGLISH}
    for notebook, cells in catalog.items():
        for cell, entry in cells.items():
            assert set(entry) == {"en", "ja"} and re.fullmatch(r"[0-9a-f]{12}", entry["en"]), (notebook, cell)


def test_jupyterlab_saves_a_japanese_notebook_as_generated(tmp_path: Path) -> None:
    """JupyterLab's server (its contents manager) writes an opened notebook back byte for byte: ids kept."""
    filemanager = pytest.importorskip("jupyter_server.services.contents.filemanager")  # the `lab` extra
    for english in ENGLISH:
        shutil.copy(JAPANESE / english.name, tmp_path / english.name)
    manager = filemanager.FileContentsManager(root_dir=str(tmp_path))
    for english in ENGLISH:
        model = manager.get(english.name, content=True)
        manager.save({"type": "notebook", "format": "json", "content": model["content"]}, english.name)
        assert (tmp_path / english.name).read_bytes() == (JAPANESE / english.name).read_bytes(), english.name


def test_the_generator_command_says_when_all_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert translate.main(["--check"]) == 0
    assert translate.main(["--stale"]) == 0
    assert capsys.readouterr().out.strip() == "0 cell(s) to translate in notebooks/i18n/ja.yaml"


@pytest.mark.parametrize("english", ENGLISH, ids=lambda p: p.name)
def test_emphasis_in_japanese_renders(english: Path) -> None:
    """Markdown's `*` emphasis next to Japanese punctuation can fail to open or close (CommonMark's flanking
    rules) and show as literal asterisks: rendered, no asterisk is left outside code."""
    mistune = pytest.importorskip("mistune")  # nbconvert's markdown renderer
    render = mistune.create_markdown(plugins=["table"])
    for cell, text in _markdown(JAPANESE / english.name).items():
        shown = re.sub(r"<code>.*?</code>", "", render(text), flags=re.S)
        assert "*" not in shown, f"{english.name} {cell}: {[line for line in shown.splitlines() if '*' in line]}"
