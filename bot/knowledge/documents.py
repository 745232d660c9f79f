"""Reading a knowledge folder: which files count, and what property and language each one is about.

Layout (front matter wins over folders):

    <root>/<property-code>/<lang>/*.md      property guide in one language
    <root>/<property-code>/*.md             property guide, language from front matter or the default
    <root>/shared/<lang>/*.md               shared knowledge (FAQs for every property)
    <root>/<lang>/*.md                      shared knowledge too (a two-letter first folder is a language)

Front matter (Markdown/text) or top-level keys (YAML): `property` (null means shared), `language`,
`title`, `access` (true: every section is an access detail), `private` (true: every section is private,
e.g. an exact address). YAML files hold `faq: [{q, a}, ...]` and/or `sections: [{heading, text, access,
private}, ...]`. Hidden files, names starting with "_" and
README files are skipped, so a knowledge folder can document itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import frontmatter
import yaml

from bot.knowledge.chunking import split_markdown
from bot.knowledge.models import Document, Section

SUFFIXES = frozenset({".md", ".markdown", ".txt", ".yaml", ".yml"})
SHARED_FOLDERS = frozenset({"shared", "common"})
_LANGUAGE = re.compile(r"^[a-z]{2}(?:[-_][a-z]{2})?$", re.IGNORECASE)
_MISSING = object()


class DocumentError(ValueError):
    """A knowledge file that cannot be read; the message says which file and why."""


def discover(root: Path) -> list[Path]:
    """Knowledge files under root, in a stable order."""
    if not root.is_dir():
        raise DocumentError(f"{root}: not a folder; give the knowledge base folder")
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part.startswith((".", "_")) for part in relative.parts):
            continue
        if path.is_file() and path.suffix.lower() in SUFFIXES and not path.stem.upper().startswith("README"):
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def folder_metadata(relative: Path) -> tuple[str | None, str | None]:
    """(property code, language) implied by a file's folders relative to the knowledge root."""
    folders = list(relative.parts[:-1])
    if not folders:
        return None, None
    first = folders.pop(0)
    if first.lower() in SHARED_FOLDERS:
        prop = None
    elif _LANGUAGE.match(first):
        return None, first.lower()
    else:
        prop = first
    language = folders[0].lower() if folders and _LANGUAGE.match(folders[0]) else None
    return prop, language


def load_document(path: Path, root: Path, *, default_language: str | None = "en") -> Document:
    """Parse one knowledge file into a Document; raise DocumentError naming the file on bad input."""
    relative = path.relative_to(root)
    source = relative.as_posix()
    try:
        raw = path.read_text(encoding="utf-8-sig")  # editors on Windows add a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentError(f"{source}: cannot read it as UTF-8 text ({exc})") from exc
    try:
        if path.suffix.lower() in {".yaml", ".yml"}:
            meta = yaml.safe_load(raw) or {}
            if not isinstance(meta, dict):
                raise DocumentError(f"{source}: a YAML knowledge file must be a mapping")
            body: str | None = None
        else:
            post = frontmatter.loads(raw)
            meta, body = dict(post.metadata), post.content
    except yaml.YAMLError as exc:
        raise DocumentError(f"{source}: invalid YAML ({exc})") from exc

    folder_prop, folder_lang = folder_metadata(relative)
    prop_value = meta.get("property", _MISSING)
    prop = folder_prop if prop_value is _MISSING else _optional_str(prop_value)
    language = _optional_str(meta.get("language")) or folder_lang or default_language
    title = _optional_str(meta.get("title"))
    access = meta.get("access", False)
    if not isinstance(access, bool):
        raise DocumentError(f"{source}: 'access' must be true or false")
    private = meta.get("private", False)
    if not isinstance(private, bool):
        raise DocumentError(f"{source}: 'private' must be true or false")

    if body is None:
        sections = _yaml_sections(meta, source, title=title, access=access, private=private)
    elif path.suffix.lower() == ".txt":
        text = body.strip()
        sections = [Section(heading=title, text=text, is_access=access, is_private=private)] if text else []
    else:
        sections = split_markdown(body, title=title, access=access, private=private)
    return Document(
        source=source,
        property_code=prop,
        language=language.lower() if language else None,
        sections=tuple(sections),
        title=title,
    )


def _yaml_sections(
    meta: dict[str, Any], source: str, *, title: str | None, access: bool, private: bool
) -> list[Section]:
    if "faq" not in meta and "sections" not in meta:
        raise DocumentError(f"{source}: a YAML knowledge file needs a 'faq' or a 'sections' list")
    sections: list[Section] = []
    for item in _list_of_mappings(meta.get("faq"), source, "faq"):
        question = _optional_str(item.get("q", item.get("question")))
        answer = _optional_str(item.get("a", item.get("answer")))
        if not question or not answer:
            raise DocumentError(f"{source}: every faq entry needs 'q' and 'a'")
        faq_heading = f"{title} > {question}" if title else question
        sections.append(
            Section(
                heading=faq_heading,
                text=answer,
                is_access=access or item.get("access") is True,
                is_private=private or item.get("private") is True,
            )
        )
    for item in _list_of_mappings(meta.get("sections"), source, "sections"):
        heading = _optional_str(item.get("heading", item.get("title")))
        text = _optional_str(item.get("text", item.get("body")))
        if not text:
            raise DocumentError(f"{source}: every section needs a 'text'")
        if title and heading:
            heading = f"{title} > {heading}"
        sections.append(
            Section(
                heading=heading or title,
                text=text,
                is_access=access or item.get("access") is True,
                is_private=private or item.get("private") is True,
            )
        )
    return sections


def _list_of_mappings(value: Any, source: str, key: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise DocumentError(f"{source}: '{key}' must be a list of mappings")
    return value


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
