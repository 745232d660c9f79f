"""Voice notes end to end: webhook -> ledger -> worker -> Azure/Groq/Chatwoot (respx), with real audio
made by espeak-ng and ffmpeg, the real retriever and (once) the real offline Whisper."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
import respx
from pydantic import SecretStr

from bot.agent.speaking import Speaker, pieces, reply_voice, segments, speakable
from bot.agent.voice_store import PURGED_QUESTION
from config.inboxes import InboxPolicy
from demo.samples import guest_message
from integrations.chatwoot.tests.spec import validate_request
from speech import audio
from speech.tests.helpers import multipart_fields, speak_to_wav
from tests.bot.conftest import API, BOT_TOKEN, CHATWOOT
from tests.conftest import load_fixture

STT = "https://westeurope.api.cognitive.microsoft.com/speechtotext/transcriptions:transcribe"
TTS = "https://westeurope.tts.speech.microsoft.com/cognitiveservices/v1"
GROQ = "https://api.groq.com/openai/v1/chat/completions"
QUESTION = "What time is check-out?"
ANSWER = "Check-out is by 11:00. Please leave the keys on the kitchen table."
ENCODINGS: dict[str, tuple[list[str], str]] = {  # extension -> (ffmpeg output arguments, content type)
    "ogg": (["-c:a", "libopus", "-b:a", "32k", "-f", "ogg"], "audio/ogg"),
    "mp3": (["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"], "audio/mpeg"),
    "m4a": (["-c:a", "aac", "-b:a", "64k", "-f", "ipod"], "audio/mp4"),
    "webm": (["-c:a", "libopus", "-b:a", "32k", "-f", "webm"], "audio/webm"),
    "wav": (["-c:a", "pcm_s16le", "-f", "wav"], "audio/wav"),
}
OUTPUT_FORMATS = {
    "ogg-48khz-16bit-mono-opus": "ogg",
    "audio-24khz-48kbitrate-mono-mp3": "mp3",
    "riff-24khz-16bit-mono-pcm": "wav",
}


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The guest's question in every container guests send, 2 s of silence, and a spoken reply per TTS format."""
    work = tmp_path_factory.mktemp("voice")
    question = speak_to_wav(QUESTION, work / "spoken.wav")
    reply = speak_to_wav("Check-out is by eleven.", work / "spoken-reply.wav")
    found: dict[str, bytes] = {}
    for ext, (args, _) in ENCODINGS.items():
        _ffmpeg("-i", str(question), "-ac", "1", *args, str(work / f"question.{ext}"))
        found[ext] = (work / f"question.{ext}").read_bytes()
    for ext in ("ogg", "mp3", "wav"):
        _ffmpeg("-i", str(reply), "-ac", "1", "-ar", "24000", *ENCODINGS[ext][0], str(work / f"reply.{ext}"))
        found[f"reply.{ext}"] = (work / f"reply.{ext}").read_bytes()
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "2", "-c:a", "libopus", str(work / "silence.ogg"))
    found["silence"] = (work / "silence.ogg").read_bytes()
    return found


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every temporary file goes to an empty folder that must be empty again afterwards (voice notes are
    personal data)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    yield folder
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == []


@pytest.fixture
def azure(bot_settings: Any) -> Any:
    return bot_settings.model_copy(
        update={
            "speech_backend": "azure",
            "azure_speech_key": SecretStr("az-key-1"),
            "azure_speech_region": "westeurope",
        }
    )


def recognized(text: str = QUESTION, locale: str = "en-US") -> dict[str, Any]:
    return {
        "durationMilliseconds": 1560,
        "combinedPhrases": [{"text": text}],
        "phrases": [
            {
                "offsetMilliseconds": 80,
                "durationMilliseconds": 1400,
                "text": text,
                "locale": locale,
                "confidence": 0.93,
                "words": [],
            }
        ],
    }


def voice_note(
    conv: int,
    mid: int,
    ext: str = "ogg",
    *,
    inbox_id: int = 3,
    channel: str = "Channel::WebWidget",
    transcribed: str = "",
    event: str = "message_created",
) -> dict[str, Any]:
    attachment = {
        "id": mid + 1,
        "message_id": mid,
        "file_type": "audio",
        "account_id": 1,
        "extension": ext,
        "content_type": ENCODINGS[ext][1],
        "thumb_url": "",
        "file_size": 48213,
        "width": None,
        "height": None,
        "transcribed_text": transcribed,
        "data_url": f"{CHATWOOT}/rails/active_storage/blobs/redirect/signed-{mid}/voice-note.{ext}?disposition=inline",
    }
    payload = guest_message(conv, mid, None, inbox_id=inbox_id, channel=channel, attachments=[attachment])
    payload["event"] = event
    return payload


def serve_audio(router: respx.MockRouter, mid: int, data: bytes, ext: str = "ogg") -> respx.Route:
    """Chatwoot's data_url: a redirect to the blob, as ActiveStorage answers."""
    router.get(url__startswith=f"{CHATWOOT}/rails/active_storage/blobs/redirect/signed-{mid}/").respond(
        302, headers={"location": f"/rails/active_storage/disk/key-{mid}/voice-note.{ext}"}
    )
    return router.get(f"{CHATWOOT}/rails/active_storage/disk/key-{mid}/voice-note.{ext}").respond(
        200, content=data, headers={"content-type": ENCODINGS[ext][1]}
    )


