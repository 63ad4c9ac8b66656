"""HLS and DASH outputs end to end (spec §3.2, §3.5, §3.8): tasks created through the real
server with the official SDK client and run by its real workers.

- ``f=hls``: the playlist parses (``m3u8``), its segment durations add up to the media's,
  none is longer than ``hls_time`` by more than a GOP, every segment decodes alone and
  starts with a keyframe; ``start_segment_num``, ``segment_filename``, ``segfile_acl``.
- ``mulHlsRate=1`` + ``hlsKey``: a 640x360 source gives two renditions (360p, 240p); the
  master lists each with BANDWIDTH within 10% of the measured peak segment bit rate and its
  real RESOLUTION; the encrypted stream decodes with its key and not with another one.
- ``f=dash`` with ``mulrate=1``: one Representation per ``mul*`` entry, audio in its own
  AdaptationSet, SegmentTemplate; the manifest and each init+media segment decode.
- segment mode honours ``segfile_acl``.
"""

from __future__ import annotations

import json
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import m3u8
import pytest
from tests.integration.conftest import BUCKET, Deployment, deploy
from tests.support.media import make_video
from tests.support.receiver import CallbackReceiver

pytestmark = pytest.mark.slow

WAIT = 120.0
MPD = "{urn:mpeg:dash:schema:mpd:2011}"
KEY = "00112233445566778899aabbccddeeff"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deploy(tmp_path_factory.mktemp("hls-dash"))


def _stored(site: Deployment, key: str) -> Path:
    return site.data_dir / "buckets" / BUCKET / key


def _acl(site: Deployment, key: str) -> str:
    path = site.data_dir / "buckets" / ".meta" / BUCKET / f"{key}.json"
    return str(json.loads(path.read_text())["acl"])


def _run(cmd: list[str | Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)


def _duration(path: Path) -> float:
    out = _run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                path])  # fmt: skip
    return float(out.stdout.strip())


def _decodes_alone(path: Path) -> None:
    """The file decodes without any error and its first video frame is a keyframe."""
    decoded = _run(["ffmpeg", "-v", "error", "-xerror", "-i", path, "-f", "null", "-"])
    assert decoded.returncode == 0 and decoded.stderr == "", (path, decoded.stderr)
    first = _run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1",
                  "-show_entries", "frame=key_frame", "-of", "csv=p=0", path])  # fmt: skip
    assert first.stdout.split()[0].strip(",") == "1", path


def _task(
    site: Deployment, preset: str, param: dict[str, Any], src: str, key: str, **extra: Any
) -> dict[str, Any]:
    """Create the preset and a task of it; the completion callback body."""
    answer = site.client.preset(Preset=preset, PresetType="avtrans", Param=param)
    assert answer["ErrNum"] in (0, 1201), answer
    with CallbackReceiver() as rx:
        answer = site.client.create_task(
            Preset=preset, SrcInfo=[{"path": src}], DstBucket=BUCKET, DstObjectKey=key,
            CbUrl=rx.url, CbMethod="POST", **extra,
        )  # fmt: skip
        assert answer["ErrNum"] == 0, answer
        task_id = answer["TaskID"]
        deadline = time.monotonic() + WAIT
        while True:
            for request in rx.requests:
                body = request.json
                mine = isinstance(body, dict) and body.get("TaskID") == task_id
                if mine and body.get("Status") in (3, 4):
                    return dict(body)
            assert time.monotonic() < deadline, f"no completion callback for {task_id}"
            time.sleep(0.1)


def _item(body: dict[str, Any], key: str) -> dict[str, Any]:
    assert body["Status"] == 3, body
    [item] = body["Details"]["items"]
    assert item["dstpath"] == key and item["segmentlisttype"] == ""
    return dict(item)


def _check_media_playlist(path: Path, hls_time: float, media: float, gop: float) -> list[str]:
    """The checks every media playlist passes; its segment URIs."""
    playlist = m3u8.load(str(path))
    assert not playlist.is_variant and playlist.is_endlist
    assert playlist.playlist_type == "vod"
    durations = [s.duration for s in playlist.segments]
    assert abs(sum(durations) - media) <= max(durations), durations
    assert all(d <= hls_time + gop for d in durations), durations
    return [s.uri for s in playlist.segments]


