"""Voicemail transcripts: download the recording from Aircall's media link and run it through the same
speech backend as Chatwoot voice notes (Azure, or the offline Whisper model)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.context import JobContext
from speech import DownloadPolicy, download_attachment
from speech.download import Resolver, resolve_host

log = logging.getLogger("sidecar.aircall")


def transcriber_for(ctx: JobContext, *, resolver: Resolver | None = None) -> Callable[[str], Awaitable[str | None]]:
    """The default voicemail transcriber of a worker: `async (url) -> text or None`.

    `resolver` replaces DNS for the download's address check (tests run without DNS)."""

    async def transcribe(url: str) -> str | None:
        # Aircall's media links are public presigned URLs: no private host is trusted here.
        policy = DownloadPolicy(max_bytes=ctx.settings.speech_max_audio_bytes)
        audio = await download_attachment(ctx.http, url, policy, resolver=resolver or resolve_host)
        locales = [loc.strip() for loc in ctx.settings.voice_locales.split(",") if loc.strip()]
        heard = await ctx.speech.transcribe(
            audio.data, audio.filename or "voicemail.mp3", audio.content_type or "audio/mpeg", locales
        )
        return heard.text.strip() or None

    return transcribe
