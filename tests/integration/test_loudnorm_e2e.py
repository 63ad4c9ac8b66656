"""ExtParam ``loudnorm`` end to end (real ``openkvs serve``, the official SDK, real ffmpeg):
a quiet source comes out at the target loudness, measured independently with ``ebur128``;
GetTaskByTaskID shows both measures and both commands; a bad value is 1018."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import BUCKET, Deployment
from tests.support.media import make_video
from tests.support.server import cli

PRESET = "loudnorm_light"
PARAM = {"f": "mp4", "VIDEO": {"width": 160, "height": 120}, "AUDIO": {"ab": "64k"}}
TARGET = {"I": -16, "TP": -1.5, "LRA": 11}


def integrated(path: Path) -> float:
    """The integrated loudness (LUFS) of ``path``'s audio, by ffmpeg's ebur128 filter."""
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:a:0",
         "-af", "ebur128", "-f", "null", "-"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    found = re.findall(r"I:\s+(-?[\d.]+) LUFS", done.stderr)
    assert found, done.stderr[-2000:]
    return float(found[-1])


@pytest.fixture(scope="module")
def quiet(kvs: Deployment, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, float]:
    """A 6 s clip whose tone is turned down to about -30 LUFS; its path and loudness."""
    folder = tmp_path_factory.mktemp("loudnorm")
    loud = make_video(folder, "loud", seconds=6, size="160x120")
    path = folder / "quiet.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(loud), "-c:v", "copy",
         "-af", "volume=-25dB", "-c:a", "aac", "-b:a", "96k", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    reply = kvs.client.preset(Preset=PRESET, PresetType="avtrans", Param=PARAM)
    assert reply["ErrNum"] in (0, 1201), reply
    return kvs.upload(path, "in/loudnorm-quiet.mp4"), integrated(path)


def _create(kvs: Deployment, src: str, key: str, ext: dict[str, Any]) -> dict[str, Any]:
    return dict(
        kvs.client.create_task(
            Preset=PRESET,
            SrcInfo=[{"path": src}],
            DstBucket=BUCKET,
            DstObjectKey=key,
            ExtParam=json.dumps(ext),
        )
    )


@pytest.mark.slow
def test_a_quiet_source_comes_out_at_the_target(
    kvs: Deployment, quiet: tuple[str, float], tmp_path: Path
) -> None:
    src, source_lufs = quiet
    assert source_lufs < -25  # quiet enough that normalising changes it
    reply = _create(kvs, src, "out/loudnorm.mp4", {"loudnorm": TARGET})
    assert reply["ErrNum"] == 0, reply
    info = kvs.wait_task(str(reply["TaskID"]), timeout=120)
    assert info["TaskStatus"] == "succ", info
    out = integrated(kvs.download("out/loudnorm.mp4", tmp_path / "out.mp4"))
    assert abs(out - TARGET["I"]) <= 1.0, out
    loudness = info["Loudness"]
    assert abs(loudness["Input"]["I"] - source_lufs) <= 1.0, loudness
    assert abs(loudness["Output"]["I"] - TARGET["I"]) <= 1.0, loudness
    assert set(loudness["Input"]) == {"I", "TP", "LRA", "Thresh"}
    measure, transcode = info["Command"].split(" && ")
    assert "print_format=json" in measure and "-f null -" in measure
    assert f"measured_I={loudness['Input']['I']:g}" in transcode
    assert "linear=true" in transcode and "aresample=44100" in transcode
    shown = cli(kvs.data_dir, "task", "show", str(reply["TaskID"]))
    assert shown.returncode == 0 and json.loads(shown.stdout)["Loudness"] == loudness, shown


@pytest.mark.slow
def test_a_task_without_loudnorm_shows_no_loudness(
    kvs: Deployment, quiet: tuple[str, float]
) -> None:
    reply = _create(kvs, quiet[0], "out/plain-loud.mp4", {})
    assert reply["ErrNum"] == 0, reply
    info = kvs.wait_task(str(reply["TaskID"]), timeout=120)
    assert info["TaskStatus"] == "succ" and "Loudness" not in info, info
    assert "loudnorm=" not in info["Command"] and " && " not in info["Command"]


@pytest.mark.parametrize(
    ("value", "named"),
    [({"I": -2}, "loudnorm.I"), ({"TP": 3}, "loudnorm.TP"), ({"LRA": 60}, "loudnorm.LRA")],
)
def test_a_bad_value_is_1018(
    kvs: Deployment, quiet: tuple[str, float], value: dict[str, Any], named: str
) -> None:
    reply = _create(kvs, quiet[0], "out/never.mp4", {"loudnorm": value})
    assert reply["ErrNum"] == 1018 and named in str(reply["ErrMsg"]), reply