def test_hls_single_rendition(site: Deployment, tmp_path: Path) -> None:
    source = make_video(tmp_path, "four", seconds=4, size="320x240")
    src = site.upload(source, "hls-in/four.mp4")
    param = {
        "f": "hls", "hls_time": 1, "start_segment_num": 3, "segfile_acl": "public-read",
        "VIDEO": {"vcodec": "h264", "preset": "ultrafast"}, "AUDIO": {"acodec": "aac"},
    }  # fmt: skip
    key = "vod/one/movie.m3u8"
    body = _task(site, "hls1", param, src, key, DstAcl="private")
    info = json.loads(_item(body, key)["outMediainfo"])
    assert info["format"]["format_name"] == "hls"
    assert abs(float(info["format"]["duration"]) - 4.0) < 0.2
    assert {s["codec_type"] for s in info["streams"]} == {"video", "audio"}
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (320, 240) and video["bit_rate"] > 0
    playlist = _stored(site, key)
    uris = _check_media_playlist(playlist, 1, _duration(source), gop=1.0)
    assert uris == [f"movie-{n}.ts" for n in range(3, 3 + len(uris))] and len(uris) >= 4
    for uri in uris:
        _decodes_alone(playlist.parent / uri)
        assert _acl(site, f"vod/one/{uri}") == "public-read"
    assert _acl(site, key) == "private"
    whole = _run(["ffmpeg", "-v", "error", "-xerror", "-i", playlist, "-f", "null", "-"])
    assert whole.returncode == 0, whole.stderr


def test_hls_fmp4_segments_named(site: Deployment, tmp_path: Path) -> None:
    src = site.upload(make_video(tmp_path, "two", seconds=2, size="160x120"), "hls-in/two.mp4")
    param = {"f": "hls", "hls_time": 1, "VIDEO": {"vcodec": "h264", "preset": "ultrafast"}}
    ext = {"segment_filename": "part%03d", "passParams": {"hls_segment_type": "fmp4"}}
    key = "vod/fmp4/index.m3u8"
    body = _task(site, "hlsfmp4", param, src, key, ExtParam=json.dumps(ext))
    _item(body, key)
    playlist = _stored(site, key)
    uris = _check_media_playlist(playlist, 1, 2.0, gop=1.0)
    assert uris == [f"part{n:03d}.m4s" for n in range(len(uris))]
    parsed = m3u8.load(str(playlist))
    assert parsed.segment_map and parsed.segment_map[0].uri == "index-init.mp4"
    init = (playlist.parent / "index-init.mp4").read_bytes()
    for uri in uris:  # each fragment decodes after the init segment alone
        joined = tmp_path / f"joined-{uri}.mp4"
        joined.write_bytes(init + (playlist.parent / uri).read_bytes())
        _decodes_alone(joined)


