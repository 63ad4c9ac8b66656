"""The image kinds' pure rules: presets and ExtParam (presets/image.py, presets/simple.py),
source facts, sizes and the frame grid (engine/snapshot.py), the count rule
(engine/sample.py) and the cover choice (engine/cover.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openkvs import kinds
from openkvs.engine.cover import (
    BLACK_LEVEL,
    analysis_size,
    candidate_times,
    choose,
    cover_format,
    measure,
    plan_analysis,
)
from openkvs.engine.sample import plan_sample, sample_count, sample_range
from openkvs.engine.snapshot import (
    VideoFacts,
    grid_filter,
    image_command,
    output_size,
    rotation_of,
    video_facts,
)
from openkvs.engine.sprite import SpriteLayout
from openkvs.errors import ApiError, TaskError
from openkvs.presets.codec import dump, load
from openkvs.presets.image import (
    ImageOptions,
    ImageSize,
    SampleSpec,
    SnapshotSpec,
    parse_sample,
    parse_snapshot,
    sample_options,
    snapshot_options,
)
from openkvs.presets.simple import aiproduction_options, parse_aiproduction

ONE = [{"path": "/media/a.mp4", "index": 0}]
TWO = [*ONE, {"path": "/media/b.mp4", "index": 1}]

# -- presets --------------------------------------------------------------------------------


def test_snapshot_preset_values_arrive_as_numbers_or_strings() -> None:
    assert parse_snapshot({}) == SnapshotSpec()
    spec = parse_snapshot({"f": "png", "width": "640", "shortSide": 0, "ss": "00:01:02.5"})
    assert spec == SnapshotSpec("png", ImageSize(640, 0, 0), 62.5)
    assert load(SnapshotSpec, dump(spec)) == spec


def test_sample_preset_defaults_and_sprite_grid() -> None:
    assert parse_sample({}) == SampleSpec(interval=1, sprite=False)
    spec = parse_sample(
        {"f": "webp", "interval": "5", "spriteflag": 1, "spritew": 4, "spriteh": "3", "height": 90}
    )
    assert (spec.f, spec.interval, spec.sprite, spec.sprite_columns, spec.sprite_rows) == (
        "webp",
        5,
        True,
        4,
        3,
    )
    assert spec.size == ImageSize(0, 90, 0)
    assert load(SampleSpec, dump(spec)) == spec


# -- ExtParam -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1.5", 1.5), (2, 2.0), ("00:00:03.250", 3.25), ("01:02", 62.0), (0, 0.0), ("", None)],
)
def test_ext_ss_forms(value: Any, seconds: float | None) -> None:
    assert snapshot_options(SnapshotSpec(), {"ss": value}, ONE) == {"ss": seconds, "duration": None}


@pytest.mark.parametrize(
    ("ext", "words"),
    [
        ({"ss": "soon"}, "ExtParam ss must be seconds"),
        ({"ss": -1}, "ExtParam ss must be seconds"),
        ({"ss": True}, "ExtParam ss must be seconds"),
        ({"ss": [1]}, "ExtParam ss must be seconds"),
        ({"ss": "1e9"}, "ExtParam ss must be seconds"),
        ({"ss": 180001}, "at most 180000 seconds"),
        ({"duration": 0}, "ExtParam duration must be greater than 0"),
        ({"duration": "0:00"}, "ExtParam duration must be greater than 0"),
        ({"duration": {"s": 1}}, "ExtParam duration must be seconds"),
    ],
)
def test_bad_ext_values_are_1018(ext: dict[str, Any], words: str) -> None:
    with pytest.raises(ApiError) as info:
        sample_options(SampleSpec(), ext, ONE)
    assert info.value.code == 1018 and words in info.value.detail


def test_snapshot_ignores_duration_and_unknown_keys() -> None:
    options = snapshot_options(SnapshotSpec(), {"duration": "x", "Callback": 1, "ss": 4}, ONE)
    assert options == {"ss": 4.0, "duration": None}


def test_sample_reads_ss_and_duration() -> None:
    options = sample_options(SampleSpec(), {"ss": "2", "duration": 7.5}, ONE)
    assert load(ImageOptions, options) == ImageOptions(2.0, 7.5)


@pytest.mark.parametrize(
    "parse",
    [
        lambda sources: snapshot_options(SnapshotSpec(), {}, sources),
        lambda sources: sample_options(SampleSpec(), {}, sources),
        lambda sources: aiproduction_options(
            parse_aiproduction({"function_name": "smart_cover"}), {}, sources
        ),
    ],
    ids=["avsnapshot", "avsample", "aiproduction"],
)
def test_image_kinds_take_one_source(parse: Any) -> None:
    parse(ONE)
    with pytest.raises(ApiError) as info:
        parse(TWO)
    assert info.value.code == 1015 and "one source; SrcInfo has 2" in info.value.detail


def test_ext_ss_wins_over_the_preset() -> None:
    assert ImageOptions().start(SnapshotSpec(ss=3.0)) == 3.0
    assert ImageOptions(ss=1.0).start(SnapshotSpec(ss=3.0)) == 1.0
    assert ImageOptions(ss=0.0).start(SampleSpec(ss=3.0)) == 0.0
    assert ImageOptions().start(SampleSpec()) == 0.0


def test_kind_rows_name_their_executors_and_ext_readers() -> None:
    for name, executor in (
        ("avsnapshot", "SnapshotExecutor"),
        ("avsample", "SampleExecutor"),
        ("aiproduction", "CoverExecutor"),
    ):
        kind = kinds.kind(name)
        assert kind.executor_class().__name__ == executor
        with pytest.raises(ApiError) as info:
            kind.task_options(kind.parse({"function_name": "smart_cover"}), {}, TWO)
        assert info.value.code == 1015
    assert kinds.kind("avsample").task_options(SampleSpec(), {"duration": 3}, ONE)["duration"] == 3
    assert set(kinds.image_kinds()) == {"avsnapshot", "avsample"}


# -- source facts and sizes -----------------------------------------------------------------


def _probe(**video: Any) -> dict[str, Any]:
    stream = {
        "index": 0,
        "codec_type": "video",
        "width": 320,
        "height": 240,
        "avg_frame_rate": "25/1",
        "start_time": "0.000000",
        "duration": "6.000000",
    }
    stream.update(video)
    return {"streams": [stream], "format": {"start_time": "0.000000", "duration": "6.05"}}


def test_facts_of_a_plain_stream() -> None:
    assert video_facts(_probe()) == VideoFacts(
        index=0, width=320, height=240, duration=6.0, fps=25.0
    )


def test_facts_turn_the_size_upright_and_apply_the_pixel_aspect() -> None:
    rotated = _probe(side_data_list=[{"side_data_type": "Display Matrix", "rotation": -90}])
    assert rotation_of(rotated["streams"][0]) == 270
    assert (video_facts(rotated).width, video_facts(rotated).height) == (240, 320)
    tagged = _probe(tags={"rotate": "180"})
    assert (video_facts(tagged).width, video_facts(tagged).height) == (320, 240)
    anamorphic = _probe(width=720, height=576, sample_aspect_ratio="16:15")
    assert (video_facts(anamorphic).width, video_facts(anamorphic).height) == (768, 576)


def test_facts_duration_counts_from_the_file_start() -> None:
    late = _probe(start_time="1.400000", duration="4.000000")
    late["format"]["start_time"] = "1.000000"
    assert video_facts(late).duration == pytest.approx(4.4)
    no_stream_duration = _probe(duration=None)
    assert video_facts(no_stream_duration).duration == pytest.approx(6.05)
    unknown = _probe(duration=None)
    unknown["format"] = {}
    assert video_facts(unknown).duration == 0.0


def test_facts_skip_cover_art_and_refuse_audio_only_sources() -> None:
    art = _probe(disposition={"attached_pic": 1})
    audio = {"index": 1, "codec_type": "audio"}
    for found in ({"streams": [audio]}, {"streams": [art["streams"][0], audio]}, {}):
        with pytest.raises(TaskError) as info:
            video_facts(found)
        assert info.value.code == 3155
    both = {"streams": [audio, {**_probe()["streams"][0], "index": 2}], "format": {}}
    assert video_facts(both).index == 2


FACTS = VideoFacts(index=0, width=1280, height=720, duration=10.0, fps=25.0)
PORTRAIT = VideoFacts(index=0, width=720, height=1280, duration=10.0, fps=25.0)


@pytest.mark.parametrize(
    ("size", "facts", "expected"),
    [
        (ImageSize(), FACTS, (1280, 720)),
        (ImageSize(width=320, height=320), FACTS, (320, 320)),
        (ImageSize(width=320), FACTS, (320, 180)),
        (ImageSize(height=99), FACTS, (176, 99)),
        (ImageSize(short_side=360), FACTS, (640, 360)),
        (ImageSize(short_side=360), PORTRAIT, (360, 640)),
        (ImageSize(width=100, short_side=360), FACTS, (100, 56)),
        (ImageSize(width=1), FACTS, (1, 1)),
        (ImageSize(width=4000), FACTS, (4000, 2250)),
    ],
)
def test_output_sizes(size: ImageSize, facts: VideoFacts, expected: tuple[int, int]) -> None:
    assert output_size(size, facts) == expected


def test_a_side_beyond_8192_is_2315() -> None:
    with pytest.raises(TaskError) as info:
        output_size(ImageSize(height=8000), FACTS)  # 14222 wide
    assert info.value.code == 2315 and "14222x8000" in info.value.detail


def test_the_grid_filter_and_the_snapshot_command() -> None:
    assert grid_filter(1.0, 5, 3) == (
        "setpts=PTS-1.000000/TB,fps=fps=1/5:round=up:start_time=0,trim=end_frame=3"
    )
    assert grid_filter(0.0, 0.25) == "setpts=PTS-0.000000/TB,fps=fps=4:round=up:start_time=0"
    command = image_command(
        ["-i", "SRC"], FACTS, at=7.25, size=(64, 36), fmt="webp", output=Path("/s/o.webp")
    )
    args = list(command.args)
    assert args[args.index("-ss") + 1] == "6.250000"  # a second of preroll
    assert args.index("-ss") < args.index("-i")
    assert "[0:0]setpts=PTS-1.000000/TB," in args[args.index("-filter_complex") + 1]
    assert "scale=64:36,setsar=1[image]" in args[args.index("-filter_complex") + 1]
    assert args[-1] == "/s/o.webp" and command.content_type == "image/webp"
    early = image_command(["-i", "S"], FACTS, at=0.5, size=(8, 8), fmt="jpg", output=Path("o"))
    assert "-ss" not in early.args and "setpts=PTS-0.500000/TB" in " ".join(early.args)


# -- the count rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "interval", "count"),
    [
        (0, 10, 1, 10),  # 0..9: nothing at the end itself
        (0, 10.04, 1, 11),
        (0.5, 6.0, 1, 6),
        (0, 6, 7, 1),
        (3, 3, 1, 0),
        (4, 3, 1, 0),
        (0.1, 0.7, 0.2, 3),  # 0.6/0.2 is 2.9999999999999996 in floating point
        (0, 3600.0, 10, 360),
    ],
)
def test_sample_count(start: float, end: float, interval: float, count: int) -> None:
    assert sample_count(start, end, interval) == count


def test_sample_range_takes_the_earlier_end() -> None:
    spec = SampleSpec(interval=2)
    assert sample_range(spec, ImageOptions(), FACTS) == (0.0, 10.0)
    assert sample_range(spec, ImageOptions(ss=2, duration=3), FACTS) == (2.0, 5.0)
    assert sample_range(spec, ImageOptions(ss=8, duration=30), FACTS) == (8.0, 10.0)
    assert sample_range(SampleSpec(ss=1.0), ImageOptions(duration=3), FACTS) == (1.0, 4.0)
    unknown = VideoFacts(0, 64, 64, 0.0, 0.0)
    assert sample_range(spec, ImageOptions(ss=1, duration=3), unknown) == (1.0, 4.0)
    assert sample_range(spec, ImageOptions(ss=1), unknown) == (1.0, 0.0)
    for ss in (10.0, 11.0):
        with pytest.raises(TaskError) as info:
            sample_range(spec, ImageOptions(ss=ss), FACTS)
        assert info.value.code == 2337


def test_sample_plan(tmp_path: Path) -> None:
    spec = SampleSpec(f="png", size=ImageSize(width=160), interval=3, sprite=True,
                      sprite_columns=2, sprite_rows=2)  # fmt: skip
    plan = plan_sample(
        spec, ImageOptions(ss=1.5, duration=6), FACTS, source_args=["-i", "S"], scratch=tmp_path
    )
    assert (plan.start, plan.end, plan.count, plan.size) == (1.5, 7.5, 2, (160, 90))
    assert plan.layout == SpriteLayout(2, 2, 160, 90) and plan.media_seconds == 6
    args = list(plan.args)
    assert args[args.index("-ss") + 1] == "0.500000" and args[args.index("-t") + 1] == "7.000000"
    graph = args[args.index("-filter_complex") + 1]
    assert "fps=fps=1/3:round=up:start_time=0,trim=end_frame=2,scale=160:90" in graph
    assert "split=2[images][tiles];[tiles]tile=2x2[sheets]" in graph
    assert str(tmp_path / "images" / "%d.png") in args
    assert str(tmp_path / "images" / "sprite" / "%d.png") in args
    plain = plan_sample(
        SampleSpec(), ImageOptions(), FACTS, source_args=["-i", "S"], scratch=tmp_path
    )
    assert plain.layout is None and "-t" not in plain.args and plain.count == 10
    unknown = VideoFacts(0, 64, 48, 0.0, 0.0)  # the file does not say how long it is
    endless = plan_sample(SampleSpec(), ImageOptions(), unknown, source_args=["-i", "S"],
                          scratch=tmp_path)  # fmt: skip
    assert endless.count == 0 and "trim=" not in " ".join(endless.args)


# -- the cover choice -----------------------------------------------------------------------

RNG = np.random.default_rng(7)


def _frame(kind: str, shift: int = 0) -> np.ndarray:
    height, width = 72, 128
    if kind == "black":
        return np.full((height, width, 3), 3, dtype=np.uint8)
    if kind == "white":
        return np.full((height, width, 3), 235, dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    pattern = ((xx // 8 + yy // 8 + shift) % 2) * 160 + 40  # a sharp checkerboard
    frame = np.stack([pattern, np.roll(pattern, 3, axis=1), 255 - pattern], axis=-1)
    frame = np.clip(frame + RNG.integers(-6, 7, frame.shape), 0, 255).astype(np.uint8)
    if kind == "blurred":  # a wide box blur, as an out-of-focus shot
        smooth = frame.astype(np.float64)
        for axis in (0, 1):
            smooth = sum(np.roll(smooth, d, axis=axis) for d in range(-3, 4)) / 7
        frame = smooth.astype(np.uint8)
    return frame


def test_measures() -> None:
    assert measure(_frame("black")).black and not measure(_frame("sharp")).black
    assert measure(_frame("white")).blank and not measure(_frame("white")).black
    assert measure(_frame("blurred")).sharpness < 0.1 * measure(_frame("sharp")).sharpness
    dim = np.full((10, 10, 3), int(BLACK_LEVEL) + 2, dtype=np.uint8)
    assert not measure(dim).black and measure(dim).blank


def test_choose_skips_black_blank_and_blurred_frames() -> None:
    frames = [_frame("black")] * 4 + [_frame("white")] * 2 + [_frame("blurred")] * 3
    frames += [_frame("sharp", s) for s in range(3)]
    choice = choose(frames)
    assert choice.index >= 9 and not choice.fallback
    assert choice.rejected == {"black": 4, "blank": 2, "blurred": 3}


def test_choose_prefers_the_frame_nearest_the_mean_histogram() -> None:
    odd = _frame("sharp")
    odd[..., 2] = 250 - odd[..., 2] // 4  # a frame coloured unlike the others
    frames = [odd, _frame("sharp", 0), _frame("sharp", 1), _frame("sharp", 0)]
    assert choose(frames).index in (1, 2, 3)


def test_choose_falls_back_to_the_most_contrast_when_all_are_empty() -> None:
    faint = np.full((72, 128, 3), 3, dtype=np.uint8)
    faint[30:38, 50:58] = 60  # a small logo on black
    choice = choose([_frame("black"), faint, _frame("white"), _frame("black")])
    assert choice == choice.__class__(1, True, {"black": 3, "blank": 1, "blurred": 0})


def test_cover_candidates_and_format() -> None:
    assert candidate_times(8.0, 4) == [1.0, 3.0, 5.0, 7.0]
    assert candidate_times(0.0, 3) == [0.0, 1.0, 2.0]
    assert [cover_format(k) for k in ("a.png", "b.JPEG", "c.webp", "d", "e.gif")] == [
        "png", "jpg", "webp", "jpg", "jpg",
    ]  # fmt: skip
    assert analysis_size(FACTS) == (256, 144) and analysis_size(VideoFacts(0, 64, 48, 1, 1)) == (
        64,
        48,
    )


def test_cover_analysis_decodes_short_sources_once_and_seeks_in_long_ones(tmp_path: Path) -> None:
    short = plan_analysis(FACTS, source_args=["-i", "S"], scratch=tmp_path)
    assert len(short.commands) == 1 and len(short.times) == 32
    assert "trim=end_frame=32" in " ".join(short.commands[0])
    long = VideoFacts(0, 1280, 720, 3600.0, 25.0)
    seeks = plan_analysis(long, source_args=["-i", "S"], scratch=tmp_path)
    assert len(seeks.commands) == 32 and len(set(seeks.files)) == 32
    assert all("-ss" in command for command in seeks.commands)
