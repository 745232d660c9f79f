"""The sidecar's error tree: the families every other module's exceptions belong to.

Callers catch a family, not a vendor: a job retries on `UpstreamTransient` whoever raised it, the web
routes answer 401 on any `VerificationRefused`, start-up stops on `ConfigurationError`. Each client
(Chatwoot, Aircall, Guesty, Groq, Azure Speech) keeps its own base class for "anything from me" and
subclasses these families for what each failure means::

    SidecarError
    ├── ConfigurationError     a setting is missing or wrong; the message names the variable and the fix
    ├── VerificationRefused    a webhook failed authentication (bad signature, token, timestamp) -> 401
    ├── UpstreamError          a call to another service failed; `service` names it
    │   ├── UpstreamTransient  worth retrying: timeouts, connection errors, 5xx, 429
    │   └── UpstreamPermanent  retrying cannot help: 4xx, a refused token, a missing resource
    ├── GatingRefused          the asker is not entitled to what they asked for (codes, addresses)
    └── JobControl             how a job ends other than by succeeding
        ├── Defer              run the event again later, without counting an attempt
        └── PermanentError     the event cannot succeed (bad data); fail it at once

This module imports nothing of ours: it is the bottom of the house.
"""

from __future__ import annotations


class SidecarError(Exception):
    """Anything the sidecar raises on purpose."""


class ConfigurationError(SidecarError):
    """A setting is missing or invalid; raised at start-up where possible."""


class VerificationRefused(SidecarError):
    """An inbound webhook failed authentication; the route answers 401 with this message."""


class UpstreamError(SidecarError):
    """A call to another service failed."""

    service = "upstream"


class UpstreamTransient(UpstreamError):
    """The failure may pass: retry with backoff."""


class UpstreamPermanent(UpstreamError):
    """Retrying the same call cannot help."""


class GatingRefused(SidecarError):
    """The asker may not be told this (access details, an exact address)."""


class JobControl(SidecarError):
    """Raised by a job handler to end its run in a way other than success."""


class Defer(JobControl):
    """Run the event again later without counting an attempt (e.g. let a guest finish typing)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"deferred {seconds:.1f}s")
        self.seconds = seconds


class PermanentError(JobControl):
    """Retrying cannot help (bad data); the event fails at once."""
