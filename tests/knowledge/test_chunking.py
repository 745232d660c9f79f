"""Chunking and document reading: headings, size bounds, overlap, metadata from front matter and folders."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bot.knowledge.chunking import chunk_document, point_id, split_markdown, split_text
from bot.knowledge.documents import DocumentError, discover, folder_metadata, load_document
from bot.knowledge.models import Document, Section

from .conftest import EXAMPLES

GUIDE = """\
Intro line before any heading.

# Arrival

## Check-in

From 15:00.

## Key box [access]

Left of the door.

### Spare key

In the drawer.

# Departure

```
# not a heading inside a code fence
```

Leave by 11:00.
"""


def test_markdown_sections_follow_the_heading_path() -> None:
    sections = split_markdown(GUIDE, title="Guide")

    assert [(s.heading, s.text, s.is_access) for s in sections] == [
        ("Guide", "Intro line before any heading.", False),
        ("Arrival > Check-in", "From 15:00.", False),
        ("Arrival > Key box", "Left of the door.", True),
        ("Arrival > Key box > Spare key", "In the drawer.", True),
        ("Departure", "```\n# not a heading inside a code fence\n```\n\nLeave by 11:00.", False),
    ]


def test_private_heading_marker_and_front_matter() -> None:
    body = "Intro.\n\n## Address [private]\n\nBehind the blue door.\n\n### Floor\n\nThird.\n\n## Bins\n\nYard."
    sections = split_markdown(body, title="Guide")

    assert [(s.heading, s.is_private, s.is_access) for s in sections] == [
        ("Guide", False, False),
        ("Address", True, False),
        ("Address > Floor", True, False),
        ("Bins", False, False),
    ]
    assert all(s.is_private for s in split_markdown("## Bins\n\nYard.", private=True))


def test_gate_of_a_chunk_access_outranks_private(tmp_path: Path) -> None:
    def gate(section: Section) -> str:
        document = Document(source="p/en/x.md", property_code="p", language="en", sections=(section,))
        return chunk_document(document, collection="kb", model_id="m")[0].gate

    assert gate(Section("Address", "Rua dos Remédios 42, 1100-448 Lisboa")) == "private"  # detected
    assert gate(Section("Where", "Behind the blue door.", is_private=True)) == "private"  # marked
    assert gate(Section("Arrival", "Rua dos Remédios 42. Key box code: 4 8 2 1.")) == "access"
    assert gate(Section("Arrival", "Rua dos Remédios 42.", is_access=True, is_private=True)) == "access"
    assert gate(Section("Bins", "At the corner of Rua dos Remédios.")) == "open"
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.md").write_text("---\nprivate: true\n---\nBehind the blue door.\n", encoding="utf-8")
    (tmp_path / "p" / "b.yaml").write_text(
        "sections:\n  - {heading: Where, text: Behind the blue door., private: true}\n", encoding="utf-8"
    )
    for name in ("a.md", "b.yaml"):
        document = load_document(tmp_path / "p" / name, tmp_path)
        assert [c.gate for c in chunk_document(document, collection="kb", model_id="m")] == ["private"]
    (tmp_path / "p" / "c.md").write_text("---\nprivate: yes please\n---\nText.\n", encoding="utf-8")
    with pytest.raises(DocumentError, match="'private' must be true or false"):
        load_document(tmp_path / "p" / "c.md", tmp_path)


def test_front_matter_access_marks_every_section() -> None:
    sections = split_markdown("## Parking\n\nStreet.\n\n## Bins\n\nYard.", access=True)

    assert [s.is_access for s in sections] == [True, True]


def test_short_text_is_one_piece() -> None:
    assert split_text("  Check-out is at 11:00.  ") == ["Check-out is at 11:00."]
    assert split_text("   ") == []


def test_long_text_is_cut_within_bounds_with_overlap() -> None:
    sentences = [f"Sentence number {i} says something about the flat." for i in range(60)]
    text = " ".join(sentences)

    pieces = split_text(text, max_chars=300, overlap=80)

    assert len(pieces) > 5
    assert all(len(p) <= 300 for p in pieces)
    for before, after in itertools.pairwise(pieces):
        shared = max(k for k in range(len(after) + 1) if before.endswith(after[:k]))
        assert 20 < shared <= 80, "each piece starts with the tail of the one before"
        assert after[:shared].startswith("Sentence number"), "the overlap is made of whole sentences"
    assert all("\n" not in p for p in pieces), "sentences of one paragraph stay on one line"
    # Nothing is lost: every sentence appears in some piece.
    assert all(any(s in p for p in pieces) for s in sentences)


def test_paragraphs_are_kept_whole_when_they_fit() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 40 for i in range(6)]
    pieces = split_text("\n\n".join(paragraphs), max_chars=500, overlap=100)

    assert all(len(p) <= 500 for p in pieces)
    for paragraph in paragraphs:
        assert any(paragraph.strip() in p for p in pieces)


def test_a_word_longer_than_the_bound_is_cut_hard() -> None:
    pieces = split_text("x" * 950, max_chars=400, overlap=50)

    assert all(len(p) <= 400 for p in pieces)
    assert "".join(p.replace("\n\n", "") for p in pieces).count("x") >= 950


def test_overlap_must_leave_room_for_new_text() -> None:
    with pytest.raises(ValueError, match="overlap"):
        split_text("a " * 600, max_chars=200, overlap=150)


def test_access_is_decided_per_section_for_every_piece() -> None:
    body = "Key box code: 4821. " + "Turn the wheels and pull the lever, then close the box. " * 30
    document = Document(
        source="p/en/x.md",
        property_code="p",
        language="en",
        sections=(Section("Key box", body), Section("Parking", "Street parking only.")),
    )

    chunks = chunk_document(document, collection="kb", model_id="m", max_chars=300, overlap=50)

    access = [c for c in chunks if c.heading == "Key box"]
    assert len(access) > 1 and all(c.is_access for c in access)
    assert [c.is_access for c in chunks if c.heading == "Parking"] == [False]
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))


def test_point_ids_are_deterministic_and_change_with_content() -> None:
    document = Document(
        source="p/en/x.md", property_code="p", language="en", sections=(Section("Check-out", "By 11:00."),)
    )
    first = chunk_document(document, collection="kb", model_id="m")
    again = chunk_document(document, collection="kb", model_id="m")
    edited = chunk_document(
        Document(source="p/en/x.md", property_code="p", language="en", sections=(Section("Check-out", "By 10:00."),)),
        collection="kb",
        model_id="m",
    )
    other_model = chunk_document(document, collection="kb", model_id="other")
    private = chunk_document(
        Document(
            source="p/en/x.md",
            property_code="p",
            language="en",
            sections=(Section("Check-out", "By 11:00.", is_private=True),),
        ),
        collection="kb",
        model_id="m",
    )

    assert first == again
    assert first[0].point_id == point_id("kb", "p/en/x.md", 0, first[0].content_hash)
    assert edited[0].point_id != first[0].point_id
    assert other_model[0].point_id != first[0].point_id
    assert private[0].point_id != first[0].point_id  # a new gate re-embeds the chunk and updates its payload
    assert first[0].embed_text == "Check-out\nBy 11:00."


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("lis-alfama/en/guide.md", ("lis-alfama", "en")),
        ("lis-alfama/guide.md", ("lis-alfama", None)),
        ("lis-alfama/notes/guide.md", ("lis-alfama", None)),
        ("shared/pt/faq.md", (None, "pt")),
        ("shared/faq.md", (None, None)),
        ("de/faq.md", (None, "de")),
        ("pt-BR/faq.md", (None, "pt-br")),
        ("faq.md", (None, None)),
    ],
)
def test_folders_give_property_and_language(relative: str, expected: tuple[str | None, str | None]) -> None:
    assert folder_metadata(Path(relative)) == expected


def test_front_matter_overrides_folders(tmp_path: Path) -> None:
    path = tmp_path / "lis-alfama" / "en" / "note.md"
    path.parent.mkdir(parents=True)
    path.write_text("---\nproperty: null\nlanguage: PT\ntitle: Nota\naccess: true\n---\nTexto.\n")

    document = load_document(path, tmp_path)

    assert document == Document(
        source="lis-alfama/en/note.md",
        property_code=None,
        language="pt",
        sections=(Section("Nota", "Texto.", True),),
        title="Nota",
    )


def test_front_matter_after_a_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "x.md").write_bytes("\ufeff---\nproperty: p9\n---\r\n## Bins\r\n\r\nYard.\r\n".encode())

    document = load_document(tmp_path / "x.md", tmp_path)

    assert (document.property_code, document.sections) == ("p9", (Section("Bins", "Yard."),))


def test_front_matter_property_on_a_loose_file(tmp_path: Path) -> None:
    (tmp_path / "house.md").write_text("---\nproperty: 1042\n---\n## Pool\n\nOpen 9-19.\n")

    document = load_document(tmp_path / "house.md", tmp_path, default_language="es")

    assert (document.property_code, document.language) == ("1042", "es")
    assert document.sections == (Section("Pool", "Open 9-19."),)


def test_yaml_faq_and_sections(tmp_path: Path) -> None:
    (tmp_path / "p1").mkdir()
    (tmp_path / "p1" / "faq.yaml").write_text(
        "title: FAQ\nlanguage: en\nfaq:\n  - q: Is there a lift?\n    a: No, three floors of stairs.\n"
        "sections:\n  - heading: Safe\n    text: Behind the mirror.\n    access: true\n"
    )

    document = load_document(tmp_path / "p1" / "faq.yaml", tmp_path)

    assert document.property_code == "p1"
    assert document.sections == (
        Section("FAQ > Is there a lift?", "No, three floors of stairs.", False),
        Section("FAQ > Safe", "Behind the mirror.", True),
    )


def test_text_file_is_one_section_under_its_title(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "sos.txt").write_text("---\ntitle: SOS\n---\nCall 112.\n\n# not a heading\n")

    document = load_document(tmp_path / "shared" / "sos.txt", tmp_path)

    assert document.sections == (Section("SOS", "Call 112.\n\n# not a heading"),)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.yaml", "faq: [unclosed", "invalid YAML"),
        ("list.yaml", "- a\n- b\n", "must be a mapping"),
        ("empty.yaml", "title: x\n", "needs a 'faq' or a 'sections' list"),
        ("noanswer.yaml", "faq:\n  - q: Why?\n", "needs 'q' and 'a'"),
        ("access.md", "---\naccess: maybe\n---\ntext\n", "'access' must be true or false"),
    ],
)
def test_bad_files_raise_naming_the_file(tmp_path: Path, name: str, content: str, message: str) -> None:
    (tmp_path / name).write_text(content)

    with pytest.raises(DocumentError, match=message) as info:
        load_document(tmp_path / name, tmp_path)
    assert str(info.value).startswith(f"{name}: ")


def test_discover_skips_hidden_underscore_readme_and_other_files(tmp_path: Path) -> None:
    for relative in [
        "a/en/guide.md",
        "a/en/faq.yaml",
        "shared/x.txt",
        "README.md",
        "a/README.md",
        "_drafts/x.md",
        ".git/x.md",
        "a/en/photo.jpg",
        "a/en/_old.md",
    ]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x")

    found = [p.relative_to(tmp_path).as_posix() for p in discover(tmp_path)]

    assert found == ["a/en/faq.yaml", "a/en/guide.md", "shared/x.txt"]


def test_discover_rejects_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="not a folder"):
        discover(tmp_path / "nope")


def test_example_knowledge_base_reads_cleanly() -> None:
    documents = [load_document(p, EXAMPLES) for p in discover(EXAMPLES)]
    by_source = {d.source: d for d in documents}

    assert {d.property_code for d in documents} == {"lis-alfama", "por-ribeira", "ber-mitte", None}
    assert {d.language for d in documents} == {"en", "pt", "de"}
    chunks = [c for d in documents for c in chunk_document(d, collection="kb", model_id="m")]
    access = sorted((c.source, c.heading) for c in chunks if c.is_access)
    assert access == [
        ("ber-mitte/de/hausordnung.md", "Ankunft und Abreise > Schlüsseltresor und Alarmanlage"),
        ("ber-mitte/de/hausordnung.md", "In der Wohnung > WLAN"),
        ("ber-mitte/en/guide.md", "Key safe and alarm"),
        ("ber-mitte/en/guide.md", "Wi-Fi"),
        ("lis-alfama/en/guide.md", "Arrival and departure > Key box"),
        ("lis-alfama/en/guide.md", "In the apartment > Wi-Fi"),
        ("lis-alfama/pt/guia.md", "Chegada e saída > Cofre das chaves"),
        ("lis-alfama/pt/guia.md", "No apartamento > Wi-Fi"),
        ("por-ribeira/en/guide.md", "Door code and smart lock"),
        ("por-ribeira/en/guide.md", "Wi-Fi"),
    ]
    # Each guide's exact address is in one private chunk; the intros and local tips around it stay open.
    private = sorted((c.source, c.heading) for c in chunks if c.is_private)
    assert private == [
        ("ber-mitte/en/guide.md", "Address"),
        ("lis-alfama/en/guide.md", "Address"),
        ("lis-alfama/pt/guia.md", "Morada"),
        ("por-ribeira/en/guide.md", "Address"),
    ]
    addresses = ("Remédios 42", "Fonte Taurina 18", "Linienstraße 140")
    assert not any(a in c.text for c in chunks if c.gate == "open" for a in addresses)
    assert "shared/en/faq.md" in by_source and by_source["shared/en/faq.md"].property_code is None
