"""Legacy completion callbacks per user, end to end: ``openkvs keys callbacks`` switches a
user's lower-case first level (spec §5.7) and KS3 ``itmes`` list (§5.5); a user with
neither on gets the ordinary body. A real server, real avinfo tasks, a real receiver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.support.kvs_client import close_kvs_client, make_kvs_client
from tests.support.media import make_video
from tests.support.receiver import CallbackReceiver
from tests.support.server import cli, create_keys

PRESET = "legacy_cb_info"


def _user(kvs: Deployment, name: str, *switches: str) -> Any:
    """A user with a key, read access to ``media``, an avinfo preset and ``switches``."""
    ak, sk = create_keys(kvs.data_dir, user=name)
    granted = cli(kvs.data_dir, "bucket", "grant", BUCKET, "--user", name, "--read-only")
    assert granted.returncode == 0, granted.stderr
    if switches:
        switched = cli(kvs.data_dir, "keys", "callbacks", "--user", name, *switches)
        assert switched.returncode == 0, switched.stderr
    client = make_kvs_client(kvs.server.url, ak, sk)
    reply = client.preset(Preset=PRESET, PresetType="avinfo", Description="", Param={})
    assert reply["ErrNum"] == 0, reply
    return client


def _callback(client: Any, src: str, receiver: CallbackReceiver) -> tuple[str, Any]:
    reply = client.create_task(Preset=PRESET, SrcInfo=[{"path": src}], CbUrl=receiver.url)
    assert reply["ErrNum"] == 0, reply
    [request] = receiver.wait_for(1, timeout=60)
    return str(reply["TaskID"]), request.json


def test_switches_shown_and_unknown_user_refused(kvs: Deployment) -> None:
    create_keys(kvs.data_dir, user="legacy_show")
    shown = cli(kvs.data_dir, "keys", "callbacks", "--user", "legacy_show")
    assert shown.returncode == 0, shown.stderr
    assert "lowercase:  off" in shown.stdout and "ks3-items:  off" in shown.stdout
    on = cli(kvs.data_dir, "keys", "callbacks", "--user", "legacy_show", "--ks3-items", "on")
    assert "lowercase:  off" in on.stdout and "ks3-items:  on" in on.stdout
    missing = cli(kvs.data_dir, "keys", "callbacks", "--user", "legacy_nobody", "--lowercase", "on")
    assert missing.returncode != 0 and "no user legacy_nobody" in missing.stderr
    bad = cli(kvs.data_dir, "keys", "callbacks", "--user", "legacy_show", "--lowercase", "yes")
    assert bad.returncode != 0


@pytest.mark.slow
def test_each_user_gets_its_own_callback_variant(kvs: Deployment, media_dir: Path) -> None:
    src = kvs.upload(make_video(media_dir, "legacy_cb", seconds=1, size="160x120"), "legacy/a.mp4")
    lower = _user(kvs, "legacy_lower", "--lowercase", "on")
    ks3 = _user(kvs, "legacy_ks3", "--ks3-items", "on")
    both = _user(kvs, "legacy_both", "--lowercase", "on", "--ks3-items", "on")
    plain = _user(kvs, "legacy_plain")
    try:
        with CallbackReceiver() as receiver:
            task_id, body = _callback(lower, src, receiver)
        assert list(body) == ["taskid", "status", "type", "details"]
        assert (body["taskid"], body["status"], body["type"]) == (task_id, 3, "avinfo")
        assert body["details"]["errnum"] == 0 and body["details"]["items"][0]["dstpath"] == ""

        with CallbackReceiver() as receiver:
            task_id, body = _callback(ks3, src, receiver)
        assert list(body) == ["TaskID", "Status", "Type", "itmes", "Details"]
        assert body["TaskID"] == task_id and body["Details"]["errnum"] == 0
        assert body["itmes"] == [{"cmd": "tag=avinfo", "desc": "success", "keys": [""], "code": 3}]

        # A waveform (CreateWaveTask) follows the same switch.
        writable = cli(kvs.data_dir, "bucket", "grant", BUCKET, "--user", "legacy_ks3")
        assert writable.returncode == 0, writable.stderr
        with CallbackReceiver() as receiver:
            reply = ks3.create_wave_task(
                Preset="wave", SrcInfo=[{"path": src}], DstBucket=BUCKET,
                DstObjectKey="legacy/wave.json", points=10, CbUrl=receiver.url,
            )  # fmt: skip
            assert reply["ErrNum"] == 0, reply
            [request] = receiver.wait_for(1, timeout=60)
        body = request.json
        assert list(body) == ["TaskID", "Status", "Type", "itmes", "Details"], body
        [item] = body["itmes"]
        assert item["cmd"].startswith("tag=audiowave|tag=saveas&bucket=media&object=")
        assert item["code"] == 3 and item["keys"] == ["legacy/wave.json"]

        with CallbackReceiver() as receiver:
            _, body = _callback(both, src, receiver)
        assert list(body) == ["taskid", "status", "type", "itmes", "details"]

        with CallbackReceiver() as receiver:
            task_id, body = _callback(plain, src, receiver)
        assert list(body) == ["TaskID", "Status", "Type", "Details"]
        assert body["TaskID"] == task_id and body["Status"] == 3

        # Switched off again: the next task's callback is the ordinary one.
        off = cli(kvs.data_dir, "keys", "callbacks", "--user", "legacy_lower", "--lowercase", "off")
        assert off.returncode == 0, off.stderr
        with CallbackReceiver() as receiver:
            _, body = _callback(lower, src, receiver)
        assert list(body) == ["TaskID", "Status", "Type", "Details"]
    finally:
        for client in (lower, ks3, both, plain):
            client.del_preset(Preset=PRESET)
            close_kvs_client(client)
