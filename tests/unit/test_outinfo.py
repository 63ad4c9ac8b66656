"""engine/outinfo.py: ffprobe JSON of an output → ``outMediainfo`` (spec §5.3.2), golden.

The samples are ffprobe 5.1 ``-show_streams -show_format`` JSON of files ffmpeg 5.1 wrote
(lavfi testsrc2 + sine, libx264 ultrafast + aac), verbatim except that each stream's
``disposition`` object (all zeros) is left out for length and ``filename`` is the bare name.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from openkvs.engine.outinfo import (
    format_name,
    needs_measuring,
    out_mediainfo,
    outinfo_text,
    rotation,
    stream_bit_rate,
)

MP4: dict[str, Any] = {
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
            "coded_width": 320,
            "coded_height": 240,
            "closed_captions": 0,
            "film_grain": 0,
            "has_b_frames": 0,
            "sample_aspect_ratio": "1:1",
            "display_aspect_ratio": "4:3",
            "pix_fmt": "yuv420p",
            "level": 13,
            "chroma_location": "left",
            "field_order": "progressive",
            "refs": 1,
            "is_avc": "true",
            "nal_length_size": "4",
            "id": "0x1",
            "r_frame_rate": "25/1",
            "avg_frame_rate": "25/1",
            "time_base": "1/12800",
            "start_pts": 0,
            "start_time": "0.000000",
            "duration_ts": 25600,
            "duration": "2.000000",
            "bit_rate": "697432",
            "bits_per_raw_sample": "8",
            "nb_frames": "50",
            "extradata_size": 37,
            "tags": {
                "language": "und",
                "handler_name": "VideoHandler",
                "vendor_id": "[0][0][0][0]",
                "encoder": "Lavc59.37.100 libx264",
            },
        },
        {
            "index": 1,
            "codec_name": "aac",
            "codec_long_name": "AAC (Advanced Audio Coding)",
            "profile": "LC",
            "codec_type": "audio",
            "codec_tag_string": "mp4a",
            "codec_tag": "0x6134706d",
            "sample_fmt": "fltp",
            "sample_rate": "44100",
            "channels": 1,
            "channel_layout": "mono",
            "bits_per_sample": 0,
            "id": "0x2",
            "r_frame_rate": "0/0",
            "avg_frame_rate": "0/0",
            "time_base": "1/44100",
            "start_pts": 0,
            "start_time": "0.000000",
            "duration_ts": 88200,
            "duration": "2.000000",
            "bit_rate": "69671",
            "nb_frames": "88",
            "extradata_size": 5,
            "tags": {
                "language": "und",
                "handler_name": "SoundHandler",
                "vendor_id": "[0][0][0][0]",
            },
        },
    ],
    "format": {
        "filename": "o.mp4",
        "nb_streams": 2,
        "nb_programs": 0,
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
        "format_long_name": "QuickTime / MOV",
        "start_time": "0.000000",
        "duration": "2.000000",
        "size": "194669",
        "bit_rate": "778676",
        "probe_score": 100,
        "tags": {
            "major_brand": "isom",
            "minor_version": "512",
            "compatible_brands": "isomiso2avc1mp41",
            "encoder": "Lavf59.27.100",
        },
    },
}

MKV: dict[str, Any] = {
    "streams": [
        {
            "index": 0,
            "codec_name": "h264",
            "codec_long_name": "H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10",
            "profile": "Constrained Baseline",
            "codec_type": "video",
            "codec_tag_string": "[0][0][0][0]",
            "codec_tag": "0x0000",
            "width": 320,
            "height": 240,
            "coded_width": 320,
            "coded_height": 240,
            "closed_captions": 0,
            "film_grain": 0,
            "has_b_frames": 0,
            "sample_aspect_ratio": "1:1",
            "display_aspect_ratio": "4:3",
            "pix_fmt": "yuv420p",
            "level": 13,
            "chroma_location": "left",
            "field_order": "progressive",
            "refs": 1,
            "is_avc": "true",
            "nal_length_size": "4",
            "r_frame_rate": "25/1",
            "avg_frame_rate": "25/1",
            "time_base": "1/1000",
            "start_pts": 23,
            "start_time": "0.023000",
            "bits_per_raw_sample": "8",
            "extradata_size": 37,
            "tags": {"ENCODER": "Lavc59.37.100 libx264", "DURATION": "00:00:02.023000000"},
        },
        {
            "index": 1,
            "codec_name": "aac",
            "codec_long_name": "AAC (Advanced Audio Coding)",
            "profile": "LC",
            "codec_type": "audio",
            "codec_tag_string": "[0][0][0][0]",
            "codec_tag": "0x0000",
            "sample_fmt": "fltp",
            "sample_rate": "44100",
            "channels": 1,
            "channel_layout": "mono",
            "bits_per_sample": 0,
            "r_frame_rate": "0/0",
            "avg_frame_rate": "0/0",
            "time_base": "1/1000",
            "start_pts": 0,
            "start_time": "0.000000",
            "extradata_size": 5,
            "tags": {"ENCODER": "Lavc59.37.100 aac", "DURATION": "00:00:02.023000000"},
        },
    ],
    "format": {
        "filename": "o.mkv",
        "nb_streams": 2,
        "nb_programs": 0,
        "format_name": "matroska,webm",
        "format_long_name": "Matroska / WebM",
        "start_time": "0.000000",
        "duration": "2.023000",
        "size": "193707",
        "bit_rate": "766018",
        "probe_score": 100,
        "tags": {"ENCODER": "Lavf59.27.100"},
    },
}

ROTATED: dict[str, Any] = {
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
            "height": 180,
            "coded_width": 320,
            "coded_height": 180,
            "closed_captions": 0,
            "film_grain": 0,
            "has_b_frames": 0,
            "sample_aspect_ratio": "1:1",
            "display_aspect_ratio": "16:9",
            "pix_fmt": "yuv420p",
            "level": 12,
            "chroma_location": "left",
            "field_order": "progressive",
            "refs": 1,
            "is_avc": "true",
            "nal_length_size": "4",
            "id": "0x1",
            "r_frame_rate": "25/1",
            "avg_frame_rate": "25/1",
            "time_base": "1/12800",
            "start_pts": 0,
            "start_time": "0.000000",
            "duration_ts": 12800,
            "duration": "1.000000",
            "bit_rate": "455352",
            "bits_per_raw_sample": "8",
            "nb_frames": "25",
            "extradata_size": 38,
            "tags": {
                "language": "und",
                "handler_name": "VideoHandler",
                "vendor_id": "[0][0][0][0]",
                "encoder": "Lavc59.37.100 libx264",
            },
            "side_data_list": [
                {
                    "side_data_type": "Display Matrix",
                    "displaymatrix": "\n"
                    "00000000:            0      "
                    "-65536           0\n"
                    "00000001:        65536           "
                    "0           0\n"
                    "00000002:            0           0  "
                    "1073741824\n",
                    "rotation": 90,
                }
            ],
        }
    ],
    "format": {
        "filename": "rot.mp4",
        "nb_streams": 1,
        "nb_programs": 0,
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
        "format_long_name": "QuickTime / MOV",
        "start_time": "0.000000",
        "duration": "1.000000",
        "size": "57870",
        "bit_rate": "462960",
        "probe_score": 100,
        "tags": {
            "major_brand": "isom",
            "minor_version": "512",
            "compatible_brands": "isomiso2avc1mp41",
            "encoder": "Lavf59.27.100",
        },
    },
}

MP3: dict[str, Any] = {
    "streams": [
        {
            "index": 0,
            "codec_name": "mp3",
            "codec_long_name": "MP3 (MPEG audio layer 3)",
            "codec_type": "audio",
            "codec_tag_string": "[0][0][0][0]",
            "codec_tag": "0x0000",
            "sample_fmt": "fltp",
            "sample_rate": "44100",
            "channels": 1,
            "channel_layout": "mono",
            "bits_per_sample": 0,
            "r_frame_rate": "0/0",
            "avg_frame_rate": "0/0",
            "time_base": "1/14112000",
            "start_pts": 353600,
            "start_time": "0.025057",
            "duration_ts": 28753920,
            "duration": "2.037551",
            "bit_rate": "64000",
        }
    ],
    "format": {
        "filename": "o.mp3",
        "nb_streams": 1,
        "nb_programs": 0,
        "format_name": "mp3",
        "format_long_name": "MP2/3 (MPEG audio layer 2/3)",
        "start_time": "0.025057",
        "duration": "2.037551",
        "size": "16527",
        "bit_rate": "64889",
        "probe_score": 51,
        "tags": {"encoder": "Lavf59.27.100"},
    },
}

#: The bytes of each stream's packets in o.mkv (ffprobe -show_entries packet=stream_index,size).
MKV_PACKETS = {0: 174358, 1: 17620}


def test_mp4_golden() -> None:
    assert outinfo_text(out_mediainfo(MP4, extension=".mp4")) == (
        '{"metadata":{},"streams":['
        '{"index":0,"codec_type":"video","codec_name":"h264","bit_rate":697432,'
        '"width":320,"height":240,"r_frame_rate":"25/1"},'
        '{"index":1,"codec_type":"audio","codec_name":"aac","bit_rate":69671,'
        '"channels":1,"sample_rate":44100}],'
        '"format":{"duration":"2.000","format_name":"mp4","size":194669,"bit_rate":"778676"}}'
    )


def test_mkv_stream_bit_rates_are_measured_from_packets() -> None:
    assert needs_measuring(MKV)
    info = out_mediainfo(MKV, extension=".mkv", measured=MKV_PACKETS)
    assert info == {
        "metadata": {},
        "streams": [
            {
                "index": 0,
                "codec_type": "video",
                "codec_name": "h264",
                "bit_rate": round(174358 * 8 / 2.023),
                "width": 320,
                "height": 240,
                "r_frame_rate": "25/1",
            },
            {
                "index": 1,
                "codec_type": "audio",
                "codec_name": "aac",
                "bit_rate": round(17620 * 8 / 2.023),
                "channels": 1,
                "sample_rate": 44100,
            },
        ],
        "format": {
            "duration": "2.023",
            "format_name": "matroska",
            "size": 193707,
            "bit_rate": "766018",
        },
    }


def test_unmeasured_stream_bit_rate_is_zero_not_missing() -> None:
    info = out_mediainfo(MKV, extension=".mkv")
    assert [s["bit_rate"] for s in info["streams"]] == [0, 0]
    assert not needs_measuring(MP4)


def test_rotated_output_says_rotate() -> None:
    # Stream-copied with -metadata:s:v rotate=90: FFmpeg 5.1 stores a display matrix that
    # ffprobe reads as 90 degrees counter-clockwise, i.e. rotate "270" (clockwise) in
    # the rotate-tag convention.
    info = out_mediainfo(ROTATED, extension=".mp4")
    assert info["metadata"] == {"rotate": "270"}
    assert (info["streams"][0]["width"], info["streams"][0]["height"]) == (320, 180)


def test_audio_only_output() -> None:
    info = out_mediainfo(MP3, extension=".mp3")
    assert info["streams"] == [
        {
            "index": 0,
            "codec_type": "audio",
            "codec_name": "mp3",
            "bit_rate": 64000,
            "channels": 1,
            "sample_rate": 44100,
        }
    ]
    assert info["format"]["format_name"] == "mp3"


@pytest.mark.parametrize("sample", [MP4, MKV, ROTATED, MP3], ids=["mp4", "mkv", "rot", "mp3"])
def test_exact_key_set_and_types(sample: dict[str, Any]) -> None:
    info = json.loads(outinfo_text(out_mediainfo(sample, extension=".mp4", measured={0: 1})))
    assert list(info) == ["metadata", "streams", "format"]
    assert set(info["metadata"]) <= {"rotate"}
    assert all(isinstance(v, str) for v in info["metadata"].values())
    for stream in info["streams"]:
        common = {"index": int, "codec_type": str, "codec_name": str, "bit_rate": int}
        extra = {
            "video": {"width": int, "height": int, "r_frame_rate": str},
            "audio": {"channels": int, "sample_rate": int},
        }.get(stream["codec_type"], {})
        types = {**common, **extra}
        assert list(stream) == list(types)
        assert all(type(stream[k]) is t for k, t in types.items()), stream
    fmt = info["format"]
    assert list(fmt) == ["duration", "format_name", "size", "bit_rate"]
    assert [type(fmt[k]) for k in fmt] == [str, str, int, str]


def test_missing_values_have_their_types() -> None:
    sparse = {
        "streams": [
            {"index": 0, "codec_type": "video", "codec_name": "h264", "bit_rate": "N/A"},
            {"index": 1, "codec_type": "data", "codec_name": "bin_data"},
        ],
        "format": {"format_name": "mpegts", "size": "1000", "duration": "2.0"},
    }
    info = out_mediainfo(sparse, extension=".ts")
    assert info["streams"] == [
        {
            "index": 0,
            "codec_type": "video",
            "codec_name": "h264",
            "bit_rate": 0,
            "width": 0,
            "height": 0,
            "r_frame_rate": "0/0",
        },
        {"index": 1, "codec_type": "data", "codec_name": "bin_data", "bit_rate": 0},
    ]
    # No bit_rate in the container: size over duration.
    assert info["format"] == {
        "duration": "2.000",
        "format_name": "mpegts",
        "size": 1000,
        "bit_rate": "4000",
    }
    assert out_mediainfo({})["format"] == {
        "duration": "0.000",
        "format_name": "",
        "size": 0,
        "bit_rate": "0",
    }


@pytest.mark.parametrize(
    ("names", "extension", "chosen"),
    [
        ("mov,mp4,m4a,3gp,3g2,mj2", ".mp4", "mp4"),
        ("mov,mp4,m4a,3gp,3g2,mj2", ".MOV", "mov"),
        ("mov,mp4,m4a,3gp,3g2,mj2", ".m4a", "m4a"),
        ("mov,mp4,m4a,3gp,3g2,mj2", ".m4v", "mov"),
        ("matroska,webm", ".webm", "webm"),
        ("matroska,webm", ".mkv", "matroska"),
        ("flv", ".flv", "flv"),
        ("mpegts", ".ts", "mpegts"),
        ("", ".mp4", ""),
    ],
)
def test_format_name(names: str, extension: str, chosen: str) -> None:
    assert format_name(names, extension) == chosen


@pytest.mark.parametrize(
    ("stream", "degrees"),
    [
        ({}, 0),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}, 90),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": 90}]}, 270),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": 180}]}, 180),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": 0}]}, 0),
        # ffprobe before 5.0 also printed the legacy tag; it wins when both are there.
        ({"tags": {"rotate": "90"}, "side_data_list": [{"rotation": -90}]}, 90),
        ({"tags": {"rotate": "-90"}}, 270),
    ],
)
def test_rotation(stream: dict[str, Any], degrees: int) -> None:
    assert rotation(stream) == degrees


def test_stream_bit_rate_prefers_the_recorded_value_and_the_stream_duration() -> None:
    assert stream_bit_rate({"bit_rate": "1000"}, 2.0, 999) == 1000
    assert stream_bit_rate({"duration": "4.0"}, 2.0, 1000) == 2000
    assert stream_bit_rate({}, 2.0, 1000) == 4000
    assert stream_bit_rate({}, None, 1000) == 0
    assert stream_bit_rate({}, 2.0, None) == 0
