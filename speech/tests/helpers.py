"""Helpers for the speech tests."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx


def speak_to_wav(text: str, path: Path, voice: str = "en-us") -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "-w", str(path), text], check=True)
    return path


class SleepRecorder:
    """Stands in for asyncio.sleep: records the delays, waits for nothing."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def multipart_fields(request: httpx.Request) -> dict[str, tuple[str | None, str | None, bytes]]:
    """name -> (filename, content type, bytes) of a multipart/form-data request."""
    request.read()
    ctype = request.headers["content-type"]
    assert ctype.startswith("multipart/form-data"), ctype
    match = re.search(r"boundary=([^;]+)", ctype)
    assert match is not None
    boundary = match.group(1).strip('"').encode()
    body = request.content
    fields: dict[str, tuple[str | None, str | None, bytes]] = {}
    for chunk in body.split(b"--" + boundary)[1:-1]:
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = head.decode().split("\r\n")
        disposition = next(h for h in headers if h.lower().startswith("content-disposition"))
        name = re.search(r'name="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        part_type = next((h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("content-type")), None)
        assert name is not None
        fields[name.group(1)] = (filename.group(1) if filename else None, part_type, data.removesuffix(b"\r\n"))
    return fields


def file_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777
