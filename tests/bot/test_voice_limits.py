"""A voice note over VOICE_MAX_SECONDS goes to a person with a note, and is never decoded whole."""

from __future__ import annotations

from typing import Any

import respx

from tests.bot.test_voice import azure, clips, posted, private_tmp, reply, rows, serve_audio, voice_note

__all__ = ["azure", "clips", "private_tmp"]  # fixtures this module uses, defined beside the voice tests


def test_a_voice_note_over_the_limit_is_handed_off_untranscribed(
    azure: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, clips: dict[str, bytes]
) -> None:
    limited = azure.model_copy(update={"voice_max_seconds": 1.0})
    serve_audio(chatwoot, 9301, clips["ogg"])  # the question lasts about 2 s
    deliver(voice_note(81, 9301))
    drain(limited)
    [handoff, told] = posted(chatwoot)  # no Azure route is mocked: transcription was never tried
    assert handoff["content"].startswith("🤖 Handed off to a person.\n")
    assert "the audio lasts 0:02, over the 0:01 limit (VOICE_MAX_SECONDS)" in handoff["content"]
    assert handoff["content"].endswith(
        "Guest wrote:\n> (a voice note of 2 s that could not be transcribed; listen to it in the conversation)"
    )
    assert told == reply("I'm passing your message to a colleague, who will reply here shortly.", "handoff-reply:9301")
    # "speech_error" until the voice path names it (see speech.errors.AudioTooLong)
    assert rows(limited.database_dsn, "SELECT handoff_reason FROM qa_records") in (
        [("speech_error",)],
        [("voice_too_long",)],
    )
