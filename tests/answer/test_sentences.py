from collections.abc import AsyncIterator

import pytest

from bot.answer.sentences import sentences, split_complete, split_sentences


def test_split_sentences_respects_abbreviations_times_and_lists() -> None:
    text = (
        "Check-out is at 11 a.m. on Sunday. Leave the keys, e.g. on the table! Dr. Silva lives upstairs. "
        "Questions? Write us…\n- Towels: bathroom\n- Iron: closet"
    )
    assert split_sentences(text) == [
        "Check-out is at 11 a.m. on Sunday.",
        "Leave the keys, e.g. on the table!",
        "Dr. Silva lives upstairs.",
        "Questions?",
        "Write us…",
        "- Towels: bathroom",
        "- Iron: closet",
    ]


def test_split_complete_waits_for_the_next_word_after_a_dot() -> None:
    assert split_complete("Check-out is at 11 a.m. ") == ([], "Check-out is at 11 a.m. ")
    assert split_complete("Check-out is at 11 a.m. on") == ([], "Check-out is at 11 a.m. on")
    assert split_complete("It is at 11:00. Please") == (["It is at 11:00."], "Please")
    assert split_complete("Great! ") == (["Great!"], "")
    assert split_complete("Great!") == ([], "Great!")
    assert split_complete("Great!", final=True) == (["Great!"], "")


def test_split_handles_quotes_and_cjk() -> None:
    assert split_sentences('He said "Welcome." Then left.') == ['He said "Welcome."', "Then left."]
    japanese = "チェックアウトは11時です。鍵は机の上に。"
    assert split_sentences(japanese) == ["チェックアウトは11時です。", "鍵は机の上に。"]


async def deltas(parts: list[str]) -> AsyncIterator[str]:
    for part in parts:
        yield part


@pytest.mark.parametrize(
    "parts",
    [
        ["Check-out is at 11", ":00. Please leave", " the keys on the table. Safe", " travels!"],
        list("Check-out is at 11:00. Please leave the keys on the table. Safe travels!"),
        ["Check-out is at 11:00. Please leave the keys on the table. Safe travels!"],
    ],
)
async def test_sentences_regroups_deltas(parts: list[str]) -> None:
    got = [s async for s in sentences(deltas(parts))]
    assert got == ["Check-out is at 11:00.", "Please leave the keys on the table.", "Safe travels!"]


async def test_sentences_yields_a_sentence_as_soon_as_it_is_certain() -> None:
    seen: list[str] = []

    async def source() -> AsyncIterator[str]:
        yield "Hello there! "
        assert seen == ["Hello there!"]  # already out before the next delta is requested
        yield "Bye"

    async for sentence in sentences(source()):
        seen.append(sentence)
    assert seen == ["Hello there!", "Bye"]
