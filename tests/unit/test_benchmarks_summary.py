"""docs/BENCHMARKS.md's goals table is the one `bench/summary.py` builds from the JSON
records in docs/benchmarks/: no figure in the summary that no record holds."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _summary_module():
    spec = importlib.util.spec_from_file_location("bench_summary", ROOT / "bench" / "summary.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


summary = _summary_module()


def _record(folder: Path, name: str, date: str, figures: dict, measured: str) -> None:
    row = {"id": "sim 1", "goal": "g", "measured": measured, "check": ["x", ">=", 1.0]}
    record = {"bench": "sim", "date": date, "commit": "abc1234", "command": "python bench/x.py",
              "figures": figures, "rows": [row]}  # fmt: skip
    (folder / name).write_text(json.dumps(record))


def test_benchmarks_md_matches_the_records() -> None:
    text = (ROOT / "docs" / "BENCHMARKS.md").read_text(encoding="utf-8")
    expected = summary.replace_section(text, summary.render(summary.load_records()))
    assert text == expected, "docs/BENCHMARKS.md is stale: run python bench/summary.py"


def test_every_record_names_a_commit_and_a_command() -> None:
    records = summary.load_records()
    assert records
    for name, record in records:
        assert re.fullmatch(r"[0-9a-f]{7,40}(\+dirty)?", record["commit"]), name
        prefixes = ("python ", "bash ", "bench/", "cd ", "robo-agent ")
        assert record["command"].startswith(prefixes), name


def test_newest_record_wins_and_checks_decide_met(tmp_path: Path) -> None:
    _record(tmp_path, "sim-1.json", "2026-11-25 10:00 UTC", {"x": 0.5}, "**{x}**")
    _record(tmp_path, "sim-2.json", "2026-11-26 10:00 UTC", {"x": 2.5}, "**{x}**")
    table = summary.render(summary.load_records(tmp_path))
    assert "**2.5**" in table and "**0.5**" not in table and "| ✔ |" in table
    _record(tmp_path, "sim-3.json", "2026-11-27 10:00 UTC", {"x": 0.25}, "**{x}**")
    assert "| ✘ |" in summary.render(summary.load_records(tmp_path))


def test_a_row_naming_a_missing_figure_is_refused(tmp_path: Path) -> None:
    _record(tmp_path, "sim-1.json", "2026-11-25 10:00 UTC", {"x": 1.0}, "**{y:.2f}**")
    with pytest.raises(summary.RecordError, match="lacks"):
        summary.render(summary.load_records(tmp_path))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(summary.RecordError, match="not JSON"):
        summary.load_records(tmp_path)
