"""Who may see and do what in the web console, over plain HTTP against a real server: two
users signed in at once see only their own tasks, presets and buckets (pages and data
endpoints); requests without the session cookie, with a forged cookie or without the CSRF
token are refused; a revoked key ends its sessions; the admin flag (``openkvs keys admin``)
shows every user's tasks."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from tests.integration.conftest import BUCKET, Deployment, deploy
from tests.support.media import make_audio
from tests.support.server import cli, create_keys


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deploy(tmp_path_factory.mktemp("console-access") / "data")


def sign_in(base: str, key: str, secret: str) -> tuple[httpx.Client, str]:
    """A client holding a console session, and its CSRF token."""
    client = httpx.Client(base_url=base, timeout=10)
    form = client.get("/console/signin")
    token = re.search(r'name="signin" value="([^"]+)"', form.text)
    assert token, form.text
    answer = client.post(
        "/console/signin",
        data={"signin": token.group(1), "AccessKeyId": key, "SecretAccessKey": secret},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/console/tasks", answer.text
    csrf = re.search(r'data-csrf="([^"]+)"', client.get("/console/tasks").text)
    assert csrf
    return client, csrf.group(1)


def _state(client: httpx.Client) -> str:
    """The state the Pipelines page shows for ``usual``."""
    found = re.search(r'class="state">([A-Za-z]+)<', client.get("/console/pipelines").text)
    assert found
    return found.group(1)


@pytest.fixture(scope="module")
def two(site: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The first user's task and preset, and both users' sessions."""
    other_key, other_secret = create_keys(site.data_dir, "other")
    assert cli(site.data_dir, "bucket", "create", "theirs", "--user", "other").returncode == 0
    audio = make_audio(tmp_path_factory.mktemp("a"), "tone", fmt="wav", seconds=1)
    src = site.upload(audio, "access/tone.wav")
    task_id = site.create_wave(src, "access/tone.json")
    assert site.wait_task(task_id)["TaskStatus"] == "succ"
    answer = site.client.preset(
        Preset="mine_only", PresetType="avtrans", Param={"f": "mp4", "VIDEO": {"vcodec": "h264"}}
    )
    assert answer["ErrNum"] == 0, answer
    first, first_csrf = sign_in(site.server.url, site.access_key, site.secret_key)
    second, second_csrf = sign_in(site.server.url, other_key, other_secret)
    yield {
        "task": task_id,
        "first": first,
        "first_csrf": first_csrf,
        "second": second,
        "second_csrf": second_csrf,
        "other_key": other_key,
        "other_secret": other_secret,
    }
    first.close()
    second.close()


def test_each_user_sees_only_their_own(two: dict) -> None:
    task, first, second = two["task"], two["first"], two["second"]
    assert first.get(f"/console/tasks/{task}").status_code == 200
    assert first.get(f"/console/api/tasks/{task}").json()["Status"] == "succ"
    assert [t["TaskID"] for t in first.get("/console/api/tasks").json()["Tasks"]] == [task]
    assert first.get("/console/presets/mine_only").status_code == 200
    assert f"/console/buckets/{BUCKET}" in first.get("/console/buckets").text

    assert second.get(f"/console/tasks/{task}").status_code == 404
    assert second.get(f"/console/api/tasks/{task}").status_code == 404
    assert second.get("/console/api/tasks").json()["Tasks"] == []
    assert task not in second.get("/console/tasks").text
    assert second.get("/console/presets/mine_only").status_code == 404
    assert "mine_only" not in second.get("/console/presets").text
    buckets = second.get("/console/buckets").text
    assert "/console/buckets/theirs" in buckets and f"/console/buckets/{BUCKET}" not in buckets
    assert second.get(f"/console/buckets/{BUCKET}").status_code == 404
    assert second.get(f"/console/buckets/{BUCKET}/submit?key=access/tone.wav").status_code == 404


def test_a_second_user_cannot_act_on_the_first_users_data(two: dict) -> None:
    second, csrf = two["second"], two["second_csrf"]
    upload = second.put(
        f"/console/api/buckets/{BUCKET}/objects?key=intruder.txt",
        content=b"x",
        headers={"X-CSRF-Token": csrf},
    )
    assert upload.status_code == 404
    submit = second.post(
        f"/console/buckets/{BUCKET}/submit",
        data={"csrf": csrf, "key": "access/tone.wav", "Preset": "mine_only", "DstBucket": BUCKET},
    )
    assert submit.status_code == 404
    # The same source from the second user's own bucket page: CreateTask's rule refuses it.
    own = second.post(
        "/console/buckets/theirs/submit",
        data={"csrf": csrf, "key": "x.wav", "Preset": "mine_only", "DstBucket": BUCKET},
    )
    assert own.status_code == 400 and "Error 1005" in own.text  # their preset list is empty
    edit = second.post(
        "/console/presets/mine_only/edit",
        data={"csrf": csrf, "PresetType": "avtrans", "Param": '{"f": "mp4"}'},
    )
    assert edit.status_code == 400 and "Error 1200" in edit.text
    # Pausing "usual" as the second user pauses theirs, not the first user's.
    paused = second.post("/console/pipelines/usual", data={"csrf": csrf, "State": "Paused"})
    assert paused.status_code == 303
    assert _state(second) == "Paused"
    assert _state(two["first"]) == "Active"
    second.post("/console/pipelines/usual", data={"csrf": csrf, "State": "Active"})