def test_multi_rate_encrypted_hls(site: Deployment, tmp_path: Path) -> None:
    source = make_video(tmp_path, "wide", seconds=2, size="640x360")
    src = site.upload(source, "hls-in/wide.mp4")
    param = {"f": "hls", "hls_time": 1, "VIDEO": {"vcodec": "h264", "preset": "ultrafast"}}
    ext = {"mulHlsRate": 1, "hlsKey": {"key": KEY, "url": "https://keys.example.com/k1"}}
    key = "vod/multi/master.m3u8"
    body = _task(site, "hlsmul", param, src, key, ExtParam=json.dumps(ext))
    info = json.loads(_item(body, key)["outMediainfo"])
    top = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (top["width"], top["height"]) == (640, 360)
    folder = _stored(site, key).parent
    master = m3u8.load(str(folder / "master.m3u8"))
    assert master.is_variant
    sizes = []
    for variant in master.playlists:
        stream = variant.stream_info
        media = m3u8.load(str(folder / variant.uri))
        assert [k.uri for k in media.keys if k] == ["https://keys.example.com/k1"]
        assert all(k.method == "AES-128" for k in media.keys if k)
        peak = max((folder / s.uri).stat().st_size * 8 / s.duration for s in media.segments)
        assert abs(stream.bandwidth - peak) <= 0.1 * peak, (variant.uri, stream.bandwidth, peak)
        assert 0 < stream.average_bandwidth <= stream.bandwidth
        assert stream.codecs.startswith("avc1.") and "mp4a.40.2" in stream.codecs
        assert stream.frame_rate == 25
        # Decrypted locally with the key: the real picture size is the one listed.
        local = tmp_path / variant.uri
        text = (folder / variant.uri).read_text().replace("https://keys.example.com/k1", "k.key")
        local.write_text(text)
        for segment in media.segments:
            (tmp_path / segment.uri).write_bytes((folder / segment.uri).read_bytes())
        (tmp_path / "k.key").write_bytes(bytes.fromhex(KEY))
        probe = _run(
            [
                "ffprobe",
                "-v",
                "error",
                "-allowed_extensions",
                "ALL",
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=width,height",
                "-of",
                "csv=p=0",
                local,
            ]
        )
        width, height = (int(n) for n in probe.stdout.split()[0].split(","))
        assert stream.resolution == (width, height)
        assert width <= 640 and height <= 360
        decoded = _run(["ffmpeg", "-v", "error", "-allowed_extensions", "ALL", "-xerror",
                        "-i", local, "-f", "null", "-"])  # fmt: skip
        assert decoded.returncode == 0 and decoded.stderr == "", decoded.stderr
        sizes.append(height)
        (tmp_path / "k.key").write_bytes(bytes.fromhex("ff" * 16))  # the wrong key
        wrong = _run(["ffmpeg", "-v", "error", "-allowed_extensions", "ALL", "-xerror",
                      "-i", local, "-f", "null", "-"])  # fmt: skip
        assert wrong.returncode != 0 or wrong.stderr != "", "decoded with the wrong key"
    assert sizes == [360, 240]
    assert (folder / "master.key").read_bytes() == bytes.fromhex(KEY)
    assert _acl(site, "vod/multi/master.key") == "private"
    # The segments are encrypted: one alone is not a transport stream.
    first = m3u8.load(str(folder / master.playlists[0].uri)).segments[0].uri
    assert _run(["ffmpeg", "-v", "error", "-i", folder / first, "-f", "null", "-"]).returncode


def test_dash_renditions(site: Deployment, tmp_path: Path) -> None:
    src = site.upload(make_video(tmp_path, "dash", seconds=4, size="640x360"), "dash-in/d.mp4")
    param = {
        "f": "dash", "hls_time": 2, "mulrate": 1,
        "VIDEO": {"vcodec": "h264", "preset": "ultrafast", "mulVb": "300k,600k",
                  "mulRes": "320x180,640x360"},
        "AUDIO": {"acodec": "aac", "mulAb": "64k"},
    }  # fmt: skip
    key = "vod/dash/stream.mpd"
    body = _task(site, "dashmul", param, src, key)
    info = json.loads(_item(body, key)["outMediainfo"])
    assert info["format"]["format_name"] == "dash"
    assert [s["codec_type"] for s in info["streams"]] == ["video", "audio"]
    manifest = _stored(site, key)
    root = ET.parse(manifest).getroot()
    assert root.tag == f"{MPD}MPD" and root.get("type") == "static"
    [period] = root.findall(f"{MPD}Period")
    sets = period.findall(f"{MPD}AdaptationSet")
    assert [s.get("contentType") for s in sets] == ["video", "audio"]
    videos = sets[0].findall(f"{MPD}Representation")
    assert [(r.get("width"), r.get("height")) for r in videos] == [("320", "180"), ("640", "360")]
    assert len(sets[1].findall(f"{MPD}Representation")) == 1
    ids = [r.get("id") for s in sets for r in s.findall(f"{MPD}Representation")]
    assert len(set(ids)) == 3
    for rep in [*videos, *sets[1].findall(f"{MPD}Representation")]:
        template = rep.find(f"{MPD}SegmentTemplate")
        assert template is not None
        init = (manifest.parent / template.get("initialization", "")).read_bytes()
        media = template.get("media", "")
        assert "$Number$" in media
        first = manifest.parent / media.replace("$Number$", template.get("startNumber", "1"))
        joined = tmp_path / f"joined-{rep.get('id')}.mp4"
        joined.write_bytes(init + first.read_bytes())
        decoded = _run(["ffmpeg", "-v", "error", "-xerror", "-i", joined, "-f", "null", "-"])
        assert decoded.returncode == 0 and decoded.stderr == "", decoded.stderr
    whole = _run(["ffprobe", "-v", "error", "-of", "json", "-show_streams", manifest.resolve()])
    kinds = [s["codec_type"] for s in json.loads(whole.stdout)["streams"]]
    assert kinds == ["video", "video", "audio"], whole.stderr
    assert not list(manifest.parent.glob(".part-*"))


