"""Downloading attachments: short 404 retries, the size cap, and where redirects may lead."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
import respx

from config.settings import load_settings
from speech.download import DownloadPolicy, download_attachment, is_public_address, resolve_host
from speech.errors import AttachmentNotFound, AttachmentTooLarge, DownloadFailed, RedirectRefused
from speech.tests.helpers import SleepRecorder

CHATWOOT = "https://chat.example.com"
DATA_URL = f"{CHATWOOT}/rails/active_storage/blobs/redirect/eyJfcmFpbHMiOnt9--abc/voice%20note.ogg"
S3_URL = "https://guest-media.s3.eu-west-1.amazonaws.com/4kz9?X-Amz-Signature=f00d"
AUDIO = b"OggS" + bytes(range(256)) * 8


class FakeDNS:
    """host -> addresses; records lookups and fails loudly for hosts it was not told about."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        if host not in self.table:
            raise OSError(f"unexpected lookup of {host}")
        return self.table[host]


@pytest.fixture
def policy() -> DownloadPolicy:
    return DownloadPolicy.for_chatwoot(CHATWOOT, ["minio.internal"], max_bytes=4096)


@pytest.fixture
def dns() -> FakeDNS:
    return FakeDNS(
        {
            "guest-media.s3.eu-west-1.amazonaws.com": ["52.95.150.10"],
            "metadata.evil.example": ["169.254.169.254"],
            "intranet.evil.example": ["93.184.216.34", "10.1.2.3"],
        }
    )


@respx.mock
async def test_direct_blob_is_downloaded_with_type_and_filename(
    policy: DownloadPolicy, dns: FakeDNS, sleeps: SleepRecorder
) -> None:
    respx.get(DATA_URL).respond(200, content=AUDIO, headers={"Content-Type": "audio/ogg; codecs=opus"})
    async with httpx.AsyncClient() as http:
        got = await download_attachment(http, DATA_URL, policy, sleep=sleeps, resolver=dns)

    assert (got.data, got.content_type, got.filename) == (AUDIO, "audio/ogg", "voicenote.ogg")
    assert (sleeps.delays, dns.lookups) == ([], [])  # Chatwoot's own host is trusted without a lookup


@respx.mock
async def test_404_then_200_is_retried_briefly(policy: DownloadPolicy, dns: FakeDNS, sleeps: SleepRecorder) -> None:
    route = respx.get(DATA_URL).mock(
        side_effect=[httpx.Response(404), httpx.Response(404), httpx.Response(200, content=AUDIO)]
    )
    async with httpx.AsyncClient() as http:
        got = await download_attachment(http, DATA_URL, policy, sleep=sleeps, resolver=dns)

    assert got.data == AUDIO
    assert (route.call_count, sleeps.delays) == (3, [0.5, 1.0])


@respx.mock
async def test_404_forever_gives_up_after_four_tries(
    policy: DownloadPolicy, dns: FakeDNS, sleeps: SleepRecorder
) -> None:
    route = respx.get(DATA_URL).respond(404)
    async with httpx.AsyncClient() as http:
        with pytest.raises(AttachmentNotFound) as caught:
            await download_attachment(http, DATA_URL, policy, sleep=sleeps, resolver=dns)

    assert (route.call_count, sleeps.delays, caught.value.transient) == (4, [0.5, 1.0, 2.0], True)


@respx.mock
async def test_declared_size_over_the_cap_is_refused_before_reading(policy: DownloadPolicy, dns: FakeDNS) -> None:
    respx.get(DATA_URL).respond(200, content=b"x" * 5000)
    async with httpx.AsyncClient() as http:
        with pytest.raises(AttachmentTooLarge) as caught:
            await download_attachment(http, DATA_URL, policy, resolver=dns)

    assert (caught.value.limit, caught.value.size) == (4096, 5000)


