"""Preset chain rules (service/chains.py): names, stage types, what stage A may write, the
one-pass logo stage, and which ExtParam keys go to which stage."""

from __future__ import annotations

from typing import Any

import pytest

from openkvs import kinds
from openkvs.errors import ApiError
from openkvs.presets.avtrans import AvtransSpec
from openkvs.presets.codec import load
from openkvs.service.chains import chain_info, chain_names, check_chain

SOURCES = [{"path": "/b/in.mp4", "index": 0, "type": "video"}]


def _preset(name: str, preset_type: str, param: dict[str, Any]) -> tuple[kinds.Kind, dict]:
    snapshot = {"name": name, "type": preset_type, "param": param}
    return kinds.kind_of_preset(preset_type), snapshot


MP4 = _preset("a_mp4", "avtrans", {"f": "mp4", "VIDEO": {"width": 320}})
FLV = _preset("b_flv", "avop", {"f": "flv"})
LOGO = _preset("b_logo", "avlogo", {"LOGOS": [[{"url": "/b/logo.png"}]]})


def _code(call: Any) -> tuple[int, str]:
    with pytest.raises(ApiError) as info:
        call()
    return info.value.code, info.value.message


def test_names() -> None:
    assert chain_names("hd") is None and chain_names(None) is None
    assert chain_names("a_mp4|b_flv") == ("a_mp4", "b_flv")
    assert _code(lambda: chain_names("a|b|c"))[0] == 1001
    assert _code(lambda: chain_names("a_mp4|"))[0] == 1005
    assert _code(lambda: chain_names("a_mp4|no way"))[0] == 1005


def test_stage_types() -> None:
    info = _preset("i", "avinfo", {})
    assert _code(lambda: check_chain(info, FLV))[0] == 1015
    assert _code(lambda: check_chain(MP4, info))[0] == 1015
    assert _code(lambda: check_chain(LOGO, MP4))[0] == 1015


@pytest.mark.parametrize(
    ("param", "words"),
    [
        ({"f": "mp4", "VIDEO": {"vcodec": "copy"}}, "must not copy the video"),
        ({"f": "mp4", "segment_time": 5}, "must write one file"),
        ({"f": "hls"}, "must write one file"),
    ],
)
def test_what_stage_a_may_write(param: dict[str, Any], words: str) -> None:
    code, message = _code(lambda: check_chain(_preset("a", "avtrans", param), FLV))
    assert code == 1001 and words in message


def test_two_passes_split_the_ext_param() -> None:
    chain = check_chain(MP4, FLV)
    assert (chain.name, chain.kind.name, chain.one_pass) == ("a_mp4|b_flv", "avtrans", False)
    ext = {"ss": "0.5", "segment_filename": "x-%d.flv"}
    last, stages = chain.task_options(ext, SOURCES)
    assert stages["first_stage"]["options"]["ss"] == 0.5
    assert last["ss"] is None  # trimming is stage A's
    assert load(AvtransSpec, stages["first_stage"]["spec"]).f == "mp4"
    assert chain.spec.f == "flv"
    assert chain_info(stages) == [
        {"Stage": 0, "Preset": "a_mp4", "PresetType": "avtrans"},
        {"Stage": 1, "Preset": "b_flv", "PresetType": "avop"},
    ]


def test_a_logo_stage_is_one_pass_of_a_with_its_logos() -> None:
    chain = check_chain(MP4, LOGO)
    assert chain.one_pass and chain.spec.f == "mp4" and chain.spec.video.width == 320
    assert chain.spec.logos and chain.spec.logos[0][0]["url"] == "/b/logo.png"
    _options, stages = chain.task_options({}, SOURCES)
    assert "first_stage" not in stages and len(stages["chain"]) == 2
    audio = _preset("a_mp3", "avtrans", {"f": "mp3"})
    code, message = _code(lambda: check_chain(audio, LOGO))
    assert code == 1001 and "LOGOS" in message