def speak_back(router: respx.MockRouter, clips: dict[str, bytes]) -> respx.Route:
    """Azure TTS answering each request with real audio in the format it asked for."""
    return router.post(TTS).mock(
        side_effect=lambda req: httpx.Response(
            200, content=clips["reply." + OUTPUT_FORMATS[req.headers["X-Microsoft-OutputFormat"]]]
        )
    )


def groq_stream(text: str) -> httpx.Response:
    """A streamed chat completion, a few characters per chunk, as Groq sends it."""
    chunks = [text[i : i + 7] for i in range(0, len(text), 7)]
    events = [
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "openai/gpt-oss-120b",
            "choices": [{"index": 0, "delta": {"content": c}, "finish_reason": None}],
        }
        for c in chunks
    ]
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})


def posted(router: respx.MockRouter) -> list[dict[str, Any]]:
    """Every message the bot posted, JSON or multipart (files as (name, content type, bytes))."""
    out = []
    for call in router.calls:
        req = call.request
        if req.method != "POST" or not req.url.path.endswith("/messages"):
            continue
        if req.headers["content-type"].startswith("multipart/"):
            fields = multipart_fields(req)
            body: dict[str, Any] = {k: v[2].decode() for k, v in fields.items() if k != "attachments[]"}
            body["file"] = fields["attachments[]"]
        else:
            body = json.loads(req.content)
        out.append(body)
    return out


def calls(router: respx.MockRouter) -> list[tuple[str, str, Any]]:
    """(method, path, JSON body) of every Chatwoot API call (multipart bodies as None)."""
    out = []
    for call in router.calls:
        req = call.request
        if req.url.path.startswith("/api/v1/"):
            body = json.loads(req.content) if req.headers.get("content-type") == "application/json" else None
            out.append((req.method, req.url.path.removeprefix("/api/v1/accounts/1"), body))
    return out


def chatwoot_api_valid(router: respx.MockRouter) -> None:
    for call in router.calls:
        if call.request.url.path.startswith("/api/v1/"):
            validate_request(call.request, bot_token=BOT_TOKEN)


def probed(data: bytes) -> tuple[str, str]:
    info = asyncio.run(audio.probe(data))
    return info.format_name, info.codec


