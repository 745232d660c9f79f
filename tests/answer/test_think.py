import pytest

from bot.answer.think import ThinkFilter, strip_think


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<think>The guest wants the time.</think>\n\nCheck-out is at 11:00.", "Check-out is at 11:00."),
        ("<THINK>plan</THINK>Hi!<think>more</think> Bye.", "Hi! Bye."),
        ("<think>still reasoning when the tokens ran out", ""),
        ("Check-out is at 11:00. <think>unfinished", "Check-out is at 11:00."),
        ("reasoning whose opening tag was in the template</think>\nThe wifi is CasaAzul.", "The wifi is CasaAzul."),
        ("No reasoning here.", "No reasoning here."),
        ("  ", ""),
    ],
)
def test_strip_think(raw: str, expected: str) -> None:
    assert strip_think(raw) == expected


def run(deltas: list[str]) -> str:
    think = ThinkFilter()
    return "".join(think.feed(d) for d in deltas) + think.flush()


TEXT = "<think>plan: be brief</think>\nCheck-out is at 11:00. <think>again</think>Bye <b>now</b>."


@pytest.mark.parametrize("cut", range(1, len(TEXT)))
def test_stream_filter_is_right_wherever_a_delta_boundary_falls(cut: int) -> None:
    assert run([TEXT[:cut], TEXT[cut:]]) == "Check-out is at 11:00. Bye <b>now</b>."


def test_stream_filter_one_character_at_a_time() -> None:
    assert run(list(TEXT)) == "Check-out is at 11:00. Bye <b>now</b>."


def test_stream_filter_holds_a_possible_tag_start_until_the_next_delta() -> None:
    think = ThinkFilter()
    assert think.feed("Use the code <th") == "Use the code "
    assert think.feed("e> box.") == "<the> box."
    assert think.flush() == ""


def test_stream_filter_drops_an_unclosed_span_at_the_end() -> None:
    assert run(["Hello. ", "<think>never", " closed"]) == "Hello. "


def test_stream_filter_releases_a_held_fragment_when_the_stream_ends() -> None:
    assert run(["Price is 5 <"]) == "Price is 5 <"


def test_stream_filter_removes_an_orphan_closing_tag() -> None:
    assert run(["</thi", "nk>Answer."]) == "Answer."
