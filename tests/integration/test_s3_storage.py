"""A real ``openkvs serve`` with ``OPENKVS_STORAGE=s3`` on moto's S3 server: every task kind
reads its source through presigned URLs and writes its outputs (with DstAcl as x-amz-acl) to
S3; the creation and run-time codes of missing buckets and objects; ``openkvs bucket`` and
``openkvs cp``; ``/objects`` redirects; and a probe that reads only part of its source.

openkvs reaches moto through a small counting TCP proxy (:class:`CountingProxy`), so a test
can tell how many bytes the store sent.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import FAST_ENV
from tests.support.kvs_client import close_kvs_client, make_kvs_client
from tests.support.media import make_video, probe
from tests.support.moto_s3 import MotoS3, moto_s3, unique_prefix
from tests.support.server import ServerProcess, cli, create_keys

from openkvs.api.sigv4 import presign_url

__all__ = ["moto_s3"]  # the fixture, imported for the tests below

BUCKET = "media"
LIGHT = {"f": "mp4", "VIDEO": {"width": 160, "height": 120}, "AUDIO": {"ab": "64k"}}


class CountingProxy:
    """A TCP proxy to a local port that counts the bytes the upstream sends back. Small
    socket buffers keep what is read ahead of the client to a few hundred KB."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._received = 0
        self._cut = False
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def take(self) -> int:
        """Bytes received from the upstream since the last call."""
        with self._lock:
            seen, self._received = self._received, 0
        return seen

    def cut(self) -> None:
        """Reset every open connection, and new ones at once (the store is unreachable)."""
        with self._lock:
            self._cut = True
            for sock in self._open:
                _reset(sock)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            with self._lock:
                if self._cut:
                    _reset(client)
                    return
            try:
                upstream = socket.create_connection(("127.0.0.1", self._upstream))
            except OSError:
                return
            with upstream, self._tracked(client, upstream):
                for sock in (client, upstream):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                requests = threading.Thread(target=self._pump, args=(client, upstream, False))
                requests.start()
                self._pump(upstream, client, True)
                requests.join()

    @contextlib.contextmanager
    def _tracked(self, *socks: socket.socket) -> Iterator[None]:
        with self._lock:
            self._open.update(socks)
        try:
            yield
        finally:
            with self._lock:
                self._open.difference_update(socks)

    def _pump(self, source: socket.socket, target: socket.socket, count: bool) -> None:
        try:
            while data := source.recv(64 * 1024):
                if count:
                    with self._lock:
                        self._received += len(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _reset(sock: socket.socket) -> None:
    """End a connection with a TCP reset, as a dead store's network would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@dataclass
class S3Deployment:
    server: ServerProcess
    data_dir: Path
    env: dict[str, str]
    keys: tuple[str, str]
    prefix: str
    client: Any  # the KVS SDK
    s3: Any  # boto3, straight to moto
    proxy: CountingProxy

    def cli(self, *args: str) -> Any:
        return cli(self.data_dir, *args, env=self.env)

    def upload(self, local: Path, key: str) -> str:
        result = self.cli("cp", str(local), f"/{BUCKET}/{key}")
        assert result.returncode == 0, result.stderr
        return f"/{BUCKET}/{key}"

    def put(self, local: Path, key: str) -> str:
        """Upload with boto3 (quicker than a ``cp`` process); its ``/bucket/key`` path."""
        self.s3.upload_file(str(local), self.prefix + BUCKET, key)
        return f"/{BUCKET}/{key}"

    def head(self, key: str, bucket: str = BUCKET) -> dict[str, Any]:
        return dict(self.s3.head_object(Bucket=self.prefix + bucket, Key=key))

    def public(self, key: str) -> bool:
        grants = self.s3.get_object_acl(Bucket=self.prefix + BUCKET, Key=key)["Grants"]
        return any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)

    def preset(self, name: str, kind: str, param: dict[str, Any]) -> str:
        reply = self.client.preset(Preset=name, PresetType=kind, Param=param)
        assert reply["ErrNum"] in (0, 1201), reply
        return name

    def create(self, preset: str, src: str, **params: Any) -> str:
        params.setdefault("DstBucket", BUCKET)
        reply = self.client.create_task(Preset=preset, SrcInfo=[{"path": src}], **params)
        assert reply["ErrNum"] == 0, reply
        return str(reply["TaskID"])

    def wait(self, task_id: str, timeout: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            info = dict(self.client.get_task_by_task_id(TaskID=task_id)["TaskInfo"])
            if info["TaskStatus"] in ("succ", "fail") or time.monotonic() > deadline:
                return info
            time.sleep(0.05)

    def signed_get(self, query: str) -> tuple[int, dict[str, Any]]:
        """A GET of ``/?<query>`` signed in query form, answered once (no SDK retries)."""
        url = presign_url(
            "GET", f"{self.server.url}/?{query}", *self.keys, "cn-beijing-6", now=datetime.now(UTC)
        )
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                return int(answer.status), json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def pause(self, paused: bool) -> None:
        state = "Paused" if paused else "Active"
        assert self.client.update_pipeline(PipelineName="usual", State=state)["ErrNum"] == 0


@pytest.fixture(scope="module")
def s3kvs(tmp_path_factory: pytest.TempPathFactory, moto_s3: MotoS3) -> Iterator[S3Deployment]:
    data_dir = tmp_path_factory.mktemp("s3kvs")
    proxy = CountingProxy(int(moto_s3.url.rsplit(":", 1)[1]))
    prefix = unique_prefix()
    env = {**FAST_ENV, **moto_s3.env(bucket_prefix=prefix, endpoint_url=proxy.url)}
    access_key, secret_key = create_keys(data_dir, env=env)
    made = cli(data_dir, "bucket", "create", BUCKET, env=env)
    assert made.returncode == 0, made.stderr
    with ServerProcess(data_dir, env) as server:
        client = make_kvs_client(server.url, access_key, secret_key)
        try:
            yield S3Deployment(
                server,
                data_dir,
                env,
                (access_key, secret_key),
                prefix,
                client,
                moto_s3.client(),
                proxy,
            )
        finally:
            close_kvs_client(client)
            proxy.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("s3media"), "clip", seconds=3, size="320x240")


def _get(url: str) -> tuple[int, bytes, str]:
    """(status, body, final URL) of a GET that follows redirects."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status), bytes(answer.read()), str(answer.url)
    except urllib.error.HTTPError as exc:
        return exc.code, b"", url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def _first_answer(url: str) -> tuple[int, dict[str, str]]:
    """(status, headers with lower-case names) of a GET, redirects not followed."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=10) as answer:
            return int(answer.status), {k.lower(): v for k, v in answer.headers.items()}
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}


def test_every_task_kind_reads_and_writes_s3(
    s3kvs: S3Deployment, clip: Path, tmp_path: Path
) -> None:
    src = s3kvs.upload(clip, "in/clip.mp4")
    assert s3kvs.head("in/clip.mp4")["ContentType"] == "video/mp4"  # cp gave it a type

    fetched = s3kvs.client.fetch_meta_info(SrcPath=src)
    assert fetched["ErrNum"] == 0 and '"filename":"/media/in/clip.mp4"' in fetched["MetaInfo"]

    tasks = {
        "avinfo": s3kvs.create(s3kvs.preset("s3_info", "avinfo", {}), src, DstObjectKey=""),
        "avtrans": s3kvs.create(
            s3kvs.preset("s3_light", "avtrans", LIGHT), src, DstObjectKey="out/public.mp4"
        ),
        "private": s3kvs.create("s3_light", src, DstObjectKey="out/private.mp4", DstAcl="private"),
        "snapshot": s3kvs.create(
            s3kvs.preset("s3_snap", "avsnapshot", {"ss": "1.5"}), src, DstObjectKey="out/s.jpg"
        ),
        "sample": s3kvs.create(
            s3kvs.preset("s3_sample", "avsample", {"interval": 1}), src, DstDir="out/sample"
        ),
        "cover": s3kvs.create(
            s3kvs.preset("s3_cover", "aiproduction", {"function_name": "smart_cover"}),
            src,
            DstObjectKey="out/cover.jpg",
        ),
    }
    wave = s3kvs.client.create_wave_task(
        Preset="wave",
        SrcInfo=[{"path": src}],
        DstBucket=BUCKET,
        DstObjectKey="out/w.json",
        points=10,
    )
    assert wave["ErrNum"] == 0, wave
    tasks["wave"] = str(wave["TaskID"])
    deadline = time.monotonic() + 120  # for all of them: a stuck queue fails once
    infos = {
        name: s3kvs.wait(task_id, deadline - time.monotonic()) for name, task_id in tasks.items()
    }
    for name, info in infos.items():
        assert info["TaskStatus"] == "succ", (name, info)
        # The command shown names the object, never the presigned URL it read.
        assert "X-Amz-" not in info["Command"] and s3kvs.proxy.url not in info["Command"], name
        if name != "avinfo":  # a probe records no command
            assert "/media/in/clip.mp4" in info["Command"], name

    meta = s3kvs.client.get_task_meta_info(TaskID=tasks["avinfo"])
    assert '"codec_name":"h264"' in str(meta)

    # Outputs are in S3, with their content type and DstAcl as x-amz-acl (public-read by
    # default).
    expected = {
        "out/public.mp4": ("video/mp4", True),
        "out/private.mp4": ("video/mp4", False),
        "out/s.jpg": ("image/jpeg", True),
        "out/sample/0.jpg": ("image/jpeg", True),
        "out/sample/2.jpg": ("image/jpeg", True),
        "out/cover.jpg": ("image/jpeg", True),
        "out/w.json": ("application/json", True),
    }
    for key, (content_type, public) in expected.items():
        assert s3kvs.head(key)["ContentType"] == content_type, key
        assert s3kvs.public(key) is public, key

    # `openkvs cp` brings an object back; it is the transcode asked for.
    back = tmp_path / "public.mp4"
    result = s3kvs.cli("cp", "/media/out/public.mp4", str(back))
    assert result.returncode == 0, result.stderr
    video = next(s for s in probe(back)["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (160, 120)

    # /objects: a public object redirects to the store, which serves it; a private one needs
    # openkvs's presigned query first; HEAD is answered by openkvs itself.
    public_url = f"{s3kvs.server.url}/objects/{BUCKET}/out/public.mp4"
    status, headers = _first_answer(public_url)
    assert status == 302 and headers["location"].startswith(s3kvs.proxy.url)
    assert headers["cache-control"] == "no-store"
    assert _get(public_url)[:2] == (200, back.read_bytes())
    head = urllib.request.urlopen(urllib.request.Request(public_url, method="HEAD"), timeout=10)
    assert (head.status, head.headers["Content-Length"]) == (200, str(back.stat().st_size))
    private_url = f"{s3kvs.server.url}/objects/{BUCKET}/out/private.mp4"
    assert _get(private_url)[0] == 403
    signed = s3kvs.cli("presign", "/media/out/private.mp4", "--base-url", s3kvs.server.url)
    assert signed.returncode == 0, signed.stderr
    status, body, _ = _get(signed.stdout.strip())
    assert status == 200 and body[4:8] == b"ftyp"
    assert _get(f"{s3kvs.server.url}/objects/{BUCKET}/out/none.mp4")[0] == 404


def test_missing_buckets_and_objects(s3kvs: S3Deployment, clip: Path) -> None:
    src = s3kvs.put(clip, "in/gone.mp4")
    kept = s3kvs.put(clip, "in/kept.mp4")
    preset = s3kvs.preset("s3_light", "avtrans", LIGHT)
    for extra, code in (
        ({"SrcInfo": [{"path": "/nobucket/in/x.mp4"}]}, 1011),
        ({"SrcInfo": [{"path": "/media/in/none.mp4"}]}, 1210),
        ({"SrcInfo": [{"path": src}], "DstBucket": "nobucket"}, 1011),
    ):
        body = {"Preset": preset, "DstBucket": BUCKET, "DstObjectKey": "out/x.mp4", **extra}
        reply = s3kvs.client.create_task(**body)
        assert reply["ErrNum"] == code, (extra, reply)
    assert s3kvs.client.fetch_meta_info(SrcPath="/media/in/none.mp4")["ErrNum"] == 1210

    # Gone between CreateTask and the run: the source → 2041, the destination bucket → 2033.
    made = s3kvs.cli("bucket", "create", "doomed")
    assert made.returncode == 0, made.stderr
    s3kvs.pause(True)
    try:
        gone_source = s3kvs.create(preset, src, DstObjectKey="out/gone.mp4")
        gone_bucket = s3kvs.create(preset, kept, DstObjectKey="out/x.mp4", DstBucket="doomed")
        s3kvs.s3.delete_object(Bucket=s3kvs.prefix + BUCKET, Key="in/gone.mp4")
        s3kvs.s3.delete_bucket(Bucket=s3kvs.prefix + "doomed")
    finally:
        s3kvs.pause(False)
    info = s3kvs.wait(gone_source)
    assert (info["TaskStatus"], info["ErrorCode"]) == ("fail", "2041"), info
    info = s3kvs.wait(gone_bucket)
    assert (info["TaskStatus"], info["ErrorCode"]) == ("fail", "2033"), info


@pytest.mark.slow  # one CLI process after another
def test_bucket_commands_on_s3(s3kvs: S3Deployment, tmp_path: Path) -> None:
    # A bucket made in the store by other means is adopted by `bucket create`.
    s3kvs.s3.create_bucket(Bucket=s3kvs.prefix + "existing")
    s3kvs.s3.put_object(Bucket=s3kvs.prefix + "existing", Key="old.txt", Body=b"kept")
    assert s3kvs.cli("bucket", "create", "existing").returncode == 0
    listed = s3kvs.cli("bucket", "list")
    assert listed.returncode == 0, listed.stderr
    names = [line.split("\t")[0] for line in listed.stdout.splitlines()]
    assert {"media", "existing"} <= set(names)
    assert all(not name.startswith(s3kvs.prefix) for name in names)
    result = s3kvs.cli("cp", "/existing/old.txt", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "old.txt").read_bytes() == b"kept"
    result = s3kvs.cli("cp", "/existing/none.txt", str(tmp_path / "x"))
    assert result.returncode == 1 and "does not exist" in result.stderr.lower()
    doctor = s3kvs.cli("doctor")
    assert "storage: s3, " in doctor.stdout and "[  ok] storage" in doctor.stdout, doctor.stdout
    assert s3kvs.env["OPENKVS_S3_SECRET_ACCESS_KEY"] not in doctor.stdout + doctor.stderr


@pytest.mark.slow
def test_an_unreachable_store_is_503_at_creation_and_waited_for_at_run_time(
    s3kvs: S3Deployment, clip: Path
) -> None:
    src = s3kvs.put(clip, "in/outage.mp4")
    preset = s3kvs.preset("s3_light", "avtrans", LIGHT)
    s3kvs.pause(True)
    task_id = s3kvs.create(preset, src, DstObjectKey="out/outage.mp4")
    logged = s3kvs.server.log_path.read_text().count("storage_unavailable")
    s3kvs.proxy.cut()
    try:
        status, body = s3kvs.signed_get(f"Action=FetchMetaInfo&Version=2017-01-01&SrcPath={src}")
        assert status == 503 and body["Error"]["Code"] == "ServiceUnavailable", body
        assert "object storage" in body["Error"]["Message"]
        s3kvs.pause(False)
        deadline = time.monotonic() + 60
        while s3kvs.server.log_path.read_text().count("storage_unavailable") == logged:
            assert time.monotonic() < deadline, "the task never met the outage"
            time.sleep(0.05)
    finally:
        s3kvs.proxy.restore()
    info = s3kvs.wait(task_id)
    assert info["TaskStatus"] == "succ", info  # it waited for the store, then ran
    assert s3kvs.head("out/outage.mp4")["ContentType"] == "video/mp4"


@pytest.mark.slow
def test_a_probe_and_a_snapshot_read_only_part_of_the_source(
    s3kvs: S3Deployment, tmp_path: Path
) -> None:
    # 30 s with a keyframe every 2 s, its index first (faststart), as streaming media is made.
    local = tmp_path / "long.mp4"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=30",
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p",
            "-movflags", "+faststart", str(local),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    size = local.stat().st_size
    src = s3kvs.put(local, "in/long.mp4")
    s3kvs.proxy.take()
    reply = s3kvs.client.fetch_meta_info(SrcPath=src)
    assert reply["ErrNum"] == 0, reply
    probed = s3kvs.proxy.take()
    assert 0 < probed < size / 2, (probed, size)

    preset = s3kvs.preset("s3_snap_late", "avsnapshot", {"ss": "20"})
    info = s3kvs.wait(s3kvs.create(preset, src, DstObjectKey="out/late.jpg"))
    assert info["TaskStatus"] == "succ", info
    snapped = s3kvs.proxy.take()
    assert 0 < snapped < size / 2, (snapped, size)
