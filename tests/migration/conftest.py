"""Fixtures of the import tests: generated exports of a small history, one folder per format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.migration.generate import History, make_history, write_firestore, write_mongodump, write_mongoexport

SMALL_N = 40  # records per kind in pytest; bench/imports.py runs ≥ 10,000 per format

WRITERS: dict[str, tuple[str, Callable[[History, Path], Path]]] = {
    "mongoexport-relaxed-lines": ("mongodb", lambda h, p: write_mongoexport(h, p)),
    "mongoexport-canonical-array": ("mongodb", lambda h, p: write_mongoexport(h, p, canonical=True, array=True)),
    "mongodump-bson": ("mongodb", write_mongodump),
    "firestore-array": ("firestore", lambda h, p: write_firestore(h, p)),
    "firestore-documents-list": ("firestore", lambda h, p: write_firestore(h, p, list_dump=True)),
}


@pytest.fixture(scope="session")
def history() -> History:
    return make_history(SMALL_N)


@pytest.fixture(params=sorted(WRITERS))
def export(request: pytest.FixtureRequest, history: History, tmp_path: Path) -> tuple[str, Path]:
    """(format, folder) of the small history written in one of the export formats."""
    fmt, write = WRITERS[request.param]
    return fmt, write(history, tmp_path / request.param)
