"""Azure Speech over REST, served by respx: the exact requests we send and how answers map."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from speech import audio
from speech.azure import AzureSpeech, speech_roots
from speech.errors import SpeechAuthError, SpeechRequestError, SpeechUnavailable, UnintelligibleAudio
from speech.tests.helpers import SleepRecorder, multipart_fields
from speech.types import Transcript

KEY = "azure-test-key-0123"
STT = "https://westeurope.api.cognitive.microsoft.com/speechtotext/transcriptions:transcribe"
TTS = "https://westeurope.tts.speech.microsoft.com/cognitiveservices/v1"


def recognized(text: str = "What time is check out?", *, locale: str = "en-US", confidence: float = 0.91) -> dict:
    return {
        "durationMilliseconds": 1560,
        "combinedPhrases": [{"text": text}],
        "phrases": [
            {
                "offsetMilliseconds": 80,
                "durationMilliseconds": 1400,
                "text": text,
                "locale": locale,
                "confidence": confidence,
                "words": [],
            }
        ],
    }


@pytest.fixture
async def azure(sleeps: SleepRecorder) -> AsyncIterator[AzureSpeech]:
    async with httpx.AsyncClient() as http:
        yield AzureSpeech(http, key=KEY, region="westeurope", sleep=sleeps)


@respx.mock
async def test_transcribe_posts_the_ogg_as_is_with_a_definition(azure: AzureSpeech, clips: dict[str, bytes]) -> None:
    route = respx.post(STT).respond(200, json=recognized())

    transcript = await azure.transcribe(clips["ogg"], "voice.ogg", "audio/ogg", ["en-US"])

    assert transcript == Transcript(text="What time is check out?", language="en-US", duration_ms=1560, confidence=0.91)
    request = route.calls.last.request
    assert dict(request.url.params) == {"api-version": "2025-10-15"}
    assert request.headers["Ocp-Apim-Subscription-Key"] == KEY
    fields = multipart_fields(request)
    assert set(fields) == {"audio", "definition"}
    assert fields["audio"] == ("voice.ogg", "audio/ogg", clips["ogg"])
    assert fields["definition"][:2] == (None, None)
    assert json.loads(fields["definition"][2]) == {"profanityFilterMode": "None", "locales": ["en-US"]}


@respx.mock
async def test_m4a_is_sent_as_wav_and_several_locales_ask_for_identification(
    azure: AzureSpeech, clips: dict[str, bytes]
) -> None:
    body = recognized("Que horas é o check-out?", locale="pt-PT")
    route = respx.post(STT).respond(200, json=body)

    transcript = await azure.transcribe(clips["m4a"], "IMG_0042.m4a", "audio/x-m4a", ["pt_pt", "en-US", "es-ES"])

    assert (transcript.text, transcript.language) == ("Que horas é o check-out?", "pt-PT")
    fields = multipart_fields(route.calls.last.request)
    filename, content_type, data = fields["audio"]
    assert (filename, content_type, data[:4]) == ("IMG_0042.wav", "audio/wav", b"RIFF")
    assert (await audio.probe(data)).sample_rate == 16000
    assert json.loads(fields["definition"][2])["locales"] == ["pt-PT", "en-US", "es-ES"]


@respx.mock
async def test_no_locales_uses_the_multilingual_model_and_reports_the_longest_locale(
    azure: AzureSpeech, clips: dict[str, bytes]
) -> None:
    body = {
        "durationMilliseconds": 4000,
        "combinedPhrases": [{"text": "Hallo. Where is the key?"}],
        "phrases": [
            {"durationMilliseconds": 500, "text": "Hallo.", "locale": "de-DE", "confidence": 0.5},
            {"durationMilliseconds": 1500, "text": "Where is the key?", "locale": "en-GB", "confidence": 0.9},
        ],
    }
    route = respx.post(STT).respond(200, json=body)

    transcript = await azure.transcribe(clips["mp3"], "a.mp3", "audio/mpeg", [])

    assert (transcript.text, transcript.language, transcript.duration_ms) == ("Hallo. Where is the key?", "en-GB", 4000)
    assert transcript.confidence == pytest.approx((0.5 * 500 + 0.9 * 1500) / 2000)
    assert json.loads(multipart_fields(route.calls.last.request)["definition"][2]) == {"profanityFilterMode": "None"}


@pytest.mark.parametrize(
    "body",
    [
        {"durationMilliseconds": 2000, "combinedPhrases": [], "phrases": []},
        {"durationMilliseconds": 2000, "combinedPhrases": [{"text": " "}], "phrases": []},
        {"durationMilliseconds": 2000},
        recognized("Mm.", confidence=0.12),
    ],
)
@respx.mock
async def test_silence_or_mumbling_is_unintelligible(azure: AzureSpeech, clips: dict[str, bytes], body: dict) -> None:
    respx.post(STT).respond(200, json=body)
    with pytest.raises(UnintelligibleAudio) as caught:
        await azure.transcribe(clips["silence"], "silence.ogg", "audio/ogg", ["en-US"])
    assert caught.value.duration_ms in (1560, 2000)


@respx.mock
async def test_a_clip_too_short_for_speech_is_not_sent(azure: AzureSpeech) -> None:
    route = respx.post(STT).respond(200, json=recognized())
    tiny = audio.pcm_to_wav(b"\0\0" * 1600, sample_rate=16000)  # 100 ms
    with pytest.raises(UnintelligibleAudio, match="too short"):
        await azure.transcribe(tiny, "x.wav", "audio/wav", ["en-US"])
    assert route.call_count == 0


@respx.mock
async def test_429_is_retried_after_the_retry_after_delay(
    azure: AzureSpeech, clips: dict[str, bytes], sleeps: SleepRecorder
) -> None:
    route = respx.post(STT).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}, json={"error": {"code": "TooManyRequests"}}),
            httpx.Response(429, headers={"Retry-After": "3600"}),
            httpx.Response(200, json=recognized()),
        ]
    )
    transcript = await azure.transcribe(clips["ogg"], "voice.ogg", "audio/ogg", ["en-US"])

    assert transcript.text == "What time is check out?"
    assert (route.call_count, sleeps.delays) == (3, [2.0, 10.0])  # the hour-long ask is capped at 10 s
    bodies = [multipart_fields(call.request)["audio"][2] for call in route.calls]
    assert bodies == [clips["ogg"]] * 3  # every attempt re-sends the whole file


@respx.mock
async def test_401_fails_fast_with_an_operator_message(
    azure: AzureSpeech, clips: dict[str, bytes], sleeps: SleepRecorder
) -> None:
    route = respx.post(STT).respond(401, json={"error": {"code": "401", "message": "Access denied due to invalid key"}})
    with pytest.raises(SpeechAuthError, match=r"AZURE_SPEECH_KEY.*Access denied due to invalid key") as caught:
        await azure.transcribe(clips["ogg"], "voice.ogg", "audio/ogg", ["en-US"])
    assert (route.call_count, sleeps.delays, caught.value.status, caught.value.transient) == (1, [], 401, False)


@respx.mock
async def test_5xx_is_retried_with_backoff_then_gives_up(
    azure: AzureSpeech, clips: dict[str, bytes], sleeps: SleepRecorder
) -> None:
    route = respx.post(STT).mock(
        side_effect=[
            httpx.Response(500),
            httpx.Response(502),
            httpx.ConnectError("reset"),
            httpx.Response(503, text="Service Unavailable"),
        ]
    )
    with pytest.raises(SpeechUnavailable, match=r"503\. Service Unavailable") as caught:
        await azure.transcribe(clips["ogg"], "voice.ogg", "audio/ogg", ["en-US"])
    assert (route.call_count, sleeps.delays, caught.value.transient) == (4, [0.5, 1.0, 2.0], True)


@respx.mock
async def test_400_is_a_request_error_without_retries(azure: AzureSpeech, clips: dict[str, bytes]) -> None:
    route = respx.post(STT).respond(400, json={"code": "InvalidArgument", "message": "Unsupported locale xx-XX."})
    with pytest.raises(SpeechRequestError, match=r"\(400\). InvalidArgument: Unsupported locale xx-XX."):
        await azure.transcribe(clips["ogg"], "voice.ogg", "audio/ogg", ["xx-XX"])
    assert route.call_count == 1


@respx.mock
async def test_synthesize_sends_escaped_ssml_with_format_and_key_headers(
    azure: AzureSpeech, clips: dict[str, bytes]
) -> None:
    route = respx.post(TTS).respond(200, content=clips["ogg"], headers={"Content-Type": "audio/ogg"})

    spoken = await azure.synthesize("Check-out is at 11 <b>sharp</b> & \x07the 'key' goes \"back\".", locale="pt-PT")

    assert spoken == clips["ogg"]
    request = route.calls.last.request
    assert request.headers["Ocp-Apim-Subscription-Key"] == KEY
    assert request.headers["Content-Type"] == "application/ssml+xml"
    assert request.headers["X-Microsoft-OutputFormat"] == "ogg-48khz-16bit-mono-opus"
    assert request.headers["User-Agent"] == "chatwoot-str-sidecar-speech/0.1"
    assert request.content.decode() == (
        "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' xml:lang='pt-PT'>"
        "<voice name='pt-PT-RaquelNeural'>Check-out is at 11 &lt;b&gt;sharp&lt;/b&gt; &amp; the 'key' goes "
        '"back".</voice></speak>'
    )


@pytest.mark.parametrize(
    "locale,voice,lang",
    [
        ("en-GB", None, "en-GB"),
        ("de", None, "de-DE"),
        ("pt-BR", None, "pt-PT"),  # Raquel speaks pt-PT whatever was asked
        ("nl-NL", None, "nl-NL"),  # the multilingual fallback reads Dutch
        ("fr-FR", "en-US-AndrewMultilingualNeural", "fr-FR"),
    ],
)
@respx.mock
async def test_synthesize_mp3_picks_voice_and_language(
    azure: AzureSpeech, clips: dict[str, bytes], locale: str, voice: str | None, lang: str
) -> None:
    route = respx.post(TTS).respond(200, content=clips["mp3"])
    await azure.synthesize("Hello.", locale=locale, voice=voice, fmt="mp3")

    request = route.calls.last.request
    expected_voice = voice or azure.voice_for(locale)
    assert request.headers["X-Microsoft-OutputFormat"] == "audio-24khz-48kbitrate-mono-mp3"
    assert f"xml:lang='{lang}'><voice name='{expected_voice}'>Hello.</voice>" in request.content.decode()
    assert {
        "en-GB": "en-GB-SoniaNeural",
        "de": "de-DE-KatjaNeural",
        "pt-BR": "pt-PT-RaquelNeural",
        "nl-NL": "en-US-AvaMultilingualNeural",
        "fr-FR": "fr-FR-DeniseNeural",
    }[locale] == azure.voice_for(locale)


@respx.mock
async def test_long_text_is_synthesized_in_sentence_chunks_and_joined(
    clips: dict[str, bytes], sleeps: SleepRecorder
) -> None:
    route = respx.post(TTS).respond(200, content=clips["ogg"])
    text = "The door code is 4711. Parking is behind the building. Check-out is at eleven. Enjoy your stay!"
    async with httpx.AsyncClient() as http:
        azure = AzureSpeech(http, key=KEY, region="westeurope", max_chunk_chars=60, sleep=sleeps)
        spoken = await azure.synthesize(text, locale="en-US")

    chunks = [call.request.content.decode().split("Neural'>")[1].split("</voice>")[0] for call in route.calls]
    assert chunks == [
        "The door code is 4711. Parking is behind the building.",
        "Check-out is at eleven. Enjoy your stay!",
    ]
    info = await audio.probe(spoken)
    one = await audio.duration_ms(clips["ogg"])
    assert (info.format_name, info.codec) == ("ogg", "opus")
    assert abs(info.duration_ms - (2 * one + 150)) < 150


@respx.mock
async def test_synthesize_retries_429_and_fails_fast_on_401(
    azure: AzureSpeech, clips: dict[str, bytes], sleeps: SleepRecorder
) -> None:
    route = respx.post(TTS).mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after-ms": "1500"}),
            httpx.Response(200, content=clips["mp3"]),
            httpx.Response(401),
        ]
    )
    assert await azure.synthesize("Hi.", locale="en-US", fmt="mp3") == clips["mp3"]
    with pytest.raises(SpeechAuthError):
        await azure.synthesize("Hi.", locale="en-US", fmt="mp3")
    assert (route.call_count, sleeps.delays) == (3, [1.5])


async def test_empty_text_is_refused_before_any_request(azure: AzureSpeech) -> None:
    with pytest.raises(ValueError, match="empty"):
        await azure.synthesize(" \n\x00 ", locale="en-US")


@respx.mock
async def test_custom_endpoint_serves_both_directions(clips: dict[str, bytes]) -> None:
    root = "https://my-speech.cognitiveservices.azure.com"
    stt = respx.post(f"{root}/speechtotext/transcriptions:transcribe").respond(200, json=recognized())
    tts = respx.post(f"{root}/cognitiveservices/v1").respond(200, content=clips["ogg"])
    async with httpx.AsyncClient() as http:
        azure = AzureSpeech(http, key=KEY, region="westeurope", endpoint=root + "/", api_version="2024-11-15")
        await azure.transcribe(clips["ogg"], "v.ogg", "audio/ogg", ["en-US"])
        await azure.synthesize("Hi.", locale="en-US")

    assert stt.calls.last.request.url.params["api-version"] == "2024-11-15"
    assert tts.call_count == 1


async def test_regional_roots_and_missing_configuration() -> None:
    assert speech_roots(region="WestEurope") == (
        "https://westeurope.api.cognitive.microsoft.com",
        "https://westeurope.tts.speech.microsoft.com",
    )
    with pytest.raises(ValueError, match="AZURE_SPEECH_REGION"):
        speech_roots()
    async with httpx.AsyncClient() as http:
        with pytest.raises(ValueError, match="AZURE_SPEECH_KEY"):
            AzureSpeech(http, key="", region="westeurope")


@pytest.mark.parametrize(
    "headers,expected",
    [
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: retry at once
        ({"Retry-After": "soon"}, 0.5),  # unreadable: our own backoff
        ({}, 0.5),
    ],
)
@respx.mock
async def test_retry_after_dates_and_garbage(
    azure: AzureSpeech, clips: dict[str, bytes], sleeps: SleepRecorder, headers: dict[str, str], expected: float
) -> None:
    respx.post(TTS).mock(side_effect=[httpx.Response(429, headers=headers), httpx.Response(200, content=clips["ogg"])])
    await azure.synthesize("Hi.", locale="en-US")
    assert sleeps.delays == [expected]


@respx.mock
async def test_a_200_without_audio_or_json_is_unavailable(azure: AzureSpeech, clips: dict[str, bytes]) -> None:
    respx.post(TTS).respond(200, content=b"")
    respx.post(STT).respond(200, text="<html>gateway</html>")
    with pytest.raises(SpeechUnavailable, match="no audio"):
        await azure.synthesize("Hi.", locale="en-US")
    with pytest.raises(SpeechUnavailable, match="not JSON"):
        await azure.transcribe(clips["ogg"], "v.ogg", "audio/ogg", ["en-US"])
