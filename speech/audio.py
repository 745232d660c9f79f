"""Audio helpers over ffmpeg/ffprobe (and pydub for in-memory PCM): probe, convert, encode (also PCM that
is still arriving), join.

Guests' voice notes are personal data, so nothing stays on disk: ffmpeg needs a seekable file for
MP4/M4A input, and for MP3/WAV output, and those files live only inside `private_workdir()` (a 0700
directory holding 0600 files, removed in `finally`). PCM travels through pipes.

Guest files are untrusted input for ffmpeg: every read is limited to local files and pipes
(`-protocol_whitelist`) and to plain audio containers (`-format_whitelist`), so a playlist disguised
as a voice note cannot make ffmpeg open URLs or local files.

Guests' audio is also bounded in time, not only in bytes (the download cap): hours of low-bitrate Opus
fit in a few megabytes and decode to gigabytes of PCM. Whatever is to be transcribed has its duration read
from the header first (ffprobe, no decoding) and every decode of it stops just past `max_seconds`
(ffmpeg's `-t`), so a header that lies costs at most the limit's worth of memory; longer audio raises
AudioTooLong. Our own synthesized audio is decoded without a limit.

Which uploads Azure fast transcription gets as they are (`prepare_for_azure`): OGG with Opus or Speex,
MP3, WAV with PCM/A-law/mu-law, WebM with Opus, FLAC, ADTS AAC and AMR, i.e. what its documentation
lists. Everything else — notably M4A/MP4 (AAC inside an MP4 container, what iPhones and the web widget
send), 3GP, CAF, WebM with Vorbis, anything unknown — becomes 16 kHz mono 16-bit WAV: lossless, the
rate speech models use internally, and about 32 kB per second, well inside Azure's limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import tempfile
import wave
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydub import AudioSegment

from speech.errors import AudioFormatError, AudioTooLong
from speech.types import CONTENT_TYPES, EXTENSIONS, AudioFormat

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
TOOL_TIMEOUT_S = 120.0
SPEECH_RATE = 16_000  # Hz: what Whisper and Azure's speech models work at
DEFAULT_MAX_SECONDS = 600.0  # VOICE_MAX_SECONDS: ten minutes is a long voice note; 19 MB of 16 kHz PCM

# ffmpeg demuxers a voice note may legitimately use (matched against the demuxer's name list).
ALLOWED_DEMUXERS = "ogg,mp3,wav,matroska,webm,mov,mp4,m4a,3gp,flac,aac,amr,asf,caf"
_INPUT_GUARD = ["-protocol_whitelist", "file,pipe", "-format_whitelist", ALLOWED_DEMUXERS]

# (ffprobe format_name, codec) -> (content type, extension) for audio Azure takes without conversion.
AZURE_PASSTHROUGH: dict[tuple[str, str], tuple[str, str]] = {
    ("ogg", "opus"): ("audio/ogg", ".ogg"),
    ("ogg", "speex"): ("audio/ogg", ".ogg"),
    ("mp3", "mp3"): ("audio/mpeg", ".mp3"),
    ("wav", "pcm_s16le"): ("audio/wav", ".wav"),
    ("wav", "pcm_alaw"): ("audio/wav", ".wav"),
    ("wav", "pcm_mulaw"): ("audio/wav", ".wav"),
    ("matroska,webm", "opus"): ("audio/webm", ".webm"),
    ("flac", "flac"): ("audio/flac", ".flac"),
    ("aac", "aac"): ("audio/aac", ".aac"),
    ("amr", "amr_nb"): ("audio/amr", ".amr"),
    ("amr", "amr_wb"): ("audio/amr", ".amr"),
}

# How we encode each output format (mono speech; Opus at 48 kHz is what WhatsApp voice notes use).
ENCODERS: dict[str, list[str]] = {
    "ogg": ["-c:a", "libopus", "-b:a", "32k", "-application", "voip", "-ar", "48000", "-f", "ogg"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "48k", "-ar", "24000", "-f", "mp3"],
}
# What counts as "already in that format" for ensure_format: (format_name, codec).
_NATIVE: dict[str, tuple[str, str]] = {"ogg": ("ogg", "opus"), "mp3": ("mp3", "mp3"), "wav": ("wav", "pcm_s16le")}


@dataclass(frozen=True)
class AudioInfo:
    """What ffprobe says about a file; `duration_ms` is measured by decoding when the header lacks it."""

    format_name: str
    codec: str
    duration_ms: int
    sample_rate: int | None
    channels: int | None


@dataclass(frozen=True)
class PreparedAudio:
    """Audio ready to upload: bytes, a filename whose extension matches them, their content type."""

    data: bytes
    filename: str
    content_type: str
    info: AudioInfo
    converted: bool


@contextlib.contextmanager
def private_workdir() -> Iterator[Path]:
    """A fresh 0700 directory under the temp dir, removed with everything in it on exit."""
    path = Path(tempfile.mkdtemp(prefix="speech-"))  # mkdtemp creates it 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_private(directory: Path, name: str, data: bytes) -> Path:
    """Write `data` to a new 0600 file (never an existing one) inside `directory`."""
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def create_private(directory: Path, name: str) -> Path:
    """Reserve an empty 0600 file for a tool to overwrite, so its output is private from the start."""
    return write_private(directory, name, b"")


async def run_tool(argv: Sequence[str], *, stdin: bytes | None = None, timeout: float = TOOL_TIMEOUT_S) -> bytes:
    """Run a command, feed it `stdin`, return its stdout; AudioFormatError on failure or timeout."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise AudioFormatError(f"{argv[0]} is not installed; install it (apt-get install ffmpeg espeak-ng)") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        await _kill(proc)
        raise AudioFormatError(f"{Path(argv[0]).name} did not finish within {timeout:.0f}s") from None
    except BaseException:  # cancelled: never leave the child running
        await _kill(proc)
        raise
    if proc.returncode != 0:
        detail = err.decode(errors="replace").strip().splitlines()
        raise AudioFormatError(f"{Path(argv[0]).name} failed: {detail[-1] if detail else f'exit {proc.returncode}'}")
    return out


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


