"""`sidecar import` and `sidecar validate` as an operator runs them: tables, exit codes, the JSON report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.service.cli import main as cli
from tests.migration.generate import PLANTED, History, write_firestore


@pytest.fixture
def env(clean_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", clean_db)
    return clean_db


def test_import_then_validate_reports_defects_and_exits_non_zero(
    env: str, history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_firestore(history, tmp_path / "firestore", list_dump=True)

    assert cli(["import", "firestore", str(folder)]) == 0
    first = capsys.readouterr().out
    assert cli(["import", "firestore", str(folder), "--restart"]) == 0
    second = capsys.readouterr().out
    assert cli(["validate", "--json", str(tmp_path / "report.json")]) == 1
    printed = capsys.readouterr().out

    assert "5 new error(s) in import_errors" in first
    assert "nothing changed: every record was already imported" in second
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ok"] is False
    assert {(d["check"], d["rule"], d["kind"], d["id"]) for d in report["defects"]} == PLANTED
    assert {c["kind"]: (c["in_target"], c["ok"]) for c in report["counts"]} == {
        kind: (n, True) for kind, n in history.expected.items()
    }
    assert all(rid in printed for *_, rid in PLANTED)
    assert "6 defect(s)" in printed


def test_validate_of_a_clean_import_exits_zero(env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listing = {
        "name": "projects/p/databases/(default)/documents/listings/l1",
        "fields": {"title": {"stringValue": "Flat"}},
    }
    (tmp_path / "listings.json").write_text(json.dumps([listing]), encoding="utf-8")

    assert cli(["import", "firestore", str(tmp_path / "listings.json")]) == 0
    assert cli(["validate"]) == 0
    assert "valid: no defects" in capsys.readouterr().out


def test_a_bad_mapping_file_stops_with_its_reason(env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "map.toml").write_text('[collections]\nx = "nope"\n', encoding="utf-8")

    assert cli(["import", "mongodb", str(tmp_path), "--mapping", str(tmp_path / "map.toml")]) == 2
    assert "collections.x = 'nope'" in capsys.readouterr().err


def test_import_with_reindex_indexes_the_listings_knowledge(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QDRANT_PATH", str(tmp_path / "qdrant"))
    listing = {
        "name": "projects/p/databases/(default)/documents/listings/l1",
        "fields": {"title": {"stringValue": "Flat"}, "defaultCheckInTime": {"stringValue": "15:00"}},
    }
    (tmp_path / "listings.json").write_text(json.dumps([listing]), encoding="utf-8")

    assert cli(["import", "firestore", str(tmp_path / "listings.json"), "--reindex"]) == 0

    out = capsys.readouterr().out
    assert "knowledge: 1 listing(s) re-indexed (2 chunks embedded, 0 deleted), 0 removed" in out
