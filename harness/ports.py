"""Spare TCP ports on 127.0.0.1, never the shared services' own."""

from __future__ import annotations

import socket
import time

RESERVED = {5432, 6379, 8000}


def spare_port() -> int:
    """A port nobody listens on right now (the kernel's pick; the shared services' ports excluded)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in RESERVED:
            return port


def wait_listening(port: int, timeout_s: float) -> bool:
    """Whether something accepts connections on 127.0.0.1:port within the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False
