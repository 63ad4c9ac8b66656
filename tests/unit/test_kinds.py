"""kinds.py, the one table of task kinds: every reference in it resolves, and every part
that treats kinds differently agrees with it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from openkvs import kinds
from openkvs.config import Settings
from openkvs.errors import ApiError
from openkvs.notify.bodies import completion_body
from openkvs.presets.codec import dump, load
from openkvs.storage.local import LocalStorage
from openkvs.worker.executor import Executor

#: A Param each kind's parser accepts.
VALID: dict[str, dict[str, Any]] = {
    "avtrans": {"f": "mp4"},
    "avsnapshot": {"ss": "1"},
    "avsample": {"interval": 2},
    "avinfo": {},
    "audiowave": {},
    "aiproduction": {"function_name": "smart_cover"},
    "avlogo": {"LOGOS": [[{"url": "/b/logo.png"}]]},
    "avtrans_part": {"f": "mp4"},  # a chunk of a split avtrans task: its parent's spec
    "flow": {"items": 2},  # a CreateFlowTask task: how many items it runs
}


def test_every_preset_type_makes_one_kind() -> None:
    assert {t for kind in kinds.KINDS for t in kind.preset_types} == set(kinds.PRESET_TYPES)
    assert kinds.kind_of_preset("avop").name == kinds.kind_of_preset("avm3u8").name == "avtrans"
    for bad in ("AVTRANS", "avtrans ", "", None, 1):
        with pytest.raises(ApiError) as info:
            kinds.kind_of_preset(bad)
        assert info.value.code == 1015


@pytest.mark.parametrize("kind", kinds.KINDS, ids=lambda k: k.name)
def test_parser_spec_and_options_resolve_and_round_trip(kind: kinds.Kind) -> None:
    spec = kind.parse(VALID[kind.name])
    assert isinstance(spec, kind.spec_class())
    assert dataclasses.is_dataclass(spec)
    assert load(kind.spec_class(), dump(spec)) == spec  # what a task stores, the worker gets
    sources = [{"path": "/b/k.mp4", "index": 0}]
    assert isinstance(kind.task_options(spec, {}, sources), dict)


@pytest.mark.parametrize("kind", kinds.with_executors(), ids=lambda k: k.name)
def test_every_executor_is_made_from_settings_and_storage(kind: kinds.Kind, tmp_path: Path) -> None:
    executor: Executor = kind.executor_class()(Settings(), LocalStorage(tmp_path))
    assert callable(executor.run)


def test_what_runs() -> None:
    assert {k.name for k in kinds.with_executors()} == {
        "avtrans", "avsnapshot", "avsample", "avinfo", "audiowave", "aiproduction",
        "avtrans_part", "flow",
    }  # fmt: skip
    assert kinds.image_kinds() == ("avsnapshot", "avsample")
    assert kinds.transcode_kinds() == ("avtrans",)


@pytest.mark.parametrize("kind", kinds.KINDS, ids=lambda k: k.name)
def test_callback_bodies_follow_the_table(kind: kinds.Kind) -> None:
    body = completion_body(
        task_id="t", task_type=kind.name, bucket="out", error_code=0, items=[{"dstpath": "x"}]
    )
    assert body["Details"]["bucket"] == ("out" if kind.names_bucket else "")
    assert ("snapshotNum" in body["Details"]) is kind.counts_images