def rows(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()


def marked(key: str) -> dict[str, Any]:
    """The reply-ledger key every text message carries, to be found again after a lost outcome."""
    return {"content_attributes": {"sidecar_reply_key": key}}


def note(details: str, mid: int, text: str = QUESTION) -> dict[str, Any]:
    return {
        "content": f"🎙️ Voice note transcript ({details}):\n\n> {text}",
        "message_type": "outgoing",
        "private": True,
        **marked(f"transcript:{mid}"),
    }


def reply(text: str, key: str) -> dict[str, Any]:
    return {"content": text, "message_type": "outgoing", "private": False, **marked(key)}


# --------------------------------------------------------------------------------------------- the happy paths


def test_whatsapp_voice_note_gets_transcript_note_text_reply_and_a_voice_message(
    azure: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, clips: dict[str, bytes]
) -> None:
    settings = azure.model_copy(update={"groq_api_key": SecretStr("gsk_test")})
    serve_audio(chatwoot, 9101, clips["ogg"])
    stt = chatwoot.post(STT).respond(200, json=recognized())
    tts = speak_back(chatwoot, clips)
    groq = chatwoot.post(GROQ).mock(return_value=groq_stream(ANSWER))
    deliver(voice_note(71, 9101, channel="Channel::Whatsapp"))
    drain(settings)

    [note_sent, text_sent, audio_sent] = posted(chatwoot)
    assert note_sent == note("en-US, 0:02, Azure Speech", 9101)
    assert text_sent == reply(ANSWER, "answer:9101")
    assert {k: v for k, v in audio_sent.items() if k != "file"} == {
        "message_type": "outgoing",
        "private": "false",
        "is_voice_message": "true",
        "content_attributes": '{"sidecar_reply_key": "audio:9101"}',  # read back by it after a lost outcome
    }
    filename, content_type, data = audio_sent["file"]
    assert (filename, content_type) == ("reply-9101.ogg", "audio/ogg")
    assert probed(data) == ("ogg", "opus")
    # Azure STT got the voice note as it came, no locale list: the multilingual model identifies the language.
    fields = multipart_fields(stt.calls.last.request)
    assert fields["audio"] == ("voice-note.ogg", "audio/ogg", clips["ogg"])
    assert json.loads(fields["definition"][2]) == {"profanityFilterMode": "None"}
    assert stt.calls.last.request.headers["Ocp-Apim-Subscription-Key"] == "az-key-1"
    # One TTS request per sentence, started while Groq still streams, in the voice for the language Azure
    # heard, as WAV: the pieces are joined in memory and encoded to OGG/Opus once.
    assert sorted(c.request.content.decode() for c in tts.calls) == sorted(
        "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' xml:lang='en-US'>"
        f"<voice name='en-US-AvaMultilingualNeural'>{s}</voice></speak>"
        for s in ("Check-out is by 11:00.", "Please leave the keys on the kitchen table.")
    )
    for call in tts.calls:
        assert call.request.headers["X-Microsoft-OutputFormat"] == "riff-24khz-16bit-mono-pcm"
        assert call.request.headers["Content-Type"] == "application/ssml+xml"
    assert json.loads(groq.calls.last.request.content)["stream"] is True
    assert rows(
        settings.database_dsn,
        "SELECT message_id, conversation_id, text, language, duration_ms, backend,"
        " handled_at IS NOT NULL FROM voice_transcripts",
    ) == [(9101, 71, QUESTION, "en-US", 1560, "azure", True)]
    [(question, outcome, model, timings)] = rows(
        settings.database_dsn, "SELECT question, outcome, model, timings FROM qa_records"
    )
    assert (question, outcome, model) == (QUESTION, "answered", "openai/gpt-oss-120b")
    assert {
        k: timings[k]
        for k in (
            "input",
            "transcript_source",
            "input_audio_ms",
            "streamed",
            "audio_segments",
            "audio_format",
            "synthesized_chars",
        )
    } == {
        "input": "voice",
        "transcript_source": "azure",
        "input_audio_ms": 1560,
        "streamed": True,
        "audio_segments": 2,
        "audio_format": "ogg",
        "synthesized_chars": 65,
    }
    for key in (
        "download_ms",
        "transcription_ms",
        "generation_ms",
        "first_token_ms",
        "synthesis_first_byte_ms",
        "synthesis_ms",
        "text_reply_ms",
        "audio_reply_ms",
        "retrieval_ms",
    ):
        assert isinstance(timings[key], int), key
    # Two reply clips joined with a pause, re-encoded as one Opus file: longer than either clip.
    assert timings["output_audio_ms"] > 2 * 900
    assert rows(
        settings.database_dsn, "SELECT reply_key, kind FROM bot_replies WHERE status = 'posted' ORDER BY id"
    ) == [("transcript:9101", "transcript"), ("answer:9101", "reply"), ("audio:9101", "audio")]
    chatwoot_api_valid(chatwoot)


def test_widget_voice_note_answered_offline_gets_an_mp3_reply(
    azure: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, clips: dict[str, bytes]
) -> None:
    serve_audio(chatwoot, 9102, clips["mp3"], "mp3")
    stt = chatwoot.post(STT).respond(200, json=recognized())
    tts = speak_back(chatwoot, clips)
    deliver(voice_note(72, 9102, "mp3"))
    drain(azure)

    [note_sent, text_sent, audio_sent] = posted(chatwoot)
    assert note_sent == note("en-US, 0:02, Azure Speech", 9102)
    assert "Check-out is by 11:00 (11 am)." in text_sent["content"].splitlines()
    assert {k: v for k, v in audio_sent.items() if k != "file"} == {
        "message_type": "outgoing",
        "private": "false",
        "content_attributes": '{"sidecar_reply_key": "audio:9102"}',
    }
    filename, content_type, data = audio_sent["file"]
    assert (filename, content_type, probed(data)) == ("reply-9102.mp3", "audio/mpeg", ("mp3", "mp3"))
    assert multipart_fields(stt.calls.last.request)["audio"] == ("voice-note.mp3", "audio/mpeg", clips["mp3"])
    # The offline banner and the source list are for reading, not for hearing.
    spoken = [c.request.content.decode().split("Neural'>")[1].removesuffix("</voice></speak>") for c in tts.calls]
    assert sorted(spoken) == sorted(segments(text_sent["content"]))
    assert "Check-out is by 11:00 (11 am)." in spoken
    assert not any("Sources" in s or "Automatic answer" in s for s in spoken)
    assert {c.request.headers["X-Microsoft-OutputFormat"] for c in tts.calls} == {"riff-24khz-16bit-mono-pcm"}
    [(outcome, model, timings)] = rows(azure.database_dsn, "SELECT outcome, model, timings FROM qa_records")
    assert (outcome, model, timings["audio_format"], "streamed" in timings) == ("answered", "offline", "mp3", False)
    chatwoot_api_valid(chatwoot)


@pytest.mark.parametrize(
    ("ext", "sent_as"),
    [
        ("m4a", ("voice-note.wav", "audio/wav")),
        ("webm", ("voice-note.webm", "audio/webm")),
        ("wav", ("voice-note.wav", "audio/wav")),
    ],
)
def test_every_container_is_transcribed_and_copilot_gets_notes_only(
    ext: str,
    sent_as: tuple[str, str],
    azure: Any,
    chatwoot: respx.MockRouter,
    deliver: Any,
    drain: Any,
    clips: dict[str, bytes],
) -> None:
    serve_audio(chatwoot, 9103, clips[ext], ext)
    stt = chatwoot.post(STT).respond(200, json=recognized("Is there a washing machine?"))
    tts = speak_back(chatwoot, clips)
    deliver(voice_note(73, 9103, ext, inbox_id=4))  # inbox 4: copilot, Berlin
    drain(azure)

    filename, content_type, data = multipart_fields(stt.calls.last.request)["audio"]
    assert (filename, content_type) == sent_as
    assert data == clips[ext] or content_type == "audio/wav"  # M4A is converted, the rest passes as it came
    [note_sent, suggestion] = posted(chatwoot)
    assert note_sent == note("en-US, 0:02, Azure Speech", 9103, "Is there a washing machine?")
    assert suggestion["private"] is True
    assert suggestion["content"].startswith("💡 Suggested reply (not sent to the guest):")
    assert "ber-mitte/en/faq.yaml" in suggestion["content"]
    assert tts.call_count == 0
    assert not any(p.endswith(("toggle_status", "toggle_typing_status")) for _, p, _ in calls(chatwoot))
    assert rows(azure.database_dsn, "SELECT mode, outcome FROM qa_records") == [("copilot", "suggested")]


def test_chatwoots_own_transcript_is_used_without_paying_azure(
    azure: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, clips: dict[str, bytes]
) -> None:
    blob = serve_audio(chatwoot, 9104, clips["ogg"])
    stt = chatwoot.post(STT).respond(200, json=recognized())
    speak_back(chatwoot, clips)
    deliver(voice_note(74, 9104, transcribed=QUESTION))
    drain(azure)

    assert (stt.call_count, blob.call_count) == (0, 0)
    [note_sent, text_sent, audio_sent] = posted(chatwoot)
    assert note_sent == note("language not reported, Chatwoot's transcription", 9104)
    assert "Check-out is by 11:00 (11 am)." in text_sent["content"]
    assert audio_sent["file"][0] == "reply-9104.mp3"
    assert rows(azure.database_dsn, "SELECT text, language, duration_ms, backend FROM voice_transcripts") == [
        (QUESTION, None, None, "chatwoot")
    ]


def test_a_waiting_voice_note_is_answered_from_chatwoots_message_updated_once(
    azure: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, clips: dict[str, bytes]
) -> None:
    settings = azure.model_copy(update={"voice_transcript_wait_s": 30.0})
    serve_audio(chatwoot, 9105, clips["ogg"])
    stt = chatwoot.post(STT).respond(200, json=recognized())
    speak_back(chatwoot, clips)
    created = deliver(voice_note(75, 9105))
    drain(settings)
    assert posted(chatwoot) == []  # waiting for Chatwoot's transcription
    assert rows(settings.database_dsn, "SELECT status, attempts FROM operational_events") == [("received", 0)]

    deliver(voice_note(75, 9105, transcribed=QUESTION, event="message_updated"))
    drain(settings)
    first = posted(chatwoot)
    assert first[0] == note("language not reported, Chatwoot's transcription", 9105)
    assert len(first) == 3 and first[2]["file"][0] == "reply-9105.mp3"

    # The wait is over: the message_created job runs again and finds the note handled.
    with psycopg.connect(settings.database_dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE operational_events SET received_at = now() - interval '1 minute' WHERE id = %s", (created,)
        )
    from bot.service import jobs

    jobs.enqueue(jobs.make_queue(settings), created)
    drain(settings)
    assert posted(chatwoot) == first
    assert stt.call_count == 0
    assert rows(settings.database_dsn, "SELECT event_type, status FROM operational_events ORDER BY id") == [
        ("message_created", "done"),
        ("message_updated", "done"),
    ]


def test_azure_429_then_200_transcribes(
    azure: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, clips: dict[str, bytes]
) -> None:
    serve_audio(chatwoot, 9106, clips["ogg"])
    stt = chatwoot.post(STT).mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after": "0"}, json={"error": {"code": "TooManyRequests"}}),
            httpx.Response(200, json=recognized()),
        ]
    )
    speak_back(chatwoot, clips)
    deliver(voice_note(76, 9106))
    drain(azure)
    assert stt.call_count == 2
    assert [p.get("private") for p in posted(chatwoot)] == [True, False, "false"]


