"""The speech error tree, in one place so callers know what to catch.

    SpeechError
    ├── AudioDownloadError            the attachment could not be fetched
    │   ├── AttachmentNotFound        404 after the short retries (blob not uploaded yet, or deleted)
    │   ├── AttachmentTooLarge        over the size cap (Content-Length or while streaming)
    │   ├── RedirectRefused           a hop pointed somewhere we will not go (private address, bad scheme, loop)
    │   └── DownloadFailed            any other HTTP status, DNS or transport failure
    ├── AudioFormatError              ffmpeg/ffprobe could not read or write the audio
    ├── AudioTooLong                  longer than the limit (VOICE_MAX_SECONDS): a person listens to it
    ├── UnintelligibleAudio           silence or speech nobody could make out: hand off with a note
    ├── SpeechAuthError               the speech service refused our key (401/403): fix configuration
    ├── SpeechRequestError            the speech service rejected the request (400/415/...): our bug or bad input
    └── SpeechUnavailable             429/5xx/transport after bounded retries: try again later

`transient` says whether running the same job again later may succeed, so the job layer can
retry those and hand the conversation off (with a note) for the rest.
"""

from __future__ import annotations

from bot.errors import SidecarError, UpstreamPermanent, UpstreamTransient


class SpeechError(SidecarError):
    """Base class for everything the speech package raises on purpose."""

    transient: bool = False


class AudioDownloadError(SpeechError):
    """The attachment could not be downloaded."""


class AttachmentNotFound(AudioDownloadError):
    """Still 404 after the short retries; Chatwoot may not have finished uploading the blob."""

    transient = True


class AttachmentTooLarge(AudioDownloadError):
    """The attachment is larger than the configured cap; it was not read to the end."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        shown = f"{size} bytes" if size is not None else "more"
        super().__init__(f"attachment is {shown}, over the {limit}-byte limit")
        self.limit = limit
        self.size = size


class RedirectRefused(AudioDownloadError):
    """A URL or redirect target is not allowed (private address, scheme, too many hops)."""


class DownloadFailed(AudioDownloadError):
    """Another HTTP status, a DNS failure or a transport error."""

    def __init__(self, message: str, *, status: int | None = None, transient: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


class AudioFormatError(SpeechError):
    """ffmpeg/ffprobe could not decode or encode the audio (corrupt or unsupported file)."""


class AudioTooLong(SpeechError):
    """Longer than we transcribe; found from the header (ffprobe) or by a decode that stops at the limit.

    Hours of low-bitrate Opus fit within the download cap yet decode to gigabytes of PCM, so long audio is
    refused before it is decoded whole. `duration_ms` is None when only "longer than the limit" is known.
    """

    def __init__(self, limit_s: float, duration_ms: int | None = None) -> None:
        limit = f"the {_clock(limit_s)} limit (VOICE_MAX_SECONDS)"
        super().__init__(
            f"the audio lasts {_clock(duration_ms / 1000)}, over {limit}"
            if duration_ms is not None
            else f"the audio is longer than {limit}"
        )
        self.limit_s = limit_s
        self.duration_ms = duration_ms


def _clock(seconds: float) -> str:
    """2:13:20, or 10:00 under an hour."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class UnintelligibleAudio(SpeechError):
    """Silence or speech that could not be recognised; a person should listen to it."""

    def __init__(
        self,
        message: str = "no intelligible speech in the audio",
        *,
        duration_ms: int | None = None,
        confidence: float | None = None,
    ) -> None:
        super().__init__(message)
        self.duration_ms = duration_ms
        self.confidence = confidence


class SpeechAuthError(SpeechError, UpstreamPermanent):
    """The speech service refused the key or the region/endpoint does not match it."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SpeechRequestError(SpeechError, UpstreamPermanent):
    """The speech service rejected the request as malformed; retrying will not help."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SpeechUnavailable(SpeechError, UpstreamTransient):
    """Rate limited or a server/transport failure that outlasted our retries."""

    transient = True

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
