"""Preset actions through the official SDK, including the wrapper's empty-string calls."""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.conftest import Deployment
from tests.support.kvs_client import make_wrapper

HD = {
    "f": "mp4",
    "VIDEO": {"vcodec": "h264", "width": 1280, "height": 720, "vb": "1800k", "vr": "25", "as": 1},
    "AUDIO": {"acodec": "aac", "ab": "128k", "ar": "44100", "channels": 2},
}


def _ok(reply: dict[str, Any]) -> dict[str, Any]:
    assert reply["ErrNum"] == 0 and reply["ErrMsg"] == "success", reply
    return reply


def test_preset_life_cycle(kvs: Deployment) -> None:
    c = kvs.client
    _ok(c.preset(Preset="hd720_mp4", PresetType="avtrans", Description="720p", Param=HD))
    _ok(c.preset(Preset="probe_it", PresetType="avinfo", Description="", Param={}))
    detail = _ok(c.get_preset_detail(Preset="hd720_mp4"))["PresetDetail"]
    assert detail["Param"] == HD  # echoed exactly as sent
    assert (detail["Preset"], detail["PresetType"], detail["Description"]) == (
        "hd720_mp4",
        "avtrans",
        "720p",
    )
    assert len(detail["CreateTime"]) == 19

    listed = _ok(
        c.get_preset_list(WithDetail=0, PresetType="avtrans,avinfo", Presets="hd720_mp4,probe_it")
    )["PresetList"]
    assert [x["Preset"] for x in listed] == ["probe_it", "hd720_mp4"]  # newest first
    assert all("Param" not in x for x in listed)
    detailed = _ok(c.get_preset_list(WithDetail=1, PresetType="avinfo", Presets=""))
    assert [x["Param"] for x in detailed["PresetList"] if x["Preset"] == "probe_it"] == [{}]

    changed = {**HD, "VIDEO": {**HD["VIDEO"], "vb": "2500k"}}
    _ok(
        c.update_preset(Preset="hd720_mp4", PresetType="avtrans", Description="more", Param=changed)
    )
    detail = _ok(c.get_preset_detail(Preset="hd720_mp4"))["PresetDetail"]
    assert detail["Param"] == changed and detail["Description"] == "more"

    _ok(c.del_preset(Preset="hd720_mp4"))
    assert c.get_preset_detail(Preset="hd720_mp4")["ErrNum"] == 1200
    assert c.del_preset(Preset="hd720_mp4")["ErrNum"] == 1200


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"Preset": "x", "PresetType": "avinfo", "Param": {}}, 1005, "Preset"),
        ({"Preset": "bad-name", "PresetType": "avinfo", "Param": {}}, 1005, "Preset"),
        ({"Preset": "wave", "PresetType": "audiowave", "Param": {}}, 1005, "reserved"),
        ({"Preset": "typo_type", "PresetType": "avtranz", "Param": {"f": "mp4"}}, 1015, "avtranz"),
        ({"Preset": "no_type", "Param": {}}, 1015, "PresetType"),
        ({"Preset": "no_param", "PresetType": "avinfo"}, 1000, "Param"),
        (
            {
                "Preset": "bad_vb",
                "PresetType": "avtrans",
                "Param": {"f": "mp4", "VIDEO": {"vb": "5k"}},
            },
            1001,
            "Param.VIDEO.vb",
        ),
        ({"Preset": "no_f", "PresetType": "avtrans", "Param": {"VIDEO": {}}}, 1001, "Param.f"),
    ],
)
def test_preset_errors(kvs: Deployment, body: dict[str, Any], code: int, words: str) -> None:
    reply = kvs.client.preset(**body)
    assert reply["ErrNum"] == code, reply
    assert words in reply["ErrMsg"]


def test_duplicate_and_type_change(kvs: Deployment) -> None:
    c = kvs.client
    _ok(c.preset(Preset="dup_one", PresetType="avinfo", Param={}))
    assert c.preset(Preset="dup_one", PresetType="avtrans", Param={"f": "mp4"})["ErrNum"] == 1201
    assert (
        c.update_preset(Preset="dup_one", PresetType="avtrans", Param={"f": "mp4"})["ErrNum"]
        == 1015
    )
    assert c.update_preset(Preset="nobody_here", PresetType="avinfo", Param={})["ErrNum"] == 1200
    assert c.get_preset_list(PresetType="nonsense")["ErrNum"] == 1015


def test_wrapper_defaults(kvs: Deployment) -> None:
    wrapper = make_wrapper(kvs.client)
    assert wrapper.GetPresetList()["ErrNum"] == 0  # WithDetail=0&PresetType=&Presets=
    assert wrapper.DelPreset()["ErrNum"] == 1005  # Preset=
