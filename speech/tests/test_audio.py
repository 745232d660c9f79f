"""Probing, converting and joining real audio with ffmpeg, without leaving files behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from speech import audio
from speech.errors import AudioFormatError
from speech.tests.helpers import file_mode

EXPECTED_PROBE = {
    "wav": ("wav", "pcm_s16le"),
    "ogg": ("ogg", "opus"),
    "mp3": ("mp3", "mp3"),
    "m4a": ("mov,mp4,m4a,3gp,3g2,mj2", "aac"),
    "webm": ("matroska,webm", "opus"),
}


@pytest.mark.parametrize("ext", sorted(EXPECTED_PROBE))
async def test_probe_reports_container_codec_and_duration(clips: dict[str, bytes], ext: str) -> None:
    reference = await audio.duration_ms(clips["wav"])
    info = await audio.probe(clips[ext])

    assert (info.format_name, info.codec) == EXPECTED_PROBE[ext]
    assert info.channels == 1
    assert 1000 < reference < 3000
    assert abs(info.duration_ms - reference) < 120  # encoder padding only


async def test_probe_measures_webm_without_duration_header(clips: dict[str, bytes]) -> None:
    # Browser MediaRecorder WebM carries no duration; streaming through a pipe reproduces that.
    unsized = await audio.run_tool(
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
        stdin=clips["ogg"],
    )
    info = await audio.probe(unsized)

    assert info.format_name == "matroska,webm"
    assert abs(info.duration_ms - await audio.duration_ms(clips["wav"])) < 120


@pytest.mark.parametrize(
    "ext,content_type,filename",
    [
        ("ogg", "audio/ogg", "voice.ogg"),
        ("mp3", "audio/mpeg", "voice.mp3"),
        ("wav", "audio/wav", "voice.wav"),
        ("webm", "audio/webm", "voice.webm"),
    ],
)
async def test_azure_gets_ogg_mp3_wav_webm_as_they_are(
    clips: dict[str, bytes], ext: str, content_type: str, filename: str
) -> None:
    prepared = await audio.prepare_for_azure(clips[ext], "voice.bin", "application/octet-stream")

    assert prepared.data is clips[ext]
    assert (prepared.filename, prepared.content_type, prepared.converted) == (filename, content_type, False)


async def test_azure_gets_m4a_as_16khz_mono_wav(clips: dict[str, bytes]) -> None:
    prepared = await audio.prepare_for_azure(clips["m4a"], "IMG_0042.m4a", "audio/x-m4a")
    info = await audio.probe(prepared.data)

    assert (prepared.filename, prepared.content_type, prepared.converted) == ("IMG_0042.wav", "audio/wav", True)
    assert (info.format_name, info.codec, info.sample_rate, info.channels) == ("wav", "pcm_s16le", 16000, 1)
    assert prepared.data[:4] == b"RIFF"


async def test_ensure_format_keeps_matching_audio_and_converts_the_rest(clips: dict[str, bytes]) -> None:
    same = await audio.ensure_format(clips["ogg"], "ogg")
    mp3 = await audio.ensure_format(clips["ogg"], "mp3")
    wav = await audio.ensure_format(clips["m4a"], "wav")

    assert same is clips["ogg"]
    assert ((await audio.probe(mp3)).format_name, (await audio.probe(wav)).codec) == ("mp3", "pcm_s16le")


@pytest.mark.parametrize("fmt,expected", [("ogg", ("ogg", "opus")), ("mp3", ("mp3", "mp3"))])
async def test_join_segments_reencodes_into_one_file(
    clips: dict[str, bytes], fmt: audio.AudioFormat, expected: tuple[str, str]
) -> None:
    one = await audio.duration_ms(clips["ogg"])
    joined = await audio.join_segments([clips["ogg"], clips["mp3"], clips["m4a"]], fmt, gap_ms=200)
    info = await audio.probe(joined)

    assert (info.format_name, info.codec) == expected
    # three clips plus two 200 ms pauses; mp3 decoding adds a little padding per clip
    assert abs(info.duration_ms - (3 * one + 400)) < 250


async def test_decode_pcm_gives_16khz_mono_samples(clips: dict[str, bytes]) -> None:
    pcm = await audio.decode_pcm(clips["ogg"])
    expected_ms = await audio.duration_ms(clips["wav"])

    assert len(pcm) % 2 == 0
    assert abs(len(pcm) / 32 - expected_ms) < 120  # 16,000 samples x 2 bytes = 32 bytes per ms


@pytest.mark.parametrize("data", [b"", b"this is not audio at all" * 40])
async def test_garbage_is_an_audio_format_error(data: bytes) -> None:
    with pytest.raises(AudioFormatError):
        await audio.probe(data)
    with pytest.raises(AudioFormatError):
        await audio.decode_pcm(data)


async def test_a_playlist_disguised_as_audio_cannot_read_local_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF")
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile://{secret}\n#EXT-X-ENDLIST\n".encode()

    with pytest.raises(AudioFormatError, match="ffprobe failed"):
        await audio.probe(playlist)
    with pytest.raises(AudioFormatError, match="ffmpeg failed"):
        await audio.decode_pcm(playlist)


def test_private_workdir_is_0700_with_0600_files_and_gone_after_an_error(private_tempdir: Path) -> None:
    with pytest.raises(RuntimeError), audio.private_workdir() as work:
        written = audio.write_private(work, "input", b"voice")
        assert work.parent == private_tempdir
        assert (file_mode(work), file_mode(written)) == (0o700, 0o600)
        raise RuntimeError("boom")
    assert not work.exists()


def test_write_private_never_reuses_an_existing_file() -> None:
    with audio.private_workdir() as work:
        audio.write_private(work, "input", b"one")
        with pytest.raises(FileExistsError):
            audio.write_private(work, "input", b"two")


async def test_missing_tool_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio, "FFPROBE", "/nonexistent/ffprobe")
    with pytest.raises(AudioFormatError, match="not installed"):
        await audio.probe(b"RIFF....")


async def test_a_tool_that_hangs_is_killed() -> None:
    with pytest.raises(AudioFormatError, match="did not finish"):
        await audio.run_tool(["sleep", "5"], timeout=0.2)