def test_azure_failing_hands_off_with_a_note(
    azure: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, clips: dict[str, bytes]
) -> None:
    serve_audio(chatwoot, 9107, clips["ogg"])
    stt = chatwoot.post(STT).respond(503, headers={"retry-after": "0"}, json={"error": {"message": "busy"}})
    tts = speak_back(chatwoot, clips)
    deliver(voice_note(77, 9107))
    drain(azure)

    assert stt.call_count == 3 * 4  # each of the 3 job attempts retried 4 times; the last one hands off
    assert [(m, p, b) for m, p, b in calls(chatwoot) if m == "POST" and "typing" not in p] == [
        (
            "POST",
            "/conversations/77/messages",
            {
                "content": "🤖 Handed off to a person.\nThe speech service is unavailable (Azure Speech answered 503. "
                "busy), so the voice note was not transcribed. Please listen to it.\n\nGuest wrote:\n"
                "> (a voice note that could not be transcribed; listen to it in the conversation)",
                "message_type": "outgoing",
                "private": True,
                **marked("handoff-note:9107"),
            },
        ),
        (
            "POST",
            "/conversations/77/messages",
            {
                "content": "I'm passing your message to a colleague, who will reply here shortly.",
                "message_type": "outgoing",
                "private": False,
                **marked("handoff-reply:9107"),
            },
        ),
        ("POST", "/conversations/77/labels", {"labels": ["vip", "bot-handoff"]}),
        ("POST", "/conversations/77/toggle_status", {"status": "open"}),
    ]
    assert tts.call_count == 0
    assert rows(azure.database_dsn, "SELECT outcome, handoff_reason FROM qa_records") == [
        ("handed_off", "speech_unavailable")
    ]
    assert rows(azure.database_dsn, "SELECT text, failure, handled_at IS NOT NULL FROM voice_transcripts") == [
        (None, "speech_unavailable", True)
    ]
    chatwoot_api_valid(chatwoot)


