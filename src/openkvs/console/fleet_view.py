"""The Pipelines page (state, quota, window, queue depth, running tasks; pause and resume,
through UpdatePipeline's rules) and the Workers page (the fleet and its heartbeats)."""

from __future__ import annotations

from openkvs.console import html as h
from openkvs.console.context import Console, Refused, Req, Viewer, subject
from openkvs.console.queries import pipeline_names
from openkvs.errors import ApiError
from openkvs.service import pipelines
from openkvs.store.workers import WorkerRegistry, lost_after


def pipelines_page(console: Console, viewer: Viewer, req: Req) -> tuple[str, str]:
    user = subject(console, viewer, req)
    assert console.services.database is not None
    names = sorted({pipelines.DEFAULT, *pipeline_names(console.services.database, user.id)})
    more = {"user": user.name} if user.id != viewer.user.id else {}
    rows = []
    for name in names:
        q = pipelines.query_pipeline(console.services, user, {"PipelineName": name})
        counts = q["TaskStatus"]
        window = (
            f"{q['RegularStart']} +{q['RegularDuration']} s (UTC+8)"
            if q["RegularDuration"]
            else "always"
        )
        other = "Active" if q["State"] == "Paused" else "Paused"
        label = "Resume" if other == "Active" else "Pause"
        action = h.url("pipelines", name, **more)
        form = (
            f'<form method="post" action="{h.esc(action)}" class="inline">'
            + h.csrf_field(viewer.csrf)
            + f'<input type="hidden" name="State" value="{other}">'
            f'<button type="submit" data-pipeline="{h.esc(name)}">{label}</button></form>'
        )
        running = h.link(
            h.url("tasks", pipeline=name, status="exec", user=more.get("user", "")),
            counts["Running"],
        )
        queued = h.link(
            h.url("tasks", pipeline=name, status="init", user=more.get("user", "")),
            counts["Pending"],
        )
        rows.append(
            [
                h.esc(name),
                f'<span class="state">{h.esc(q["State"])}</span>',
                h.esc(q["Quota"]),
                h.esc(window),
                queued,
                running,
                form,
            ]
        )
    body = h.table(
        ["Pipeline", "State", "Quota", "Window", "Queued", "Running", ""],
        rows,
        attrs='id="pipelines"',
    )
    return f"Pipelines of {user.name}", body


def set_pipeline_state(console: Console, viewer: Viewer, req: Req) -> str:
    """POST: pause or resume; the Pipelines page (a redirect target)."""
    user = subject(console, viewer, req)
    state = req.form.get("State", "")
    try:
        pipelines.update_pipeline(
            console.services, user, {"PipelineName": req.path["name"], "State": state}
        )
    except ApiError as exc:
        raise Refused(400, f"Error {exc.code}: {exc.message}") from None
    return h.url("pipelines", user=user.name if user.id != viewer.user.id else "")


def workers_page(console: Console, viewer: Viewer, req: Req) -> tuple[str, str]:
    """Every worker process; the TaskIDs each one runs only for an admin (they may be
    other users' tasks), a count for everyone else."""
    settings = console.services.settings
    assert console.services.database is not None
    now = console.services.clock()
    found = WorkerRegistry(console.services.database).list_workers(
        now, lost_after(settings.heartbeat_seconds, settings.lease_seconds)
    )
    rows = []
    for w in found:
        running = ", ".join(w.running) if viewer.admin else str(len(w.running))
        rows.append(
            [
                h.esc(w.host),
                h.esc(w.pid),
                f'<span class="state">{h.esc(w.state.value)}</span>',
                h.esc(", ".join(w.pipelines) or "all"),
                h.esc(w.concurrency),
                h.esc(running),
                h.esc(f"{max(0.0, now - w.heartbeat_at):.1f} s ago"),
                h.esc(h.when(w.started_at)),
                h.esc(w.version),
            ]
        )
    if not rows:
        return "Workers", "<p>No worker is registered.</p>"
    return "Workers", h.table(
        [
            "Host",
            "PID",
            "State",
            "Pipelines",
            "Concurrency",
            "Running",
            "Heartbeat",
            "Started",
            "Version",
        ],
        rows,
        attrs='id="workers"',
    )
