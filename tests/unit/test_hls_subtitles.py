"""WebVTT renditions of HLS outputs (engine/hls_subtitles.py, engine/hls.py): the command's
subtitle output, cue parsing and segmenting, the subtitle playlist and the master playlist."""

from __future__ import annotations

from tests.unit.test_transcode_command import FACTS, INPUT

from openkvs.engine.graph import Composition, SubtitleTrack
from openkvs.engine.hls import Variant, master_playlist, plan_hls
from openkvs.engine.hls_subtitles import (
    Cue,
    SubtitleMedia,
    media_header,
    mpegts_of,
    parse_cues,
    segment_names,
    segment_texts,
    subtitle_playlist,
    track_label,
)
from openkvs.presets.avtrans import AvtransOptions, parse

SUB_INPUT = ("-i", "/s/subtitle0.srt")


def test_the_command_converts_each_track_to_webvtt() -> None:
    composition = Composition(
        inputs=(SUB_INPUT,), subtitle_tracks=(SubtitleTrack(1, "film.en", "en"),)
    )
    param = {"f": "hls", "hls_time": 2, "VIDEO": {"preset": "ultrafast"}}
    planned = plan_hls(
        parse(param), AvtransOptions(), FACTS, input_args=INPUT, scratch="/s",
        playlist_key="vod/movie.m3u8", composition=composition,
    )  # fmt: skip
    [command] = planned.plan.commands
    assert command[-7:] == (
        "-map", "1:s:0", "-c:s", "webvtt", "-f", "webvtt", "/s/hls-subtitle0.vtt",
    )  # fmt: skip
    hls_out = command.index("hls")
    assert command[hls_out + 1] == "/s/package/movie-video.m3u8"
    assert "/s/package/movie-%d.ts" in command  # the segments keep their names
    assert command.count("-map") == 3  # video, audio, the subtitle output's
    assert command[: command.index("-map")][-4:] == (*INPUT[-2:], *SUB_INPUT)
    assert planned.master == "movie.m3u8"
    assert [o.playlist for o in planned.outputs] == ["movie-video.m3u8"]
    [subs] = planned.subtitles
    assert (subs.vtt, subs.playlist, subs.segments) == (
        "/s/hls-subtitle0.vtt",
        "movie-sub0.m3u8",
        "movie-sub0-%d.vtt",
    )
    assert (subs.name, subs.language) == ("film.en", "en")


def test_without_subtitles_nothing_changes() -> None:
    param = {"f": "hls", "hls_time": 2}
    planned = plan_hls(
        parse(param), AvtransOptions(), FACTS, input_args=INPUT, scratch="/s",
        playlist_key="movie.m3u8",
    )  # fmt: skip
    assert planned.master == "" and planned.subtitles == ()
    assert planned.outputs[0].playlist == "movie.m3u8"


def test_track_labels() -> None:
    assert track_label("/b/subs/film.en.srt") == ("film.en", "en")
    assert track_label("film.pt-BR.vtt") == ("film.pt-BR", "pt-BR")
    assert track_label("film.zho.ass") == ("film.zho", "zho")
    assert track_label("film.srt") == ("film", "")
    assert track_label("film.Final.srt") == ("film.Final", "")
    assert track_label("a.b.director.srt") == ("a.b.director", "")


FFMPEG_VTT = (
    "WEBVTT\n\n"
    "00:01.000 --> 00:02.000\nHello <i>there</i>\n\n"
    "00:03.500 --> 00:04.500 align:start\nline one\nline two\n\n"
    "01:00:00.000 --> 01:00:01.000\nlate\n"
)


def test_cues_are_parsed() -> None:
    assert parse_cues(FFMPEG_VTT) == [
        Cue(1.0, 2.0, "", "Hello <i>there</i>"),
        Cue(3.5, 4.5, " align:start", "line one\nline two"),
        Cue(3600.0, 3601.0, "", "late"),
    ]
    with_ids = "\ufeffWEBVTT\r\n\r\nNOTE hi\r\n\r\nc1\r\n00:00:01.250 --> 00:00:02.000\r\nA\r\n"
    assert parse_cues(with_ids) == [Cue(1.25, 2.0, "", "A")]


def test_segments_golden() -> None:
    cues = parse_cues(FFMPEG_VTT)
    texts = segment_texts(cues, [2.0, 2.0, 1.0], mpegts_of(1.4))
    head = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n"
    assert texts == [
        head + "00:00:01.000 --> 00:00:02.000\nHello <i>there</i>\n\n",
        head + "00:00:03.500 --> 00:00:04.500 align:start\nline one\nline two\n\n",
        head + "00:00:03.500 --> 00:00:04.500 align:start\nline one\nline two\n\n",
    ]  # the spanning cue is in both segments; the one after the video's end in none
    assert mpegts_of(-0.1) == 0


VIDEO_PLAYLIST = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:5
#EXT-X-PLAYLIST-TYPE:VOD
#EXTINF:2.000000,
movie-5.ts
#EXTINF:2.600000,
movie-6.ts
#EXT-X-ENDLIST
"""


def test_subtitle_playlist_golden() -> None:
    durations = [2.0, 2.6]
    header = media_header(VIDEO_PLAYLIST, durations)
    assert (header.target, header.sequence, header.playlist_type, header.ended) == (
        3, 5, "VOD", True,
    )  # fmt: skip
    names = segment_names("movie-sub0-%d.vtt", 2, header.sequence)
    assert names == ["movie-sub0-5.vtt", "movie-sub0-6.vtt"]
    assert subtitle_playlist(header, durations, names) == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:5\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.000000,\nmovie-sub0-5.vtt\n"
        "#EXTINF:2.600000,\nmovie-sub0-6.vtt\n#EXT-X-ENDLIST\n"
    )


def test_master_with_a_subtitle_group_golden() -> None:
    variant = Variant("m-video.m3u8", 900000, 700000, 320, 240, 10.0, "avc1.64000d,mp4a.40.2")
    media = [
        SubtitleMedia("m-sub0.m3u8", "film.en", "en"),
        SubtitleMedia("m-sub1.m3u8", 'say "hi"'),
        SubtitleMedia("m-sub2.m3u8", 'say "hi"'),
    ]
    assert master_playlist([variant], independent=True, subtitles=media) == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="film.en",LANGUAGE="en",'
        'DEFAULT=NO,AUTOSELECT=YES,URI="m-sub0.m3u8"\n'
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="say \'hi\'",'
        'DEFAULT=NO,AUTOSELECT=YES,URI="m-sub1.m3u8"\n'
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="say \'hi\' (2)",'
        'DEFAULT=NO,AUTOSELECT=YES,URI="m-sub2.m3u8"\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=700000,RESOLUTION=320x240,"
        'FRAME-RATE=10.000,CODECS="avc1.64000d,mp4a.40.2",SUBTITLES="subs"\n'
        "m-video.m3u8\n"
    )
    assert "SUBTITLES" not in master_playlist([variant], independent=True)