def ffmpeg_argv(*args: str) -> list[str]:
    """An ffmpeg command line: quiet, never interactive, overwriting its (private) output file."""
    return [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]


async def _probe_file(path: Path) -> dict[str, Any]:
    out = await run_tool(
        [
            FFPROBE,
            "-v",
            "error",
            *_INPUT_GUARD,
            "-show_entries",
            "format=format_name,duration:stream=codec_type,codec_name,sample_rate,channels",
            "-of",
            "json",
            str(path),
        ]
    )
    return json.loads(out or b"{}")


async def _decode_file(path: Path, sample_rate: int, channels: int, max_seconds: float | None = None) -> bytes:
    """Raw PCM of the file; with `max_seconds`, ffmpeg stops one second past it and AudioTooLong says so."""
    cap = ["-t", f"{max_seconds + 1:.3f}"] if max_seconds is not None else []
    pcm = await run_tool(
        ffmpeg_argv(
            *_INPUT_GUARD,
            "-i",
            str(path),
            "-vn",
            "-map_metadata",
            "-1",
            "-ac",
            str(channels),
            "-ar",
            str(sample_rate),
            *cap,
            "-f",
            "s16le",
            "-c:a",
            "pcm_s16le",
            "pipe:1",
        )
    )
    if max_seconds is not None and len(pcm) > max_seconds * 2 * sample_rate * channels:
        raise AudioTooLong(max_seconds)
    return pcm


async def _check_length(path: Path, max_seconds: float | None) -> None:
    """AudioTooLong when the header already says the audio is too long (nothing decoded)."""
    if max_seconds is None:
        return
    out = await run_tool(
        [FFPROBE, "-v", "error", *_INPUT_GUARD, "-show_entries", "format=duration", "-of", "json", str(path)]
    )
    duration = _float(json.loads(out or b"{}").get("format", {}).get("duration"))
    if duration is not None and duration > max_seconds:
        raise AudioTooLong(max_seconds, round(duration * 1000))


async def probe(audio: bytes, *, max_seconds: float | None = DEFAULT_MAX_SECONDS) -> AudioInfo:
    """Container, codec and duration of `audio`; AudioFormatError when it holds no audio stream,
    AudioTooLong past `max_seconds`."""
    if not audio:
        raise AudioFormatError("the audio is empty")
    with private_workdir() as work:
        path = write_private(work, "input", audio)
        return await _info(path, max_seconds)


