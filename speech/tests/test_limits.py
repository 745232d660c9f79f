"""Audio limits: a voice note longer than VOICE_MAX_SECONDS is refused before it is decoded whole.

Hours of low-bitrate Opus fit in a few megabytes and would decode to gigabytes of PCM; the tests use a
5-second limit and a 20-second clip so they stay fast.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from speech import AudioTooLong, open_speech
from speech import audio as audio_mod
from speech.local import LocalSpeech

LIMIT_S = 5.0


@pytest.fixture(scope="module")
def long_opus(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """20 s of tone as low-bitrate OGG/Opus (a long WhatsApp voice note, shortened)."""
    out = tmp_path_factory.mktemp("long") / "long.ogg"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:sample_rate=16000",
            "-t",
            "20",
            "-ac",
            "1",
            "-c:a",
            "libopus",
            "-b:a",
            "6k",
            str(out),
        ],
        check=True,
    )
    return out.read_bytes()


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("the audio was decoded")

    monkeypatch.setattr(audio_mod, "_decode_file", refuse)


async def unsized_webm(ogg: bytes) -> bytes:
    """The same audio as WebM without a duration in its header, as browsers' MediaRecorder writes it."""
    return await audio_mod.run_tool(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "ogg",
            "-i",
            "pipe:0",
            "-c:a",
            "copy",
            "-f",
            "webm",
            "pipe:1",
        ],
        stdin=ogg,
    )


async def test_a_long_voice_note_is_refused_from_its_header_without_decoding(
    long_opus: bytes, no_decoding: None
) -> None:
    with pytest.raises(AudioTooLong) as caught:
        await audio_mod.prepare_for_azure(long_opus, "voice.ogg", "audio/ogg", max_seconds=LIMIT_S)
    assert caught.value.duration_ms is not None and abs(caught.value.duration_ms - 20_000) < 100
    assert str(caught.value) == "the audio lasts 0:20, over the 0:05 limit (VOICE_MAX_SECONDS)"


async def test_local_transcription_refuses_a_long_note_before_decoding_it(long_opus: bytes, no_decoding: None) -> None:
    with pytest.raises(AudioTooLong) as caught:
        await LocalSpeech(max_seconds=LIMIT_S).transcribe(long_opus, "voice.ogg", "audio/ogg")
    assert caught.value.limit_s == LIMIT_S


async def test_without_a_duration_header_the_decode_stops_just_past_the_limit(
    long_opus: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    webm = await unsized_webm(long_opus)
    outputs: list[int] = []
    real = audio_mod.run_tool

    async def measured(argv: Any, **kwargs: Any) -> bytes:
        out = await real(argv, **kwargs)
        outputs.append(len(out))
        return out

    monkeypatch.setattr(audio_mod, "run_tool", measured)
    for attempt in (
        audio_mod.prepare_for_azure(webm, "voice.webm", max_seconds=LIMIT_S),
        audio_mod.decode_pcm(webm, max_seconds=LIMIT_S),
    ):
        with pytest.raises(AudioTooLong) as caught:
            await attempt
        assert caught.value.duration_ms is None
    second = 2 * audio_mod.SPEECH_RATE  # bytes of 16 kHz mono PCM
    assert LIMIT_S * second < max(outputs) <= (LIMIT_S + 1) * second  # about 6 s of PCM held, never 20


async def test_a_note_within_the_limit_is_decoded_whole(clips: dict[str, bytes]) -> None:
    pcm = await audio_mod.decode_pcm(await unsized_webm(clips["ogg"]), max_seconds=LIMIT_S)
    assert abs(len(pcm) / (2 * audio_mod.SPEECH_RATE) - await audio_mod.duration_ms(clips["wav"]) / 1000) < 0.12
    prepared = await audio_mod.prepare_for_azure(clips["m4a"], "voice.m4a", max_seconds=LIMIT_S)
    assert prepared.converted and prepared.content_type == "audio/wav"


async def test_our_own_audio_has_no_limit(long_opus: bytes) -> None:
    assert abs(await audio_mod.duration_ms(long_opus) - 20_000) < 100
    assert len(await audio_mod.decode_pcm(long_opus)) == 20 * 2 * audio_mod.SPEECH_RATE


class Limits:
    speech_backend = "local"
    voice_max_seconds = 42.0


async def test_the_backend_takes_its_limit_from_voice_max_seconds(tmp_path: Path) -> None:
    async with httpx.AsyncClient() as http:
        backend = open_speech(Limits(), http)
    assert isinstance(backend, LocalSpeech) and backend._max_seconds == 42.0
