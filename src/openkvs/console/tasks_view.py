"""The Tasks pages: the live list and a task's page, and their JSON data endpoints."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from openkvs.console import html as h
from openkvs.console.context import Console, Refused, Req, Viewer
from openkvs.console.queries import TaskQuery, list_tasks
from openkvs.model import TaskRecord, TaskStatus
from openkvs.service.ids import looks_like_task_id
from openkvs.service.presign import PURPOSE, presigned_path
from openkvs.service.tasks import task_detail

PAGE_SIZE = 20
#: How long the output links of a task page work.
LINK_SECONDS = 3600
_STATUSES = ("init", "exec", "succ", "fail")
_VIDEO = (".mp4", ".m4v", ".webm", ".mov", ".mkv", ".ogv")
_AUDIO = (".mp3", ".m4a", ".aac", ".wav", ".ogg", ".opus", ".flac")
_IMAGE = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp")
_FILTERS = ("status", "type", "pipeline", "date", "error", "user")


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Refused(400, f"{name} must be a whole number") from None


def task_query(console: Console, viewer: Viewer, req: Req) -> TaskQuery:
    """The list's filters from the query string (400 for a malformed one)."""
    q = req.query
    status = q.get("status", "")
    if status and status not in _STATUSES:
        raise Refused(400, "status must be init, exec, succ or fail")
    since = until = None
    if q.get("date"):
        try:
            day = datetime.strptime(q["date"], "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise Refused(400, "date must be YYYY-MM-DD") from None
        since = day.timestamp()
        until = since + 86400
    user_id: int | None = viewer.user.id
    if viewer.admin:
        user_id = None
        if q.get("user"):
            found = console.services.users.find_user(q["user"])
            user_id = found.id if found is not None else -1
    page = max(_int(q.get("page", "1") or "1", "page"), 1)
    return TaskQuery(
        user_id=user_id,
        status=TaskStatus(status) if status else None,
        task_type=q.get("type", ""),
        pipeline=q.get("pipeline", ""),
        error_code=_int(q["error"], "error") if q.get("error") else None,
        since=since,
        until=until,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )


def _row(task: TaskRecord, names: dict[int, str]) -> dict[str, Any]:
    return {
        "TaskID": task.task_id,
        "User": names.get(task.user_id, ""),
        "Type": task.task_type,
        "Preset": task.preset,
        "Pipeline": task.pipeline,
        "Status": task.status.value,
        "Progress": 100 if task.status is TaskStatus.SUCC else task.progress,
        "ErrorCode": task.error_code,
        "Created": h.when(task.created_at),
    }


def tasks_data(console: Console, viewer: Viewer, req: Req) -> dict[str, Any]:
    """``GET /console/api/tasks``: one page of the list."""
    q = task_query(console, viewer, req)
    assert console.services.database is not None
    total, found = list_tasks(console.services.database, q)
    names = console.services.users.users_by_id() if viewer.admin else {}
    return {
        "Total": total,
        "Page": q.offset // PAGE_SIZE + 1,
        "PageSize": PAGE_SIZE,
        "Tasks": [_row(t, names) for t in found],
    }


def tasks_page(console: Console, viewer: Viewer, req: Req) -> tuple[str, str]:
    data = tasks_data(console, viewer, req)
    fields = []
    for name in _FILTERS:
        if name == "user" and not viewer.admin:
            continue
        value = req.query.get(name, "")
        if name == "status":
            options = "".join(
                f'<option value="{s}"{" selected" if s == value else ""}>{s}</option>'
                for s in ("", *_STATUSES)
            )
            fields.append(f'<label>status <select name="status">{options}</select></label>')
        else:
            kind = "date" if name == "date" else "text"
            fields.append(
                f'<label>{name} <input type="{kind}" name="{name}" value="{h.esc(value)}"></label>'
            )
    form = (
        f'<form method="get" action="/console/tasks" class="filters">{"".join(fields)}'
        '<button type="submit">Filter</button></form>'
    )
    headers = ["TaskID", *(["User"] if viewer.admin else []), "Type", "Preset", "Pipeline"]
    headers += ["Status", "Progress", "Error", "Created"]
    rows = []
    for t in data["Tasks"]:
        cells = [h.link(h.url("tasks", t["TaskID"]), t["TaskID"])]
        if viewer.admin:
            cells.append(h.esc(t["User"]))
        cells += [h.esc(t[k]) for k in ("Type", "Preset", "Pipeline", "Status")]
        cells += [f"{t['Progress']}%", h.esc(t["ErrorCode"] or ""), h.esc(t["Created"])]
        rows.append(cells)
    live = h.url("api", "tasks", **{k: v for k, v in req.query.items() if k in _FILTERS})
    pager = (
        f'<p class="pager" id="pager" data-total="{data["Total"]}" data-page="{data["Page"]}" '
        f'data-size="{PAGE_SIZE}">{data["Total"]} tasks</p>'
    )
    body = (
        form
        + pager
        + h.table(
            headers,
            rows,
            attrs=f'id="task-list" data-admin="{int(viewer.admin)}" data-live="{h.esc(live)}"',
        )
        + '<p><button type="button" id="prev">Previous</button> '
        '<button type="button" id="next">Next</button></p>'
    )
    return "Tasks", body


# -- one task ------------------------------------------------------------------------


def find_task(console: Console, viewer: Viewer, task_id: str) -> TaskRecord:
    """The task if the viewer may see it; 404 otherwise (another user's task does not
    exist for this viewer)."""
    if not looks_like_task_id(task_id):
        raise Refused(404, "no such task")
    task = console.services.tasks.get(task_id, None if viewer.admin else viewer.user.id)
    if task is None:
        raise Refused(404, "no such task")
    return task


def _media(key: str) -> str:
    lower = key.lower()
    for kind, ends in (("video", _VIDEO), ("audio", _AUDIO), ("image", _IMAGE)):
        if lower.endswith(ends):
            return kind
    if lower.endswith(".m3u8"):
        return "hls"
    if lower.endswith(".json"):
        return "wave"
    return "file"


def _outputs(console: Console, task: TaskRecord) -> list[dict[str, str]]:
    bucket = str(task.request.get("DstBucket", ""))
    if task.status is not TaskStatus.SUCC or not bucket:
        return []
    signing = console.services.sealer.derive(PURPOSE)
    expires = int(console.services.clock()) + LINK_SECONDS
    found = []
    for item in task.result or []:
        key = item.get("dstpath") if isinstance(item, dict) else None
        if isinstance(key, str) and key:
            link = presigned_path(signing, bucket, key, expires)
            media = _media(key)
            # An HLS player reads the playlist through the console, which signs the
            # segments it names (console/playlists.py).
            play = h.url("api", "tasks", task.task_id, "hls", key=key) if media == "hls" else link
            found.append({"Bucket": bucket, "Key": key, "URL": link, "Play": play, "Media": media})
    return found


def _callbacks(console: Console, task: TaskRecord) -> list[dict[str, Any]]:
    out = []
    for callback, attempts in console.services.outbox.for_task(task.task_id):
        out.append(
            {
                "URL": callback.url,
                "State": callback.state.value,
                "Body": callback.body,
                "Attempts": [
                    {
                        "Attempt": a.attempt,
                        "At": h.when(a.started_at),
                        "Status": a.http_status,
                        "Error": a.error,
                        "Ms": a.duration_ms,
                    }
                    for a in attempts
                ],
            }
        )
    return out


def task_data(console: Console, viewer: Viewer, req: Req) -> dict[str, Any]:
    """``GET /console/api/tasks/<TaskID>``: everything the task's page shows."""
    task = find_task(console, viewer, req.path["task_id"])
    run = console.services.runs.get(task.task_id)
    return {
        "Task": task_detail(console.services, task),
        "Status": task.status.value,
        "Progress": 100 if task.status is TaskStatus.SUCC else task.progress,
        "Queued": h.when(task.created_at),
        "Started": h.when(task.started_at),
        "Finished": h.when(task.finished_at),
        "Attempts": task.attempts,
        # The preset as it was when the task was made (a waveform: its options).
        "Parameters": {
            k: task.request[k] for k in ("preset", "chain", "wave") if task.request.get(k)
        },
        "Log": run.log if run is not None and task.status is TaskStatus.FAIL else "",
        "Outputs": _outputs(console, task),
        "Callbacks": _callbacks(console, task),
    }


def _output_html(output: dict[str, str]) -> str:
    src = h.esc(output["Play"])
    media = output["Media"]
    shown = {
        "video": f'<video controls preload="metadata" src="{src}" class="player"></video>',
        "audio": f'<audio controls preload="metadata" src="{src}"></audio>',
        "image": f'<img src="{src}" alt="{h.esc(output["Key"])}" class="still">',
        "hls": f'<video controls preload="metadata" data-hls="{src}" class="player"></video>',
        "wave": f'<canvas class="wave" width="600" height="100" data-wave="{src}"></canvas>',
    }.get(media, "")
    return f"<li>{h.link(output['URL'], output['Key'])} {shown}</li>"


def task_page(console: Console, viewer: Viewer, req: Req) -> tuple[str, str]:
    data = task_data(console, viewer, req)
    info = data["Task"]
    facts = [
        ("Status", data["Status"]),
        ("Progress", f"{data['Progress']}%"),
        ("Type", info.get("Type", "")),
        ("Preset", info.get("Preset", "")),
        ("Pipeline", info.get("Pipeline", "")),
        ("Queued", data["Queued"]),
        ("Started", data["Started"]),
        ("Finished", data["Finished"]),
        ("Attempts", data["Attempts"]),
        ("Error", f"{info['ErrorCode']} {info['ErrorMsg']}" if data["Status"] == "fail" else ""),
    ]
    dl = "".join(f'<dt>{h.esc(k)}</dt><dd id="task-{k.lower()}">{h.esc(v)}</dd>' for k, v in facts)
    body = [
        f'<section id="task" data-live="{h.esc(h.url("api", "tasks", info["TaskID"]))}" '
        f'data-status="{h.esc(data["Status"])}"><p class="mono">{h.esc(info["TaskID"])}</p>'
        f'<progress max="100" value="{data["Progress"]}" id="task-bar"></progress>'
        f"<dl>{dl}</dl></section>",
        '<h2>Command</h2><pre id="command">'
        + h.esc(info.get("Command", "") or "(not run yet)")
        + "</pre>",
        "<h2>Parameters</h2><pre>"
        + h.esc(
            json.dumps(
                {
                    k: info.get(k)
                    for k in ("SrcInfo", "DstBucket", "DstDir", "DstObjectKey", "ExtParam", "CbUrl")
                }
                | data["Parameters"],
                indent=2,
                ensure_ascii=False,
            )
        )
        + "</pre>",
    ]
    if data["Log"]:
        body.append(f'<h2>stderr (end)</h2><pre id="stderr">{h.esc(data["Log"])}</pre>')
    outputs = "".join(_output_html(o) for o in data["Outputs"])
    body.append(f'<h2>Outputs</h2><ul id="outputs">{outputs or "<li>none yet</li>"}</ul>')
    rows = []
    for cb in data["Callbacks"]:
        for a in cb["Attempts"] or [{"Attempt": "", "At": "", "Status": "", "Error": "", "Ms": ""}]:
            rows.append(
                [
                    h.esc(cb["URL"]),
                    h.esc(cb["State"]),
                    h.esc(a["Attempt"]),
                    h.esc(a["At"]),
                    h.esc("" if a["Status"] is None else a["Status"]),
                    h.esc(a["Error"]),
                    f"<details><summary>body</summary><pre>{h.esc(cb['Body'])}</pre></details>",
                ]
            )
    body.append(
        "<h2>Callbacks</h2>"
        + h.table(
            ["URL", "State", "Attempt", "At", "HTTP status", "Error", "Body"],
            rows,
            attrs='id="callbacks"',
        )
    )
    return f"Task {info['TaskID'][:12]}…", "".join(body)
