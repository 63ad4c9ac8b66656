"""Watermarks and several sources in HLS, DASH and segment-mode outputs (one rendition):
the composition of the task (``engine/graph.py``) is drawn into every segment.

The sources are solid blue clips (320x240, 10 fps); the logo is a solid red 40x20 PNG at
the top-left corner. Each output's segments are decoded and the logo's rectangle is red
in their frames, the rest blue; two joined clips give the sum of their durations.
"""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import m3u8
import numpy as np
import pytest
from tests.integration.conftest import BUCKET, Deployment

pytestmark = pytest.mark.slow

W, H, FPS = 320, 240, 10
VIDEO = {"preset": "ultrafast", "crf": 12}
LOGO = [[{"url": "", "dx": 8, "dy": 6}]]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True, timeout=60)


@pytest.fixture(scope="module")
def paths(kvs: Deployment, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("packaged-compositions")
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    for name, seconds in (("a.mp4", 2), ("b.mp4", 1)):
        _ffmpeg(
            "-f", "lavfi", "-i", f"color=c=blue:s={W}x{H}:r={FPS}:d={seconds}",
            "-f", "lavfi", "-i", f"sine=f=440:d={seconds}", *x264, "-c:a", "aac",
            "-shortest", str(folder / name),
        )  # fmt: skip
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=40x20", "-frames:v", "1", str(folder / "red.png"))
    return {name: kvs.upload(folder / name, f"pc/{name}") for name in ("a.mp4", "b.mp4", "red.png")}


def _run(kvs: Deployment, name: str, param: dict[str, Any], src: list[dict], key: str) -> None:
    reply = kvs.client.preset(Preset=name, PresetType="avtrans", Param=param)
    assert reply["ErrNum"] in (0, 1201), reply
    reply = kvs.client.create_task(Preset=name, SrcInfo=src, DstBucket=BUCKET, DstObjectKey=key)
    assert reply["ErrNum"] == 0, reply
    info = kvs.wait_task(str(reply["TaskID"]), timeout=120)
    assert info["TaskStatus"] == "succ", info


def _frames(path: Path) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, H, W, 3).astype(int)


def _logo_drawn(frames: np.ndarray) -> None:
    assert len(frames)
    inside = frames[:, 6 + 4 : 6 + 16, 8 + 4 : 8 + 36]
    outside = frames[:, 100:140, 100:200]
    assert np.all(np.abs(inside - (255, 0, 0)).max(axis=-1) < 40), inside.mean(axis=(0, 1, 2))
    assert np.all(np.abs(outside - (0, 0, 255)).max(axis=-1) < 40)


def _logo(paths: dict[str, str]) -> list[list[dict[str, Any]]]:
    return [[{**LOGO[0][0], "url": paths["red.png"]}]]


def _stored(kvs: Deployment, key: str) -> Path:
    return kvs.data_dir / "buckets" / BUCKET / key


def test_hls_of_two_joined_clips_with_a_logo(kvs: Deployment, paths: dict[str, str]) -> None:
    param = {"f": "hls", "hls_time": 1, "VIDEO": VIDEO, "LOGOS": _logo(paths)}
    sources = [{"path": paths["a.mp4"], "index": 0}, {"path": paths["b.mp4"], "index": 1}]
    _run(kvs, "pc_hls", param, sources, "pc/hls/joined.m3u8")
    playlist = _stored(kvs, "pc/hls/joined.m3u8")
    parsed = m3u8.load(str(playlist))
    assert parsed.segments and not parsed.is_variant
    assert abs(sum(s.duration for s in parsed.segments) - 3.0) < 0.15
    for segment in parsed.segments:
        _logo_drawn(_frames(playlist.parent / segment.uri))


def test_dash_with_a_logo(kvs: Deployment, paths: dict[str, str]) -> None:
    param = {"f": "dash", "hls_time": 1, "VIDEO": VIDEO, "LOGOS": _logo(paths)}
    _run(kvs, "pc_dash", param, [{"path": paths["a.mp4"]}], "pc/dash/logo.mpd")
    manifest = _stored(kvs, "pc/dash/logo.mpd")
    tree = ET.parse(manifest)
    kinds = {a.get("contentType") or a.get("mimeType", "").split("/")[0] for a in tree.iter(
        "{urn:mpeg:dash:schema:mpd:2011}AdaptationSet")}  # fmt: skip
    assert {"video", "audio"} <= kinds
    _logo_drawn(_frames(manifest))


def test_segment_mode_with_a_logo(kvs: Deployment, paths: dict[str, str]) -> None:
    param = {"f": "mp4", "segment_time": 1, "VIDEO": VIDEO, "LOGOS": _logo(paths)}
    _run(kvs, "pc_seg", param, [{"path": paths["a.mp4"]}], "pc/seg/list.m3u8")
    listed = m3u8.load(str(_stored(kvs, "pc/seg/list.m3u8")))
    assert len(listed.segments) >= 2
    for segment in listed.segments:
        _logo_drawn(_frames(_stored(kvs, "pc/seg/" + segment.uri)))


def test_several_renditions_refuse_a_composition(kvs: Deployment, paths: dict[str, str]) -> None:
    param = {"f": "hls", "VIDEO": VIDEO, "LOGOS": _logo(paths)}
    reply = kvs.client.preset(Preset="pc_hls_mul", PresetType="avtrans", Param=param)
    assert reply["ErrNum"] in (0, 1201), reply
    reply = kvs.client.create_task(
        Preset="pc_hls_mul",
        SrcInfo=[{"path": paths["a.mp4"]}],
        DstBucket=BUCKET,
        DstObjectKey="pc/mul.m3u8",
        ExtParam=json.dumps({"mulHlsRate": 1}),
    )
    assert reply["ErrNum"] == 1015, reply
    assert "mulHlsRate" in reply["ErrMsg"]