class ChunkStream(httpx.AsyncByteStream):
    """A body of `count` 1 KiB chunks without Content-Length, recording how many were pulled."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.pulled += 1
            yield b"y" * 1024


@respx.mock
async def test_streamed_body_over_the_cap_is_abandoned(policy: DownloadPolicy, dns: FakeDNS) -> None:
    body = ChunkStream(100)
    respx.get(DATA_URL).mock(return_value=httpx.Response(200, stream=body))
    async with httpx.AsyncClient() as http:
        with pytest.raises(AttachmentTooLarge, match="over the 4096-byte limit"):
            await download_attachment(http, DATA_URL, policy, resolver=dns)

    assert body.pulled == 5  # stopped at the first chunk past 4 KiB, not at 100 KiB


@respx.mock
async def test_redirect_to_presigned_s3_url_is_followed(policy: DownloadPolicy, dns: FakeDNS) -> None:
    respx.get(DATA_URL).respond(302, headers={"Location": S3_URL})
    respx.get(S3_URL).respond(200, content=AUDIO, headers={"Content-Type": "audio/ogg"})
    async with httpx.AsyncClient() as http:
        got = await download_attachment(http, DATA_URL, policy, resolver=dns)

    assert (got.data, got.filename) == (AUDIO, "voicenote.ogg")
    assert dns.lookups == ["guest-media.s3.eu-west-1.amazonaws.com"]


@respx.mock
async def test_relative_redirect_to_chatwoot_disk_storage_is_followed(policy: DownloadPolicy, dns: FakeDNS) -> None:
    disk = f"{CHATWOOT}/rails/active_storage/disk/eyJf--def/voice.ogg"
    respx.get(DATA_URL).respond(302, headers={"Location": "/rails/active_storage/disk/eyJf--def/voice.ogg"})
    respx.get(disk).respond(200, content=AUDIO)
    async with httpx.AsyncClient() as http:
        got = await download_attachment(http, DATA_URL, policy, resolver=dns)

    assert got.data == AUDIO
    assert dns.lookups == []


@respx.mock
async def test_trusted_hosts_may_be_private_and_plain_http(dns: FakeDNS) -> None:
    internal = "http://chatwoot:3000/rails/active_storage/blobs/redirect/x/voice.mp3"
    minio = "http://minio.internal:9000/bucket/voice.mp3?sig=1"
    respx.get(internal).respond(302, headers={"Location": minio})
    respx.get(minio).respond(200, content=AUDIO)
    policy = DownloadPolicy.for_chatwoot("http://chatwoot:3000", ["minio.internal"])
    async with httpx.AsyncClient() as http:
        got = await download_attachment(http, internal, policy, resolver=dns)

    assert got.data == AUDIO
    assert dns.lookups == []


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:6379/",
        "https://10.0.0.5/latest",
        "http://169.254.169.254/latest/meta-data/",
        "https://[::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://100.64.0.7/x",
    ],
)
@respx.mock
async def test_redirect_to_a_private_address_is_refused(policy: DownloadPolicy, dns: FakeDNS, target: str) -> None:
    respx.get(DATA_URL).respond(302, headers={"Location": target})
    forbidden = respx.route(host__regex=r".*").respond(200, content=b"secret")
    async with httpx.AsyncClient() as http:
        with pytest.raises(RedirectRefused):
            await download_attachment(http, DATA_URL, policy, resolver=dns)

    assert forbidden.call_count == 0


@pytest.mark.parametrize(
    "target,reason",
    [
        ("https://metadata.evil.example/x", "non-public address 169.254.169.254"),
        ("https://intranet.evil.example/x", "non-public address 10.1.2.3"),  # one private answer is enough
        ("http://guest-media.s3.eu-west-1.amazonaws.com/x", "plain http"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://guest-media.s3.eu-west-1.amazonaws.com/x", "scheme 'gopher'"),
    ],
)
@respx.mock
async def test_redirect_to_an_unsafe_target_is_refused(
    policy: DownloadPolicy, dns: FakeDNS, target: str, reason: str
) -> None:
    respx.get(DATA_URL).respond(302, headers={"Location": target})
    async with httpx.AsyncClient() as http:
        with pytest.raises(RedirectRefused, match=re.escape(reason)):
            await download_attachment(http, DATA_URL, policy, resolver=dns)


async def test_an_untrusted_private_data_url_is_refused_before_any_request(
    policy: DownloadPolicy, dns: FakeDNS
) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as http:
        with pytest.raises(RedirectRefused, match=r"169\.254\.169\.254"):
            await download_attachment(http, "https://metadata.evil.example/blob", policy, resolver=dns)


@respx.mock
async def test_redirect_loops_stop(policy: DownloadPolicy, dns: FakeDNS) -> None:
    respx.get(DATA_URL).respond(302, headers={"Location": DATA_URL})
    async with httpx.AsyncClient() as http:
        with pytest.raises(RedirectRefused, match="more than 5 redirects"):
            await download_attachment(http, DATA_URL, policy, resolver=dns)


@pytest.mark.parametrize("status,transient", [(500, True), (503, True), (429, True), (403, False), (410, False)])
@respx.mock
async def test_other_statuses_fail_with_the_status(
    policy: DownloadPolicy, dns: FakeDNS, status: int, transient: bool
) -> None:
    respx.get(DATA_URL).respond(status)
    async with httpx.AsyncClient() as http:
        with pytest.raises(DownloadFailed) as caught:
            await download_attachment(http, DATA_URL, policy, resolver=dns)

    assert (caught.value.status, caught.value.transient) == (status, transient)


@respx.mock
async def test_transport_errors_and_dns_failures_are_transient(policy: DownloadPolicy, dns: FakeDNS) -> None:
    respx.get(DATA_URL).mock(side_effect=httpx.ConnectError("refused"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(DownloadFailed, match="ConnectError") as caught:
            await download_attachment(http, DATA_URL, policy, resolver=dns)
        assert caught.value.transient
        with pytest.raises(DownloadFailed, match=r"cannot resolve unknown\.example"):
            await download_attachment(http, "https://unknown.example/x", policy, resolver=dns)


@pytest.mark.parametrize(
    "address,public",
    [
        ("52.95.150.10", True),
        ("2a05:d018::1", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("240.0.0.1", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:10.0.0.1", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_policy_from_settings_trusts_chatwoot_and_named_storage_hosts() -> None:
    settings = load_settings({"CHATWOOT_URL": "https://Chat.Example.com:8443", "SPEECH_BACKEND": "local"})
    policy = DownloadPolicy.from_settings(settings)

    assert policy.trusted_hosts == frozenset({"chat.example.com"})
    assert policy.max_bytes == 25 * 1024 * 1024

    wildcard = DownloadPolicy.for_chatwoot(CHATWOOT, ["*.blob.core.windows.net", "https://Media.Example.org/x"])
    assert wildcard.trusted_hosts == frozenset({"chat.example.com", "*.blob.core.windows.net", "media.example.org"})
    assert wildcard.is_trusted("acct.blob.core.windows.net") and wildcard.is_trusted("MEDIA.example.org.")
    assert not wildcard.is_trusted("blob.core.windows.net") and not wildcard.is_trusted("evilchat.example.com")


async def test_the_system_resolver_is_used_by_default(policy: DownloadPolicy) -> None:
    assert "127.0.0.1" in await resolve_host("localhost", 443)
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as http:
        with pytest.raises(RedirectRefused, match="localhost resolves to non-public address"):
            await download_attachment(http, "https://localhost/blob", policy)
