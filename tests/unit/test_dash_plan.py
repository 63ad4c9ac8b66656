"""The DASH builders (engine/dash.py, the DASH part of engine/ladder.py): renditions from
the ``mul*`` lists, the golden command, and the merged manifest."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from tests.unit.test_transcode_command import FACTS, INPUT

from openkvs.engine.dash import iso_seconds, merge_manifests, plan_dash
from openkvs.engine.ladder import Rendition, dash_audio_bitrates, dash_renditions
from openkvs.errors import ApiError
from openkvs.presets.avtrans import AvtransOptions, MulSpec, parse

HEAD = ["ffmpeg", "-hide_banner", "-nostdin", "-y", *INPUT]
NS = "{urn:mpeg:dash:schema:mpd:2011}"


def test_renditions_from_the_lists() -> None:
    mul = MulSpec(True, vb=(300_000, 600_000), res=("320x180", "640x0"), vr=(25.0,), ab=(64_000,))
    assert dash_renditions(mul) == [
        Rendition("v0", width=320, height=180, video_bitrate=300_000, fps=25.0),
        Rendition("v1", width=640, height=0, video_bitrate=600_000, fps=25.0),
    ]
    assert dash_audio_bitrates(mul) == [64_000]
    assert dash_audio_bitrates(MulSpec(True, ab=(64_000, 128_000, 64_000))) == [64_000, 128_000]
    assert dash_audio_bitrates(MulSpec(True)) == [0]
    assert dash_renditions(MulSpec(True, vb=(500_000,))) == [Rendition("v0", video_bitrate=500_000)]


def test_preset_rules_of_the_lists() -> None:
    spec = parse({"f": "dash", "mulrate": 1, "VIDEO": {"mulVb": "300k,600k", "mulRes": "640x360"}})
    assert spec.mul.vb == (300_000, 600_000) and spec.mul.res == ("640x360",)
    for param, name in (
        ({"f": "dash", "mulrate": 1}, "Param.mulrate"),
        ({"f": "dash", "mulrate": 1, "VIDEO": {"mulVb": "1m,2m", "mulVr": "25,30,50"}},
         "Param.VIDEO.mulVr"),
        ({"f": "hls", "mulrate": 1, "VIDEO": {"mulVb": "1m"}}, "Param.mulrate"),
    ):  # fmt: skip
        with pytest.raises(ApiError) as info:
            parse(param)
        assert info.value.code == 1001 and name in info.value.detail, info.value.detail


def test_command() -> None:
    param = {
        "f": "dash", "hls_time": 4, "mulrate": 1,
        "VIDEO": {"preset": "ultrafast", "mulVb": "300k,600k", "mulRes": "320x180,640x360"},
        "AUDIO": {"mulAb": "64k"},
    }  # fmt: skip
    spec = parse(param)
    planned = plan_dash(
        spec, AvtransOptions(), FACTS, input_args=INPUT, scratch="/s", manifest_key="a/s.mpd",
        renditions=dash_renditions(spec.mul), audio_bitrates=dash_audio_bitrates(spec.mul),
    )  # fmt: skip
    dash = ["-seg_duration", "4", "-use_template", "1", "-use_timeline", "1"]
    keyframes = ["-force_key_frames", "expr:gte(t,n_forced*4)"]
    video = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-an"]
    assert planned.plan.commands == (
        (
            *HEAD,
            "-map", "0:0", "-vf", "scale=320:180,setsar=1", "-c:v", "libx264", "-b:v", "300000",
            *video[2:], *keyframes, *dash, "-init_seg_name", "s-v0-init.m4s",
            "-media_seg_name", "s-v0-$Number$.m4s", "-f", "dash", "/s/package/.part-v0.mpd",
            "-map", "0:0", "-vf", "scale=640:360,setsar=1", "-c:v", "libx264", "-b:v", "600000",
            *video[2:], *keyframes, *dash, "-init_seg_name", "s-v1-init.m4s",
            "-media_seg_name", "s-v1-$Number$.m4s", "-f", "dash", "/s/package/.part-v1.mpd",
            "-map", "0:1", "-vn", "-c:a", "aac", "-b:a", "64000", *dash,
            "-init_seg_name", "s-a0-init.m4s", "-media_seg_name", "s-a0-$Number$.m4s",
            "-f", "dash", "/s/package/.part-a0.mpd",
        ),
    )  # fmt: skip
    assert [(p.name, p.kind) for p in planned.parts] == [
        ("v0", "video"),
        ("v1", "video"),
        ("a0", "audio"),
    ]
    assert planned.manifest == "s.mpd" and planned.plan.output == "/s/package/s.mpd"


def _part(kind: str, rep: str, duration: str = "PT4.0S", rate: str = "25/1") -> str:
    extra = f' frameRate="{rate}" maxWidth="1" maxHeight="1" par="16:9"' if kind == "video" else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        f'mediaPresentationDuration="{duration}" minBufferTime="PT2.0S" '
        'maxSegmentDuration="PT2.0S"><Period id="0" start="PT0.0S">'
        f'<AdaptationSet id="0" contentType="{kind}" bitstreamSwitching="true"{extra}>'
        f"{rep}</AdaptationSet></Period></MPD>"
    )


def test_merged_manifest() -> None:
    template = '<SegmentTemplate initialization="{0}-init.m4s" media="{0}-$Number$.m4s"/>'
    parts = [
        ("video", _part("video", f'<Representation id="0" width="320" height="180">'
                                 f'{template.format("s-v0")}</Representation>')),
        ("video", _part("video", f'<Representation id="0" width="640" height="360">'
                                 f'{template.format("s-v1")}</Representation>',
                        duration="PT4.04S", rate="30/1")),
        ("audio", _part("audio", f'<Representation id="0">{template.format("s-a0")}'
                                 "</Representation>")),
    ]  # fmt: skip
    root = ET.fromstring(merge_manifests(parts))
    assert root.tag == f"{NS}MPD" and root.get("mediaPresentationDuration") == "PT4.040S"
    [period] = root.findall(f"{NS}Period")
    video, audio = period.findall(f"{NS}AdaptationSet")
    assert (video.get("id"), video.get("contentType"), audio.get("contentType")) == (
        "0",
        "video",
        "audio",
    )
    reps = video.findall(f"{NS}Representation")
    assert [r.get("id") for r in reps] == ["0", "1"]
    assert [r.get("frameRate") for r in reps] == ["25/1", "30/1"]  # they differ: per rendition
    assert video.get("frameRate") is None and video.get("bitstreamSwitching") is None
    assert (video.get("maxWidth"), video.get("maxHeight")) == ("640", "360")
    [sound] = audio.findall(f"{NS}Representation")
    assert sound.get("id") == "2"
    media = [r.find(f"{NS}SegmentTemplate").get("media") for r in [*reps, sound]]  # type: ignore[union-attr]
    assert media == ["s-v0-$Number$.m4s", "s-v1-$Number$.m4s", "s-a0-$Number$.m4s"]
    assert iso_seconds("PT1H2M3.5S") == 3723.5 and iso_seconds("P1D") == 0.0
