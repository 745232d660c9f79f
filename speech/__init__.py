"""Speech to text and text to speech for voice notes, and the audio handling around them.

The bot pipeline uses: `download_attachment` (fetch a Chatwoot `data_url` safely), `open_speech`
(the configured backend: `transcribe`, `synthesize`), `RedisAudioCache` (shared synthesis cache)
and the error tree in `speech.errors`.
"""

from speech.backend import SpeechBackend, open_speech
from speech.cache import CachedSpeech, MemoryAudioCache, RedisAudioCache
from speech.download import DownloadedAudio, DownloadPolicy, download_attachment
from speech.errors import (
    AttachmentNotFound,
    AttachmentTooLarge,
    AudioDownloadError,
    AudioFormatError,
    AudioTooLong,
    DownloadFailed,
    RedirectRefused,
    SpeechAuthError,
    SpeechError,
    SpeechRequestError,
    SpeechUnavailable,
    UnintelligibleAudio,
)
from speech.types import CONTENT_TYPES, AudioFormat, Transcript, synthesized_filename

__all__ = [
    "CONTENT_TYPES",
    "AttachmentNotFound",
    "AttachmentTooLarge",
    "AudioDownloadError",
    "AudioFormat",
    "AudioFormatError",
    "AudioTooLong",
    "CachedSpeech",
    "DownloadFailed",
    "DownloadPolicy",
    "DownloadedAudio",
    "MemoryAudioCache",
    "RedirectRefused",
    "RedisAudioCache",
    "SpeechAuthError",
    "SpeechBackend",
    "SpeechError",
    "SpeechRequestError",
    "SpeechUnavailable",
    "Transcript",
    "UnintelligibleAudio",
    "download_attachment",
    "open_speech",
    "synthesized_filename",
]
