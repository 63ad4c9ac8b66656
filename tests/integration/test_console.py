"""The web console in headless Chromium (the system's ``chromium``, driven by Playwright)
against a real ``openkvs serve``: sign in, a task waits in a paused pipeline and then runs
to success in the live list without a reload, its page shows the command, the callback
attempts and a playable output, a preset is refused then saved, a file is uploaded and a
task submitted on it. Screenshots of each page go to ``$OPENKVS_TEST_ARTIFACTS/console``
(else a pytest temporary folder, printed on failure)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import BUCKET, Deployment, deploy
from tests.support.media import make_video
from tests.support.receiver import CallbackReceiver

pytestmark = pytest.mark.slow

WAIT_MS = 60_000
PARAM = {
    "f": "mp4",
    "VIDEO": {"vcodec": "h264", "preset": "ultrafast"},
    "AUDIO": {"acodec": "aac"},
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deploy(tmp_path_factory.mktemp("console") / "data")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = os.environ.get("OPENKVS_TEST_ARTIFACTS")
    folder = Path(root) / "console" if root else tmp_path_factory.mktemp("console-shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is missing: scripts/install.sh --test installs Debian's chromium"
    with sync_playwright() as p:
        found = p.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--mute-audio"]
        )
        try:
            yield found
        finally:
            found.close()


@pytest.fixture(scope="module")
def page(site: Deployment, browser: Any, shots: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.goto(f"{site.server.url}/console/tasks")
    assert tab.url.endswith("/console/signin")  # no session: the sign-in form
    tab.fill("input[name=AccessKeyId]", site.access_key)
    tab.fill("input[name=SecretAccessKey]", site.secret_key)
    tab.screenshot(path=shots / "signin.png")
    tab.click("button[type=submit]")
    tab.wait_for_url("**/console/tasks")
    cookie = next(c for c in context.cookies() if c["name"] == "okvs_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    assert site.secret_key not in json.dumps(context.cookies())
    answer = site.client.preset(Preset="console_mp4", PresetType="avtrans", Param=PARAM)
    assert answer["ErrNum"] == 0, answer
    yield tab
    context.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as rx:
        yield rx


@pytest.fixture(scope="module")
def finished(
    site: Deployment, page: Any, receiver: CallbackReceiver, shots: Path, tmp_path_factory: Any
) -> str:
    """A task created while ``usual`` is paused (seen waiting), then resumed in the
    console and followed to success in the live list; its TaskID."""
    source = make_video(tmp_path_factory.mktemp("src"), "clip", seconds=3, size="160x120")
    src = site.upload(source, "console/clip.mp4")
    page.goto(f"{site.server.url}/console/pipelines")
    page.click("button[data-pipeline=usual]")
    page.wait_for_url("**/console/pipelines")
    assert page.inner_text("#pipelines .state") == "Paused"
    page.screenshot(path=shots / "pipelines.png")

    page.goto(f"{site.server.url}/console/tasks")
    page.evaluate("window.notReloaded = true")
    reply = site.client.create_task(
        Preset="console_mp4",
        SrcInfo=[{"path": src}],
        DstBucket=BUCKET,
        DstObjectKey="console/out.mp4",
        CbUrl=receiver.url,
    )
    assert reply["ErrNum"] == 0, reply
    task_id = str(reply["TaskID"])
    row = page.locator(f"tr[data-task-id='{task_id}']")
    row.wait_for()  # appeared without a reload
    page.wait_for_timeout(1500)  # the pipeline is paused: the task waits
    assert "init" in row.inner_text()
    page.screenshot(path=shots / "tasks-waiting.png")

    # Resume in another tab; the list in the first one moves on by itself.
    other = page.context.new_page()
    other.goto(f"{site.server.url}/console/pipelines")
    other.click("button[data-pipeline=usual]")
    other.wait_for_url("**/console/pipelines")
    assert other.inner_text("#pipelines .state") == "Active"
    other.close()

    page.wait_for_function(
        f"() => document.querySelector(\"tr[data-task-id='{task_id}']\")"
        ".innerText.includes('succ')",
        timeout=WAIT_MS,
    )
    assert "100%" in row.inner_text()
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=shots / "tasks.png")
    return task_id


def test_task_page_shows_command_callbacks_and_plays(
    site: Deployment, page: Any, finished: str, receiver: CallbackReceiver, shots: Path
) -> None:
    receiver.wait_for(1, timeout=30)
    page.goto(f"{site.server.url}/console/tasks/{finished}")
    assert "ffmpeg" in page.inner_text("#command")
    page.wait_for_function(
        "() => document.querySelectorAll('#callbacks tbody tr').length > 0"
        " && document.querySelector('#callbacks tbody').innerText.includes('200')",
        timeout=20_000,
    )  # delivered after the task finished: the page shows it without a reload
    assert receiver.url in page.inner_text("#callbacks")
    assert page.inner_text("#task-status") == "succ"
    video = page.locator("#outputs video")
    video.wait_for()
    page.evaluate(
        "() => { const v = document.querySelector('#outputs video'); v.muted = true;"
        " return v.play(); }"
    )
    page.wait_for_function(
        "() => document.querySelector('#outputs video').currentTime >= 1", timeout=20_000
    )
    page.screenshot(path=shots / "task.png", full_page=True)


def test_preset_is_refused_then_saved(site: Deployment, page: Any, shots: Path) -> None:
    page.goto(f"{site.server.url}/console/presets/-new")
    page.fill("input[name=Preset]", "console_new")
    page.select_option("select[name=PresetType]", "avtrans")
    page.fill("textarea[name=Param]", json.dumps({"f": "mp4", "VIDEO": {"vcodec": "nope"}}))
    page.click("form.stack button[type=submit]")
    error = page.locator(".error")
    error.wait_for()
    assert "1001" in error.inner_text() or "1018" in error.inner_text(), error.inner_text()
    # the API's own message for the same Param
    api = site.client.preset(
        Preset="console_api", PresetType="avtrans", Param={"f": "mp4", "VIDEO": {"vcodec": "nope"}}
    )
    assert api["ErrNum"] != 0 and str(api["ErrMsg"]) in error.inner_text()
    assert page.input_value("input[name=Preset]") == "console_new"  # the form kept its values
    page.screenshot(path=shots / "preset-error.png")
    page.fill("textarea[name=Param]", json.dumps(PARAM))
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/console/presets/console_new")
    assert '"vcodec": "h264"' in page.inner_text("#preset")
    page.screenshot(path=shots / "preset.png")
    page.goto(f"{site.server.url}/console/presets")
    assert "console_new" in page.inner_text("#presets")
    page.screenshot(path=shots / "presets.png")


def test_upload_then_submit_a_task(
    site: Deployment, page: Any, shots: Path, tmp_path: Path
) -> None:
    clip = make_video(tmp_path, "upload", seconds=2, size="160x120")
    page.goto(f"{site.server.url}/console/buckets")
    page.screenshot(path=shots / "buckets.png")
    page.click(f"#buckets a:text-is('{BUCKET}')")
    page.wait_for_url(f"**/console/buckets/{BUCKET}")
    page.set_input_files("#upload-file", str(clip))
    page.fill("#upload-key", "console/uploaded.mp4")
    page.click("#upload button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#objects').innerText.includes('uploaded.mp4')"
    )
    page.wait_for_function(
        "() => document.getElementById('upload-status').innerText.startsWith('Uploaded')"
    )
    assert page.eval_on_selector("#upload-bar", "bar => bar.value") == 100
    page.screenshot(path=shots / "bucket.png")
    row = page.locator("#objects tr", has_text="console/uploaded.mp4")
    row.locator("a", has_text="Submit a task").click()
    page.wait_for_url("**/submit?key=*")
    page.select_option("select[name=Preset]", "console_mp4")
    page.fill("input[name=DstObjectKey]", "console/from-upload.mp4")
    page.screenshot(path=shots / "submit.png")
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/console/tasks/*")
    page.wait_for_function(
        "() => document.getElementById('task-status').innerText === 'succ'", timeout=WAIT_MS
    )
    page.locator("#outputs a", has_text="console/from-upload.mp4").wait_for()


def test_workers_page(site: Deployment, page: Any, shots: Path) -> None:
    page.goto(f"{site.server.url}/console/workers")
    text = page.inner_text("#workers")
    assert "alive" in text and "s ago" in text
    page.screenshot(path=shots / "workers.png")


def test_an_hls_output_plays(site: Deployment, page: Any, finished: str, shots: Path) -> None:
    """The task page plays a private HLS output: its playlist comes through the console,
    which signs each segment (hls.js, fetched by scripts/install.sh, plays it)."""
    from openkvs.console.html import HLS_JS

    if not HLS_JS.is_file():
        pytest.skip("hls.js is not installed (scripts/install.sh fetches it when npm exists)")
    param = {"f": "hls", "hls_time": 1, **{k: v for k, v in PARAM.items() if k != "f"}}
    answer = site.client.preset(Preset="console_hls", PresetType="avtrans", Param=param)
    assert answer["ErrNum"] == 0, answer
    reply = site.client.create_task(
        Preset="console_hls",
        SrcInfo=[{"path": f"/{BUCKET}/console/clip.mp4"}],
        DstBucket=BUCKET,
        DstObjectKey="console/hls/index.m3u8",
    )
    assert reply["ErrNum"] == 0, reply
    assert site.wait_task(str(reply["TaskID"]))["TaskStatus"] == "succ"
    page.goto(f"{site.server.url}/console/tasks/{reply['TaskID']}")
    page.locator("#outputs video").wait_for()
    page.evaluate(
        "() => { const v = document.querySelector('#outputs video'); v.muted = true;"
        " return v.play(); }"
    )
    page.wait_for_function(
        "() => document.querySelector('#outputs video').currentTime >= 1", timeout=20_000
    )
    page.screenshot(path=shots / "task-hls.png", full_page=True)


def test_a_waveform_is_drawn(site: Deployment, page: Any, finished: str, shots: Path) -> None:
    task_id = site.create_wave(f"/{BUCKET}/console/clip.mp4", "console/clip-wave.json", points=50)
    assert site.wait_task(task_id)["TaskStatus"] == "succ"
    page.goto(f"{site.server.url}/console/tasks/{task_id}")
    page.wait_for_function(
        "() => Number(document.querySelector('#outputs canvas').dataset.drawn || 0) >= 10"
    )
    page.screenshot(path=shots / "task-wave.png", full_page=True)


def test_a_failed_task_shows_its_stderr(
    site: Deployment, page: Any, finished: str, shots: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    src = site.upload(bad, "console/bad.mp4")
    reply = site.client.create_task(
        Preset="console_mp4",
        SrcInfo=[{"path": src}],
        DstBucket=BUCKET,
        DstObjectKey="console/x.mp4",
    )
    assert reply["ErrNum"] == 0, reply
    assert site.wait_task(str(reply["TaskID"]))["TaskStatus"] == "fail"
    page.goto(f"{site.server.url}/console/tasks/{reply['TaskID']}")
    assert "Invalid data" in page.inner_text("#stderr")
    assert page.inner_text("#task-error").startswith("3150 ")
    page.screenshot(path=shots / "task-failed.png", full_page=True)
