"""Watermarks end to end (spec §3.4): presets with ``LOGOS``/``IMAGE`` and ExtParam ``LOGOS``
through the real API, run by a real worker; the output's decoded frames show each logo at
its corner, offset, size and opacity, and only during its ``ss``/``duration``.

The source is solid blue (320x240, 10 fps, 3 s); the logos are a solid red 40x20 PNG and a
20x20 GIF that is red for 0.5 s then green for 0.5 s.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from tests.integration.conftest import BUCKET, Deployment

W, H, FPS = 320, 240, 10
BLUE = (0, 0, 255)
RED = (255, 0, 0)
HALF = (128, 0, 128)  # red at 0.5 opacity over blue
TOLERANCE = 14
VIDEO = {"preset": "ultrafast", "crf": 12}

pytestmark = pytest.mark.slow


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True, timeout=60)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("wm")
    made = {name: folder / name for name in ("blue.mp4", "red.png", "anim.gif", "bad.png")}
    blue = f"color=c=blue:s={W}x{H}:r={FPS}:d=3"
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    _ffmpeg("-f", "lavfi", "-i", blue, *x264, str(made["blue.mp4"]))
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=40x20", "-frames:v", "1", str(made["red.png"]))
    graph = (
        "color=c=red:s=20x20:r=4:d=0.5[a];color=c=lime:s=20x20:r=4:d=0.5[b];[a][b]concat=n=2[out0]"
    )
    _ffmpeg("-f", "lavfi", "-i", graph, "-loop", "0", str(made["anim.gif"]))
    made["bad.png"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    return made


@pytest.fixture(scope="module")
def uploaded(kvs: Deployment, files: dict[str, Path]) -> dict[str, str]:
    return {name: kvs.upload(path, f"wm/{name}") for name, path in files.items()}


class _Logos(BaseHTTPRequestHandler):
    served: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.served.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def http_logo(files: dict[str, Path]) -> Iterator[str]:
    """A local HTTP server giving ``/red.png``; its URL."""
    handler = type("Handler", (_Logos,), {"served": {"/red.png": files["red.png"].read_bytes()}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/red.png"
    finally:
        server.shutdown()
        server.server_close()


def _preset(kvs: Deployment, name: str, **param: Any) -> None:
    body = {"f": "mp4", "VIDEO": VIDEO, **param}
    reply = kvs.client.preset(Preset=name, PresetType="avtrans", Param=body)
    if reply["ErrNum"] == 1201:  # exists (a rerun in the same deployment)
        reply = kvs.client.update_preset(Preset=name, PresetType="avtrans", Param=body)
    assert reply["ErrNum"] == 0, reply


def _create(kvs: Deployment, preset: str, src: str, key: str, ext: Any = None) -> dict[str, Any]:
    extra = {"ExtParam": json.dumps(ext)} if ext is not None else {}
    return dict(
        kvs.client.create_task(
            Preset=preset, SrcInfo=[{"path": src}], DstBucket=BUCKET, DstObjectKey=key, **extra
        )
    )


def _frames(kvs: Deployment, preset: str, src: str, tmp: Path, ext: Any = None) -> np.ndarray:
    """Run a task and give its output's frames (n, H, W, RGB)."""
    key = f"out/wm-{preset}.mp4"
    reply = _create(kvs, preset, src, key, ext)
    assert reply["ErrNum"] == 0, reply
    info = kvs.wait_task(str(reply["TaskID"]), timeout=60)
    assert info["TaskStatus"] == "succ", info
    out = kvs.download(key, tmp / "out.mp4")
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    frames = np.frombuffer(raw, np.uint8).reshape(-1, H, W, 3).astype(int)
    assert len(frames) == 3 * FPS
    return frames


def _at(seconds: float) -> int:
    return round(seconds * FPS)


