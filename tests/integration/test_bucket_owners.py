"""Buckets have owners: another user can neither read nor write them without a grant;
objects are served over HTTP, public-read ones to anyone (with Range), private ones only
through a presigned URL (from ``openkvs presign`` or the GetObjectURL action).

The shared deployment's user ``default`` owns ``media`` (created by ``openkvs bucket
create media`` without ``--user``, as the README does); ``mallory`` is a second user with
her own bucket.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.support.kvs_client import close_kvs_client, make_kvs_client
from tests.support.media import make_audio, make_garbage, make_video
from tests.support.server import child_env, cli, create_keys

from openkvs import config
from openkvs.service.presign import presigned_path
from openkvs.store.secrets import Sealer, load_key

MALLORY_BUCKET = "mallory-own"


@pytest.fixture(scope="module")
def mallory(kvs: Deployment) -> Iterator[Any]:
    ak, sk = create_keys(kvs.data_dir, user="mallory")
    made = cli(kvs.data_dir, "bucket", "create", MALLORY_BUCKET, "--user", "mallory")
    assert made.returncode == 0, made.stderr
    client = make_kvs_client(kvs.server.url, ak, sk)
    assert client.preset(Preset="m_info", PresetType="avinfo", Param={})["ErrNum"] == 0
    yield client
    close_kvs_client(client)


@pytest.fixture
def http(kvs: Deployment) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=kvs.server.url, trust_env=False, timeout=30) as client:
        yield client


def _upload(kvs: Deployment, local: Path, path: str, *extra: str) -> str:
    result = cli(kvs.data_dir, "cp", *extra, str(local), path)
    assert result.returncode == 0, result.stderr
    return path


def _errnum(reply: dict[str, Any]) -> int:
    return int(reply["ErrNum"])


def _wait(client: Any, task_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        info = client.get_task_by_task_id(TaskID=task_id)["TaskInfo"]
        if info["TaskStatus"] in ("succ", "fail") or time.monotonic() > deadline:
            return dict(info)
        time.sleep(0.05)


def _grant(kvs: Deployment, *args: str) -> None:
    result = cli(kvs.data_dir, "bucket", *args)
    assert result.returncode == 0, result.stderr


def _wave(client: Any, src: str, bucket: str, key: str) -> dict[str, Any]:
    reply: dict[str, Any] = client.create_wave_task(
        Preset="wave", SrcInfo=[{"path": src}], DstBucket=bucket, DstObjectKey=key, points=5
    )
    return reply


def test_another_users_bucket_is_closed_until_granted(
    kvs: Deployment, mallory: Any, tmp_path: Path
) -> None:
    audio = make_audio(tmp_path, "owned", fmt="ogg", seconds=1)
    src = _upload(kvs, audio, f"/{BUCKET}/owners/src.ogg")
    own = _upload(kvs, audio, f"/{MALLORY_BUCKET}/in/own.ogg")

    def refused_everything() -> None:
        # reads: FetchMetaInfo, avinfo (CreateTask and its console twin), waveform source,
        # object URLs; a missing object answers 1212 too (existence is not revealed)
        assert _errnum(mallory.fetch_meta_info(SrcPath=src)) == 1212
        assert _errnum(mallory.fetch_meta_info(SrcPath=f"/{BUCKET}/owners/none.ogg")) == 1212
        assert _errnum(mallory.create_task(Preset="m_info", SrcInfo=[{"path": src}])) == 1212
        console = mallory.fetch_object_media_process(Preset="m_info", SrcInfo=[{"path": src}])
        assert _errnum(console) == 1212
        both = [{"path": own}, {"path": src}]  # any source, not only the first
        assert _errnum(mallory.create_task(Preset="m_info", SrcInfo=both)) == 1212
        assert _errnum(_wave(mallory, src, MALLORY_BUCKET, "out/w.json")) == 1212
        assert _errnum(mallory.get_object_url(SrcPath=src)) == 1212
        # writes: a waveform or any task output into media
        assert _errnum(_wave(mallory, own, BUCKET, "victim.json")) == 1212
        avinfo_out = mallory.create_task(
            Preset="m_info", SrcInfo=[{"path": own}], DstBucket=BUCKET, DstObjectKey="x.json"
        )
        assert _errnum(avinfo_out) == 1212

    refused_everything()
    # her own bucket works, and a bucket that does not exist is still 1011
    assert _errnum(mallory.fetch_meta_info(SrcPath=own)) == 0
    assert _errnum(mallory.fetch_meta_info(SrcPath="/no-such-bucket/a.ogg")) == 1011
    assert _errnum(_wave(mallory, own, "no-such-bucket", "w.json")) == 1011
    assert _errnum(kvs.client.fetch_meta_info(SrcPath=own)) == 1212  # and default cannot read hers

    # read-only: sources and URLs, no outputs
    _grant(kvs, "grant", BUCKET, "--user", "mallory", "--read-only")
    assert _errnum(mallory.fetch_meta_info(SrcPath=src)) == 0
    assert _errnum(mallory.fetch_meta_info(SrcPath=f"/{BUCKET}/owners/none.ogg")) == 1210
    assert _errnum(mallory.get_object_url(SrcPath=src)) == 0
    queued = mallory.create_task(Preset="m_info", SrcInfo=[{"path": src}])
    assert _errnum(queued) == 0, queued
    assert _wait(mallory, queued["TaskID"])["TaskStatus"] == "succ"
    wave = _wave(mallory, src, MALLORY_BUCKET, "out/from-media.json")
    assert _errnum(wave) == 0
    assert _errnum(_wave(mallory, own, BUCKET, "victim.json")) == 1212

    # read-write: outputs too
    _grant(kvs, "grant", BUCKET, "--user", "mallory")
    granted = _wave(mallory, own, BUCKET, "owners/by-mallory.json")
    assert _errnum(granted) == 0, granted
    assert _wait(mallory, granted["TaskID"])["TaskStatus"] == "succ"
    assert (kvs.data_dir / "buckets" / BUCKET / "owners" / "by-mallory.json").is_file()
    assert _wait(mallory, wave["TaskID"])["TaskStatus"] == "succ"

    listed = cli(kvs.data_dir, "bucket", "list").stdout.splitlines()
    # The shared server's bucket may hold other tests' grants too: look at this one.
    [line] = [row for row in listed if row.startswith(f"{BUCKET}\t")]
    assert line.split("\t")[1] == "default" and "mallory:readwrite" in line.split("\t")[2:]
    assert f"{MALLORY_BUCKET}\tmallory" in listed

    _grant(kvs, "revoke", BUCKET, "--user", "mallory")
    refused_everything()


def test_bucket_commands_refuse_what_is_not_theirs(kvs: Deployment, mallory: Any) -> None:
    taken = cli(kvs.data_dir, "bucket", "create", BUCKET, "--user", "mallory")
    assert taken.returncode != 0 and "belongs to default" in taken.stderr
    nobody = cli(kvs.data_dir, "bucket", "grant", BUCKET, "--user", "nobody-here")
    assert nobody.returncode != 0 and "no user nobody-here" in nobody.stderr
    missing = cli(kvs.data_dir, "bucket", "grant", "no-such-bucket", "--user", "mallory")
    assert missing.returncode != 0 and "no bucket" in missing.stderr
    owner = cli(kvs.data_dir, "bucket", "grant", MALLORY_BUCKET, "--user", "mallory")
    assert owner.returncode != 0 and "owns" in owner.stderr
    none = cli(kvs.data_dir, "bucket", "revoke", MALLORY_BUCKET, "--user", "default")
    assert none.returncode != 0 and "no grant" in none.stderr


# --- serving objects ------------------------------------------------------------------


def test_public_read_objects_are_served_with_ranges(
    kvs: Deployment, http: httpx.Client, tmp_path: Path
) -> None:
    local = make_garbage(tmp_path, "blob.mp3", 300_001)
    data = local.read_bytes()
    _upload(kvs, local, f"/{BUCKET}/pub/blob.mp3", "--acl", "public-read")
    url = f"/objects/{BUCKET}/pub/blob.mp3"

    whole = http.get(url)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-length"] == str(len(data))
    assert whole.headers["content-type"] == "audio/mpeg"
    assert whole.headers["accept-ranges"] == "bytes"
    etag = whole.headers["etag"]

    part = http.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    assert part.headers["content-length"] == "1000"
    tail = http.get(url, headers={"Range": "bytes=-7"})
    assert tail.status_code == 206 and tail.content == data[-7:]
    assert tail.headers["content-range"] == f"bytes {len(data) - 7}-{len(data) - 1}/{len(data)}"
    rest = http.get(url, headers={"Range": "bytes=299990-"})
    assert rest.status_code == 206 and rest.content == data[299990:]

    past = http.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{len(data)}"
    several = http.get(url, headers={"Range": "bytes=0-1,5-6"})  # documented: whole object
    assert several.status_code == 200 and several.content == data
    stale = http.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert stale.status_code == 200 and stale.content == data
    fresh = http.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206 and fresh.content == data[:10]
    assert http.get(url, headers={"If-None-Match": etag}).status_code == 304

    head = http.head(url, headers={"Range": "bytes=10-19"})
    assert head.status_code == 206 and head.content == b""
    assert head.headers["content-length"] == "10"
    assert head.headers["content-range"] == f"bytes 10-19/{len(data)}"


def test_a_player_seeks_in_a_public_video(
    kvs: Deployment, http: httpx.Client, tmp_path: Path
) -> None:
    """A real media client, ffprobe over HTTP, reads a public mp4 whose index sits at its
    end (so it seeks); the byte-exact Range answers are checked above."""
    plain = make_video(tmp_path, "seek", seconds=2)
    moov_last = tmp_path / "moov-last.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(plain), "-c", "copy", str(moov_last)],
        check=True,
        timeout=120,
    )
    _upload(kvs, moov_last, f"/{BUCKET}/pub/seek.mp4", "--acl", "public-read")
    url = f"{kvs.server.url}/objects/{BUCKET}/pub/seek.mp4"
    assert http.head(url).headers["content-type"] == "video/mp4"
    probed = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", url],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(kvs.data_dir),
        check=False,
    )
    assert probed.returncode == 0, probed.stderr
    assert abs(float(probed.stdout) - 2.0) < 0.2


def _presign_key(kvs: Deployment) -> bytes:
    settings = config.load({"OPENKVS_DATA_DIR": str(kvs.data_dir)})
    return Sealer(load_key("", settings.data_key_file, create=False)).derive("presign")


def test_private_objects_need_a_valid_presigned_url(
    kvs: Deployment, http: httpx.Client, tmp_path: Path
) -> None:
    local = make_garbage(tmp_path, "secret.ogg", 5000, seed=7)
    data = local.read_bytes()
    path = _upload(kvs, local, f"/{BUCKET}/private/secret name.ogg")  # private by default
    bucket, key = BUCKET, "private/secret name.ogg"
    plain = f"/objects/{BUCKET}/private/secret%20name.ogg"

    assert http.get(plain).status_code == 403
    assert http.head(plain).status_code == 403
    signing = _presign_key(kvs)
    now = int(time.time())
    good = presigned_path(signing, bucket, key, now + 300)
    assert good.startswith(plain + "?")
    assert http.get(good).content == data  # the key the test derives is the server's
    expired = presigned_path(signing, bucket, key, now - 1)
    assert http.get(expired).status_code == 403
    query = parse_qs(urlsplit(good).query)
    sig, expires = query["Signature"][0], query["Expires"][0]
    forged = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    assert http.get(f"{plain}?Expires={expires}&Signature={forged}").status_code == 403
    later = int(expires) + 3600  # a longer life is not covered by the signature
    assert http.get(f"{plain}?Expires={later}&Signature={sig}").status_code == 403
    other = _upload(kvs, local, f"/{BUCKET}/private/other.ogg")
    moved = f"/objects/{BUCKET}/private/other.ogg?Expires={expires}&Signature={sig}"
    assert http.get(moved).status_code == 403  # a signature is for one object
    assert other

    # the CLI's URL
    printed = cli(kvs.data_dir, "presign", path, "--expires", "120").stdout.strip()
    assert printed.startswith(plain + "?Expires=")
    served = http.get(printed)
    assert served.status_code == 200 and served.content == data
    assert served.headers["content-type"] == "audio/ogg"
    ranged = http.get(printed, headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == data[100:200]
    assert http.head(printed).status_code == 200
    based = cli(kvs.data_dir, "presign", path, "--base-url", kvs.server.url).stdout.strip()
    assert based.startswith(kvs.server.url + plain) and http.get(based).content == data

    # the API's URL
    reply = kvs.client.get_object_url(SrcPath=path, Expires=60)
    assert _errnum(reply) == 0, reply
    assert reply["Path"].startswith(plain + "?Expires=") and reply["URL"] == ""
    assert now + 60 <= reply["ExpireTime"] <= int(time.time()) + 60
    assert http.get(reply["Path"]).content == data
    bare = kvs.client.get_object_url(SrcPath=path.lstrip("/"))  # bucket/key, default expiry
    assert bare["ExpireTime"] >= now + 3600
    assert http.get(bare["Path"]).content == data


def test_object_url_errors(kvs: Deployment, http: httpx.Client) -> None:
    client = kvs.client
    assert _errnum(client.get_object_url()) == 1000
    assert _errnum(client.get_object_url(SrcPath=f"/{BUCKET}/nothing.ogg")) == 1210
    assert _errnum(client.get_object_url(SrcPath="/no-such-bucket/a.ogg")) == 1011
    assert _errnum(client.get_object_url(SrcPath=f"/{BUCKET}/../x")) == 1014
    for bad in (0, 7 * 86400 + 1, "soon"):
        assert _errnum(client.get_object_url(SrcPath=f"/{BUCKET}/x.ogg", Expires=bad)) == 1001

    assert http.get(f"/objects/{BUCKET}/nothing.ogg").status_code == 404
    assert http.get("/objects/no-such-bucket/a.ogg").status_code == 404
    assert http.get("/objects/Bad_Bucket/a.ogg").status_code == 400
    assert http.get(f"/objects/{BUCKET}/a//b.ogg").status_code == 400
    assert http.get(f"/objects/{BUCKET}/").status_code == 400
    assert http.get(f"/objects/{BUCKET}/owners").status_code == 404  # a folder, not an object
    answer = http.get(f"/objects/{BUCKET}/%00.ogg")
    assert answer.status_code == 400 and answer.json()["Error"]["Code"] == "InvalidObjectName"


def test_object_url_with_a_public_base(tmp_path: Path) -> None:
    """With OPENKVS_PUBLIC_URL set, GetObjectURL also answers the full URL."""
    from openkvs.model import User
    from openkvs.runtime import open_services
    from openkvs.service.presign import get_object_url

    settings = config.load(
        {"OPENKVS_DATA_DIR": str(tmp_path), "OPENKVS_PUBLIC_URL": "https://media.example.org/"}
    )
    services, engine = open_services(settings)
    try:
        owner: User = services.users.ensure_user("default")
        services.buckets.create("media", owner.id)
        services.storage.create_bucket("media")
        services.storage.put_bytes("media", "a.mp3", b"x", acl="private", content_type="x/y")
        reply = get_object_url(services, owner, {"SrcPath": "/media/a.mp3"})
    finally:
        engine.dispose()
    assert reply["URL"] == "https://media.example.org" + reply["Path"]


def test_existing_buckets_are_adopted_by_default(tmp_path: Path) -> None:
    """Folders from before owners existed belong to `default`, once, however many
    processes start at the same moment."""
    data = tmp_path / "data"
    for name in ("legacy-a", "legacy-b"):
        (data / "buckets" / name).mkdir(parents=True)
    (data / "buckets" / "Not_A_Bucket").mkdir()
    starts = [
        subprocess.Popen(
            [sys.executable, "-m", "openkvs", "bucket", "list"],
            env=child_env(data),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for process in starts:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert out.splitlines() == ["Not_A_Bucket\t-", "legacy-a\tdefault", "legacy-b\tdefault"]

    taken = cli(data, "bucket", "create", "legacy-a", "--user", "erin")
    assert taken.returncode != 0 and "belongs to default" in taken.stderr
    assert cli(data, "bucket", "create", "legacy-a").returncode == 0  # its owner: no change
    assert cli(data, "bucket", "chown", "legacy-a", "--user", "erin").returncode == 0
    assert cli(data, "bucket", "list").stdout.splitlines()[1] == "legacy-a\terin"
