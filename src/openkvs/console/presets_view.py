"""The Presets pages: list, detail, create and edit, checked by the API's own rules
(``service/presets.py``): a refused form shows the same code and message as the API."""

from __future__ import annotations

import json

from openkvs.console import html as h
from openkvs.console.context import Console, Refused, Req, Viewer, subject
from openkvs.errors import ApiError
from openkvs.kinds import PRESET_TYPES
from openkvs.service import presets


def _user_query(console: Console, viewer: Viewer, req: Req) -> dict[str, str]:
    user = subject(console, viewer, req)
    return {"user": user.name} if user.id != viewer.user.id else {}


def presets_page(console: Console, viewer: Viewer, req: Req) -> tuple[str, str]:
    user = subject(console, viewer, req)
    found = presets.get_preset_list(console.services, user, {})["PresetList"]
    more = _user_query(console, viewer, req)
    rows = [
        [
            h.link(h.url("presets", p["Preset"], **more), p["Preset"]),
            h.esc(p["PresetType"]),
            h.esc(p["Description"]),
            h.esc(p["UpdateTime"]),
        ]
        for p in found
    ]
    new = "" if more else f"<p>{h.link('/console/presets/-new', 'New preset')}</p>"
    return f"Presets of {user.name}", new + h.table(
        ["Preset", "Type", "Description", "Updated (UTC+8)"], rows, attrs='id="presets"'
    )


def preset_page(console: Console, viewer: Viewer, req: Req) -> tuple[str, str]:
    user = subject(console, viewer, req)
    name = req.path["name"]
    try:
        view = presets.get_preset_detail(console.services, user, {"Preset": name})["PresetDetail"]
    except ApiError:
        raise Refused(404, "no such preset") from None
    edit = "" if user.id != viewer.user.id else h.link(h.url("presets", name, "edit"), "Edit")
    text = json.dumps(view, indent=2, ensure_ascii=False)
    return f"Preset {name}", f'<p>{edit}</p><pre id="preset">{h.esc(text)}</pre>'


def _form(action: str, values: dict[str, str], csrf: str, *, fixed_name: bool) -> str:
    options = "".join(
        f"<option{' selected' if t == values.get('PresetType') else ''}>{h.esc(t)}</option>"
        for t in ("", *sorted(PRESET_TYPES))
    )
    readonly = " readonly" if fixed_name else ""
    return (
        f'<form method="post" action="{h.esc(action)}" class="stack">{h.csrf_field(csrf)}'
        + h.text_input("Preset", "Preset", values.get("Preset", ""), readonly)
        + f'<label>PresetType <select name="PresetType">{options}</select></label>'
        + h.text_input("Description", "Description", values.get("Description", ""))
        + '<label>Param (JSON) <textarea name="Param" rows="12" cols="70">'
        + h.esc(values.get("Param", ""))
        + "</textarea></label>"
        + '<button type="submit">Save</button></form>'
    )


_FIELDS = ("Preset", "PresetType", "Description", "Param")


def new_preset_page(console: Console, viewer: Viewer, req: Req) -> tuple[str, str]:
    return "New preset", _form("/console/presets/-new", {}, viewer.csrf, fixed_name=False)


def edit_preset_page(console: Console, viewer: Viewer, req: Req) -> tuple[str, str]:
    name = req.path["name"]
    found = console.services.presets.get(viewer.user.id, name)
    if found is None:
        raise Refused(404, "no such preset")
    values = {
        "Preset": found.name,
        "PresetType": found.preset_type,
        "Description": found.description,
        "Param": json.dumps(found.param, indent=2, ensure_ascii=False),
    }
    return f"Edit preset {name}", _form(
        h.url("presets", name, "edit"), values, viewer.csrf, fixed_name=True
    )


def save_preset(console: Console, viewer: Viewer, req: Req) -> tuple[str, str] | str:
    """POST of the create or edit form: the preset's page (a redirect target) when saved,
    else the form again with the API's error above it."""
    values = {k: req.form.get(k, "") for k in _FIELDS}
    editing = "name" in req.path
    if editing:
        values["Preset"] = req.path["name"]
    params = {k: v for k, v in values.items() if v != ""}
    try:
        if editing:
            presets.update_preset(console.services, viewer.user, params)
        else:
            presets.create_preset(console.services, viewer.user, params)
    except ApiError as exc:
        action = h.url("presets", values["Preset"], "edit") if editing else "/console/presets/-new"
        message = f"Error {exc.code}: {exc.message}"
        return "Edit preset" if editing else "New preset", h.error_box(message) + _form(
            action, values, viewer.csrf, fixed_name=editing
        )
    return h.url("presets", values["Preset"])
