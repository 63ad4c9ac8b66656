"""CreateWaveTask benchmark: end-to-end time against a bare ffmpeg decode, and memory.

    .venv/bin/python bench/wave.py [--minutes 20] [--runs 3] [--points 800] [--check]

1. Generates once (cached in ``$OPENKVS_TEST_CACHE`` or ``~/.cache/openkvs-tests``) an
   N-minute stereo 44.1 kHz 128 kb/s mp3 with varied content: stepped tones, slow loudness
   envelopes, silent gaps and noise, different on each channel.
2. Times the bare decode ``ffmpeg -v error -i F -vn -ac 1 -f f32le -y /dev/null``
   (median of ``--runs``).
3. Starts ``openkvs serve`` (default settings) in a temporary data folder, creates keys and a
   bucket, uploads the mp3 with ``openkvs cp``.
4. Per run: ``create_wave_task(points=800)`` through the official SDK → until the completion
   callback reaches a local receiver; checks the callback says success and GetTaskByTaskID
   says ``succ``.
5. Prints the median ratio end-to-end / bare (target ≤ 1.1) and the peak RSS (VmHWM) of the
   service's own processes, i.e. ``serve`` and any Python child (target ≤ 100 MB), with the
   ffmpeg children reported separately (sampled from /proc every 20 ms).

``--check`` makes the exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.kvs_client import close_kvs_client, make_kvs_client  # noqa: E402
from tests.support.media import cache_dir  # noqa: E402
from tests.support.receiver import CallbackReceiver  # noqa: E402
from tests.support.server import ServerProcess, cli, create_keys  # noqa: E402

RATIO_TARGET = 1.1
RSS_TARGET_MB = 100.0
BUCKET = "bench"
SAMPLE_INTERVAL = 0.02

# Per channel: a tone stepping through 8 pitches, a slow |sin| loudness envelope, a silent
# gap every ~1.5 min and a little noise. Commas are escaped for the filter-graph parser.
_CHANNEL_EXPRS = [
    r"(0.05+0.8*abs(sin(PI*t/13)))*gt(mod(t\,97)\,4)"
    r"*sin(2*PI*(220+55*floor(mod(t\,60)/7.5))*t)+0.04*(2*random(0)-1)",
    r"(0.05+0.8*abs(sin(PI*t/11+1)))*gt(mod(t\,89)\,3)"
    r"*sin(2*PI*(330+44*floor(mod(t\,50)/6.25))*t)+0.04*(2*random(1)-1)",
]


def bench_mp3(minutes: float) -> Path:
    """The cached benchmark input, generated on first use."""
    target = cache_dir() / f"bench-wave-{minutes:g}min-stereo-44k1-128k.mp3"
    if target.exists():
        return target
    seconds = minutes * 60
    partial = target.with_name(target.name + ".part.mp3")
    print(f"generating {target} ({minutes:g} min; once) ...", flush=True)
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-nostdin", "-y",
            "-f", "lavfi",
            "-i", f"aevalsrc=exprs='{'|'.join(_CHANNEL_EXPRS)}':s=44100:d={seconds:g}",
            "-c:a", "libmp3lame", "-b:a", "128k", "-ar", "44100", "-ac", "2",
            str(partial),
        ],
        check=True,
    )  # fmt: skip
    partial.rename(target)
    return target


def bare_decode(path: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of the bare decode."""
    started = time.perf_counter()
    process = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path),
         "-vn", "-ac", "1", "-f", "f32le", "-y", "/dev/null"],
    )  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)  # wait4 gives this child's own ru_maxrss
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"bare ffmpeg decode failed ({process.returncode})")
    return elapsed, usage.ru_maxrss / 1024


# --- memory sampling -------------------------------------------------------------------


