"""The Buckets pages: the buckets a user may read (an admin: all), their objects, an upload
into a bucket the user may write, and a task submitted on an object from a preset.

The bucket rules are those of the API (``store/buckets.py``): reading needs ownership or a
grant, uploading and task outputs need ownership or a read-write grant. The task is made by
``task_create.create_task``, with CreateTask's checks and error codes.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from openkvs.console import html as h
from openkvs.console.context import Console, Refused, Req, Viewer
from openkvs.errors import ApiError
from openkvs.model import User
from openkvs.service.task_create import create_task
from openkvs.storage.base import StorageError
from openkvs.storage.keys import validate_bucket, validate_key
from openkvs.storage.mime import content_type_for
from openkvs.store.buckets import Access

#: Most objects one bucket page lists (narrow with ``?prefix=``).
MAX_LISTED = 500
#: The largest file the console accepts in one upload.
MAX_UPLOAD_BYTES = 2 * 1024**3


def _visible(console: Console, viewer: Viewer) -> list[tuple[str, str, Access]]:
    """(bucket, owner, the viewer's access) of every bucket the viewer may browse."""
    out = []
    for record in console.services.buckets.records():
        access = console.services.buckets.access(viewer.user.id, record.name)
        if access.can_read or viewer.admin:
            out.append((record.name, record.owner, access))
    return out


def _readable(console: Console, viewer: Viewer, bucket: str) -> Access:
    """The viewer's access to a bucket they may browse; 404 for any other (a bucket of
    another user does not exist for this viewer)."""
    try:
        validate_bucket(bucket)
    except ApiError:
        raise Refused(404, "no such bucket") from None
    access = console.services.buckets.access(viewer.user.id, bucket)
    if not access.can_read and not (viewer.admin and console.services.buckets.get(bucket)):
        raise Refused(404, "no such bucket")
    return access


def buckets_page(console: Console, viewer: Viewer, req: Req) -> tuple[str, str]:
    rows = [
        [h.link(h.url("buckets", name), name), h.esc(owner), h.esc(access.value)]
        for name, owner, access in _visible(console, viewer)
    ]
    return "Buckets", h.table(["Bucket", "Owner", "Your access"], rows, attrs='id="buckets"')


def bucket_page(console: Console, viewer: Viewer, req: Req) -> tuple[str, str]:
    bucket = req.path["bucket"]
    access = _readable(console, viewer, bucket)
    prefix = req.query.get("prefix", "")
    try:
        objects = list(islice(console.services.storage.list_objects(bucket, prefix), MAX_LISTED))
    except StorageError as exc:
        raise Refused(503, f"the storage cannot list {bucket}: {exc}") from None
    rows = []
    for o in objects:
        submit = h.link(h.url("buckets", bucket, "submit", key=o.key), "Submit a task")
        rows.append(
            [h.esc(o.key), h.esc(o.size), h.esc(o.content_type), h.esc(h.when(o.modified)), submit]
        )
    search = (
        f'<form method="get" class="filters"><label>prefix <input name="prefix" '
        f'value="{h.esc(prefix)}"></label><button type="submit">List</button></form>'
    )
    upload = ""
    if access.can_write:
        target = h.url("api", "buckets", bucket, "objects")
        upload = (
            f'<form id="upload" class="stack" data-url="{h.esc(target)}">'
            '<label>File <input type="file" name="file" id="upload-file"></label>'
            '<label>Key <input name="key" id="upload-key" placeholder="the file name"></label>'
            '<button type="submit">Upload</button>'
            '<progress id="upload-bar" max="100" value="0"></progress>'
            '<span id="upload-status" role="status"></span></form>'
        )
    more = f"<p>Showing the first {MAX_LISTED} objects.</p>" if len(objects) >= MAX_LISTED else ""
    return f"Bucket {bucket}", upload + search + more + h.table(
        ["Key", "Bytes", "Type", "Modified", ""], rows, attrs='id="objects"'
    )


def check_upload(console: Console, viewer: Viewer, bucket: str, key: str) -> str:
    """The key of an upload the viewer may make (before its body is read)."""
    if not _readable(console, viewer, bucket).can_write:
        raise Refused(403, f"bucket {bucket} is not writable by {viewer.user.name}")
    try:
        return validate_key(key, "key")
    except ApiError as exc:
        raise Refused(400, f"Error {exc.code}: {exc.message}") from None


def store_upload(console: Console, bucket: str, key: str, path: Path) -> None:
    try:
        console.services.storage.put_file(
            bucket, key, path, acl="private", content_type=content_type_for(key)
        )
    except StorageError as exc:
        raise Refused(503, f"the storage refused the upload: {exc}") from None


def _writable(console: Console, user: User) -> list[str]:
    return [
        r.name
        for r in console.services.buckets.records()
        if console.services.buckets.access(user.id, r.name).can_write
    ]


def _submit_form(console: Console, viewer: Viewer, bucket: str, values: dict[str, str]) -> str:
    found = console.services.presets.find(viewer.user.id)
    presets = "".join(
        f'<option value="{h.esc(p.name)}"{" selected" if p.name == values.get("Preset") else ""}>'
        f"{h.esc(p.name)} ({h.esc(p.preset_type)})</option>"
        for p in found
    )
    dst = "".join(
        f"<option{' selected' if b == values.get('DstBucket', bucket) else ''}>{h.esc(b)}</option>"
        for b in _writable(console, viewer.user)
    )
    key = values.get("key", "")
    action = h.url("buckets", bucket, "submit")
    return (
        f'<form method="post" action="{h.esc(action)}" class="stack">{h.csrf_field(viewer.csrf)}'
        f'<input type="hidden" name="key" value="{h.esc(key)}">'
        f"<p>Source: <code>/{h.esc(bucket)}/{h.esc(key)}</code></p>"
        f'<label>Preset <select name="Preset">{presets}</select></label>'
        f'<label>DstBucket <select name="DstBucket">{dst}</select></label>'
        + h.text_input("DstObjectKey", "DstObjectKey", values.get("DstObjectKey", ""))
        + h.text_input("DstDir", "DstDir", values.get("DstDir", ""))
        + h.text_input("ExtParam", "ExtParam", values.get("ExtParam", ""))
        + h.text_input("CbUrl", "CbUrl", values.get("CbUrl", ""))
        + '<button type="submit">Create the task</button></form>'
    )


def submit_page(console: Console, viewer: Viewer, req: Req) -> tuple[str, str]:
    bucket = req.path["bucket"]
    _readable(console, viewer, bucket)
    return "Submit a task", _submit_form(console, viewer, bucket, {"key": req.query.get("key", "")})


_SUBMIT_FIELDS = ("Preset", "DstBucket", "DstObjectKey", "DstDir", "ExtParam", "CbUrl")


def submit_task(console: Console, viewer: Viewer, req: Req) -> tuple[str, str] | str:
    """POST: the new task's page (a redirect target), or the form with CreateTask's error."""
    bucket = req.path["bucket"]
    _readable(console, viewer, bucket)
    values = {k: req.form.get(k, "") for k in ("key", *_SUBMIT_FIELDS)}
    params: dict[str, object] = {k: values[k] for k in _SUBMIT_FIELDS if values[k]}
    params["SrcInfo"] = [{"path": f"/{bucket}/{values['key']}"}]
    try:
        task_id = create_task(console.services, viewer.user, params)
    except ApiError as exc:
        return "Submit a task", h.error_box(f"Error {exc.code}: {exc.message}") + _submit_form(
            console, viewer, bucket, values
        )
    return h.url("tasks", task_id)
