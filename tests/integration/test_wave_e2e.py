"""CreateWaveTask end to end through the official SDK against ``openkvs serve``.

Each task: upload with ``openkvs cp`` → create_wave_task → queue → worker → ffmpeg → output
object → callback to a real local receiver → GetTaskByTaskID. The waveform is compared with
an independent NumPy computation (``tests/support/media.reference_points``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.support.media import make_audio, make_video, reference_points
from tests.support.receiver import CallbackReceiver

#: Largest difference allowed between our value and the reference: the engine mixes
#: channels to 16-bit PCM (quantisation 3e-5), both round to 4 decimals (5e-5 each), and the
#: engine places window boundaries from the probed duration while the reference counts the
#: decoded samples, which can move a boundary by a few samples out of thousands.
TOLERANCE = 2e-3

SOURCES = {
    "m4a": lambda d: make_audio(d, "tone", fmt="m4a", seconds=8),
    "mp3": lambda d: make_audio(d, "tone", fmt="mp3", seconds=8),
    "ogg": lambda d: make_audio(d, "tone", fmt="ogg", seconds=8),
    "mp4": lambda d: make_video(d, "clip", seconds=6, audio=True),
}


def _expected_body(task_id: str, key: str) -> dict[str, Any]:
    return {
        "TaskID": task_id,
        "Status": 3,
        "Type": "audiowave",
        "Details": {
            "errnum": 0,
            "errmsg": "success",
            "bucket": BUCKET,
            "items": [{"dstpath": key}],
        },
    }


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_wave_task_matches_numpy_and_calls_back(
    kvs: Deployment, media_dir: Path, tmp_path: Path, kind: str
) -> None:
    local = SOURCES[kind](media_dir / kind)
    src = kvs.upload(local, f"in/{kind}/{local.name}")
    key = f"out/{kind}.wave.json"
    points = 300
    with CallbackReceiver() as receiver:
        cb_url = receiver.url
        reply = kvs.client.create_wave_task(
            Preset="wave",
            SrcInfo=[{"path": src}],
            DstBucket=BUCKET,
            DstObjectKey=key,
            DstAcl="private",
            CbUrl=cb_url,
            points=points,
        )
        assert reply["ErrNum"] == 0 and reply["ErrMsg"] == "success"
        task_id = reply["TaskID"]
        assert len(task_id) == 40
        [callback] = receiver.wait_for(1, timeout=60)
    assert callback.method == "POST"
    assert callback.headers["content-type"] == "application/json"
    assert callback.json == _expected_body(task_id, key)

    info = kvs.wait_task(task_id)
    assert info["TaskStatus"] == "succ"
    assert info["ErrorCode"] == "0" and info["ErrorMsg"] == ""
    assert info["Preset"] == "wave" and info["Type"] == "audiowave"
    assert info["DstBucket"] == BUCKET and info["DstObjectKey"] == key
    assert info["DstAcl"] == "private" and info["CbUrl"] == cb_url
    assert info["SrcInfo"][0]["path"] == src

    doc = json.loads(kvs.download(key, tmp_path / "wave.json").read_text())
    assert doc["version"] == 1 and doc["points"] == points
    assert doc["sample_rate"] == 44100 and doc["channels"] in (1, 2)
    assert doc["duration"] > 0
    data = doc["data"]
    assert len(data) == points
    assert all(isinstance(v, float | int) and 0.0 <= v <= 1.0 for v in data)
    expected = reference_points(local, points)
    worst = max(abs(a - b) for a, b in zip(data, expected, strict=True))
    assert worst <= TOLERANCE, f"largest difference from NumPy: {worst}"
    assert max(data) > 0.05  # the signal is audible: a silent output would also be "close"


def test_src_info_as_single_object_and_peaks_layout(
    kvs: Deployment, media_dir: Path, tmp_path: Path
) -> None:
    local = make_audio(media_dir / "peaks", "tone", fmt="mp3", seconds=5)
    src = kvs.upload(local, "in/peaks.mp3")
    reply = kvs.client.create_wave_task(
        Preset="wave",
        SrcInfo={"Path": src},
        DstBucket=BUCKET,
        DstObjectKey="out/peaks.json",
        points=100,
        ExtParam=json.dumps({"format": "peaks"}),
    )
    assert reply["ErrNum"] == 0, reply
    info = kvs.wait_task(reply["TaskID"])
    assert info["TaskStatus"] == "succ", info
    assert json.loads(info["ExtParam"]) == {"format": "peaks"}
    doc = json.loads(kvs.download("out/peaks.json", tmp_path / "p.json").read_text())
    assert {k: doc[k] for k in ("version", "channels", "bits", "sample_rate")} == {
        "version": 2,
        "channels": 1,
        "bits": 16,
        "sample_rate": 44100,
    }
    assert doc["length"] <= 100 and len(doc["data"]) == 2 * doc["length"]
    mins, maxs = doc["data"][0::2], doc["data"][1::2]
    assert all(-32768 <= lo <= hi <= 32767 for lo, hi in zip(mins, maxs, strict=True))
    assert max(maxs) > 1000


def test_no_audio_fails_with_2058(kvs: Deployment, media_dir: Path) -> None:
    local = make_video(media_dir / "silent", "mute", seconds=2, audio=False)
    src = kvs.upload(local, "in/mute.mp4")
    with CallbackReceiver() as receiver:
        task_id = kvs.create_wave(src, "out/mute.json", CbUrl=receiver.url, points=10)
        [callback] = receiver.wait_for(1, timeout=60)
    assert callback.json == {
        "TaskID": task_id,
        "Status": 4,
        "Type": "audiowave",
        "Details": {
            "errnum": 2058,
            "errmsg": "sniffer result has AV headers but no audio and video data",
            "bucket": BUCKET,
            "items": [],
        },
    }
    info = kvs.wait_task(task_id)
    assert (info["TaskStatus"], info["ErrorCode"]) == ("fail", "2058")
    assert info["ErrorMsg"] == "sniffer result has AV headers but no audio and video data"


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        # No demuxer recognises the bytes: "Invalid data found when processing input".
        ("noise.bin", "3150", "Trans Internal Error: Invalid data found when processing input"),
        # The .mp3 name selects the mp3 demuxer, which fails with "Invalid argument".
        ("noise.mp3", "3022", "Trans Internal Error: Invalid Argument"),
    ],
)
def test_undecodable_source_fails_with_ffmpeg_code(
    kvs: Deployment, tmp_path: Path, name: str, code: str, message: str
) -> None:
    garbage = tmp_path / name
    garbage.write_bytes(bytes(range(256)) * 64)
    src = kvs.upload(garbage, f"in/{name}")
    task_id = kvs.create_wave(src, "out/n.json", points=10)
    info = kvs.wait_task(task_id)
    assert (info["TaskStatus"], info["ErrorCode"], info["ErrorMsg"]) == ("fail", code, message)


def test_callback_survives_two_500_answers(kvs: Deployment, media_dir: Path) -> None:
    local = make_audio(media_dir / "retry", "tone", fmt="ogg", seconds=2)
    src = kvs.upload(local, "in/retry.ogg")
    with CallbackReceiver(statuses=[500, 500, 200]) as receiver:
        task_id = kvs.create_wave(src, "out/retry.json", CbUrl=receiver.url, points=20)
        got = receiver.wait_for(3, timeout=30)
        receiver.assert_quiet(1.0)
    assert [r.status for r in got] == [500, 500, 200]
    assert all(r.body == got[0].body for r in got)
    assert got[0].json == _expected_body(task_id, "out/retry.json")
