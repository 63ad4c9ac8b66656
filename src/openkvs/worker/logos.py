"""Fetching a task's watermark logos (spec §3.4) into its scratch folder.

A logo is ``/<bucket>/<key>`` (read from the object store; CreateTask checked that the user
may read the bucket) or an ``http(s)`` URL. A URL is fetched with the rules of callbacks
(``notify/policy.py``): its host is resolved once, every address is checked against the
:class:`~openkvs.notify.policy.AddressPolicy` (loopback, link-local, private and similar
targets refused unless the operator allows them with ``OPENKVS_CALLBACK_ALLOW``) and the
connection goes only to a checked address. Up to :data:`MAX_REDIRECTS` redirects are
followed, each checked the same way. Each logo is bounded by :data:`FETCH_TIMEOUT` seconds
(all steps, and never past the task's deadline) and :data:`MAX_LOGO_BYTES` bytes.

The bytes must be a PNG, JPEG, GIF, WebP or BMP image (sniffed, so ffmpeg reads the file with
that image demuxer and nothing else) whose first frame decodes, at most
:data:`MAX_LOGO_SIDE` pixels a side.

Failures (spec §6.2; ``docs/error-codes.md``): a logo that cannot be fetched (refused
address, HTTP error, timeout, too large, object gone) → 2032 "HTTP download file fail";
a logo that is not an image that decodes → 3150.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urljoin

import httpcore
import httpx

from openkvs.engine import ffmpeg
from openkvs.engine.graph import EMPTY, Composition
from openkvs.engine.watermark import LogoFile, watermark_part
from openkvs.errors import ApiError, TaskError
from openkvs.notify.policy import AddressPolicy, CallbackRefused, IPAddress, parse_callback_url
from openkvs.notify.resolver import resolve_bounded
from openkvs.presets.avtrans import AvtransOptions, AvtransSpec
from openkvs.presets.logos import LogoSpec, task_tracks
from openkvs.storage.base import StorageError
from openkvs.storage.keys import parse_source_path
from openkvs.worker.job import Job

log = logging.getLogger(__name__)

#: The largest logo file (bytes).
MAX_LOGO_BYTES = 10 * 1024 * 1024
#: Seconds one logo may take to fetch, all steps together.
FETCH_TIMEOUT = 30.0
#: Redirects followed for one http(s) logo.
MAX_REDIRECTS = 3
#: The largest logo side (pixels).
MAX_LOGO_SIDE = 4096
#: Seconds the decode check of one logo may take.
CHECK_TIMEOUT = 20.0

FETCH_FAILED = 2032
NOT_AN_IMAGE = 3150

_REDIRECTS = (301, 302, 303, 307, 308)
_SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    # (bytes, at offset, demuxer, file extension)
    (b"\x89PNG\r\n\x1a\n", 0, "png_pipe", ".png"),
    (b"\xff\xd8\xff", 0, "jpeg_pipe", ".jpg"),
    (b"GIF87a", 0, "gif", ".gif"),
    (b"GIF89a", 0, "gif", ".gif"),
    (b"WEBP", 8, "webp_pipe", ".webp"),
    (b"BM", 0, "bmp_pipe", ".bmp"),
)


def sniff(head: bytes) -> tuple[str, str] | None:
    """(demuxer, extension) of an image's first bytes, or None for anything else."""
    for magic, offset, demuxer, extension in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic and (offset == 0 or head[:4] == b"RIFF"):
            return demuxer, extension
    return None


class _Failed(Exception):
    """Why one fetch failed (becomes 2032 with the logo named)."""