def _is(frame: np.ndarray, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> bool:
    """Every pixel of ``box`` (x0, y0, x1, y1, shrunk by 2 px against chroma blur) within
    tolerance of ``colour``."""
    x0, y0, x1, y1 = box
    inner = frame[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2]
    return bool(np.all(np.abs(inner - np.array(colour)) <= TOLERANCE))


def _ring_is_blue(frame: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """The pixels 3 px outside ``box`` on every side are the background."""
    x0, y0, x1, y1 = box
    points = [(x0 - 3, (y0 + y1) // 2), (x1 + 2, (y0 + y1) // 2)]
    points += [((x0 + x1) // 2, y0 - 3), ((x0 + x1) // 2, y1 + 2)]
    return all(
        np.all(np.abs(frame[y, x] - np.array(BLUE)) <= TOLERANCE)
        for x, y in points
        if 0 <= x < W and 0 <= y < H
    )


def _only(frame: np.ndarray, boxes: list[tuple[tuple[int, int, int, int], Any]]) -> None:
    """``frame`` is blue but for ``boxes`` (each of its colour)."""
    mask = np.ones((H, W), bool)
    for box, colour in boxes:
        assert _is(frame, box, colour), (box, frame[box[1] + 3, box[0] + 3])
        assert _ring_is_blue(frame, box), box
        x0, y0, x1, y1 = box
        mask[max(0, y0 - 3) : y1 + 3, max(0, x0 - 3) : x1 + 3] = False
    assert np.all(np.abs(frame[mask] - np.array(BLUE)) <= TOLERANCE)


def test_corner_offset_size_opacity_and_time_window(
    kvs: Deployment, uploaded: dict[str, str], tmp_path: Path
) -> None:
    # width 80 alone keeps the 2:1 aspect: 80x40 at (30, 40), half opaque, from 1 s to 2 s.
    logo = {"url": uploaded["red.png"], "dx": 30, "dy": "40", "width": 80, "opacity": 0.5,
            "ss": 1, "duration": 1}  # fmt: skip
    _preset(kvs, "wm_basic", LOGOS=[[logo]])
    frames = _frames(kvs, "wm_basic", uploaded["blue.mp4"], tmp_path)
    box = (30, 40, 110, 80)
    for t in (0.0, 0.5, 0.9, 2.1, 2.9):
        _only(frames[_at(t)], [])
    for t in (1.1, 1.5, 1.9):
        _only(frames[_at(t)], [(box, HALF)])


def test_fractions_bottom_right_tracks_and_a_sequence(
    kvs: Deployment, uploaded: dict[str, str], tmp_path: Path
) -> None:
    red = uploaded["red.png"]
    corner = {"url": red, "referPos": "BottomRight", "dx": "0.1", "dy": 0.1, "width": "0.125"}
    first = {"pic": red, "ss": 0, "duration": 1}  # TopLeft, 40x20
    then = {"pic_url": red, "referPos": "BottomLeft", "dx": 5, "dy": 5, "ss": 2}
    _preset(kvs, "wm_tracks", LOGOS=[[corner], [first, then]])
    frames = _frames(kvs, "wm_tracks", uploaded["blue.mp4"], tmp_path)
    # dx = 0.1 x 320 = 32, dy = 0.1 x 240 = 24, width 0.125 x 320 = 40 (height 20).
    bottom_right = (320 - 32 - 40, 240 - 24 - 20, 320 - 32, 240 - 24)
    top_left = (0, 0, 40, 20)
    bottom_left = (5, 240 - 5 - 20, 45, 240 - 5)
    _only(frames[_at(0.5)], [(bottom_right, RED), (top_left, RED)])
    _only(frames[_at(1.5)], [(bottom_right, RED)])
    _only(frames[_at(2.5)], [(bottom_right, RED), (bottom_left, RED)])


def test_an_animated_gif_loops_for_its_display_time(
    kvs: Deployment, uploaded: dict[str, str], tmp_path: Path
) -> None:
    logo = {"url": uploaded["anim.gif"], "logotype": "gif", "loop": 1, "dx": 100, "dy": 100}
    _preset(kvs, "wm_gif", LOGOS=[[logo]])
    frames = _frames(kvs, "wm_gif", uploaded["blue.mp4"], tmp_path)
    box = (100, 100, 120, 120)

    def colour(t: float) -> str:
        r, g, _b = frames[_at(t)][110, 110]
        return "red" if r > 200 and g < 60 else "green" if g > 200 and r < 60 else "other"

    assert [colour(t) for t in (0.2, 0.7, 1.2, 1.7, 2.2, 2.7)] == ["red", "green"] * 3
    assert _ring_is_blue(frames[_at(0.2)], box)


def test_a_logo_from_an_http_url(
    kvs: Deployment, uploaded: dict[str, str], http_logo: str, tmp_path: Path
) -> None:
    _preset(kvs, "wm_http", LOGOS=[[{"url": http_logo, "referPos": "TopRight"}]])
    frames = _frames(kvs, "wm_http", uploaded["blue.mp4"], tmp_path)
    _only(frames[_at(1.0)], [((280, 0, 320, 20), RED)])


def test_optimal_w_scales_the_geometry_unless_disabled(
    kvs: Deployment, uploaded: dict[str, str], tmp_path: Path
) -> None:
    # Designed for a 640-wide output: on 320 pixels everything is halved.
    scaled = {"url": uploaded["red.png"], "dx": 60, "dy": 40, "optimal_w": 640}
    kept = {**scaled, "dx": 200, "dy": 150, "disable_scale": 1}
    _preset(kvs, "wm_scaled", LOGOS=[[scaled], [kept]])
    frames = _frames(kvs, "wm_scaled", uploaded["blue.mp4"], tmp_path)
    _only(frames[_at(1.0)], [((30, 20, 50, 30), RED), ((200, 150, 240, 170), RED)])


def test_legacy_image_items(kvs: Deployment, uploaded: dict[str, str], tmp_path: Path) -> None:
    _preset(
        kvs, "wm_image", IMAGE=[{"logoUrl": uploaded["red.png"], "offsetX": 10, "offsetY": 100}]
    )
    frames = _frames(kvs, "wm_image", uploaded["blue.mp4"], tmp_path)
    _only(frames[_at(1.0)], [((10, 100, 50, 120), RED)])


def test_extparam_logos_replace_the_presets(
    kvs: Deployment, uploaded: dict[str, str], tmp_path: Path
) -> None:
    _preset(kvs, "wm_override", LOGOS=[[{"url": uploaded["red.png"]}]])
    ext = {"f": "mp4", "LOGOS": [[{"url": uploaded["red.png"], "referPos": "BottomLeft"}]]}
    frames = _frames(kvs, "wm_override", uploaded["blue.mp4"], tmp_path, ext)
    _only(frames[_at(1.0)], [((0, 220, 40, 240), RED)])


@pytest.mark.parametrize(
    ("ext", "code", "words"),
    [
        ({"LOGOS": [[{"url": "/media/wm/red.png", "opacity": 2}]]}, 1018,
         "ExtParam LOGOS[0][0].opacity"),
        ({"LOGOS": [{"url": "/media/wm/red.png"}]}, 1018, "ExtParam LOGOS[0]"),
        ({"LOGOS": [[{"url": "/media/wm/none.png"}]]}, 1210, "logo /media/wm/none.png"),
        ({"f": "flv"}, 1015, "ExtParam f='flv'"),
    ],
)  # fmt: skip
def test_bad_extparam_logos_are_refused(
    kvs: Deployment, uploaded: dict[str, str], ext: dict[str, Any], code: int, words: str
) -> None:
    _preset(kvs, "wm_refused", LOGOS=[[{"url": uploaded["red.png"]}]])
    reply = _create(kvs, "wm_refused", uploaded["blue.mp4"], "out/never.mp4", ext)
    assert reply["ErrNum"] == code and words in reply["ErrMsg"], reply


def test_a_logo_that_does_not_decode_fails_the_task(
    kvs: Deployment, uploaded: dict[str, str]
) -> None:
    _preset(kvs, "wm_bad", LOGOS=[[{"url": uploaded["bad.png"]}]])
    reply = _create(kvs, "wm_bad", uploaded["blue.mp4"], "out/never.mp4")
    assert reply["ErrNum"] == 0, reply
    info = kvs.wait_task(str(reply["TaskID"]), timeout=60)
    assert (info["TaskStatus"], info["ErrorCode"]) == ("fail", "3150"), info


def test_a_logo_at_a_refused_address_fails_the_task(
    kvs: Deployment, uploaded: dict[str, str]
) -> None:
    """Logos follow the callbacks' address policy: this deployment allows only loopback, so
    the link-local metadata address is refused before any connection is tried."""
    _preset(kvs, "wm_refused_address", LOGOS=[[{"url": "http://169.254.169.254/logo.png"}]])
    reply = _create(kvs, "wm_refused_address", uploaded["blue.mp4"], "out/never.mp4")
    assert reply["ErrNum"] == 0, reply
    info = kvs.wait_task(str(reply["TaskID"]), timeout=60)
    assert (info["TaskStatus"], info["ErrorCode"]) == ("fail", "2032"), info


def test_a_logo_over_joined_sources_takes_the_inputs_after_theirs(
    kvs: Deployment, uploaded: dict[str, str], tmp_path: Path
) -> None:
    """Two 3 s clips joined (inputs 0 and 1): the logo is input 2 and spans the whole 6 s."""
    _preset(kvs, "wm_joined", LOGOS=[[{"url": uploaded["red.png"], "dx": 8, "dy": 8, "ss": 1}]])
    src = uploaded["blue.mp4"]
    reply = dict(
        kvs.client.create_task(
            Preset="wm_joined",
            SrcInfo=[{"path": src, "index": 0}, {"path": src, "index": 1}],
            DstBucket=BUCKET,
            DstObjectKey="out/wm-joined.mp4",
        )
    )
    assert reply["ErrNum"] == 0, reply
    info = kvs.wait_task(str(reply["TaskID"]), timeout=60)
    assert info["TaskStatus"] == "succ", info
    assert " -f png_pipe -i " in info["Command"]
    out = kvs.download("out/wm-joined.mp4", tmp_path / "joined.mp4")
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    frames = np.frombuffer(raw, np.uint8).reshape(-1, H, W, 3).astype(int)
    assert len(frames) == 6 * FPS
    _only(frames[_at(0.5)], [])
    for t in (1.5, 3.5, 5.5):
        _only(frames[_at(t)], [((8, 8, 48, 28), RED)])
