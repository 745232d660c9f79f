"""Real audio for the speech tests, generated with espeak-ng and ffmpeg (nothing large is committed),
and a guard that every test leaves the temp directory empty (voice notes are personal data)."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from speech.tests.helpers import SleepRecorder, speak_to_wav

PHRASE = "What time is check out tomorrow?"

# ffmpeg arguments per container: the shapes guests and the agent dashboard really send.
ENCODINGS: dict[str, list[str]] = {
    "wav": ["-c:a", "pcm_s16le", "-f", "wav"],
    "ogg": ["-c:a", "libopus", "-b:a", "32k", "-f", "ogg"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"],
    "m4a": ["-c:a", "aac", "-b:a", "64k", "-f", "ipod"],
    "webm": ["-c:a", "libopus", "-b:a", "32k", "-f", "webm"],
}


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """PHRASE spoken by espeak-ng in every container we expect, plus 2 s of silence as OGG/Opus."""
    work = tmp_path_factory.mktemp("clips")
    source = speak_to_wav(PHRASE, work / "source.wav")
    result: dict[str, bytes] = {}
    for ext, args in ENCODINGS.items():
        out = work / f"speech.{ext}"
        _ffmpeg("-i", str(source), "-ac", "1", *args, str(out))
        result[ext] = out.read_bytes()
    silence = work / "silence.ogg"
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "2", "-c:a", "libopus", str(silence))
    result["silence"] = silence.read_bytes()
    return result


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point tempfile (and child processes) at an empty folder and check it is empty afterwards."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    yield folder
    left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert left == [], f"temporary files left behind: {left}"


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()
