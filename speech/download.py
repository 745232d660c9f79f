"""Download a Chatwoot attachment (`data_url`) safely.

`data_url` is Chatwoot's ActiveStorage redirect route: it answers 302 to the blob on local disk (the
same host) or to a presigned S3/GCS/Azure Blob URL. We follow redirects ourselves so that each hop
is checked before we connect:

- hosts on the allow-list (Chatwoot's own host and storage hosts the operator names) are trusted,
  even on a private network (Chatwoot is often reached as http://chatwoot:3000 inside Docker);
- any other host must be https and must resolve only to public addresses, so a crafted payload or
  redirect cannot make us fetch from loopback, the private network or cloud metadata (169.254.x);
- the body is streamed and abandoned as soon as it passes the size cap;
- a 404 is retried briefly, because Chatwoot can deliver the webhook before the upload has finished.

Known limit: the address is checked before httpx connects and httpx resolves the name again, so a
DNS server answering differently within milliseconds (rebinding) is not covered.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

from speech.errors import AttachmentNotFound, AttachmentTooLarge, DownloadFailed, RedirectRefused
from speech.types import Sleep

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
NOT_FOUND_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0)  # four tries in all, about 3.5 s
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""(host, port) -> the IP addresses the host resolves to."""


async def resolve_host(host: str, port: int) -> list[str]:
    """Resolve with the system resolver in a thread (getaddrinfo blocks)."""
    infos = await asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def is_public_address(address: str) -> bool:
    """False for private, loopback, link-local, reserved, shared (CGNAT), multicast and unspecified."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class DownloadPolicy:
    """Where downloads may go and how much they may read.

    `trusted_hosts` holds host names (no port); an entry "*.example.com" matches any subdomain.
    """

    trusted_hosts: frozenset[str] = field(default_factory=frozenset)
    max_bytes: int = DEFAULT_MAX_BYTES
    not_found_delays: tuple[float, ...] = NOT_FOUND_DELAYS
    max_redirects: int = MAX_REDIRECTS
    timeout_s: float = 30.0

    @classmethod
    def for_chatwoot(cls, chatwoot_url: str, storage_hosts: Iterable[str] = (), **options: Any) -> DownloadPolicy:
        """Trust Chatwoot's host plus the named storage hosts (e.g. 'mybucket.s3.eu-west-1.amazonaws.com')."""
        hosts = {_host_of(h) for h in storage_hosts if h.strip()}
        if chatwoot_url:
            hosts.add(_host_of(chatwoot_url))
        return cls(trusted_hosts=frozenset(hosts), **options)

    @classmethod
    def from_settings(cls, settings: Any) -> DownloadPolicy:
        """Build from Settings; `attachment_storage_hosts` and `speech_max_audio_bytes` are optional fields."""
        storage = getattr(settings, "attachment_storage_hosts", None) or ()
        if isinstance(storage, str):
            storage = storage.split(",")
        max_bytes = getattr(settings, "speech_max_audio_bytes", None) or DEFAULT_MAX_BYTES
        return cls.for_chatwoot(settings.chatwoot_url, storage, max_bytes=int(max_bytes))

    def is_trusted(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(
            host == entry or (entry.startswith("*.") and host.endswith(entry[1:])) for entry in self.trusted_hosts
        )


def _host_of(value: str) -> str:
    """'https://Chat.Example.com:8443/x' or 'chat.example.com' -> 'chat.example.com'."""
    value = value.strip()
    if "://" not in value:
        return value.lower().rstrip(".")
    return httpx.URL(value).host.lower().rstrip(".")


@dataclass(frozen=True)
class DownloadedAudio:
    """The attachment's bytes, the content type the storage declared and a filename from the URL."""

    data: bytes
    content_type: str | None
    filename: str


async def download_attachment(
    http: httpx.AsyncClient,
    url: str,
    policy: DownloadPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    resolver: Resolver = resolve_host,
) -> DownloadedAudio:
    """Fetch `url` under `policy`; raise an AudioDownloadError subclass when that is not possible."""
    delays = list(policy.not_found_delays)
    while True:
        try:
            return await _fetch(http, url, policy, resolver)
        except AttachmentNotFound:
            if not delays:
                raise
            await sleep(delays.pop(0))


async def _fetch(http: httpx.AsyncClient, url: str, policy: DownloadPolicy, resolver: Resolver) -> DownloadedAudio:
    try:
        current = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise RedirectRefused(f"not a valid URL: {exc}") from None
    for _hop in range(policy.max_redirects + 1):
        await check_target(current, policy, resolver)
        try:
            async with http.stream("GET", current, follow_redirects=False, timeout=policy.timeout_s) as response:
                status = response.status_code
                if status in REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location:
                        raise DownloadFailed(
                            f"{current.host} redirected without a Location", status=status, transient=False
                        )
                    try:
                        current = current.join(location)
                    except httpx.InvalidURL as exc:
                        raise RedirectRefused(f"invalid redirect target: {exc}") from None
                    continue
                if status == 404:
                    raise AttachmentNotFound(f"{current.host} answered 404 for the attachment")
                if status != 200:
                    raise DownloadFailed(
                        f"{current.host} answered {status} for the attachment",
                        status=status,
                        transient=status in (408, 425, 429) or status >= 500,
                    )
                data = await _read_capped(response, policy.max_bytes)
                return DownloadedAudio(
                    data=data, content_type=_media_type(response.headers.get("content-type")), filename=_filename(url)
                )
        except httpx.TransportError as exc:
            raise DownloadFailed(f"could not fetch the attachment from {current.host}: {type(exc).__name__}") from exc
    raise RedirectRefused(f"more than {policy.max_redirects} redirects")


async def check_target(url: httpx.URL, policy: DownloadPolicy, resolver: Resolver = resolve_host) -> None:
    """Refuse a URL we must not connect to (see the module docstring for the rules)."""
    if url.scheme not in ("http", "https"):
        raise RedirectRefused(f"scheme {url.scheme!r} is not allowed")
    host = url.host.lower().rstrip(".")
    if not host:
        raise RedirectRefused("URL has no host")
    if policy.is_trusted(host):
        return
    if url.scheme != "https":
        raise RedirectRefused(f"plain http to {host} is not allowed (only trusted hosts may use http)")
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = list(await resolver(host, url.port or 443))
        except OSError as exc:
            raise DownloadFailed(f"cannot resolve {host}: {exc}") from None
    if not addresses:
        raise DownloadFailed(f"{host} resolves to no address")
    for address in addresses:
        if not is_public_address(address):
            raise RedirectRefused(f"{host} resolves to non-public address {address}")


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise AttachmentTooLarge(max_bytes, int(declared))
    buf = bytearray()
    async for chunk in response.aiter_bytes():
        buf += chunk
        if len(buf) > max_bytes:
            raise AttachmentTooLarge(max_bytes)
    return bytes(buf)


def _media_type(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(";", 1)[0].strip().lower() or None


def _filename(url: str) -> str:
    """Chatwoot's redirect route ends with the blob's filename: /rails/active_storage/blobs/redirect/<id>/<name>."""
    last = unquote(httpx.URL(url).path.rsplit("/", 1)[-1])
    safe = "".join(c for c in last if c.isalnum() or c in "._-")
    return safe or "audio"
