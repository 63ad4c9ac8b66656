"""``aiproduction`` ``smart_cover`` end to end (the official SDK against ``openkvs serve``):
the cover is a real frame of the content, not the black, blank or blurred parts around it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.integration.test_snapshots import (
    create,
    decode,
    image,
    meta,
    nearest,
    preset,
    stored,
    succeeded,
)
from tests.support.media import SampleMediaUnavailable, probe, sample_videos
from tests.support.receiver import CallbackReceiver

from openkvs.engine.cover import laplacian_variance, luma

SIZE = "320x240"


def lavfi_video(folder: Path, name: str, graph: str) -> Path:
    """An H.264 mp4 of the lavfi ``graph`` (its output labelled ``[v]``)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-filter_complex", graph, "-map", "[v]",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out)],
        check=True, timeout=300,
    )  # fmt: skip
    return out


def opening(kind: str, seconds: float, content: float, size: str = SIZE, rate: int = 25) -> str:
    """``seconds`` of ``kind`` (black, white, a blurred picture) then ``content`` seconds of
    testsrc2."""
    first = {
        "black": f"color=c=black:s={size}:r={rate}:d={seconds}",
        "white": f"color=c=white:s={size}:r={rate}:d={seconds}",
        "blurred": f"testsrc2=s={size}:r={rate}:d={seconds},boxblur=8",
    }[kind]
    return (
        f"{first},format=yuv420p[a];testsrc2=s={size}:r={rate}:d={content},format=yuv420p[b];"
        "[a][b]concat=n=2:v=1:a=0[v]"
    )


@pytest.fixture(scope="module")
def cover_preset(kvs: Deployment) -> str:
    return preset(kvs, "aiproduction", {"function_name": "smart_cover"})


def _cover(kvs: Deployment, name: str, local: Path, key: str) -> np.ndarray:
    src = kvs.upload(local, f"in/cover/{local.name}")
    succeeded(kvs, create(kvs, name, src, DstObjectKey=key))
    return image(stored(kvs, key))


def _is_content(picture: np.ndarray, local: Path, skip_seconds: float) -> None:
    """``picture`` is a bright, detailed frame of the source after ``skip_seconds``."""
    y = luma(picture)
    assert y.mean() > 40 and y.std() > 20, (y.mean(), y.std())
    frames = decode(local)
    index, diff = nearest(frames, picture)
    assert index >= skip_seconds * 25 and diff < 4, (index, diff)


def test_a_clip_opening_on_black_gets_a_content_cover(
    kvs: Deployment, media_dir: Path, cover_preset: str
) -> None:
    local = lavfi_video(media_dir / "cover", "black3", opening("black", 3, 5))
    with CallbackReceiver() as receiver:
        src = kvs.upload(local, "in/cover/black3.mp4")
        task_id = create(kvs, cover_preset, src, DstObjectKey="out/cover/black3.jpg",
                         CbUrl=receiver.url)  # fmt: skip
        [callback] = receiver.wait_for(1, timeout=60)
    assert callback.json == {
        "TaskID": task_id,
        "Status": 3,
        "Type": "aiproduction",
        "Details": {
            "errnum": 0,
            "errmsg": "success",
            "bucket": BUCKET,
            "items": [{"dstpath": "out/cover/black3.jpg"}],
        },
    }
    written = stored(kvs, "out/cover/black3.jpg")
    stream = probe(written)["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("mjpeg", 320, 240)
    _is_content(image(written), local, 3)
    assert meta(kvs, "out/cover/black3.jpg")["content_type"] == "image/jpeg"
    command = succeeded(kvs, task_id)["Command"]
    assert command.count("ffmpeg ") == 2  # the candidates, then the cover


def test_blank_and_blurred_openings_are_skipped(
    kvs: Deployment, media_dir: Path, cover_preset: str
) -> None:
    white = lavfi_video(media_dir / "cover", "white3", opening("white", 3, 5))
    _is_content(_cover(kvs, cover_preset, white, "out/cover/white3.png"), white, 3)
    assert probe(stored(kvs, "out/cover/white3.png"))["streams"][0]["codec_name"] == "png"

    blurred = lavfi_video(media_dir / "cover", "blur4", opening("blurred", 4, 4))
    picture = _cover(kvs, cover_preset, blurred, "out/cover/blur4.png")
    _is_content(picture, blurred, 4)
    sharp_reference = decode(blurred)[10]  # a blurred frame, for scale
    assert laplacian_variance(luma(picture)) > 10 * laplacian_variance(luma(sharp_reference))


def test_a_clip_that_is_black_throughout_still_gets_a_cover(
    kvs: Deployment, media_dir: Path, cover_preset: str
) -> None:
    dark = lavfi_video(
        media_dir / "cover",
        "dark",
        f"color=c=black:s={SIZE}:r=25:d=4,drawbox=x=150:y=110:w=12:h=12:color=gray:t=fill:"
        "enable='between(t,2,2.5)'[v]",
    )
    picture = _cover(kvs, cover_preset, dark, "out/cover/dark")  # no extension: JPEG
    assert probe(stored(kvs, "out/cover/dark"))["streams"][0]["codec_name"] == "mjpeg"
    assert meta(kvs, "out/cover/dark")["content_type"] == "image/jpeg"
    # The fallback takes the frame with the most contrast: the one with the grey square.
    assert luma(picture)[110:122, 150:162].mean() > 60


@pytest.mark.slow
def test_a_long_clip_is_sampled_by_seeking(
    kvs: Deployment, media_dir: Path, cover_preset: str
) -> None:
    """Over two minutes: one seek per candidate instead of decoding everything."""
    local = lavfi_video(media_dir / "cover", "long", opening("black", 20, 110, "96x72", 5))
    src = kvs.upload(local, "in/cover/long.mp4")
    task_id = create(kvs, cover_preset, src, DstObjectKey="out/cover/long.webp")
    command = succeeded(kvs, task_id)["Command"]
    assert command.count("ffmpeg ") == 33 and command.count(" -ss ") == 33
    picture = image(stored(kvs, "out/cover/long.webp"))
    assert picture.shape == (72, 96, 3)
    y = luma(picture)
    assert y.mean() > 40 and y.std() > 20
    frames = decode(local)
    assert nearest(frames, picture)[0] >= 20 * 5


@pytest.mark.slow
def test_a_real_recording(kvs: Deployment, cover_preset: str) -> None:
    try:
        local = next(p for p in sample_videos() if p.name == "bigbuckbunny.mp4")
    except SampleMediaUnavailable as exc:
        pytest.skip(str(exc))
    picture = _cover(kvs, cover_preset, local, "out/cover/bunny.jpg")
    assert picture.shape == (720, 1280, 3)
    y = luma(picture)
    assert y.mean() > 30 and y.std() > 20
    # A frame of the recording (compared at a quarter of the size, to keep memory small).
    small = ["-vf", "scale=320:180"]
    cover = decode(stored(kvs, "out/cover/bunny.jpg"), after=small, size=(320, 180))[0]
    assert nearest(decode(local, after=small, size=(320, 180)), cover)[1] < 4


def test_two_sources_are_refused(kvs: Deployment, media_dir: Path, cover_preset: str) -> None:
    local = lavfi_video(media_dir / "cover", "two", opening("black", 1, 1))
    src = kvs.upload(local, "in/cover/two.mp4")
    reply = kvs.client.create_task(
        Preset=cover_preset,
        SrcInfo=[{"path": src}, {"path": src}],
        DstBucket=BUCKET,
        DstObjectKey="out/cover/two.jpg",
    )
    assert reply["ErrNum"] == 1015 and "one source" in reply["ErrMsg"], reply
