"""The docs' tables of catalogue data are what scripts/gen_docs_tables.py makes of the
catalogue, and each is in one page."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():
    path = ROOT / "scripts" / "gen_docs_tables.py"
    spec = importlib.util.spec_from_file_location("gaaf_test_gen_docs_tables", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load()


def test_generated_regions_are_current():
    diffs = gen.stale()
    assert not diffs, "stale docs tables: run python scripts/gen_docs_tables.py\n" + "".join(diffs)


def test_each_generated_table_is_in_one_page():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    texts = {page: page.read_text(encoding="utf-8").splitlines() for page in pages}
    for page, name in gen.REGIONS:
        first = gen.GENERATORS[name]()[0]  # a table's header, or the first line of text
        holders = [p.relative_to(ROOT).as_posix() for p, lines in texts.items() if first in lines]
        assert holders == [page], (name, holders)


def _copy_pages(tmp_path: Path) -> Path:
    for page in {page for page, _ in gen.REGIONS}:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / page, tmp_path / page)
    return tmp_path


def test_check_finds_an_edited_row(tmp_path):
    root = _copy_pages(tmp_path)
    page = root / "docs" / "semantics.md"
    page.write_text(page.read_text(encoding="utf-8").replace("gaussian(c=12)", "gaussian(c=11)"),
                    encoding="utf-8")
    diffs = gen.stale(root)
    assert len(diffs) == 1 and "gaussian(c=12)" in diffs[0] and "gaussian(c=11)" in diffs[0]


def test_a_missing_marker_is_an_error(tmp_path):
    root = _copy_pages(tmp_path)
    page = root / "docs" / "integrations.md"
    page.write_text(page.read_text(encoding="utf-8").replace(
        "<!-- END generated: convert-calls -->\n", ""), encoding="utf-8")
    with pytest.raises(gen.StaleError, match="convert-calls"):
        gen.stale(root)


def test_every_catalogue_entry_has_its_formula_text(monkeypatch):
    import dataclasses

    from gaaf_kernels.reference import catalogue

    without = tuple(dataclasses.replace(e, formula="") if e.name == "mish" else e
                    for e in catalogue.ACTIVATIONS)
    monkeypatch.setattr(catalogue, "ACTIVATIONS", without)
    with pytest.raises(gen.StaleError, match="without formula=.*mish"):
        gen.activations()