async def _info(path: Path, max_seconds: float | None = DEFAULT_MAX_SECONDS) -> AudioInfo:
    data = await _probe_file(path)
    streams = [s for s in data.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise AudioFormatError("the file holds no audio stream")
    stream, fmt = streams[0], data.get("format", {})
    duration = _float(fmt.get("duration"))
    if duration is None:  # browser MediaRecorder WebM often has no duration in its header
        pcm = await _decode_file(path, SPEECH_RATE, 1, max_seconds)
        duration_ms = len(pcm) * 1000 // (2 * SPEECH_RATE)
    elif max_seconds is not None and duration > max_seconds:
        raise AudioTooLong(max_seconds, round(duration * 1000))
    else:
        duration_ms = round(duration * 1000)
    rate = _float(stream.get("sample_rate"))
    return AudioInfo(
        format_name=str(fmt.get("format_name", "")),
        codec=str(stream.get("codec_name", "")),
        duration_ms=duration_ms,
        sample_rate=int(rate) if rate else None,
        channels=stream.get("channels"),
    )


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


async def duration_ms(audio: bytes) -> int:
    """Length of `audio` in milliseconds (our own audio: no limit)."""
    return (await probe(audio, max_seconds=None)).duration_ms


async def decode_pcm(
    audio: bytes, *, sample_rate: int = SPEECH_RATE, channels: int = 1, max_seconds: float | None = None
) -> bytes:
    """Decode any supported audio to raw signed 16-bit little-endian PCM.

    With `max_seconds` (guests' audio), the header is checked before decoding and the decode stops just
    past the limit: AudioTooLong either way, and never more than the limit's worth of PCM in memory.
    """
    if not audio:
        raise AudioFormatError("the audio is empty")
    with private_workdir() as work:
        path = write_private(work, "input", audio)
        await _check_length(path, max_seconds)
        pcm = await _decode_file(path, sample_rate, channels, max_seconds)
    if not pcm:
        raise AudioFormatError("the audio decoded to nothing")
    return pcm


def pcm_to_wav(pcm: bytes, *, sample_rate: int, channels: int = 1) -> bytes:
    """Wrap raw 16-bit PCM in a WAV header, in memory."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buf.getvalue()


def wav_to_pcm(data: bytes) -> tuple[int, bytes] | None:
    """(sample rate, frames) of a mono 16-bit PCM WAV; None for anything else."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            if (wav.getnchannels(), wav.getsampwidth(), wav.getcomptype()) != (1, 2, "NONE"):
                return None
            return wav.getframerate(), wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        return None


async def to_wav(audio: bytes, *, sample_rate: int = SPEECH_RATE, channels: int = 1) -> bytes:
    """Any supported audio as 16-bit PCM WAV (16 kHz mono by default: what speech models want)."""
    return pcm_to_wav(
        await decode_pcm(audio, sample_rate=sample_rate, channels=channels), sample_rate=sample_rate, channels=channels
    )


async def encode_pcm(pcm: bytes, *, sample_rate: int, fmt: AudioFormat, channels: int = 1) -> bytes:
    """Encode raw 16-bit PCM as OGG/Opus, MP3 or WAV."""
    if fmt == "wav":
        return pcm_to_wav(pcm, sample_rate=sample_rate, channels=channels)
    if fmt not in ENCODERS:
        raise ValueError(f"unsupported output format {fmt!r}")
    with private_workdir() as work:
        out = create_private(work, f"output{EXTENSIONS[fmt]}")  # a file, so MP3 gets its Xing header
        await run_tool(
            ffmpeg_argv(
                "-f",
                "s16le",
                "-ar",
                str(sample_rate),
                "-ac",
                str(channels),
                "-i",
                "pipe:0",
                "-map_metadata",
                "-1",
                "-ac",
                "1",
                *ENCODERS[fmt],
                str(out),
            ),
            stdin=pcm,
        )
        return out.read_bytes()


async def encode_pcm_stream(pcm: AsyncIterator[bytes], *, sample_rate: int, fmt: AudioFormat) -> bytes:
    """Encode mono 16-bit PCM to `fmt` while it is still arriving: ffmpeg encodes the first pieces of a
    reply while the last are being synthesized, so little encoding is left once they are all in.

    The streaming twin of `encode_pcm` (same encoder settings, same private work folder).
    """
    with private_workdir() as work:
        out = create_private(work, f"output{EXTENSIONS[fmt]}")  # a file, so MP3 gets its Xing header
        argv = ffmpeg_argv(
            "-f",
            "s16le",
            "-ar",
            str(sample_rate),
            "-ac",
            "1",
            "-i",
            "pipe:0",
            "-map_metadata",
            "-1",
            "-ac",
            "1",
            *ENCODERS[fmt],
            str(out),
        )
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
            )
        except FileNotFoundError:
            raise AudioFormatError("ffmpeg is not installed; install it (apt-get install ffmpeg)") from None
        assert proc.stdin is not None and proc.stderr is not None
        try:
            try:
                async for chunk in pcm:
                    proc.stdin.write(chunk)
                    await proc.stdin.drain()
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass  # ffmpeg stopped reading: its exit status and message below say why
            err = await asyncio.wait_for(proc.stderr.read(), TOOL_TIMEOUT_S)
            await asyncio.wait_for(proc.wait(), TOOL_TIMEOUT_S)
        except BaseException:
            await _kill(proc)
            raise
        if proc.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            raise AudioFormatError(f"ffmpeg failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
        return out.read_bytes()


async def convert(audio: bytes, fmt: AudioFormat) -> bytes:
    """Re-encode `audio` as `fmt` (mono)."""
    rate = 48_000 if fmt == "ogg" else 24_000
    return await encode_pcm(await decode_pcm(audio, sample_rate=rate), sample_rate=rate, fmt=fmt)


async def ensure_format(audio: bytes, fmt: AudioFormat) -> bytes:
    """`audio` in `fmt`, converted only when it is not already (same bytes back when it is)."""
    info = await probe(audio, max_seconds=None)  # our own synthesized audio
    if (info.format_name, info.codec) == _NATIVE[fmt]:
        return audio
    return await convert(audio, fmt)


async def prepare_for_azure(
    audio: bytes, filename: str, content_type: str | None = None, *, max_seconds: float | None = DEFAULT_MAX_SECONDS
) -> PreparedAudio:
    """Pass what Azure fast transcription reads as it is; turn anything else into 16 kHz mono WAV.

    The decision follows the probed container and codec, not the declared content type, which
    Chatwoot does not always get right (widget direct uploads, `audio/opus` relabelling). AudioTooLong
    past `max_seconds`, found before anything is decoded when the header has a duration.
    """
    stem = PurePosixPath(filename or "audio").stem or "audio"
    with private_workdir() as work:
        path = write_private(work, "input", audio)
        info = await _info(path, max_seconds)
        known = AZURE_PASSTHROUGH.get((info.format_name, info.codec))
        if known is not None:
            return PreparedAudio(audio, stem + known[1], known[0], info, converted=False)
        pcm = await _decode_file(path, SPEECH_RATE, 1, max_seconds)
    return PreparedAudio(
        pcm_to_wav(pcm, sample_rate=SPEECH_RATE), f"{stem}.wav", CONTENT_TYPES["wav"], info, converted=True
    )


async def join_segments(segments: Sequence[bytes], fmt: AudioFormat, *, gap_ms: int = 150) -> bytes:
    """Join audio files (e.g. one per sentence) into one `fmt` file with a short pause between them.

    OGG/Opus and MP3 cannot be glued byte-wise (each has its own headers and granule positions),
    so each part is decoded to PCM, concatenated with pydub and encoded once.
    """
    if not segments:
        raise ValueError("nothing to join")
    if len(segments) == 1:
        return await ensure_format(segments[0], fmt)
    rate = 48_000 if fmt == "ogg" else 24_000
    pieces = [
        AudioSegment(data=await decode_pcm(part, sample_rate=rate), sample_width=2, frame_rate=rate, channels=1)
        for part in segments
    ]
    pause = AudioSegment.silent(duration=gap_ms, frame_rate=rate)
    joined = pieces[0]
    for piece in pieces[1:]:
        joined = joined + pause + piece
    return await encode_pcm(joined.raw_data, sample_rate=rate, fmt=fmt)
