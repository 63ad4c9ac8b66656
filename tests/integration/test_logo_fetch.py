"""Fetching watermark logos (``worker/logos.py``) from a real local HTTP server and the
in-package object storage, checked by the real ffprobe: the address policy, redirects, the
size and time limits, and the image check, each with its task error code."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from openkvs.errors import TaskError
from openkvs.notify.policy import AddressPolicy
from openkvs.presets.logos import LogoSpec
from openkvs.storage.memory import MemoryStorage
from openkvs.worker.job import Destination, Job
from openkvs.worker.logos import LogoFetcher

LOOPBACK = AddressPolicy((ip_network("127.0.0.0/8"),))


def _image(tmp: Path, name: str, source: str, *args: str) -> bytes:
    path = tmp / name
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", source, *args, str(path)],
        check=True,
        timeout=30,
    )
    return path.read_bytes()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("logo-images")
    return {
        "png": _image(tmp, "red.png", "color=c=red:s=40x20", "-frames:v", "1"),
        "gif": _image(tmp, "a.gif", "color=c=red:s=8x8:r=4:d=1"),
        "wide": _image(tmp, "wide.png", "color=c=red:s=4100x2", "-frames:v", "1"),
    }


@pytest.fixture(scope="module")
def server(images: dict[str, bytes]) -> Iterator[str]:
    """A local HTTP server; its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/redirect"):
                self.send_response(302)
                self.send_header("Location", "/red.png")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path == "/loop":
                self.send_response(301)
                self.send_header("Location", "/loop")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path == "/endless":  # no length: the body ends when the connection does
                self.protocol_version = "HTTP/1.0"
                self.send_response(200)
                self.end_headers()
                for _ in range(64):
                    self.wfile.write(b"\x89PNG" + b"x" * 1020)
                return
            if self.path == "/slow":
                time.sleep(3)
            body = {
                "/red.png": images["png"],
                "/anim.gif": images["gif"],
                "/wide.png": images["wide"],
                "/slow": images["png"],
                "/text": b"<html>not an image</html>",
            }.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.handle_error = lambda *args: None  # type: ignore[method-assign]  # client hung up
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def storage(images: dict[str, bytes]) -> MemoryStorage:
    storage = MemoryStorage()
    storage.create_bucket("media")
    storage.put_bytes("media", "logo.png", images["png"], acl="private", content_type="image/png")
    return storage


def _job(storage: MemoryStorage, scratch: Path) -> Job:
    return Job(
        task=cast(Any, SimpleNamespace(task_id="t-logo")),
        spec=None,
        options={},
        sources=(),
        destination=Destination(bucket="media", key="out.mp4", dir="", acl="private"),
        storage=storage,
        scratch=scratch,
        deadline=time.monotonic() + 60,
    )


def _fetch(fetcher: LogoFetcher, job: Job, *urls: str) -> list[Any]:
    return fetcher.fetch(job, [LogoSpec(url) for url in urls])


def test_logos_from_http_and_the_store(server: str, storage: MemoryStorage, tmp_path: Path) -> None:
    job = _job(storage, tmp_path)
    got = _fetch(
        LogoFetcher(LOOPBACK),
        job,
        f"{server}/red.png",
        "/media/logo.png",
        f"{server}/anim.gif",
        f"{server}/redirect",
    )
    assert [(Path(f.path).name, f.demuxer) for f in got] == [
        ("logo-0.png", "png_pipe"),
        ("logo-1.png", "png_pipe"),
        ("logo-2.gif", "gif"),
        ("logo-3.png", "png_pipe"),
    ]
    assert all(Path(f.path).parent == tmp_path / "logos" for f in got)
    assert Path(got[3].path).read_bytes() == Path(got[0].path).read_bytes()


@pytest.mark.parametrize(
    ("path", "code", "words"),
    [
        ("/missing.png", 2032, "answered HTTP 404"),
        ("/loop", 2032, "more than 3 redirects"),
        ("/endless", 2032, "over the limit of 10000 bytes"),
        ("/text", 3150, "is not a PNG, JPEG, GIF, WebP or BMP image"),
        ("/wide.png", 3150, "is 4100x2; at most 4096 a side"),
    ],
)
def test_http_failures(
    server: str, storage: MemoryStorage, tmp_path: Path, path: str, code: int, words: str
) -> None:
    fetcher = LogoFetcher(LOOPBACK, max_bytes=10_000 if path == "/endless" else 10**6)
    with pytest.raises(TaskError) as info:
        _fetch(fetcher, _job(storage, tmp_path), server + path)
    assert info.value.code == code and words in info.value.detail, info.value.detail


def test_a_declared_length_over_the_limit_is_not_read(
    server: str, storage: MemoryStorage, tmp_path: Path
) -> None:
    with pytest.raises(TaskError) as info:
        _fetch(LogoFetcher(LOOPBACK, max_bytes=50), _job(storage, tmp_path), f"{server}/red.png")
    assert info.value.code == 2032 and "over the limit of 50 bytes" in info.value.detail


def test_a_slow_server_times_out(server: str, storage: MemoryStorage, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(TaskError) as info:
        _fetch(LogoFetcher(LOOPBACK, timeout=0.5), _job(storage, tmp_path), f"{server}/slow")
    assert info.value.code == 2032 and "timed out" in info.value.detail, info.value.detail
    assert time.monotonic() - started < 2.5


def test_the_address_policy_applies(server: str, storage: MemoryStorage, tmp_path: Path) -> None:
    job = _job(storage, tmp_path)
    for fetcher, url in [
        (LogoFetcher(), f"{server}/red.png"),  # loopback, not allowed
        (LogoFetcher(LOOPBACK), "http://169.254.169.254/logo.png"),  # link-local
        (LogoFetcher(LOOPBACK), "http://metadata.google.internal/logo.png"),
        (LogoFetcher(LOOPBACK), "http://localhost:1/logo.png"),  # a name: resolved, checked
    ]:
        with pytest.raises(TaskError) as info:
            _fetch(fetcher, job, url)
        assert info.value.code == 2032, (url, info.value.detail)
        assert "refused" in info.value.detail or "cannot be fetched" in info.value.detail


def test_a_redirect_to_a_refused_address_is_refused(storage: MemoryStorage, tmp_path: Path) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://10.0.0.1/logo.png")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(TaskError) as info:
            _fetch(
                LogoFetcher(LOOPBACK),
                _job(storage, tmp_path),
                f"http://127.0.0.1:{httpd.server_address[1]}/",
            )
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert info.value.code == 2032 and "10.0.0.1 is private" in info.value.detail


def test_store_failures(storage: MemoryStorage, tmp_path: Path) -> None:
    job = _job(storage, tmp_path)
    with pytest.raises(TaskError) as info:
        _fetch(LogoFetcher(), job, "/media/gone.png")
    assert info.value.code == 2032 and "object store" in info.value.detail
    with pytest.raises(TaskError) as info:
        _fetch(LogoFetcher(max_bytes=50), job, "/media/logo.png")
    assert info.value.code == 2032 and "over the limit of 50" in info.value.detail