def _status_kb(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS in kB from /proc/<pid>/status (empty once the process is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except (OSError, ValueError):
        return {}
    return out


def _children_map() -> dict[int, list[int]]:
    """ppid -> child pids, from /proc/<pid>/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # comm may contain spaces and parentheses: the ppid is the 2nd field after the last ')'
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _descendants(root: int) -> list[int]:
    children = _children_map()
    found: list[int] = []
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _kind(pid: int) -> str:
    try:
        exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        try:
            with open(f"/proc/{pid}/comm") as fh:
                exe = fh.read().strip()
        except OSError:
            return "gone"
    if exe.startswith("ffmpeg") or exe.startswith("ffprobe"):
        return exe.split(".")[0]
    if exe.startswith("python"):
        return "python"
    return exe


@dataclass
class MemorySampler:
    """Samples the server process tree every 20 ms (peak per process, peak concurrent sums)."""

    root: int
    peak_kb: dict[int, int] = field(default_factory=dict)  # pid -> max VmHWM seen
    kinds: dict[int, str] = field(default_factory=dict)
    peak_ffmpeg_sum_kb: int = 0  # max over samples of the summed VmRSS of ffmpeg children
    peak_ffmpeg_count: int = 0  # most ffmpeg children alive at one sample
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()  # the final VmHWM of processes still alive

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            self.sample()

    def sample(self) -> None:
        self.samples += 1
        ffmpeg_sum = ffmpeg_count = 0
        for pid in [self.root, *_descendants(self.root)]:
            kind = self.kinds.get(pid) or _kind(pid)
            status = _status_kb(pid)
            if not status or kind == "gone":
                continue
            self.kinds[pid] = kind
            self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), status.get("VmHWM", 0))
            if kind in ("ffmpeg", "ffprobe"):
                ffmpeg_sum += status.get("VmRSS", 0)
                ffmpeg_count += 1
        self.peak_ffmpeg_sum_kb = max(self.peak_ffmpeg_sum_kb, ffmpeg_sum)
        self.peak_ffmpeg_count = max(self.peak_ffmpeg_count, ffmpeg_count)

    def report(self) -> dict[str, Any]:
        def mb(kb: int) -> float:
            return round(kb / 1024, 1)

        python_children = {
            pid: kb
            for pid, kb in self.peak_kb.items()
            if pid != self.root and self.kinds[pid] == "python"
        }
        ffmpeg = {
            pid: kb for pid, kb in self.peak_kb.items() if self.kinds[pid] in ("ffmpeg", "ffprobe")
        }
        other = {
            pid: kb
            for pid, kb in self.peak_kb.items()
            if pid != self.root and pid not in python_children and pid not in ffmpeg
        }
        serve_mb = mb(self.peak_kb.get(self.root, 0))
        own_max = max([serve_mb, *(mb(kb) for kb in python_children.values())])
        return {
            "serve_peak_mb": serve_mb,
            "python_children_peak_mb": sorted(
                (mb(kb) for kb in python_children.values()), reverse=True
            ),
            "service_peak_mb": own_max,
            "ffmpeg_processes_seen": len(ffmpeg),
            "ffmpeg_peak_single_mb": mb(max(ffmpeg.values(), default=0)),
            "ffmpeg_peak_concurrent_sum_mb": mb(self.peak_ffmpeg_sum_kb),
            "ffmpeg_peak_concurrent_count": self.peak_ffmpeg_count,
            "other_children": {self.kinds[p]: mb(kb) for p, kb in other.items()},
            "samples": self.samples,
        }


# --- the run ---------------------------------------------------------------------------


def run_wave_task(
    client: Any, receiver: CallbackReceiver, src: str, key: str, points: int, timeout: float
) -> float:
    """One task, timed from the SDK call until its completion callback has arrived."""
    before = len(receiver.requests)
    started = time.monotonic()
    reply = client.create_wave_task(
        Preset="wave",
        SrcInfo=[{"path": src}],
        DstBucket=BUCKET,
        DstObjectKey=key,
        CbUrl=receiver.url,
        points=points,
    )
    if reply.get("ErrNum") != 0:
        raise SystemExit(f"CreateWaveTask refused: {reply}")
    task_id = reply["TaskID"]
    callbacks = receiver.wait_for(before + 1, timeout=timeout)
    callback = callbacks[before]
    elapsed = callback.time - started
    body = callback.json or {}
    if body.get("TaskID") != task_id or body.get("Status") != 3:
        raise SystemExit(f"unexpected callback for {task_id}: {callback.body[:500]!r}")
    info = client.get_task_by_task_id(TaskID=task_id).get("TaskInfo", {})
    if info.get("TaskStatus") != "succ":
        raise SystemExit(f"GetTaskByTaskID({task_id}) says {info.get('TaskStatus')!r}: {info}")
    return elapsed


def check_output(data_dir: Path, key: str, points: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "wave.json"
        result = cli(data_dir, "cp", f"/{BUCKET}/{key}", str(local))
        if result.returncode != 0:
            raise SystemExit(f"openkvs cp of the output failed: {result.stderr}")
        doc = json.loads(local.read_text())
    if len(doc.get("data", [])) != points:
        raise SystemExit(f"output has {len(doc.get('data', []))} points, not {points}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="input length (default 20)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (default 3)")
    parser.add_argument("--points", type=int, default=800, help="waveform points (default 800)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)

    mp3 = bench_mp3(args.minutes)
    print(f"input: {mp3} ({mp3.stat().st_size / 1e6:.1f} MB)")

    bare_runs = [bare_decode(mp3) for _ in range(args.runs)]
    bare = [seconds for seconds, _ in bare_runs]
    bare_rss_mb = max(rss for _, rss in bare_runs)
    bare_median = statistics.median(bare)
    print(f"bare ffmpeg decode: median {bare_median:.2f} s  runs {[round(b, 2) for b in bare]}")

    with tempfile.TemporaryDirectory(prefix="openkvs-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        access_key, secret_key = create_keys(data_dir)
        for step in (["bucket", "create", BUCKET], ["cp", str(mp3), f"/{BUCKET}/in/long.mp3"]):
            result = cli(data_dir, *step)
            if result.returncode != 0:
                raise SystemExit(f"openkvs {' '.join(step)} failed: {result.stderr}")

        # The receiver listens on 127.0.0.1, which callbacks may reach only when allowed.
        allow = {"OPENKVS_CALLBACK_ALLOW": "127.0.0.0/8"}
        with ServerProcess(data_dir, allow) as server, CallbackReceiver() as receiver:
            sampler = MemorySampler(server.pid).start()
            client = make_kvs_client(server.url, access_key, secret_key)
            try:
                e2e = []
                for i in range(args.runs):
                    seconds = run_wave_task(
                        client,
                        receiver,
                        f"/{BUCKET}/in/long.mp3",
                        f"out/run{i}.wave.json",
                        args.points,
                        timeout=max(120.0, 20 * bare_median),
                    )
                    e2e.append(seconds)
                    print(f"  run {i + 1}: end-to-end {seconds:.2f} s", flush=True)
            finally:
                close_kvs_client(client)
                sampler.stop()
            memory = sampler.report()
            check_output(data_dir, "out/run0.wave.json", args.points)
            log_tail = server.log_tail(5).splitlines()

    e2e_median = statistics.median(e2e)
    ratio = e2e_median / bare_median
    ratios = [e / bare_median for e in e2e]
    ratio_ok = ratio <= RATIO_TARGET
    rss_ok = memory["service_peak_mb"] <= RSS_TARGET_MB

    m = memory
    lines = [
        "",
        f"end-to-end wave task ({args.points} points): median {e2e_median:.2f} s"
        f"  runs {[round(e, 2) for e in e2e]}",
        f"ratio end-to-end / bare: {ratio:.3f}  (target <= {RATIO_TARGET})"
        f"  {'OK' if ratio_ok else 'MISSED'}  per run {[round(r, 3) for r in ratios]}",
        f"peak RSS of the service (serve + Python children): {m['service_peak_mb']:.1f} MB"
        f"  (target <= {RSS_TARGET_MB:g} MB)  {'OK' if rss_ok else 'MISSED'}",
        f"  serve process VmHWM: {m['serve_peak_mb']:.1f} MB;"
        f" Python children: {m['python_children_peak_mb'] or 'none'}",
        f"  ffmpeg children (separate): {m['ffmpeg_processes_seen']} seen,"
        f" peak single {m['ffmpeg_peak_single_mb']:.1f} MB,"
        f" peak concurrent {m['ffmpeg_peak_concurrent_count']}"
        f" using {m['ffmpeg_peak_concurrent_sum_mb']:.1f} MB"
        f"  (bare ffmpeg decode: {bare_rss_mb:.1f} MB)",
    ]
    if m["other_children"]:
        lines.append(f"  other children: {m['other_children']}")
    lines.append(f"  ({m['samples']} /proc samples; last server log line: {log_tail[-1:]})")
    print("\n".join(lines))

    results = {
        "input": str(mp3),
        "minutes": args.minutes,
        "points": args.points,
        "bare_seconds": bare,
        "e2e_seconds": e2e,
        "ratio_median": ratio,
        "ratio_target": RATIO_TARGET,
        "bare_ffmpeg_peak_mb": round(bare_rss_mb, 1),
        "memory": memory,
        "rss_target_mb": RSS_TARGET_MB,
        "ok": ratio_ok and rss_ok,
    }
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.check and not results["ok"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
