"""Scale-out benchmark: one long transcode split across 1, 2 and 3 worker processes, the
throughput of short avinfo tasks with 1 and 3, and the quality of split encodes.

    .venv/bin/python bench/scale.py [--seconds 180] [--size 640x360] [--workers 1,2,3]
                                    [--avinfo 200] [--runs 3]
                                    [--only transcode|avinfo|quality] [--json F]

1. **transcode**: a ``--seconds`` lavfi source (testsrc2 ``--size`` 25 fps, a keyframe every
   2 s, a tone; made once in ``$OPENKVS_BENCH_CACHE`` or ``~/.cache/openkvs-bench``). For each
   N of ``--workers``: a fresh data folder, ``openkvs serve`` with one embedded worker and
   N−1 ``openkvs worker --concurrency 1`` processes, every one with
   ``OPENKVS_FFMPEG_THREADS=1`` (one core per ffmpeg: N processes use N cores, so the
   figures show the scaling of the work, not ffmpeg's own threads), splitting on
   (``OPENKVS_SPLIT_MIN_SECONDS=60``, ``OPENKVS_SPLIT_CHUNK_SECONDS=30``: 6 parts). The
   preset is ``{"f": "mp4", "VIDEO": {"preset": "veryfast"}, "AUDIO": {"ab": "64k"}}``
   (x264's default CRF). Timed: CreateTask until GetTaskByTaskID (polled every 50 ms) says
   ``succ``. Also the same task with splitting off on one process (the single pass), for
   the cost of splitting itself. ``--runs`` rounds (each round runs every configuration
   once, so that other work on the machine hits them alike); medians, and speedup =
   median with 1 process / median with N.
2. **avinfo**: ``--avinfo`` avinfo tasks of a 2-second clip, queued while the pipeline is
   paused, then released at once; timed until GetTaskList counts them all ``succ``, with
   1 and 3 processes (``serve`` with one worker, plus 0 or 2 ``openkvs worker``).
3. **quality**: rate control of split encodes, in this process through the engine's own
   commands (``engine.split``, the commands the parts and the stitch run): a source whose
   content changes (60 s testsrc2, 60 s mandelbrot, 60 s life, 640x360, nearly lossless)
   encoded with x264 veryfast as a single pass and in 30-second chunks, for each rate
   control: default CRF, ``crf`` 23 capped by ``vb`` 800k, ``vb`` 800k (average bit rate)
   and ``vb`` 800k in two passes. Prints the PSNR against the source per chunk and over
   the whole file, each chunk's bit rate, and the PSNR of the second before and after each
   join.

Prints ``nproc`` with the figures. Asserts nothing about time; not run by the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on the path, where bench/queue.py would hide
# the standard library's queue module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.fleet import WorkerProcess  # noqa: E402
from tests.support.kvs_client import close_kvs_client, make_kvs_client  # noqa: E402
from tests.support.server import ServerProcess, cli, create_keys  # noqa: E402

from openkvs.engine import split  # noqa: E402
from openkvs.engine.probe import probe  # noqa: E402
from openkvs.engine.transcode import facts_from_probe, plan_transcode  # noqa: E402
from openkvs.presets.avtrans import AvtransOptions, parse  # noqa: E402

BUCKET = "bench"
FPS = 25
BASE_ENV = {
    "OPENKVS_WORKERS": "1",
    "OPENKVS_FFMPEG_THREADS": "1",
    "OPENKVS_POLL_SECONDS": "0.2",
    "OPENKVS_SPLIT_MIN_SECONDS": "60",
    "OPENKVS_SPLIT_CHUNK_SECONDS": "30",
}
PRESET = {"f": "mp4", "VIDEO": {"preset": "veryfast"}, "AUDIO": {"ab": "64k"}}
RATE_CONTROLS = {
    "default CRF (23)": {},
    "crf 23, vb 800k cap": {"crf": 23, "vb": "800k"},
    "vb 800k (ABR)": {"vb": "800k"},
    "vb 800k, two passes": {"vb": "800k", "twopass": 1},
}


def bench_cache() -> Path:
    configured = os.environ.get("OPENKVS_BENCH_CACHE")
    root = Path(configured) if configured else Path.home() / ".cache" / "openkvs-bench"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _generate(name: str, args: list[str]) -> Path:
    target = bench_cache() / name
    if not target.exists():
        partial = target.with_name(target.name + ".part.mp4")
        print(f"generating {target} (once) ...", flush=True)
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args, str(partial)], check=True)
        partial.rename(target)
    return target


def long_source(seconds: int, size: str) -> Path:
    return _generate(
        f"scale-{size}-{seconds}s-gop50.mp4",
        [
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "50",
            "-keyint_min", "50", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "64k",
        ],
    )  # fmt: skip


def varied_source() -> Path:
    """180 s of 640x360 whose content changes every minute, nearly lossless (qp 10)."""
    return _generate(
        "scale-varied-640x360-180s.mp4",
        [
            "-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=60",
            "-f", "lavfi", "-i", "mandelbrot=s=640x360:r=25,trim=duration=60",
            "-f", "lavfi", "-i", "life=s=640x360:r=25:mold=10:ratio=0.5:"
            "death_color=#204060:life_color=#c0e040,trim=duration=60",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=180",
            "-filter_complex", "[0:v][1:v][2:v]concat=n=3:v=1:a=0,format=yuv420p[v]",
            "-map", "[v]", "-map", "3:a", "-c:v", "libx264", "-preset", "ultrafast",
            "-qp", "10", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
            "-c:a", "aac", "-b:a", "64k",
        ],
    )  # fmt: skip


def short_source() -> Path:
    return _generate(
        "scale-avinfo-2s.mp4",
        [
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
            "-f", "lavfi", "-i", "sine=sample_rate=44100:duration=2",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
        ],
    )  # fmt: skip


@contextlib.contextmanager
def deployment(env: dict[str, str], processes: int, source: Path) -> Iterator[tuple[Any, str]]:
    """In a new data folder, ``serve`` (one worker) + ``processes``−1 workers; the SDK
    client and the source's path."""
    with tempfile.TemporaryDirectory(prefix="openkvs-scale-") as tmp:
        yield from _deployed(Path(tmp), env, processes, source)