class CheckedBackend(httpcore.NetworkBackend):
    """Connects only to addresses the policy allows (the synchronous twin of the callback
    sender's): resolves the host once, refuses it when any address is refused, then tries
    the checked addresses in order."""

    def __init__(self, policy: AddressPolicy, lookup_timeout: float) -> None:
        self._policy = policy
        self._lookup_timeout = lookup_timeout
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses: list[IPAddress] | None
        try:
            addresses = [ip_address(host)]
        except ValueError:
            addresses = resolve_bounded(host, min(timeout or 10.0, self._lookup_timeout))
        if addresses is None:
            raise httpcore.ConnectError(f"{host} does not resolve")
        self._policy.check_addresses(host, addresses)
        failure: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("logos are fetched over TCP only")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class LogoFetcher:
    """Fetches logos with the callback address ``policy`` (by default the strict one, no
    range allowed); ``timeout`` and ``max_bytes`` bound each logo."""

    def __init__(
        self,
        policy: AddressPolicy | None = None,
        *,
        timeout: float = FETCH_TIMEOUT,
        max_bytes: int = MAX_LOGO_BYTES,
    ) -> None:
        self._policy = policy or AddressPolicy()
        self._timeout = timeout
        self._max_bytes = max_bytes

    def fetch(self, job: Job, logos: Sequence[LogoSpec]) -> list[LogoFile]:
        """Every logo fetched into ``<scratch>/logos`` and checked, in order."""
        folder = job.scratch / "logos"
        folder.mkdir(exist_ok=True)
        files = []
        with httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=CheckedBackend(self._policy, self._timeout),
        ) as pool:
            for n, logo in enumerate(logos):
                job.check()
                deadline = time.monotonic() + min(self._timeout, job.remaining())
                raw = folder / f"logo-{n}"
                try:
                    if logo.bucket_object:
                        self._from_storage(job, logo.url, raw)
                    else:
                        self._from_url(pool, logo.url, raw, deadline)
                except _Failed as exc:
                    raise TaskError(FETCH_FAILED, f"logo {n} ({logo.url}): {exc}") from exc
                files.append(_checked(logo, raw, n, deadline))
                log.info("logo_fetched", extra={"task_id": job.task.task_id, "logo": n})
        return files

    def _from_storage(self, job: Job, url: str, dest: Path) -> None:
        try:
            bucket, key = parse_source_path(url)
            size = job.storage.object_info(bucket, key).size
            if size > self._max_bytes:
                raise _Failed(f"is {size} bytes, over the limit of {self._max_bytes} bytes")
            job.storage.get_file(bucket, key, dest)
        except (ApiError, StorageError) as exc:
            raise _Failed(f"cannot be read from the object store: {exc}") from exc

    def _from_url(
        self, pool: httpcore.ConnectionPool, url: str, dest: Path, deadline: float
    ) -> None:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                location = self._get(pool, url, dest, deadline)
            except CallbackRefused as exc:
                raise _Failed(f"refused: {str(exc).replace('for callbacks', 'for logos')}") from exc
            except httpcore.TimeoutException as exc:
                raise _Failed(f"timed out ({exc})") from exc
            except (
                httpcore.ProtocolError,
                httpcore.NetworkError,
                httpcore.UnsupportedProtocol,
            ) as exc:
                raise _Failed(f"cannot be fetched ({exc or type(exc).__name__})") from exc
            if location is None:
                return
            url = urljoin(url, location)
        raise _Failed(f"more than {MAX_REDIRECTS} redirects")

    def _get(
        self, pool: httpcore.ConnectionPool, url: str, dest: Path, deadline: float
    ) -> str | None:
        """GET ``url`` into ``dest``; the redirect's location, or None when written."""
        target = parse_callback_url(url)
        self._policy.check_target(target)
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Failed(f"took over {self._timeout:g} s")
        step = {"connect": left, "read": left, "write": left, "pool": left}
        headers = [
            (b"Host", target.host_header.encode("ascii")),
            (b"User-Agent", b"openkvs-logo"),
            (b"Accept", b"image/*"),
        ]
        request_url = httpcore.URL(
            scheme=target.scheme.encode("ascii"),
            host=target.host.encode("ascii"),
            port=target.port,
            target=target.target.encode("ascii"),
        )
        with pool.stream(
            "GET", request_url, headers=headers, extensions={"timeout": step}
        ) as response:
            found = {k.lower(): v for k, v in response.headers}
            if response.status in _REDIRECTS and b"location" in found:
                return found[b"location"].decode("latin-1")
            if response.status != 200:
                raise _Failed(f"answered HTTP {response.status}")
            declared = found.get(b"content-length", b"").strip()
            if declared.isdigit() and int(declared) > self._max_bytes:
                raise _Failed(
                    f"is {int(declared)} bytes, over the limit of {self._max_bytes} bytes"
                )
            size = 0
            with dest.open("wb") as out:
                for chunk in response.iter_stream():
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise _Failed(f"is over the limit of {self._max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise _Failed(f"took over {self._timeout:g} s")
                    out.write(chunk)
        return None


def _checked(logo: LogoSpec, raw: Path, n: int, deadline: float) -> LogoFile:
    """The fetched file renamed after its format, once its first frame decodes."""
    with raw.open("rb") as f:
        head = f.read(16)
    found = sniff(head)
    if found is None:
        raise TaskError(
            NOT_AN_IMAGE, f"logo {n} ({logo.url}) is not a PNG, JPEG, GIF, WebP or BMP image"
        )
    demuxer, extension = found
    path = raw.rename(raw.with_suffix(extension))
    command = [
        ffmpeg.FFPROBE, "-v", "error", "-protocol_whitelist", "file", "-f", demuxer,
        "-select_streams", "v:0", "-read_intervals", "%+#1",
        "-show_entries", "frame=width,height", "-of", "json", str(path),
    ]  # fmt: skip
    try:
        out = ffmpeg.run(command, timeout=max(1.0, min(CHECK_TIMEOUT, deadline - time.monotonic())))
        frames = json.loads(out).get("frames") or []
    except (TaskError, ValueError) as exc:
        raise TaskError(NOT_AN_IMAGE, f"logo {n} ({logo.url}) does not decode: {exc}") from exc
    if not frames:
        raise TaskError(NOT_AN_IMAGE, f"logo {n} ({logo.url}) does not decode")
    width, height = int(frames[0].get("width") or 0), int(frames[0].get("height") or 0)
    if not (0 < width <= MAX_LOGO_SIDE and 0 < height <= MAX_LOGO_SIDE):
        raise TaskError(
            NOT_AN_IMAGE,
            f"logo {n} ({logo.url}) is {width}x{height}; at most {MAX_LOGO_SIDE} a side",
        )
    return LogoFile(logo, str(path), demuxer)


def watermarks(
    job: Job,
    spec: AvtransSpec,
    options: AvtransOptions,
    *,
    first: int,
    fetcher: LogoFetcher,
) -> Composition:
    """The watermark part of ``job`` (its logos fetched), inputs numbered from ``first``;
    the empty composition when the task draws none."""
    tracks = task_tracks(spec.logos, spec.image, options.logos)
    logos = [logo for track in tracks for logo in track]
    if not logos:
        return EMPTY
    return watermark_part(fetcher.fetch(job, logos), first)
