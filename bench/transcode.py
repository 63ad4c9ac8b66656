"""avtrans benchmark: an openkvs transcode end to end against bare ffmpeg running its command.

    .venv/bin/python bench/transcode.py [--runs 3] [--audio-runs 7] [--only video|audio]
                                        [--check] [--json F]

1. Sources, generated once with lavfi and cached in ``$OPENKVS_BENCH_CACHE`` or
   ``~/.cache/openkvs-bench``: 60 s of 1920x1080 25 fps H.264 (testsrc2) + stereo 48 kHz
   AAC, and a 2-minute 1280x720 H.264 + stereo AAC file.
2. Starts ``openkvs serve`` (default settings, callbacks to 127.0.0.0/8 allowed) in a
   temporary data folder with a key, a bucket holding both sources and two ``avtrans``
   presets: ``{"f": "mp4", "VIDEO": {"vcodec": "h264", "width": 1280, "height": 720},
   "AUDIO": {"acodec": "aac"}}`` (case *video*: 1080p → 720p H.264) and ``{"f": "mp3",
   "AUDIO": {"acodec": "mp3"}}`` (case *audio*: audio only, mp3).
3. Per case, alternately (``--runs`` / ``--audio-runs`` of each):

   - **openkvs**: a signed ``CreateTask`` (SigV4 in query form, signed before the clock
     starts) until the completion callback has been read by a local receiver
     (``tests/support/receiver.py``); the callback must say success;
   - **bare**: the command openkvs ran, as GetTaskByTaskID's ``Command`` shows it (the first
     task's), run by this process with ``subprocess``: the same arguments, with the
     source's path kept (the object's own file in the data folder) and the task's scratch
     folder replaced by a temporary one; output to a file that is removed before each run.

   The first openkvs task of each case is not timed (it also gives the command).
4. Prints each time, the medians, the ratio openkvs / bare (median to median) and the median
   of the differences openkvs − bare within each pair (steadier when other work shares
   the machine). Targets: video ≤ 1.02, audio ≤ 1.05. It also splits an openkvs task's time with the
   server's log (millisecond timestamps): CreateTask's answer, answer → claimed, claimed →
   ffmpeg started (``task_command``), ffmpeg started → task finished (the transcode, then
   describing and storing the output), finished → callback read by the receiver.

Not run by the test suite; it asserts nothing about time (``--check`` only sets the exit
status: 1 when a target is missed).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.avinfo import SignedClient, bench_cache, server_events  # noqa: E402
from tests.support.kvs_client import close_kvs_client, make_kvs_client  # noqa: E402
from tests.support.receiver import CallbackReceiver  # noqa: E402
from tests.support.server import ServerProcess, cli, create_keys  # noqa: E402

BUCKET = "bench"
#: The server log events whose times give a transcode task's stages.
TRANSCODE_EVENTS = frozenset({"task_claimed", "task_command", "task_finished"})


@dataclass(frozen=True)
class Case:
    name: str
    source: str  # file name in the cache
    make: tuple[str, ...]  # ffmpeg arguments that generate it (output appended)
    preset: str
    param: dict[str, Any]
    key: str  # DstObjectKey
    target: float


CASES = (
    Case(
        "video",
        "transcode-1080p25-h264-aac-60s.mp4",
        (
            "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25:duration=60",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=60",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-movflags", "+faststart",
        ),
        "bench_720p",
        {"f": "mp4", "VIDEO": {"vcodec": "h264", "width": 1280, "height": 720},
         "AUDIO": {"acodec": "aac"}},
        "out/720p.mp4",
        1.02,
    ),
    Case(
        "audio",
        "transcode-720p25-h264-aac-120s.mp4",
        (
            "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=120",
            "-f", "lavfi", "-i",
            "aevalsrc=exprs='0.5*sin(2*PI*(220+110*floor(mod(t\\,12)/3))*t)|"
            "0.4*sin(2*PI*330*t)+0.05*(2*random(1)-1)':s=48000:d=120",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart",
        ),
        "bench_mp3",
        {"f": "mp3", "AUDIO": {"acodec": "mp3"}},
        "out/audio.mp3",
        1.05,
    ),
)  # fmt: skip


def source_file(case: Case) -> Path:
    target = bench_cache() / case.source
    if target.exists():
        return target
    partial = target.with_name(target.name + ".part" + target.suffix)
    print(f"generating {target} (once) ...", flush=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", *case.make, str(partial)], check=True
    )
    partial.rename(target)
    return target


# --- the bare command ------------------------------------------------------------------------


def bare_commands(command: str, work: Path) -> list[list[str]]:
    """GetTaskByTaskID's ``Command`` (shell-quoted commands joined with `` && ``) as argv
    lists, the task's scratch folder (where the last command's output goes) replaced by
    ``work``."""
    commands: list[list[str]] = [[]]
    for word in shlex.split(command):
        if word == "&&":
            commands.append([])
        else:
            commands[-1].append(word)
    if not commands[-1]:
        raise SystemExit(f"cannot read the stored command: {command!r}")
    scratch = os.path.dirname(commands[-1][-1])
    if not scratch:
        raise SystemExit(f"the stored command's output is not in a folder: {command!r}")
    return [[word.replace(scratch, str(work)) for word in argv] for argv in commands]


def run_bare(commands: list[list[str]], work: Path) -> float:
    for entry in work.iterdir():
        entry.unlink()
    started = time.perf_counter()
    for argv in commands:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace")[-1500:]
            raise SystemExit(f"bare ffmpeg failed ({done.returncode}): {shlex.join(argv)}\n{tail}")
    return time.perf_counter() - started


# --- the openkvs task --------------------------------------------------------------------------


@dataclass
class Timings:
    case: Case
    bare: list[float] = field(default_factory=list)
    openkvs: list[float] = field(default_factory=list)
    command: str = ""
    #: per timed task: (TaskID, wall time sent, answered, callback read)
    task_times: list[tuple[str, float, float, float]] = field(default_factory=list)


def run_task(
    client: SignedClient, receiver: CallbackReceiver, case: Case, src: str, timeout: float
) -> tuple[float, tuple[str, float, float, float]]:
    body = {
        "Preset": case.preset,
        "SrcInfo": [{"path": src}],
        "DstBucket": BUCKET,
        "DstObjectKey": case.key,
        "CbUrl": receiver.url,
    }
    target, data = client.prepare("CreateTask", body)
    before = len(receiver.requests)
    wall, started = time.time(), time.monotonic()
    reply = client.send(target, data)
    answered = time.monotonic()
    if reply.get("ErrNum") != 0:
        raise SystemExit(f"CreateTask refused: {reply}")
    task_id = reply["TaskID"]
    callback = receiver.wait_for(before + 1, timeout=timeout)[before]
    elapsed = callback.time - started
    doc = callback.json or {}
    if doc.get("TaskID") != task_id or doc.get("Status") != 3:
        raise SystemExit(f"the task failed or another callback came: {callback.body[:800]!r}")
    return elapsed, (task_id, wall, wall + answered - started, wall + elapsed)


def stages(timings: Timings, events: dict[str, dict[str, float]]) -> dict[str, float]:
    """Median milliseconds of each stage of the timed tasks."""
    out: dict[str, list[float]] = {
        "create": [], "wake": [], "until_ffmpeg": [], "ffmpeg_to_finished": [], "deliver": []
    }  # fmt: skip
    for task_id, sent, answered, arrived in timings.task_times:
        seen = events.get(task_id, {})
        if not {"task_claimed", "task_command", "task_finished"} <= seen.keys():
            continue
        out["create"].append(answered - sent)
        out["wake"].append(seen["task_claimed"] - answered)
        out["until_ffmpeg"].append(seen["task_command"] - seen["task_claimed"])
        out["ffmpeg_to_finished"].append(seen["task_finished"] - seen["task_command"])
        out["deliver"].append(arrived - seen["task_finished"])
    return {k: round(1000 * statistics.median(v), 1) for k, v in out.items() if v}


def bench_case(
    case: Case,
    runs: int,
    client: SignedClient,
    receiver: CallbackReceiver,
    sdk: Any,
    src: str,
    work: Path,
) -> Timings:
    timings = Timings(case)
    print(f"{case.name}: first task (gives the command; not timed) ...", flush=True)
    first, (task_id, *_rest) = run_task(client, receiver, case, src, timeout=1800)
    info = sdk.get_task_by_task_id(TaskID=task_id).get("TaskInfo", {})
    timings.command = str(info.get("Command") or "")
    if info.get("TaskStatus") != "succ" or not timings.command:
        raise SystemExit(f"GetTaskByTaskID({task_id}) has no command or did not succeed: {info}")
    commands = bare_commands(timings.command, work)
    print(f"  command: {timings.command}")
    print(f"  first task: {first:.2f} s", flush=True)
    timeout = max(600.0, 20 * first)
    for n in range(runs):
        pair = [("bare", None), ("openkvs", None)]
        for kind, _ in pair if n % 2 == 0 else pair[::-1]:
            if kind == "bare":
                seconds = run_bare(commands, work)
                timings.bare.append(seconds)
            else:
                seconds, times = run_task(client, receiver, case, src, timeout)
                timings.openkvs.append(seconds)
                timings.task_times.append(times)
            print(f"  run {n + 1}: {kind:<8} {seconds:.3f} s", flush=True)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs of the video case")
    parser.add_argument("--audio-runs", type=int, default=7, help="timed runs of the audio case")
    parser.add_argument("--only", choices=[c.name for c in CASES], help="run one case")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if args.only in (None, c.name)]
    sources = {c.name: source_file(c) for c in cases}
    load_before = os.getloadavg()

    results: list[Timings] = []
    with tempfile.TemporaryDirectory(prefix="openkvs-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        work = Path(tmp) / "bare"
        work.mkdir()
        access_key, secret_key = create_keys(data_dir)
        if cli(data_dir, "bucket", "create", BUCKET).returncode != 0:
            raise SystemExit("openkvs bucket create failed")
        for case in cases:
            result = cli(data_dir, "cp", str(sources[case.name]), f"/{BUCKET}/in/{case.source}")
            if result.returncode != 0:
                raise SystemExit(f"openkvs cp failed: {result.stderr}")

        env = {"OPENKVS_CALLBACK_ALLOW": "127.0.0.0/8", "OPENKVS_LOG_JSON": "1"}
        with ServerProcess(data_dir, env) as server, CallbackReceiver() as receiver:
            sdk = make_kvs_client(server.url, access_key, secret_key)
            client = SignedClient(server.url, access_key, secret_key)
            try:
                for case in cases:
                    reply = sdk.preset(Preset=case.preset, PresetType="avtrans", Param=case.param)
                    if reply.get("ErrNum") != 0:
                        raise SystemExit(f"Preset {case.preset} refused: {reply}")
                for case in cases:
                    runs = args.runs if case.name == "video" else args.audio_runs
                    src = f"/{BUCKET}/in/{case.source}"
                    results.append(bench_case(case, runs, client, receiver, sdk, src, work))
            finally:
                client.close()
                close_kvs_client(sdk)
            events = server_events(server.log_path, TRANSCODE_EVENTS)
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()

    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout
    print(
        f"\n{os.cpu_count()} cores; {version.splitlines()[0] if version else 'ffmpeg ?'};"
        f" load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n"
    )
    ok = True
    payload: list[dict[str, Any]] = []
    for t in results:
        bare, ours = statistics.median(t.bare), statistics.median(t.openkvs)
        ratio = ours / bare
        extra = statistics.median(o - b for o, b in zip(t.openkvs, t.bare, strict=True))
        met = ratio <= t.case.target
        ok = ok and met
        split = stages(t, events)
        print(
            f"{t.case.name}: bare ffmpeg median {bare:.3f} s, openkvs median {ours:.3f} s,"
            f" ratio {ratio:.3f} (target <= {t.case.target:.2f}) {'OK' if met else 'MISSED'};"
            f" openkvs - bare within a pair: median {1000 * extra:+.0f} ms"
        )
        print("  openkvs stages (median ms): " + ", ".join(f"{k} {v}" for k, v in split.items()))
        payload.append(
            {
                "case": t.case.name,
                "param": t.case.param,
                "command": t.command,
                "bare_seconds": t.bare,
                "openkvs_seconds": t.openkvs,
                "ratio_median": round(ratio, 4),
                "extra_ms_paired_median": round(1000 * extra, 1),
                "target": t.case.target,
                "stages_median_ms": split,
            }
        )
    if args.json:
        doc = {
            "cores": os.cpu_count(),
            "ffmpeg": version.splitlines()[0] if version else "",
            "load_average": [load_before[0], load_after[0]],
            "results": payload,
            "ok": ok,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