def test_a_refused_key_hands_off_at_once_naming_the_setting(
    azure: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, clips: dict[str, bytes]
) -> None:
    serve_audio(chatwoot, 9108, clips["ogg"])
    stt = chatwoot.post(STT).respond(401, json={"error": {"code": "401", "message": "Access denied"}})
    deliver(voice_note(78, 9108))
    drain(azure)
    assert stt.call_count == 1
    handoff = posted(chatwoot)[0]["content"]
    assert handoff.startswith(
        "🤖 Handed off to a person.\nThe voice note was not transcribed: Azure Speech refused "
        "the key (401): check AZURE_SPEECH_KEY and that AZURE_SPEECH_REGION/"
    )


def test_a_silent_voice_note_goes_to_a_person_instead_of_a_guess(
    azure: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, clips: dict[str, bytes]
) -> None:
    serve_audio(chatwoot, 9109, clips["silence"])
    chatwoot.post(STT).respond(200, json={"durationMilliseconds": 2000, "combinedPhrases": [], "phrases": []})
    deliver(voice_note(79, 9109))
    drain(azure)
    [handoff, told] = posted(chatwoot)
    assert handoff["content"] == (
        "🤖 Handed off to a person.\nThe voice note holds no speech the bot could make out (no intelligible "
        "speech in the audio). Please listen to it.\n\nGuest wrote:\n> (a voice note of 2 s that could not be "
        "transcribed; listen to it in the conversation)"
    )
    assert told == reply("I'm passing your message to a colleague, who will reply here shortly.", "handoff-reply:9109")
    assert rows(azure.database_dsn, "SELECT handoff_reason FROM qa_records") == [("voice_unintelligible",)]


def test_a_voice_note_from_elsewhere_is_not_downloaded(
    azure: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any
) -> None:
    payload = voice_note(80, 9110)
    payload["attachments"][0]["data_url"] = "https://files.evil.example/voice-note.ogg"
    evil = chatwoot.get(url__startswith="https://files.evil.example/").respond(200, content=b"x")
    deliver(payload)
    drain(azure)
    assert evil.call_count == 0
    assert (
        "files.evil.example is neither CHATWOOT_URL's host nor listed in ATTACHMENT_STORAGE_HOSTS"
        in (posted(chatwoot)[0]["content"])
    )


def test_duplicate_deliveries_and_retries_send_nothing_twice(
    azure: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, clips: dict[str, bytes]
) -> None:
    serve_audio(chatwoot, 9111, clips["ogg"])
    stt = chatwoot.post(STT).respond(200, json=recognized())
    tts = speak_back(chatwoot, clips)
    payload = voice_note(81, 9111, channel="Channel::Whatsapp")
    event_id = deliver(payload)
    assert deliver(payload) == 0
    drain(azure)
    first = posted(chatwoot)
    with psycopg.connect(azure.database_dsn, autocommit=True) as conn:  # as if the job ran again
        conn.execute("UPDATE operational_events SET status = 'received' WHERE id = %s", (event_id,))
    from bot.service import jobs

    jobs.enqueue(jobs.make_queue(azure), event_id)
    deliver(voice_note(81, 9111, channel="Channel::Whatsapp", transcribed=QUESTION, event="message_updated"))
    drain(azure)
    assert posted(chatwoot) == first and len(first) == 3
    assert (stt.call_count, tts.call_count) == (1, len(segments(first[1]["content"])))
    assert rows(azure.database_dsn, "SELECT count(*) FROM qa_records") == [(1,)]


@pytest.mark.parametrize("saved", [False, True], ids=["lost before saving", "saved, then a 500"])
def test_audio_post_failing_is_retried_without_answering_again(
    azure: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, clips: dict[str, bytes], saved: bool
) -> None:
    settings = azure.model_copy(update={"groq_api_key": SecretStr("gsk_test"), "chatwoot_api_token": SecretStr("u")})
    serve_audio(chatwoot, 9112, clips["ogg"])
    chatwoot.post(STT).respond(200, json=recognized())
    speak_back(chatwoot, clips)
    groq = chatwoot.post(GROQ).mock(return_value=groq_stream(ANSWER))
    attachment_tries: list[int] = []
    kept: list[dict[str, Any]] = []  # what Chatwoot saved, listed back to the sidecar

    def flaky(request: httpx.Request) -> httpx.Response:
        created = {"id": 71_000 + len(kept) + 1, "message_type": 1, "private": False, "content": None}
        if request.headers["content-type"].startswith("multipart/"):
            attachment_tries.append(1)
            marker = re.search(rb'name="content_attributes"\r\n\r\n(.*?)\r\n', request.content, re.S)
            assert marker is not None
            created["content_attributes"] = json.loads(marker.group(1))
            if len(attachment_tries) == 1:
                if saved:
                    kept.append(created)
                return httpx.Response(500, json={"error": "boom"})
        kept.append(created)
        return httpx.Response(200, json=created)

    probe = httpx.Request("POST", f"{API}/conversations/82/messages")
    next(route for route in chatwoot.routes if route.pattern.match(probe)).mock(side_effect=flaky)
    chatwoot.get(f"{API}/conversations/82/messages").mock(
        side_effect=lambda request: httpx.Response(200, json={"meta": {}, "payload": kept[-20:]})
    )
    deliver(voice_note(82, 9112))
    drain(settings)
    sent = posted(chatwoot)
    assert [s.get("content", "file") for s in sent] == [
        note("en-US, 0:02, Azure Speech", 0)["content"],
        ANSWER,
        "file",
        *([] if saved else ["file"]),  # saved: found by its marker, not sent again
    ]
    assert groq.call_count == 1 and len(attachment_tries) == 1 + (not saved)
    assert rows(
        settings.database_dsn, "SELECT status, chatwoot_message_id FROM bot_replies WHERE reply_key = 'audio:9112'"
    ) == [("posted", kept[-1]["id"])]  # the audio Chatwoot kept: found (saved) or sent again
    assert [m["content_attributes"] for m in kept if "content_attributes" in m] == [{"sidecar_reply_key": "audio:9112"}]


