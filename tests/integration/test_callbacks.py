"""Callbacks end to end against ``openkvs serve``: the address policy at creation, isolation
of slow receivers, and signatures checked with the snippet from ``docs/callbacks.md``.

Every receiver listens on loopback. Servers started by ``deploy`` allow 127.0.0.0/8 (see
``FAST_ENV``) except ``strict``, which runs the default policy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import Deployment, deploy
from tests.support.media import make_audio
from tests.support.receiver import CallbackReceiver
from tests.support.server import cli
from tests.support.stalling import StallingReceiver

DOCS = Path(__file__).resolve().parents[2] / "docs" / "callbacks.md"

POISONED = [
    "http://example.com/cb\r\nX-Injected: yes",
    "http://example.com/c b",
    "ftp://example.com/cb",
    "http://user:pw@example.com/cb",
    "http://127.0.0.1:8080/cb",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/cb",
    "http://[::1]:8080/cb",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://localhost:8080/cb",
]


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A server with the default address policy (nothing allowed)."""
    yield from deploy(tmp_path_factory.mktemp("strict"), {"OPENKVS_CALLBACK_ALLOW": ""})


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_audio(tmp_path_factory.mktemp("sound"), "tone", fmt="wav", seconds=1)


@pytest.fixture(scope="module")
def strict_src(strict: Deployment, sound: Path) -> str:
    return strict.upload(sound, "in/tone.wav")


def _create(kvs: Deployment, src: str, **extra: Any) -> dict[str, Any]:
    """CreateWaveTask's whole reply (``Deployment.create_wave`` asserts success)."""
    reply = kvs.client.create_wave_task(
        Preset="wave",
        SrcInfo=[{"path": src}],
        DstBucket="media",
        DstObjectKey="o.json",
        points=10,
        **extra,
    )
    return dict(reply)


def _verifier() -> Callable[[str, dict[str, str], bytes], bool]:
    """The ``verify`` function of the documentation's stdlib snippet."""
    text = DOCS.read_text()
    signatures = text.split("## Signatures", 1)[1]
    [snippet] = re.findall(r"```python\n(.*?)```", signatures, flags=re.DOTALL)[:1]
    namespace: dict[str, Any] = {}
    exec(compile(snippet, str(DOCS), "exec"), namespace)
    verify: Callable[[str, dict[str, str], bytes], bool] = namespace["verify"]
    return verify


@pytest.mark.parametrize("url", POISONED)
def test_poisoned_cb_urls_are_refused_at_creation(
    strict: Deployment, strict_src: str, url: str
) -> None:
    reply = _create(strict, strict_src, CbUrl=url)
    assert reply["ErrNum"] == 1001, reply
    assert "CbUrl" in reply["ErrMsg"] and "TaskID" not in reply


def test_a_progress_url_obeys_the_same_rules(strict: Deployment, strict_src: str) -> None:
    for url, code in (("http://10.0.0.1/p", 1001), ("http://x.example/\n", 1001), (7, 1018)):
        reply = _create(
            strict, strict_src, ExtParam=json.dumps({"Callback": {"progress_cburl": url}})
        )
        assert reply["ErrNum"] == code, (url, reply)


def test_loopback_is_refused_by_default_and_delivered_when_allowed(
    strict: Deployment, strict_src: str, kvs: Deployment, sound: Path
) -> None:
    with CallbackReceiver() as receiver:
        refused = _create(strict, strict_src, CbUrl=receiver.url)
        assert refused["ErrNum"] == 1001 and "loopback" in refused["ErrMsg"], refused
        # The server of ``kvs`` allows 127.0.0.0/8: the same URL is accepted and called.
        task_id = kvs.create_wave(kvs.upload(sound, "in/tone.wav"), "o.json", CbUrl=receiver.url)
        [request] = receiver.wait_for(1, timeout=60)
    assert request.json["TaskID"] == task_id
    # Signed with the user's secret, as the documented snippet checks it.
    result = cli(kvs.data_dir, "keys", "webhook-secret", "--user", "default")
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip()
    assert secret.startswith("whsec_")
    verify = _verifier()
    assert verify(secret, request.headers, request.body)
    assert request.headers["webhook-id"].startswith(f"msg_{task_id}_")
    assert not verify(secret, request.headers, request.body.replace(b"audiowave", b"avinfo"))
    other = "whsec_" + "A" * 43 + "="
    assert not verify(other, request.headers, request.body)


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Attempts end only after 10 minutes, so only isolation lets good callbacks through."""
    env = {
        "OPENKVS_CALLBACK_TIMEOUT": "600",
        "OPENKVS_CALLBACK_CONCURRENCY": "16",
        "OPENKVS_CALLBACK_PER_HOST": "4",
    }
    yield from deploy(tmp_path_factory.mktemp("isolated"), env)


@pytest.mark.slow
def test_hanging_receivers_do_not_hold_back_good_ones(isolated: Deployment, sound: Path) -> None:
    """Ten stalling receivers on ten hosts (five silent, five dripping an endless answer),
    with eight more callbacks to the first of them, then ten good receivers. The stalling
    callbacks alone would fill the 16 attempts in flight; the per-host bound keeps the
    first host at 4, which leaves room for the good ones."""
    src = isolated.upload(sound, "in/tone.wav")
    with ExitStack() as stack:
        stalling = [
            stack.enter_context(StallingReceiver(f"127.0.0.{11 + i}", drip=None if i < 5 else 0.5))
            for i in range(10)
        ]
        good = [stack.enter_context(CallbackReceiver(host=f"127.0.0.{31 + i}")) for i in range(10)]
        for n, receiver in enumerate([*stalling, *[stalling[0]] * 8]):
            isolated.create_wave(src, f"out/slow{n}.json", CbUrl=receiver.url)
        good_tasks = [
            isolated.create_wave(src, f"out/good{n}.json", CbUrl=receiver.url)
            for n, receiver in enumerate(good)
        ]
        for receiver, task_id in zip(good, good_tasks, strict=True):
            [request] = receiver.wait_for(1, timeout=60)
            assert request.json["TaskID"] == task_id
            assert request.headers["webhook-signature"].startswith("v1,")
        # ... while every stalling receiver got its request and is still being waited on.
        stalling[0].wait_for(4)
        for receiver in stalling[1:]:
            receiver.wait_for(1)
        assert len(stalling[0].requests) == 4  # the per-host bound
        assert all(receiver.open >= 1 for receiver in stalling)
        assert all(len(receiver.requests) == 1 for receiver in stalling[1:])
