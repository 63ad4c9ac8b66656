"""Rewriting an HLS playlist for the console's player (``console/playlists.py``)."""

from __future__ import annotations

from openkvs.console.playlists import resolve, rewrite

MASTER = """#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=800000
low/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1600000
https://cdn.example/high.m3u8
"""

MEDIA = """#EXTM3U
#EXT-X-TARGETDURATION:2
#EXT-X-KEY:METHOD=AES-128,URI="key.bin",IV=0x01
#EXT-X-MAP:URI="init.mp4"
#EXTINF:2.0,
seg-000.ts
#EXTINF:2.0,
../escape.ts
#EXT-X-ENDLIST"""


def sign(key: str) -> str:
    return f"/objects/b/{key}?sig"


def nested(key: str) -> str:
    return f"/console/hls?key={key}"


def test_master_playlists_point_to_the_console() -> None:
    assert rewrite(MASTER, "out/master.m3u8", sign, nested) == (
        "#EXTM3U\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",URI="/console/hls?key=out/audio/index.m3u8"\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=800000\n"
        "/console/hls?key=out/low/index.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1600000\n"
        "https://cdn.example/high.m3u8\n"
    )


def test_media_playlists_name_signed_objects() -> None:
    assert rewrite(MEDIA, "out/low/index.m3u8", sign, nested) == (
        "#EXTM3U\n"
        "#EXT-X-TARGETDURATION:2\n"
        '#EXT-X-KEY:METHOD=AES-128,URI="/objects/b/out/low/key.bin?sig",IV=0x01\n'
        '#EXT-X-MAP:URI="/objects/b/out/low/init.mp4?sig"\n'
        "#EXTINF:2.0,\n"
        "/objects/b/out/low/seg-000.ts?sig\n"
        "#EXTINF:2.0,\n"
        "/objects/b/out/escape.ts?sig\n"
        "#EXT-X-ENDLIST\n"
    )


def test_resolve() -> None:
    assert resolve("a/b/index.m3u8", "seg.ts?x=1") == "a/b/seg.ts"
    assert resolve("index.m3u8", "seg.ts") == "seg.ts"
    for outside in ("../x.ts", "/abs.ts", "http://h/x.ts", "data:,x", ""):
        assert resolve("index.m3u8", outside) is None, outside