@pytest.mark.parametrize(
    ("streamed", "reason", "note_starts"),
    [
        ("Sure. The door code is 48213. Enjoy your stay!", "unverified_number", "The AI's draft contained numbers"),
        ("HANDOFF: the guides do not give the door code.", "model_handoff", "The bot could not answer from the guides"),
    ],
)
def test_a_streamed_answer_that_becomes_a_handoff_is_never_spoken(
    streamed: str,
    reason: str,
    note_starts: str,
    azure: Any,
    chatwoot: respx.MockRouter,
    deliver: Any,
    drain: Any,
    clips: dict[str, bytes],
) -> None:
    settings = azure.model_copy(update={"groq_api_key": SecretStr("gsk_test")})
    serve_audio(chatwoot, 9113, clips["ogg"])
    chatwoot.post(STT).respond(200, json=recognized("Where do I leave the rubbish?"))  # nothing gated asked
    tts = speak_back(chatwoot, clips)
    chatwoot.post(GROQ).mock(return_value=groq_stream(streamed))
    deliver(voice_note(83, 9113))
    drain(settings)
    sent = posted(chatwoot)
    assert not any("file" in s for s in sent)
    assert sent[1]["content"].startswith("🤖 Handed off to a person.\n" + note_starts)
    assert sent[2] == reply(
        "I'm passing your message to a colleague, who will reply here shortly.", "handoff-reply:9113"
    )
    assert rows(settings.database_dsn, "SELECT outcome, handoff_reason FROM qa_records") == [("handed_off", reason)]
    if reason == "model_handoff":
        assert tts.call_count == 0  # the marker came first: nothing was synthesized at all


def test_offline_whisper_hears_a_spoken_question_and_the_bot_answers_it(
    bot_settings: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, clips: dict[str, bytes]
) -> None:
    assert bot_settings.speech_backend == "local"
    serve_audio(chatwoot, 9114, clips["ogg"])
    deliver(voice_note(84, 9114))
    drain()
    [note_sent, text_sent, audio_sent] = posted(chatwoot)
    [(backend, heard)] = rows(bot_settings.database_dsn, "SELECT backend, text FROM voice_transcripts")
    assert backend == "local" and re.fullmatch(r"What time is (it )?check[- ]?out\?", heard), heard  # tiny.en
    assert note_sent == note("en, 0:02, offline Whisper", 9114, heard)
    assert "Check-out is by 11:00 (11 am)." in text_sent["content"].splitlines()
    filename, _, data = audio_sent["file"]
    assert (filename, probed(data)) == ("reply-9114.mp3", ("mp3", "mp3"))


# --------------------------------------------------------------------------------------------- retention