def _deployed(
    data_dir: Path, env: dict[str, str], processes: int, source: Path
) -> Iterator[tuple[Any, str]]:
    access_key, secret_key = create_keys(data_dir, env=env)
    assert cli(data_dir, "bucket", "create", BUCKET, env=env).returncode == 0
    key = f"in/{source.name}"
    run = cli(data_dir, "cp", str(source), f"/{BUCKET}/{key}", env=env)
    assert run.returncode == 0, run.stderr
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(ServerProcess(data_dir, env))
        for n in range(processes - 1):
            stack.enter_context(WorkerProcess(data_dir, env, "--concurrency", "1", name=f"w{n}"))
        client = make_kvs_client(server.url, access_key, secret_key)
        stack.callback(close_kvs_client, client)
        yield client, f"/{BUCKET}/{key}"


def _ok(reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("ErrNum", 0) != 0:
        raise RuntimeError(f"request failed: {reply}")
    return reply


def timed_transcode(source: Path, processes: int, env: dict[str, str]) -> dict[str, Any]:
    with deployment(env, processes, source) as (client, src):
        _ok(client.preset(Preset="long", PresetType="avtrans", Param=PRESET))
        started = time.monotonic()
        task_id = _ok(
            client.create_task(
                Preset="long", SrcInfo=[{"path": src}], DstBucket=BUCKET, DstObjectKey="o.mp4"
            )
        )["TaskID"]
        while True:
            info = client.get_task_by_task_id(TaskID=task_id)["TaskInfo"]
            if info["TaskStatus"] in ("succ", "fail"):
                break
            time.sleep(0.05)
        seconds = time.monotonic() - started
        if info["TaskStatus"] != "succ":
            raise RuntimeError(f"transcode failed: {info}")
        return {"seconds": round(seconds, 2), "parts": len(info.get("Parts") or [])}


def timed_avinfo(count: int, processes: int) -> dict[str, Any]:
    env = {**BASE_ENV, "OPENKVS_SPLIT_MIN_SECONDS": "0"}
    with deployment(env, processes, short_source()) as (client, src):
        _ok(client.preset(Preset="info", PresetType="avinfo", Param={}))
        _ok(client.update_pipeline(PipelineName="usual", State="Paused"))
        for _ in range(count):
            _ok(client.create_task(Preset="info", SrcInfo=[{"path": src}]))
        started = time.monotonic()
        _ok(client.update_pipeline(PipelineName="usual", State="Active"))
        while True:
            done = client.get_task_list(TaskStatus="succ", Limit=1)["Total"]
            if done >= count:
                break
            time.sleep(0.05)
        seconds = time.monotonic() - started
        return {"seconds": round(seconds, 2), "tasks_per_second": round(count / seconds, 1)}


# -- quality ------------------------------------------------------------------------------


def _frame_mse(output: Path, source: Path) -> list[float]:
    out = subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-nostdin", "-i", str(output), "-i", str(source),
            "-lavfi", "[0:v][1:v]psnr=stats_file=-", "-f", "null", "-",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [
        float(line.split("mse_avg:")[1].split()[0]) for line in out.splitlines() if "mse_" in line
    ]


def _psnr(mse: list[float]) -> float:
    mean = sum(mse) / len(mse)
    return round(10 * math.log10(255**2 / mean), 2) if mean else 99.0


def _kbps(output: Path, start: float, end: float) -> int:
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
            "packet=pts_time,size", "-of", "csv=p=0", str(output),
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    bits = sum(
        8 * int(size)
        for pts, size in (line.split(",")[:2] for line in out.split())
        if start <= float(pts) < end
    )
    return round(bits / (end - start) / 1000)


def split_quality(source: Path, video: dict[str, Any], chunk_seconds: float) -> dict[str, Any]:
    """A single pass and a split encode of ``source`` (x264 veryfast, ``video`` keys), by
    the engine's commands, compared per chunk and at each join."""
    spec = parse({"f": "mp4", "VIDEO": {"preset": "veryfast", **video}, "AUDIO": {"ab": "64k"}})
    options = AvtransOptions()
    found = probe(str(source))
    facts = facts_from_probe(found)
    inputs = ["-i", str(source)]
    with tempfile.TemporaryDirectory(prefix="openkvs-quality-") as tmp:
        work = Path(tmp)
        single = plan_transcode(spec, options, facts, input_args=inputs, scratch=tmp, threads=2)
        for command in single.commands:
            subprocess.run(command, check=True, capture_output=True, cwd=tmp)
        start, length, total = split.clip_window(spec, options, facts)
        probe_cmd = split.keyframe_probe(
            inputs, facts, 0.0, split.targets(start, total, chunk_seconds)
        )
        keys = split.keyframe_offsets(json.loads(subprocess.check_output(probe_cmd)))
        chunks = split.plan_chunks(
            start, length, total, keys, chunk_seconds,
            fps=split.output_fps(spec, facts), constant=split.constant_rate(spec),
        )  # fmt: skip
        names = []
        for chunk in chunks:
            folder = work / "stitch" / f"part-{chunk.index:04d}"
            folder.mkdir(parents=True)
            part = split.part_plan(
                spec, options, facts, chunk, input_args=inputs, scratch=str(folder), threads=2
            )
            for command in part.commands:
                subprocess.run(command, check=True, capture_output=True, cwd=folder)
            names.append(f"part-{chunk.index:04d}/output.mp4")
        concat = work / "stitch" / split.CONCAT_NAME
        concat.write_text(split.concat_list(chunks, names))
        stitch = split.stitch_plan(
            spec, options, facts, concat=str(concat), input_args=inputs,
            scratch=str(work / "stitch"), threads=2,
        )  # fmt: skip
        subprocess.run(stitch.commands[0], check=True, capture_output=True)
        one, parts = Path(single.output), Path(stitch.output)
        mse_one, mse_parts = _frame_mse(one, source), _frame_mse(parts, source)
        edges = [c.place / 1e6 for c in chunks] + [total / 1e6]
        rows = []
        for n in range(len(chunks)):
            lo, hi = round(edges[n] * FPS), round(edges[n + 1] * FPS)
            rows.append(
                {
                    "chunk": n,
                    "psnr_single": _psnr(mse_one[lo:hi]),
                    "psnr_split": _psnr(mse_parts[lo:hi]),
                    "kbps_single": _kbps(one, edges[n], edges[n + 1]),
                    "kbps_split": _kbps(parts, edges[n], edges[n + 1]),
                }
            )
        joins = []
        for at in edges[1:-1]:
            j = round(at * FPS)
            joins.append(
                {
                    "at": at,
                    "single_before_after": [
                        _psnr(mse_one[j - FPS : j]),
                        _psnr(mse_one[j : j + FPS]),
                    ],
                    "split_before_after": [
                        _psnr(mse_parts[j - FPS : j]),
                        _psnr(mse_parts[j : j + FPS]),
                    ],
                }
            )
        return {
            "psnr": {"single": _psnr(mse_one), "split": _psnr(mse_parts)},
            "bytes": {"single": one.stat().st_size, "split": parts.stat().st_size},
            "chunks": rows,
            "joins": joins,
        }


# -- report -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=180)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--avinfo", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3, help="rounds of each measurement")
    parser.add_argument("--only", choices=("transcode", "avinfo", "quality"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    results: dict[str, Any] = {"nproc": os.cpu_count()}
    print(f"nproc: {os.cpu_count()}", flush=True)
    if args.only in (None, "transcode"):
        source = long_source(args.seconds, args.size)
        off = {**BASE_ENV, "OPENKVS_SPLIT_MIN_SECONDS": "0"}
        times: dict[str, list[float]] = {}
        for _ in range(args.runs):  # rounds, so that a burst of other work hits all alike
            times.setdefault("single", []).append(timed_transcode(source, 1, off)["seconds"])
            for n in counts:
                times.setdefault(str(n), []).append(timed_transcode(source, n, BASE_ENV)["seconds"])
            print(f"transcode {args.seconds} s {args.size}, seconds so far: {times}", flush=True)
        medians = {name: statistics.median(values) for name, values in times.items()}
        one = medians[str(counts[0])] * counts[0]
        results["transcode"] = {
            "seconds": times,
            "median": medians,
            "speedup": {n: round(one / medians[str(n)], 2) for n in counts},
        }
        print(f"transcode medians: {medians}; speedup: {results['transcode']['speedup']}")
    if args.only in (None, "avinfo"):
        rates: dict[int, list[float]] = {1: [], 3: []}
        for _ in range(args.runs):
            for n in rates:
                rates[n].append(timed_avinfo(args.avinfo, n)["tasks_per_second"])
            print(f"avinfo x{args.avinfo}, tasks/s so far: {rates}", flush=True)
        results["avinfo"] = {
            "tasks_per_second": rates,
            "median": {n: statistics.median(v) for n, v in rates.items()},
        }
        print(f"avinfo medians (tasks/s): {results['avinfo']['median']}")
    if args.only in (None, "quality"):
        source = varied_source()
        results["quality"] = {}
        for name, video in RATE_CONTROLS.items():
            found = split_quality(source, video, 30)
            results["quality"][name] = found
            print(f"quality, {name}: {json.dumps(found)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
