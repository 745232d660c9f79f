"""The offline backend on real audio: Whisper tiny.en hears espeak-ng, espeak-ng speaks playable files."""

from __future__ import annotations

import asyncio
import re

import pytest

from speech import audio
from speech.errors import UnintelligibleAudio
from speech.local import LocalSpeech, packaged_model_path
from speech.voices import VoiceMap


def words(text: str) -> str:
    """Lower-case letters only, so "check out", "checkout" and "Check-out" all contain "check"."""
    return " ".join(re.findall(r"[a-z]+", text.lower()))


@pytest.fixture(scope="module")
def local() -> LocalSpeech:
    """One warm backend for the module. Warming up before the per-test temp-dir guard matters:
    onnxruntime (faster-whisper's VAD) writes a one-line `.ses` telemetry marker (a timestamp and a
    random id, no audio) into $TMPDIR once per process, when its environment is created."""
    speech = LocalSpeech()
    asyncio.run(speech.warm_up())
    return speech


def test_the_packaged_model_is_tiny_en() -> None:
    folder = packaged_model_path()
    assert {p.name for p in folder.iterdir()} >= {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}


@pytest.mark.parametrize("ext", ["ogg", "m4a"])
async def test_transcribes_a_spoken_question(local: LocalSpeech, clips: dict[str, bytes], ext: str) -> None:
    transcript = await local.transcribe(clips[ext], f"voice.{ext}", None, ["en-GB"])

    heard = words(transcript.text)
    assert all(w in heard for w in ("what time", "check", "tomorrow")), transcript.text
    assert transcript.language == "en-GB"  # the caller's locale for the language we heard
    assert transcript.confidence is not None and 0.2 < transcript.confidence <= 1
    assert transcript.duration_ms == pytest.approx(await audio.duration_ms(clips["wav"]), abs=120)


async def test_silence_is_unintelligible(local: LocalSpeech, clips: dict[str, bytes]) -> None:
    with pytest.raises(UnintelligibleAudio) as caught:
        await local.transcribe(clips["silence"], "silence.ogg", "audio/ogg", ["en-US"])
    assert caught.value.duration_ms == pytest.approx(2000, abs=30)


@pytest.mark.parametrize(
    "fmt,expected", [("ogg", ("ogg", "opus")), ("mp3", ("mp3", "mp3")), ("wav", ("wav", "pcm_s16le"))]
)
async def test_synthesizes_a_playable_file(
    local: LocalSpeech, fmt: audio.AudioFormat, expected: tuple[str, str]
) -> None:
    spoken = await local.synthesize("Check-out is at eleven.", locale="en-US", fmt=fmt)
    info = await audio.probe(spoken)

    assert (info.format_name, info.codec, info.channels) == (*expected, 1)
    assert 800 < info.duration_ms < 4000


async def test_round_trip_speech_survives(local: LocalSpeech) -> None:
    spoken = await local.synthesize("The wifi password is written on the fridge door.", locale="en-US", fmt="ogg")
    heard = await local.transcribe(spoken, "reply.ogg", "audio/ogg", [])

    text = words(heard.text)
    assert all(w in text for w in ("password", "written", "fridge door")), heard.text
    assert heard.language == "en"


async def test_voices_follow_the_locale_and_overrides() -> None:
    speech = LocalSpeech(voices=VoiceMap({"pt-PT": "pt", "en": "en-gb"}, "en-us"))
    assert (speech.voice_for("pt-BR"), speech.voice_for("en-US"), speech.voice_for("ja-JP")) == ("pt", "en-gb", "en-us")
    portuguese = await speech.synthesize("Bom dia, a chave está na caixa.", locale="pt-PT", fmt="mp3")
    assert (await audio.probe(portuguese)).duration_ms > 800


async def test_empty_text_is_refused(local: LocalSpeech) -> None:
    with pytest.raises(ValueError, match="empty"):
        await local.synthesize("\x00 \t", locale="en-US")
