"""The avinfo ``metainfo`` text (engine/metainfo.py): ffprobe's JSON, compact, unchanged."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from tests.support.jsontext import without_whitespace

from openkvs.engine.metainfo import (
    MAX_METAINFO_BYTES,
    MAX_TAGS,
    MAX_VALUE_BYTES,
    metainfo_text,
    require_av_streams,
)
from openkvs.errors import TaskError

#: ffprobe 5.1 ``-of json -show_streams -show_format`` output, as printed (4-space indent),
#: trimmed: a rotated H.264 stream (its display matrix holds newlines), an AAC stream, and
#: format tags with accents, CJK, an emoji, quotes and backslashes.
FFPROBE_TEXT = r"""{
    "streams": [
        {
            "index": 0,
            "codec_name": "h264",
            "codec_long_name": "H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10",
            "profile": "Constrained Baseline",
            "codec_type": "video",
            "codec_tag_string": "avc1",
            "codec_tag": "0x31637661",
            "width": 320,
            "height": 240,
            "has_b_frames": 0,
            "sample_aspect_ratio": "1:1",
            "pix_fmt": "yuv420p",
            "level": 13,
            "is_avc": "true",
            "r_frame_rate": "25/1",
            "time_base": "1/12800",
            "start_pts": 0,
            "start_time": "0.000000",
            "duration": "1.000000",
            "bit_rate": "728168",
            "nb_frames": "25",
            "disposition": {
                "default": 1,
                "dub": 0
            },
            "tags": {
                "language": "und",
                "vendor_id": "[0][0][0][0]"
            },
            "side_data_list": [
                {
                    "side_data_type": "Display Matrix",
                    "displaymatrix": "\n00000000:            0      -65536           0\n00000001:        65536           0           0\n00000002:            0           0  1073741824\n",
                    "rotation": 90
                }
            ]
        },
        {
            "index": 1,
            "codec_name": "aac",
            "codec_type": "audio",
            "sample_fmt": "fltp",
            "sample_rate": "44100",
            "channels": 2,
            "channel_layout": "stereo",
            "bits_per_sample": 0,
            "time_base": "1/44100",
            "start_time": "0.000000",
            "bit_rate": "128000"
        }
    ],
    "format": {
        "filename": "/srv/openkvs/data/buckets/media/in/rot.mp4",
        "nb_streams": 2,
        "nb_programs": 0,
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
        "format_long_name": "QuickTime / MOV",
        "start_time": "0.000000",
        "duration": "1.000000",
        "size": "92057",
        "bit_rate": "736456",
        "probe_score": 100,
        "tags": {
            "title": "Vidéo 测试 🎬",
            "comment": "say \"hi\"\\back\\\\slash\u0001"
        }
    }
}
"""  # noqa: E501 (ffprobe prints the display matrix on one line)

#: What the service reports for FFPROBE_TEXT read from ``/media/in/rot.mp4``: the same text
#: without insignificant whitespace, ``filename`` replaced where it stood. Written out by
#: hand, not computed.
GOLDEN = (
    '{"streams":[{"index":0,"codec_name":"h264",'
    '"codec_long_name":"H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10",'
    '"profile":"Constrained Baseline","codec_type":"video","codec_tag_string":"avc1",'
    '"codec_tag":"0x31637661","width":320,"height":240,"has_b_frames":0,'
    '"sample_aspect_ratio":"1:1","pix_fmt":"yuv420p","level":13,"is_avc":"true",'
    '"r_frame_rate":"25/1","time_base":"1/12800","start_pts":0,"start_time":"0.000000",'
    '"duration":"1.000000","bit_rate":"728168","nb_frames":"25",'
    '"disposition":{"default":1,"dub":0},'
    '"tags":{"language":"und","vendor_id":"[0][0][0][0]"},'
    '"side_data_list":[{"side_data_type":"Display Matrix",'
    r'"displaymatrix":"\n00000000:            0      -65536           0\n'
    r"00000001:        65536           0           0\n"
    r'00000002:            0           0  1073741824\n",'
    '"rotation":90}]},'
    '{"index":1,"codec_name":"aac","codec_type":"audio","sample_fmt":"fltp",'
    '"sample_rate":"44100","channels":2,"channel_layout":"stereo","bits_per_sample":0,'
    '"time_base":"1/44100","start_time":"0.000000","bit_rate":"128000"}],'
    '"format":{"filename":"/media/in/rot.mp4","nb_streams":2,"nb_programs":0,'
    '"format_name":"mov,mp4,m4a,3gp,3g2,mj2","format_long_name":"QuickTime / MOV",'
    '"start_time":"0.000000","duration":"1.000000","size":"92057","bit_rate":"736456",'
    '"probe_score":100,'
    '"tags":{"title":"Vidéo 测试 🎬",'
    r'"comment":"say \"hi\"\\back\\\\slash\u0001"}}}'
)


def _parsed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FFPROBE_TEXT)
    return data


def test_golden_text() -> None:
    assert metainfo_text(_parsed(), source="/media/in/rot.mp4") == GOLDEN


def test_is_ffprobes_own_text_without_whitespace() -> None:
    # Same escapes as ffprobe's JSON writer (\n, \", \\, lower-case \u00XX), raw UTF-8.
    expected = without_whitespace(FFPROBE_TEXT).replace(
        '"/srv/openkvs/data/buckets/media/in/rot.mp4"', '"/media/in/rot.mp4"'
    )
    assert metainfo_text(_parsed(), source="/media/in/rot.mp4") == expected


def test_key_order_and_value_types_survive() -> None:
    text = metainfo_text(_parsed(), source="/media/in/rot.mp4")
    back = json.loads(text)
    original = _parsed()
    assert list(back) == ["streams", "format"]
    assert [list(s) for s in back["streams"]] == [list(s) for s in original["streams"]]
    assert list(back["format"]) == list(original["format"])  # filename still first
    fmt = back["format"]
    assert (fmt["size"], fmt["nb_streams"], fmt["duration"]) == ("92057", 2, "1.000000")
    video = back["streams"][0]
    assert (video["width"], video["is_avc"], video["side_data_list"][0]["rotation"]) == (
        320,
        "true",
        90,
    )
    assert back == {**original, "format": {**original["format"], "filename": "/media/in/rot.mp4"}}


def test_non_ascii_is_kept_as_utf8_not_escaped() -> None:
    text = metainfo_text(_parsed(), source="/media/in/rot.mp4")
    assert '"title":"Vidéo 测试 🎬"' in text
    assert "\\u" not in text.replace("\\u0001", "")
    assert "Vidéo 测试 🎬".encode() in text.encode("utf-8")


def test_input_is_not_modified() -> None:
    original = _parsed()
    before = copy.deepcopy(original)
    metainfo_text(original, source="/b/k.mp4")
    assert original == before
    assert original["format"]["filename"] == "/srv/openkvs/data/buckets/media/in/rot.mp4"


def test_non_ascii_source_name() -> None:
    text = metainfo_text({"format": {"filename": "/x", "size": "1"}}, source="/media/音乐/歌.mp3")
    assert text == '{"format":{"filename":"/media/音乐/歌.mp3","size":"1"}}'


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        # Nothing to replace: nothing added.
        ({"streams": [], "format": {"nb_streams": 0}}, '{"streams":[],"format":{"nb_streams":0}}'),
        ({"streams": []}, '{"streams":[]}'),
        ({}, "{}"),
        # Floats (ffprobe prints none today) keep Python's shortest round-trip form.
        ({"format": {"x": 0.1, "y": 1e-07}}, '{"format":{"x":0.1,"y":1e-07}}'),
    ],
)
def test_documents_without_filename(doc: dict[str, Any], expected: str) -> None:
    assert metainfo_text(doc, source="/b/k") == expected


@pytest.mark.parametrize(
    "streams",
    [
        [{"codec_type": "video"}],
        [{"codec_type": "audio"}],
        [{"codec_type": "subtitle"}, {"codec_type": "audio"}],
        [{"codec_type": "data"}, {"codec_type": "video"}],
    ],
)
def test_av_streams_accepted(streams: list[dict[str, Any]]) -> None:
    require_av_streams({"streams": streams, "format": {}})


@pytest.mark.parametrize(
    ("doc", "detail"),
    [
        ({"streams": [], "format": {"nb_streams": 0}}, "no stream at all"),
        ({"format": {}}, "no stream at all"),
        ({"streams": [{"codec_type": "subtitle"}]}, "subtitle"),
        ({"streams": [{"codec_type": "data"}, {"codec_type": "subtitle"}]}, "data, subtitle"),
    ],
)
def test_no_audio_or_video_is_2058(doc: dict[str, Any], detail: str) -> None:
    with pytest.raises(TaskError) as info:
        require_av_streams(doc)
    assert info.value.code == 2058
    assert info.value.message == "sniffer result has AV headers but no audio and video data"
    assert detail in info.value.detail


def test_long_strings_are_cut_on_a_character_boundary() -> None:
    doc = _parsed()
    doc["format"]["tags"]["comment"] = "c" * 5_000_000
    doc["format"]["tags"]["title"] = "长" * 2000
    doc["streams"][0]["tags"]["x" * 3000] = "long name"
    text = metainfo_text(doc, source="/media/a.mp4")
    parsed = json.loads(text)
    tags = parsed["format"]["tags"]
    assert tags["comment"] == "c" * MAX_VALUE_BYTES
    assert tags["title"] == "长" * (MAX_VALUE_BYTES // 3)
    assert parsed["streams"][0]["tags"]["x" * MAX_VALUE_BYTES] == "long name"
    assert parsed["format"]["filename"] == "/media/a.mp4"
    assert parsed["streams"][0]["codec_name"] == "h264"


def test_tags_per_object_are_counted() -> None:
    doc = _parsed()
    doc["format"]["tags"] = {f"t{i}": str(i) for i in range(500)}
    tags = json.loads(metainfo_text(doc, source="/m/a"))["format"]["tags"]
    assert list(tags) == [f"t{i}" for i in range(MAX_TAGS)]


def test_lone_surrogates_become_question_marks() -> None:
    doc = _parsed()
    doc["format"]["tags"]["comment"] = "a\ud800b"
    text = metainfo_text(doc, source="/m/a")
    assert json.loads(text)["format"]["tags"]["comment"] == "a?b"
    text.encode("utf-8")  # storable and answerable


def test_too_large_drops_tags_then_fails_with_2010() -> None:
    doc = _parsed()
    big_tags = {f"t{i}": "v" * MAX_VALUE_BYTES for i in range(MAX_TAGS)}
    doc["streams"] = [{**doc["streams"][0], "tags": big_tags} for _ in range(4)]
    parsed = json.loads(metainfo_text(doc, source="/m/a"))  # 4 x 64 KiB of tags: dropped
    assert all(s["tags"] == {} for s in parsed["streams"]) and len(parsed["streams"]) == 4
    assert parsed["format"]["tags"] == {}
    doc["streams"] = [{"index": i, "codec_type": "data", "note": "n" * 1000} for i in range(200)]
    with pytest.raises(TaskError) as info:
        metainfo_text(doc, source="/m/a")
    assert info.value.code == 2010 and str(MAX_METAINFO_BYTES) in info.value.detail