def test_segment_mode_segfile_acl(site: Deployment, tmp_path: Path) -> None:
    src = site.upload(make_video(tmp_path, "sm", seconds=2, size="64x48"), "seg-in/sm.mp4")
    param = {"f": "mpegts", "segment_time": 1, "segfile_acl": "private",
             "VIDEO": {"vcodec": "h264", "preset": "ultrafast"}}  # fmt: skip
    key = "segacl/list.m3u8"
    body = _task(site, "segacl", param, src, key)
    assert body["Status"] == 3, body
    names = [e["filename"] for e in json.loads(body["Details"]["items"][0]["segmentsinfo"])]
    assert names and all(_acl(site, f"segacl/{name}") == "private" for name in names)
    assert _acl(site, key) == "public-read"  # DstAcl's default


def test_bad_hls_key_is_1018(site: Deployment, tmp_path: Path) -> None:
    param = {"f": "hls", "VIDEO": {"vcodec": "h264"}}
    answer = site.client.preset(Preset="hlsbadkey", PresetType="avtrans", Param=param)
    assert answer["ErrNum"] in (0, 1201), answer
    src = site.upload(make_video(tmp_path, "k", seconds=1, size="64x48"), "bad-in/k.mp4")
    bad: list[Any] = [
        "abc", KEY + "0", {"key": KEY, "iv": "xyz"}, {"url": "k"}, {"key": KEY, "acl": "open"},
        {"key": KEY, "url": 'a"b'}, {"key": KEY, "other": 1}, 12, [KEY],
    ]  # fmt: skip
    for hls_key in bad:
        answer = site.client.create_task(
            Preset="hlsbadkey", SrcInfo=[{"path": src}], DstBucket=BUCKET,
            DstObjectKey="bad/k.m3u8", ExtParam=json.dumps({"hlsKey": hls_key}),
        )  # fmt: skip
        assert answer["ErrNum"] == 1018 and "hlsKey" in answer["ErrMsg"], (hls_key, answer)


def test_inconsistent_mul_lists_are_1001(site: Deployment) -> None:
    param: dict[str, Any] = {"f": "dash", "mulrate": 1, "VIDEO": {"mulVb": "300k,600k"}}
    param["VIDEO"]["mulRes"] = "320x180,640x360,1280x720"
    answer = site.client.preset(Preset="dashbad", PresetType="avtrans", Param=param)
    assert answer["ErrNum"] == 1001 and "Param.VIDEO.mulRes" in answer["ErrMsg"], answer
    param["VIDEO"] = {"mulVb": "300k,600k", "mulRes": "320x180,640x360", "mulVr": "25,30,50"}
    answer = site.client.preset(Preset="dashbad", PresetType="avtrans", Param=param)
    assert answer["ErrNum"] == 1001 and "Param.VIDEO.mulVr" in answer["ErrMsg"], answer
    param["VIDEO"] = {}
    answer = site.client.preset(Preset="dashbad", PresetType="avtrans", Param=param)
    assert answer["ErrNum"] == 1001 and "Param.mulrate" in answer["ErrMsg"], answer