def test_no_cookie_forged_cookie_or_csrf_is_refused(site: Deployment, two: dict) -> None:
    task = two["task"]
    with httpx.Client(base_url=site.server.url, timeout=10) as anonymous:
        page = anonymous.get(f"/console/tasks/{task}")
        assert page.status_code == 303 and page.headers["location"] == "/console/signin"
        assert anonymous.get(f"/console/api/tasks/{task}").status_code == 401
        assert anonymous.get("/console/api/tasks").status_code == 401
        paused = anonymous.post("/console/pipelines/usual", data={"State": "Paused"})
        assert paused.status_code == 401
        # A session cookie of the first user with its signature altered.
        real = two["first"].cookies["okvs_session"]
        payload, mac = real.split(".")
        forged = payload + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
        anonymous.cookies.set("okvs_session", forged, path="/console")
        assert anonymous.get("/console/api/tasks").status_code == 401
    first = two["first"]
    no_token = first.post("/console/pipelines/usual", data={"State": "Paused"})
    wrong = first.post("/console/pipelines/usual", data={"State": "Paused", "csrf": "forged"})
    theirs = first.post(
        "/console/pipelines/usual", data={"State": "Paused", "csrf": two["second_csrf"]}
    )
    assert no_token.status_code == wrong.status_code == theirs.status_code == 403
    upload = first.put(f"/console/api/buckets/{BUCKET}/objects?key=x.txt", content=b"x")
    assert upload.status_code == 403
    assert _state(first) == "Active"
    # The sign-in form refuses a post without its own token (login CSRF).
    with httpx.Client(base_url=site.server.url, timeout=10) as fresh:
        answer = fresh.post(
            "/console/signin",
            data={"AccessKeyId": site.access_key, "SecretAccessKey": site.secret_key},
        )
        assert answer.status_code == 403 and "okvs_session" not in answer.headers.get(
            "set-cookie", ""
        )


def test_a_wrong_secret_is_refused(site: Deployment) -> None:
    with httpx.Client(base_url=site.server.url, timeout=10) as client:
        form = client.get("/console/signin")
        token = re.search(r'name="signin" value="([^"]+)"', form.text)
        assert token
        answer = client.post(
            "/console/signin",
            data={
                "signin": token.group(1),
                "AccessKeyId": site.access_key,
                "SecretAccessKey": site.secret_key + "x",
            },
        )
        assert answer.status_code == 403 and "wrong secret" in answer.text
        assert "okvs_session" not in client.cookies
        assert client.get("/console/api/tasks").status_code == 401


def test_admin_flag_shows_every_user(site: Deployment, two: dict, tmp_path: Path) -> None:
    second, task = two["second"], two["task"]
    on = cli(site.data_dir, "keys", "admin", "--user", "other", "on")
    assert on.returncode == 0 and "admin:  on" in on.stdout, on.stderr
    try:
        assert second.get(f"/console/tasks/{task}").status_code == 200
        rows = second.get("/console/api/tasks").json()["Tasks"]
        assert [(t["TaskID"], t["User"]) for t in rows] == [(task, "default")]
        assert "mine_only" in second.get("/console/presets?user=default").text
        assert second.get(f"/console/buckets/{BUCKET}").status_code == 200
    finally:
        off = cli(site.data_dir, "keys", "admin", "--user", "other", "off")
        assert off.returncode == 0 and "admin:  off" in off.stdout
    assert second.get(f"/console/tasks/{task}").status_code == 404
    unknown = cli(site.data_dir, "keys", "admin", "--user", "nobody", "on")
    assert unknown.returncode == 1 and "no user nobody" in unknown.stderr


def test_revoking_the_key_ends_the_session(site: Deployment) -> None:
    key, secret = create_keys(site.data_dir, "leaver")
    client, _ = sign_in(site.server.url, key, secret)
    try:
        assert client.get("/console/api/tasks").status_code == 200
        assert cli(site.data_dir, "keys", "revoke", key).returncode == 0
        deadline = time.monotonic() + 10  # the key cache keeps a key for a few seconds
        while client.get("/console/api/tasks").status_code != 401:
            assert time.monotonic() < deadline, "the session outlived its revoked key"
            time.sleep(0.2)
    finally:
        client.close()


def test_task_list_filters(two: dict) -> None:
    first, task = two["first"], two["task"]

    def ids(query: str) -> list[str]:
        answer = first.get(f"/console/api/tasks?{query}")
        assert answer.status_code == 200, answer.text
        return [t["TaskID"] for t in answer.json()["Tasks"]]

    day = task[-8:]  # the TaskID ends with its creation date in UTC+8
    today = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    assert ids("status=succ&type=audiowave&pipeline=usual&error=0") == [task]
    assert ids("status=fail") == ids("type=avtrans") == ids("pipeline=other") == []
    assert ids("error=2003") == [] and ids("date=2001-01-01") == []
    assert task in ids(f"date={today}") + ids("date=" + _day_before(today))
    assert ids("page=2") == []
    # The page's live list polls with the same filters, each encoded.
    page = first.get("/console/tasks?status=succ&pipeline=a%26b&other=1").text
    assert 'data-live="/console/api/tasks?status=succ&amp;pipeline=a%26b"' in page
    for bad in ("status=bogus", "date=yesterday", "error=x", "page=x"):
        assert first.get(f"/console/api/tasks?{bad}").status_code == 400, bad


def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def test_a_preset_named_new_has_its_own_page(site: Deployment, two: dict) -> None:
    """The create form lives at a path no preset name can take."""
    answer = site.client.preset(Preset="new", PresetType="avtrans", Param={"f": "flv"})
    assert answer["ErrNum"] in (0, 1201), answer
    page = two["first"].get("/console/presets/new")
    assert page.status_code == 200
    assert "flv" in page.text
    form = two["first"].get("/console/presets/-new")
    assert form.status_code == 200 and "csrf" in form.text
