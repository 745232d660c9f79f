"""Choosing a backend from settings, voice maps, text chunking and SSML."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from config.settings import load_settings
from speech.azure import AzureSpeech
from speech.backend import SpeechBackend, open_speech, parse_voices
from speech.cache import CachedSpeech, MemoryAudioCache
from speech.local import LocalSpeech
from speech.text import build_ssml, chunk_text, split_sentences
from speech.voices import DEFAULT_AZURE_VOICES, normalize_locale


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_azure_backend_uses_regional_hosts(http: httpx.AsyncClient) -> None:
    settings = load_settings({"AZURE_SPEECH_KEY": "k", "AZURE_SPEECH_REGION": "westeurope"})
    speech = open_speech(settings, http)

    assert isinstance(speech, AzureSpeech) and isinstance(speech, SpeechBackend)
    assert (speech.stt_root, speech.tts_root, speech.api_version) == (
        "https://westeurope.api.cognitive.microsoft.com",
        "https://westeurope.tts.speech.microsoft.com",
        "2025-10-15",
    )


async def test_azure_endpoint_overrides_region_and_voices_override_defaults(http: httpx.AsyncClient) -> None:
    settings = load_settings(
        {"SPEECH_BACKEND": "azure", "AZURE_SPEECH_KEY": "k", "AZURE_SPEECH_ENDPOINT": "https://proxy.internal:8443/"}
    )
    cache = MemoryAudioCache()
    speech = open_speech(settings, http, voices={"pt-PT": "pt-PT-DuarteNeural", "en": "en-GB-RyanNeural"}, cache=cache)

    assert isinstance(speech, CachedSpeech) and speech.cache is cache
    azure = speech.backend
    assert isinstance(azure, AzureSpeech)
    assert (azure.stt_root, azure.tts_root) == ("https://proxy.internal:8443", "https://proxy.internal:8443")
    assert [speech.voice_for(loc) for loc in ("pt-PT", "en-US", "en-GB", "es-MX", "ja-JP")] == [
        "pt-PT-DuarteNeural",
        "en-GB-RyanNeural",
        "en-GB-RyanNeural",
        "es-ES-ElviraNeural",
        "en-US-AvaMultilingualNeural",
    ]


async def test_local_backend_without_azure_key(http: httpx.AsyncClient) -> None:
    speech = open_speech(load_settings({}), http)

    assert isinstance(speech, LocalSpeech) and isinstance(speech, SpeechBackend)
    assert [speech.voice_for(loc) for loc in ("pt-PT", "en-GB", "fr", "xx")] == ["pt", "en-gb", "fr-fr", "en-us"]


def test_parse_voices() -> None:
    assert parse_voices("pt-PT=pt-PT-DuarteNeural, en = en-GB-RyanNeural") == {
        "pt-PT": "pt-PT-DuarteNeural",
        "en": "en-GB-RyanNeural",
    }
    assert parse_voices(None) == {}
    with pytest.raises(ValueError, match="SPEECH_VOICES: 'pt-PT' is not locale=voice"):
        parse_voices("pt-PT")


@pytest.mark.parametrize(
    "raw,norm",
    [("pt_pt", "pt-PT"), ("EN", "en"), ("en-us", "en-US"), ("zh-Hans", "zh-Hans"), (" de-DE ", "de-DE"), ("?", "?")],
)
def test_normalize_locale(raw: str, norm: str) -> None:
    assert normalize_locale(raw) == norm


def test_default_voice_map_falls_back_by_language_then_to_the_multilingual_voice() -> None:
    assert [DEFAULT_AZURE_VOICES.voice_for(loc) for loc in ("en-AU", "it", "fr-CA", "", None, "nl-BE")] == [
        "en-US-AvaMultilingualNeural",
        "it-IT-ElsaNeural",
        "fr-FR-DeniseNeural",
        "en-US-AvaMultilingualNeural",
        "en-US-AvaMultilingualNeural",
        "en-US-AvaMultilingualNeural",
    ]


def test_split_sentences_and_chunks_stay_under_the_limit() -> None:
    text = "Welcome!  The code is 4711.\nParking: behind the house? Yes. " + "word " * 30
    assert split_sentences(text)[:4] == ["Welcome!", "The code is 4711.", "Parking: behind the house?", "Yes."]
    chunks = chunk_text(text, max_chars=40)
    assert chunks[:3] == [
        "Welcome! The code is 4711.",
        "Parking: behind the house? Yes.",
        "word word word word word word word word",
    ]
    assert all(len(c) <= 40 for c in chunks)
    assert " ".join(chunks).split() == text.split()
    assert chunk_text("x" * 25, max_chars=10) == ["x" * 10, "x" * 10, "x" * 5]
    assert chunk_text(" \n ") == []


def test_ssml_escapes_text_and_attributes() -> None:
    assert build_ssml("Tom & Jerry's <room>\x0b", voice="a'b", lang="en-US") == (
        "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' xml:lang='en-US'>"
        "<voice name='a&apos;b'>Tom &amp; Jerry's &lt;room&gt;</voice></speak>"
    )
