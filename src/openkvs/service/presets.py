"""Presets (spec §2.1–§2.5): create, replace, delete, list, read — per user."""

from __future__ import annotations

import re
from typing import Any

from openkvs.errors import ApiError, invalid
from openkvs.model import Preset, User
from openkvs.service import params as p
from openkvs.service.context import Services
from openkvs.service.ids import cst_text
from openkvs.service.preset_params import (
    PRESET_TYPES,
    canonical_type,
    parse_param,
    validate_param,
)
from openkvs.store.presets import DuplicatePreset

_NAME = re.compile(r"^[A-Za-z0-9_]{2,32}$")
RESERVED = {"wave"}  # CreateWaveTask's implicit audiowave preset
MAX_DESCRIPTION = 256


def check_name(params: p.Params) -> str:
    """``Preset``: 1005 when missing or not 2–32 of ``[A-Za-z0-9_]``."""
    name = params.get("Preset")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ApiError(1005, f"Preset {name!r} must be 2-32 of A-Z a-z 0-9 _")
    return name


def _writable_name(params: p.Params) -> str:
    name = check_name(params)
    if name in RESERVED:
        raise ApiError(1005, f"the preset name {name!r} is reserved")
    return name


def _preset_from_request(params: p.Params, name: str, now: float) -> Preset:
    raw_type = params.get("PresetType")
    if raw_type is None or raw_type == "":
        raise ApiError(1015, "PresetType is required")
    canonical_type(raw_type)
    if not p.given(params, "Param"):
        raise ApiError(1000, "Param is required")
    param = parse_param(params["Param"])
    validate_param(str(raw_type), param)
    description = p.optional_str(params, "Description")
    if len(description) > MAX_DESCRIPTION:
        raise invalid("Description", f"is longer than {MAX_DESCRIPTION} characters")
    kshd = None
    if p.given(params, "Kshd"):
        kshd = p.to_int("Kshd", params["Kshd"])
        if kshd not in (0, 1):
            raise invalid("Kshd", "must be 0 or 1")
    return Preset(name, str(raw_type), description, param, kshd, now, now)


def create_preset(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    name = _writable_name(params)
    preset = _preset_from_request(params, name, services.clock())
    try:
        services.presets.create(user.id, preset)
    except DuplicatePreset as exc:
        raise ApiError(1201, f"preset {name!r} already exists") from exc
    return {}


def update_preset(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    name = _writable_name(params)
    current = services.presets.get(user.id, name)
    if current is None:
        raise ApiError(1200, f"preset {name!r} does not exist")
    preset = _preset_from_request(params, name, services.clock())
    if preset.preset_type != current.preset_type:
        raise ApiError(1015, f"PresetType cannot change from {current.preset_type!r}")
    if not services.presets.replace(user.id, preset):
        raise ApiError(1200, f"preset {name!r} does not exist")
    return {}


def del_preset(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    name = _writable_name(params)
    if not services.presets.delete(user.id, name):
        raise ApiError(1200, f"preset {name!r} does not exist")
    return {}


def preset_view(preset: Preset, *, with_param: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "Preset": preset.name,
        "PresetType": preset.preset_type,
        "Description": preset.description,
        "CreateTime": cst_text(preset.created_at),
        "UpdateTime": cst_text(preset.updated_at),
    }
    if with_param:
        view["Param"] = preset.param
    if preset.kshd is not None:
        view["Kshd"] = preset.kshd
    return view


def _csv(params: p.Params, name: str) -> list[str]:
    value = p.optional_str(params, name)
    return [part.strip() for part in value.split(",") if part.strip()]


def get_preset_list(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    with_detail = p.flag(params, "WithDetail")
    types = _csv(params, "PresetType")
    for preset_type in types:
        if preset_type not in PRESET_TYPES:
            raise ApiError(1015, f"PresetType {preset_type!r} is not a preset type")
    found = services.presets.find(
        user.id, types=types or None, names=_csv(params, "Presets") or None
    )
    return {"PresetList": [preset_view(x, with_param=with_detail) for x in found]}


def get_preset_detail(services: Services, user: User, params: p.Params) -> dict[str, Any]:
    name = check_name(params)
    preset = services.presets.get(user.id, name)
    if preset is None:
        raise ApiError(1200, f"preset {name!r} does not exist")
    return {"PresetDetail": preset_view(preset, with_param=True)}