def test_purge_forgets_what_was_heard_after_the_retention_period(
    clean_db: str, queue_name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    updated = copy.deepcopy(load_fixture("chatwoot/message_updated.audio_transcribed.json"))
    with psycopg.connect(clean_db, autocommit=True) as conn:
        for n, age in ((1, "40 days"), (2, "1 day")):
            conn.execute(
                "INSERT INTO operational_events (source, event_type, dedupe_key, payload, received_at)"
                " VALUES ('chatwoot', 'message_updated', %s, %s, now() - %s::interval)",
                (f"k{n}", json.dumps(updated), age),
            )
            conn.execute(
                "INSERT INTO voice_transcripts (message_id, conversation_id, text, backend, created_at)"
                " VALUES (%s, 57, 'heard', 'azure', now() - %s::interval)",
                (n, age),
            )
            for key, kind in (
                (f"transcript:{n}", "transcript"),
                (f"handoff-note:{n}", "handoff"),
                (f"answer:{n}", "reply"),
            ):
                conn.execute(
                    "INSERT INTO bot_replies (reply_key, conversation_id, kind, content, created_at)"
                    " VALUES (%s, 57, %s, 'text', now() - %s::interval)",
                    (key, kind, age),
                )
            for timings in ('{"input": "voice"}', "{}"):
                conn.execute(
                    "INSERT INTO qa_records (conversation_id, question, mode, outcome, timings, created_at)"
                    " VALUES (57, 'asked', 'autopilot', 'answered', %s, now() - %s::interval)",
                    (timings, age),
                )
    monkeypatch.setenv("DATABASE_URL", clean_db)
    monkeypatch.setenv("QUEUE_NAME", queue_name)
    from bot.service.cli import main

    assert main(["purge"]) == 0
    assert capsys.readouterr().out == (
        "purged voice data older than 30 days: 1 transcripts, 2 notes, 1 questions, 1 event payloads\n"
    )
    assert rows(clean_db, "SELECT message_id FROM voice_transcripts") == [(2,)]
    assert rows(clean_db, "SELECT reply_key, content FROM bot_replies ORDER BY id") == [
        ("transcript:1", None),
        ("handoff-note:1", None),
        ("answer:1", "text"),
        ("transcript:2", "text"),
        ("handoff-note:2", "text"),
        ("answer:2", "text"),
    ]
    assert rows(clean_db, "SELECT question FROM qa_records ORDER BY id") == [
        (PURGED_QUESTION,),
        ("asked",),
        ("asked",),
        ("asked",),
    ]
    [(old,), (new,)] = rows(clean_db, "SELECT payload FROM operational_events ORDER BY id")
    assert old["attachments"][0]["transcribed_text"] == ""
    assert old["conversation"]["messages"][0]["attachments"][0]["transcribed_text"] == ""
    assert old["attachments"][0]["data_url"] == updated["attachments"][0]["data_url"]
    assert new == updated


# --------------------------------------------------------------------------------------------- pure pieces


def test_what_is_spoken_of_a_reply() -> None:
    offline = (
        "(Automatic answer from our guides — no AI model is configured)\nCheck-out is by 11:00 (11 am).\n"
        "- Leave the keys in the **box**.\nSources: lis-alfama/en/guide.md › Check-out"
    )
    assert segments(offline) == ["Check-out is by 11:00 (11 am).", "Leave the keys in the box."]
    assert speakable("The code is in your booking [1]. `Wi-Fi` works [2, 3].") == (
        "The code is in your booking. Wi-Fi works."
    )


def test_the_inbox_voice_is_used_only_for_its_own_language() -> None:
    policy = InboxPolicy(voice="pt-PT-RaquelNeural")
    assert reply_voice(policy, "pt-PT") == "pt-PT-RaquelNeural"
    assert reply_voice(policy, "pt") == "pt-PT-RaquelNeural"
    assert reply_voice(policy, "en-US") is None  # the default English voice reads English
    assert reply_voice(InboxPolicy(voice="en-US-AvaMultilingualNeural"), "de-DE") == "en-US-AvaMultilingualNeural"
    assert reply_voice(InboxPolicy(voice="pt"), "pt-PT") == "pt"  # an espeak-ng voice
    assert reply_voice(InboxPolicy(), "en") is None


def test_long_sentences_are_spoken_in_two_pieces() -> None:
    long = "If you would like to stay longer, late check-out until 13:00 costs 20 EUR when the flat is free."
    assert pieces(long) == [
        "If you would like to stay longer,",
        "late check-out until 13:00 costs 20 EUR when the flat is free.",
    ]
    assert pieces("Check-out is by 11:00.") == ["Check-out is by 11:00."]
    assert pieces("x" * 120) == ["x" * 120]  # no clause break: one piece
    assert segments(f"Hello. {long}") == ["Hello.", *pieces(long)]


class FakeSpeech:
    """A speech backend answering from prepared clips, recording what it was asked."""

    name = "fake"

    def __init__(self, clips: dict[str, bytes], *, wav_as: str = "wav") -> None:
        self.clips = clips
        self.wav_as = wav_as
        self.asked: list[tuple[str, str]] = []

    def voice_for(self, locale: str | None) -> str:
        return "fake-voice"

    async def transcribe(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not used")

    async def synthesize(self, text: str, *, locale: str, voice: str | None = None, fmt: str = "ogg") -> bytes:
        self.asked.append((text, fmt))
        return self.clips["reply." + (self.wav_as if fmt == "wav" else fmt)]


async def test_a_one_sentence_reply_is_asked_for_in_its_final_format(clips: dict[str, bytes]) -> None:
    fake = FakeSpeech(clips)
    speaker = Speaker(fake, locale="en", voice=None, fmt="mp3")
    assert await speaker.finish("Check-out is by 11:00.") == (clips["reply.mp3"], ["Check-out is by 11:00."])
    assert fake.asked == [("Check-out is by 11:00.", "mp3")]


async def test_streamed_pieces_become_one_voice_message_with_a_pause_between_sentences(clips: dict[str, bytes]) -> None:
    fake = FakeSpeech(clips)
    speaker = Speaker(fake, locale="en", voice=None, fmt="ogg")
    long = "If you would like to stay longer, late check-out until 13:00 costs 20 EUR when the flat is free."
    speaker.say("Check-out is by 11:00 [1].")
    speaker.say(long)
    data, parts = await speaker.finish(f"Check-out is by 11:00.\n{long}")
    assert parts == ["Check-out is by 11:00.", *pieces(long)]
    assert sorted(fake.asked) == sorted((p, "wav") for p in parts)  # each piece once, the citation dropped
    info = await audio.probe(data)
    clip_ms = (await audio.probe(clips["reply.wav"])).duration_ms
    assert (info.format_name, info.codec) == ("ogg", "opus")
    assert abs(info.duration_ms - (3 * clip_ms + 150)) < 40  # one pause: between the sentences, not the pieces


async def test_pieces_that_are_not_wav_are_joined_by_the_speech_layer(clips: dict[str, bytes]) -> None:
    fake = FakeSpeech(clips, wav_as="mp3")  # e.g. found in the cache from another setup
    speaker = Speaker(fake, locale="en", voice=None, fmt="ogg")
    speaker.say("Check-out is by 11:00.")
    data, _ = await speaker.finish("Check-out is by 11:00. Have a good trip!")
    info = await audio.probe(data)
    assert (info.format_name, info.codec) == ("ogg", "opus") and info.duration_ms > 1500


async def test_a_handoff_line_stops_the_speaker_and_discard_reaps_its_work(clips: dict[str, bytes]) -> None:
    fake = FakeSpeech(clips)
    speaker = Speaker(fake, locale="en", voice=None, fmt="ogg")
    speaker.say("Sure.")
    speaker.say("HANDOFF: the guides do not say.")
    speaker.say("Anything else?")
    await speaker.discard()
    assert [text for text, _ in fake.asked] in ([], ["Sure."])  # "Sure." may have started; nothing after


@pytest.mark.parametrize(
    ("locale", "heard", "answer", "ssml_voice"),
    [
        (
            "en-GB",
            QUESTION,
            "Check-out is by 11:00.",
            "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' "
            "xml:lang='en-GB'><voice name='en-GB-RyanNeural'>Check-out is by 11:00.</voice></speak>",
        ),
        (
            "pt-PT",
            "A que horas é o check-out?",
            "O check-out é até às 11:00.",
            "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' xml:lang='pt-PT'>"
            "<voice name='pt-PT-DuarteNeural'>O check-out é até às 11:00.</voice></speak>",
        ),
    ],
)
def test_the_reply_is_spoken_in_the_guests_language_with_the_configured_voice(
    locale: str,
    heard: str,
    answer: str,
    ssml_voice: str,
    azure: Any,
    chatwoot: respx.MockRouter,
    deliver: Any,
    drain: Any,
    clips: dict[str, bytes],
    tmp_path: Path,
) -> None:
    inboxes = tmp_path / "voices.toml"
    inboxes.write_text('[inboxes.3]\nproperty = "lis-alfama"\nvoice = "en-GB-RyanNeural"\n')
    settings = azure.model_copy(
        update={
            "groq_api_key": SecretStr("gsk_test"),
            "inboxes_config": inboxes,
            "speech_voices": "pt-PT=pt-PT-DuarteNeural",
        }
    )
    serve_audio(chatwoot, 9115, clips["ogg"])
    chatwoot.post(STT).respond(200, json=recognized(heard, locale))
    tts = speak_back(chatwoot, clips)
    chatwoot.post(GROQ).mock(return_value=groq_stream(answer))
    deliver(voice_note(85, 9115))
    drain(settings)
    assert [c.request.content.decode() for c in tts.calls] == [ssml_voice]
    assert posted(chatwoot)[2]["file"][0] == "reply-9115.mp3"


def test_a_repeated_answer_is_spoken_from_the_cache(
    azure: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, clips: dict[str, bytes], queue_name: str
) -> None:
    tts = speak_back(chatwoot, clips)
    deliver(voice_note(86, 9116, transcribed=QUESTION))
    drain(azure)
    first = tts.call_count
    deliver(voice_note(87, 9117, transcribed=QUESTION))
    drain(azure)
    assert first > 0 and tts.call_count == first
    assert [p.get("file", ("",))[0] for p in posted(chatwoot)][2::3] == ["reply-9116.mp3", "reply-9117.mp3"]
    cached = redis.Redis.from_url(azure.redis_url).hlen(f"{queue_name}:tts:sizes")
    assert cached == first


def test_when_chatwoot_does_not_transcribe_in_time_the_bot_does(
    azure: Any, chatwoot: respx.MockRouter, deliver: Any, drain: Any, clips: dict[str, bytes]
) -> None:
    settings = azure.model_copy(update={"voice_transcript_wait_s": 30.0})
    serve_audio(chatwoot, 9118, clips["ogg"])
    stt = chatwoot.post(STT).respond(200, json=recognized())
    speak_back(chatwoot, clips)
    created = deliver(voice_note(88, 9118))
    drain(settings)
    assert (posted(chatwoot), stt.call_count) == ([], 0)
    with psycopg.connect(settings.database_dsn, autocommit=True) as conn:  # the 30 s are over
        conn.execute(
            "UPDATE operational_events SET received_at = now() - interval '31 seconds' WHERE id = %s", (created,)
        )
    from bot.service import jobs

    jobs.enqueue(jobs.make_queue(settings), created)
    drain(settings)
    assert stt.call_count == 1
    assert [p.get("private") for p in posted(chatwoot)] == [True, False, "false"]
