"""Text preparation for synthesis: sentence chunks under the per-request limit, and SSML."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

# Azure truncates a request's audio at 10 minutes; 2,000 characters is about 2-3 minutes of speech.
MAX_CHUNK_CHARS = 2000

_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+|\s*\n\s*")
# Characters XML 1.0 forbids (and lone surrogates, which cannot be encoded as UTF-8).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Drop characters that would make the SSML invalid and collapse runs of spaces."""
    return re.sub(r"[ \t]+", " ", _XML_INVALID.sub("", text)).strip()


def split_sentences(text: str) -> list[str]:
    """Split after sentence punctuation or at line breaks; empty pieces are dropped."""
    return [s.strip() for s in _SENTENCE_END.split(clean_text(text)) if s and s.strip()]


def chunk_text(text: str, max_chars: int = MAX_CHUNK_CHARS) -> list[str]:
    """Pack whole sentences into chunks of at most `max_chars`; split an overlong sentence at spaces."""
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    chunks: list[str] = []
    current = ""
    for sentence in split_sentences(text):
        for piece in _split_long(sentence, max_chars):
            if current and len(current) + 1 + len(piece) <= max_chars:
                current = f"{current} {piece}"
            else:
                if current:
                    chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks


def _split_long(sentence: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    while len(sentence) > max_chars:
        cut = sentence.rfind(" ", 0, max_chars + 1)
        if cut <= 0:  # one enormous word: cut it hard
            cut = max_chars
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    if sentence:
        pieces.append(sentence)
    return pieces


def _attr(value: str) -> str:
    return escape(value, {"'": "&apos;", '"': "&quot;"})


def build_ssml(text: str, *, voice: str, lang: str) -> str:
    """The SSML document Azure's TTS REST endpoint takes, with `text` escaped."""
    return (
        f"<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' xml:lang='{_attr(lang)}'>"
        f"<voice name='{_attr(voice)}'>{escape(clean_text(text))}</voice></speak>"
    )
