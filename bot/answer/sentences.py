"""Group text into sentences, for speaking an answer while it is still being generated.

Text-to-speech sounds natural per sentence, so the voice feature synthesizes each sentence as soon as it
is complete. The splitter is deliberately simple and conservative: when unsure whether a dot ends a
sentence it waits for the next word (a lower-case word means it did not).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator

# A terminator run with optional closing quotes/brackets, then whitespace; or CJK terminators; or a newline.
_BOUNDARY = re.compile(r"([.!?…]+[\"'”’)\]»]*)(\s+)|([。！？]+)|(\n)")
# Words whose trailing dot does not end a sentence (lower-case, without that dot).
ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "no",
        "nr",
        "vs",
        "approx",
        "ca",
        "e.g",
        "i.e",
        "z.b",
        "bzw",
        "sr",
        "sra",
        "srta",
        "dra",
        "av",
        "tel",
        "str",
        "apt",
        "n.º",
        "nº",
    }
)


def _dot_is_not_an_end(before: str) -> bool:
    word = before.rsplit(None, 1)[-1] if before.strip() else ""
    word = word.lstrip("([{\"'“‘«¿¡").rstrip(".").lower()
    return word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def split_complete(buffer: str, *, final: bool = False) -> tuple[list[str], str]:
    """Split `buffer` into the sentences that are certainly complete and the undecided rest.

    With `final=True` the rest is also returned as a sentence (the stream is over).
    """
    found: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(buffer):
        if match.start() < start:
            continue
        if match.group(1) is not None:
            terminator = match.group(1)
            if "." in terminator and not any(c in terminator for c in "!?…"):
                if match.end() == len(buffer) and not final:
                    break  # the next word decides; wait for it
                if _dot_is_not_an_end(buffer[start : match.start()]):
                    continue
                if match.end() < len(buffer) and buffer[match.end()].islower():
                    continue
            end = match.start(1) + len(terminator)
        elif match.group(3) is not None:
            end = match.end(3)
        else:
            end = match.start(4)
        sentence = buffer[start:end].strip()
        if sentence:
            found.append(sentence)
        start = match.end()
    rest = buffer[start:]
    if final:
        if rest.strip():
            found.append(rest.strip())
        rest = ""
    return found, rest


def split_sentences(text: str) -> list[str]:
    """All sentences of a finished text."""
    return split_complete(text, final=True)[0]


async def sentences(deltas: AsyncIterable[str]) -> AsyncIterator[str]:
    """Re-chunk streamed text deltas into complete, stripped sentences, in order."""
    buffer = ""
    async for delta in deltas:
        buffer += delta
        done, buffer = split_complete(buffer)
        for sentence in done:
            yield sentence
    done, _ = split_complete(buffer, final=True)
    for sentence in done:
        yield sentence
