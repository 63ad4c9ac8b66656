"""API benchmark: signed requests per second and latency, beside a bare Starlette endpoint.

    .venv/bin/python bench/api.py [--seconds 10] [--connections 32] [--api-processes N]
                                  [--check] [--json F]

Needs ``wrk`` (Debian: ``apt-get install wrk``), the load generator: it is written in C, so
it leaves the CPU to the server, which a Python client on the same cores would not.

1. Starts ``openkvs serve`` (SQLite, default settings except ``OPENKVS_API_PROCESSES``:
   ``--api-processes``, default one per core) in a temporary data folder, creates a key, a
   bucket with a 1-second mp3, an ``avinfo`` preset and a pipeline ``bench`` that is
   paused, so that CreateTask only queues (nothing runs), and 50 queued tasks.
2. Signs each request once in query form (``presign_url``, valid for the whole run): the
   server verifies the signature of every request as it does for any SDK call, and wrk
   replays the same signed request over its connections.
3. Runs wrk (``-t1``, ``--connections`` keep-alive connections, ``--seconds`` each, after
   a 2-second warm-up) against, in this order: a bare Starlette endpoint served by the same
   uvicorn configuration as openkvs (``openkvs.api.server.make_server``) in a process of its
   own; ``GetTaskByTaskID``; ``GetTaskList`` (``Limit=10``); ``CreateTask`` (POSTed JSON,
   into the paused pipeline). Every answer is checked by wrk (HTTP 200 and ``"ErrNum":0``);
   after the CreateTask run, the number of queued tasks is compared with wrk's count.
4. Prints requests/s, p50 and p99 for each, the ratio to the bare endpoint, the CPU time
   the server's processes used per request (user + system, from /proc: unlike the rates it
   hardly changes when other work shares the machine), and the load average before and
   after (other work on the machine lowers every rate).

Targets (2 cores): >= 3,000 signed reads/s and >= 1,500 CreateTask/s, p99 <= 20 ms.
``--check`` makes the exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.kvs_client import close_kvs_client, make_kvs_client  # noqa: E402
from tests.support.media import make_audio  # noqa: E402
from tests.support.server import ServerProcess, child_env, cli, create_keys, free_port  # noqa: E402

from openkvs.api.sigv4 import presign_url  # noqa: E402

READS_TARGET = 3000.0
CREATES_TARGET = 1500.0
P99_TARGET_MS = 20.0
BUCKET = "bench"
PIPELINE = "bench"
PRESET = "bench_info"
REGION = "cn-beijing-6"
QUEUED_BEFORE = 50
WARMUP_SECONDS = 2

# Per wrk thread: count answers that are not HTTP 200 with ErrNum 0; at the end, print the
# sums and wrk's own latency percentiles (microseconds) in a form that is easy to parse.
_LUA = r"""
wrk.method = "%(method)s"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; sample = "" end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"ErrNum":0', 1, true) then
    bad = bad + 1
    if sample == "" then sample = status .. " " .. string.sub(body, 1, 300) end
  end
end
function done(summary, latency, requests)
  local total, sample = 0, ""
  for _, t in ipairs(threads) do
    total = total + t:get("bad")
    if sample == "" then sample = t:get("sample") end
  end
  local e = summary.errors
  io.write(string.format("BENCH requests=%%d duration_us=%%d bad=%%d socket_errors=%%d\n",
    summary.requests, summary.duration, total, e.connect + e.read + e.write + e.timeout))
  io.write(string.format("BENCH p50_us=%%d p99_us=%%d\n",
    latency:percentile(50), latency:percentile(99)))
  if sample ~= "" then io.write("BENCH sample=" .. sample .. "\n") end
end
"""


@dataclass(frozen=True)
class Target:
    name: str
    method: str
    url: str
    body: bytes = b""


@dataclass(frozen=True)
class Figures:
    name: str
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    bad: int
    socket_errors: int
    cpu_ms: float = 0.0  # CPU time of the server's processes per request


def process_tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root`` and its direct children."""
    pids = [root]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == root:
                pids.append(int(entry))
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _lua_string(data: bytes) -> str:
    if not data:
        return "nil"
    return "'" + data.decode().replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_wrk(
    target: Target, seconds: float, connections: int, tmp: Path, server_pid: int
) -> Figures:
    script = tmp / f"{target.name}.lua"
    script.write_text(_LUA % {"method": target.method, "body": _lua_string(target.body)})
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
        "-s", str(script), target.url,
    ]  # fmt: skip
    cpu_before = process_tree_cpu(server_pid)
    out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=seconds + 60)
    cpu = process_tree_cpu(server_pid) - cpu_before
    facts = dict(
        re.findall(r"(\w+)=(\d+)", " ".join(re.findall(r"^BENCH (.*)$", out.stdout, re.M)))
    )
    if out.returncode != 0 or "requests" not in facts:
        raise SystemExit(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    sample = re.search(r"^BENCH sample=(.*)$", out.stdout, re.M)
    if sample:
        print(f"  {target.name}: a refused answer: {sample.group(1)}")
    requests, duration = int(facts["requests"]), int(facts["duration_us"]) / 1e6
    return Figures(
        name=target.name,
        requests=requests,
        per_second=requests / duration,
        p50_ms=int(facts["p50_us"]) / 1000,
        p99_ms=int(facts["p99_us"]) / 1000,
        bad=int(facts["bad"]),
        socket_errors=int(facts["socket_errors"]),
        cpu_ms=1000 * cpu / max(requests, 1),
    )


# --- the bare reference -----------------------------------------------------------------


def serve_bare(port: int) -> None:
    """The reference: one Starlette route answering a small JSON envelope, run by the same
    uvicorn configuration as ``openkvs serve``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from openkvs.api.server import make_server

    async def root(request: Request) -> Response:
        await request.body()
        body = json.dumps(
            {"ErrNum": 0, "ErrMsg": "success", "TaskID": "0" * 40}, separators=(",", ":")
        )
        return Response(body.encode(), media_type="application/json; charset=UTF-8")

    app = Starlette(routes=[Route("/", root, methods=["GET", "POST"])])
    make_server(app, "127.0.0.1", port).run()


def _wait_http(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.05)
        finally:
            conn.close()
    raise SystemExit(f"the bare server on port {port} did not answer")


# --- the openkvs side -------------------------------------------------------------------


def _check(reply: dict[str, Any], what: str) -> dict[str, Any]:
    if reply.get("ErrNum") != 0:
        raise SystemExit(f"{what} refused: {reply}")
    return reply


def prepare(data_dir: Path, media: Path) -> tuple[str, str, str]:
    """Keys, bucket, source object; returns (access key, secret, source path)."""
    access_key, secret_key = create_keys(data_dir)
    for step in (["bucket", "create", BUCKET], ["cp", str(media), f"/{BUCKET}/in/a.mp3"]):
        result = cli(data_dir, *step)
        if result.returncode != 0:
            raise SystemExit(f"openkvs {' '.join(step)} failed: {result.stderr}")
    return access_key, secret_key, f"/{BUCKET}/in/a.mp3"


def create_body(source: str) -> bytes:
    body = {
        "Preset": PRESET,
        "SrcInfo": [{"path": source}],
        "DstBucket": BUCKET,
        "Pipeline": PIPELINE,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def signed(url: str, method: str, query: dict[str, str], keys: tuple[str, str], valid: int,
           body: bytes = b"") -> str:  # fmt: skip
    full = f"{url}/?{urlencode({'Version': '2017-01-01', **query})}"
    now = datetime.now(UTC)
    return presign_url(method, full, keys[0], keys[1], REGION, now=now, expires=valid, body=body)


def _once(target: Target) -> dict[str, Any]:
    """Send the signed request once with http.client and return the decoded answer."""
    rest = target.url.split("://", 1)[1]
    host, _, path = rest.partition("/")
    conn = http.client.HTTPConnection(host, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if target.body else {}
        conn.request(target.method, "/" + path, body=target.body or None, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
    finally:
        conn.close()
    try:
        return dict(json.loads(data))
    except ValueError:
        return {"status": answer.status, "body": data[:300]}


def _queued(client: Any) -> int:
    reply = _check(client.query_pipeline(PipelineName=PIPELINE), "QueryPipeline")
    return int(reply["TaskStatus"]["Pending"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per target (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument(
        "--api-processes",
        type=int,
        default=os.cpu_count() or 1,
        help="OPENKVS_API_PROCESSES of the server (default: one per core)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("bench/api.py needs wrk: apt-get install wrk")
    valid = int(4 * (args.seconds + WARMUP_SECONDS) + 600)
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="openkvs-bench-") as tmp_name:
        tmp = Path(tmp_name)
        data_dir = tmp / "data"
        data_dir.mkdir()
        media = make_audio(tmp, "a", fmt="mp3", seconds=1)
        access_key, secret_key, source = prepare(data_dir, media)
        keys = (access_key, secret_key)

        bare_port = free_port()
        bare = subprocess.Popen(
            [sys.executable, __file__, "--serve-bare", str(bare_port)],
            env=child_env(tmp),
            stdin=subprocess.DEVNULL,
        )
        try:
            _wait_http(bare_port)
            env = {"OPENKVS_API_PROCESSES": str(args.api_processes)}
            with ServerProcess(data_dir, env) as server:
                results = _measure(server, keys, source, (bare_port, bare.pid), args, valid, tmp)
        finally:
            bare.terminate()
            bare.wait(15)

    by_name = {f.name: f for f in results}
    reference = by_name["bare Starlette"].per_second
    load_after = os.getloadavg()
    print(
        f"\n{os.cpu_count()} cores; {args.api_processes} API processes;"
        f" wrk -t1 -c{args.connections}, {args.seconds:g} s each;"
        f" load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n"
    )
    print(
        f"{'target':<18} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs bare':>8}"
        f" {'CPU ms/req':>10}  target"
    )
    ok = True
    for f in results:
        goal = ""
        if f.name in ("GetTaskByTaskID", "GetTaskList", "CreateTask"):
            rate = CREATES_TARGET if f.name == "CreateTask" else READS_TARGET
            met = f.per_second >= rate and f.p99_ms <= P99_TARGET_MS and not f.bad
            ok = ok and met
            goal = f">= {rate:,.0f}/s, p99 <= {P99_TARGET_MS:g} ms  {'OK' if met else 'MISSED'}"
        print(
            f"{f.name:<18} {f.per_second:>8,.0f} {f.p50_ms:>8.1f} {f.p99_ms:>8.1f}"
            f" {f.per_second / reference:>8.2f} {f.cpu_ms:>10.2f}  {goal}"
        )
        if f.bad or f.socket_errors:
            print(f"  ! {f.bad} refused answers, {f.socket_errors} socket errors")
    if args.json:
        payload = {
            "cores": os.cpu_count(),
            "connections": args.connections,
            "api_processes": args.api_processes,
            "load_average": [load_before[0], load_after[0]],
            "seconds": args.seconds,
            "results": [asdict(f) for f in results],
            "ok": ok,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if args.check and not ok else 0


def _measure(
    server: ServerProcess,
    keys: tuple[str, str],
    source: str,
    bare: tuple[int, int],
    args: argparse.Namespace,
    valid: int,
    tmp: Path,
) -> list[Figures]:
    client = make_kvs_client(server.url, *keys)
    try:
        _check(client.preset(Preset=PRESET, PresetType="avinfo", Param={}), "Preset")
        _check(client.update_pipeline(PipelineName=PIPELINE, State="Paused"), "UpdatePipeline")
        body = create_body(source)
        task_ids = [
            _check(
                client.create_task(Preset=PRESET, SrcInfo=[{"path": source}],
                                   DstBucket=BUCKET, Pipeline=PIPELINE),
                "CreateTask",
            )["TaskID"]
            for _ in range(QUEUED_BEFORE)
        ]  # fmt: skip
        url = server.url
        targets = [
            Target("bare Starlette", "GET", f"http://127.0.0.1:{bare[0]}/"),
            Target(
                "GetTaskByTaskID",
                "GET",
                signed(
                    url, "GET", {"Action": "GetTaskByTaskID", "TaskID": task_ids[0]}, keys, valid
                ),
            ),
            Target(
                "GetTaskList",
                "GET",
                signed(url, "GET", {"Action": "GetTaskList", "Limit": "10"}, keys, valid),
            ),
            Target(
                "CreateTask",
                "POST",
                signed(url, "POST", {"Action": "CreateTask"}, keys, valid, body),
                body,
            ),
        ]
        for target in targets[1:]:
            _check(_once(target), f"{target.name} (signed once)")
        results = []
        for target in targets:
            pid = bare[1] if target.name == "bare Starlette" else server.pid
            run_wrk(target, WARMUP_SECONDS, args.connections, tmp, pid)
            before = _queued(client) if target.name == "CreateTask" else 0
            figures = run_wrk(target, args.seconds, args.connections, tmp, pid)
            print(
                f"  {target.name}: {figures.per_second:,.0f}/s  p50 {figures.p50_ms:.1f} ms"
                f"  p99 {figures.p99_ms:.1f} ms  server CPU {figures.cpu_ms:.2f} ms/request",
                flush=True,
            )
            if target.name == "CreateTask":
                queued = _queued(client) - before
                print(f"  CreateTask: {queued} tasks queued, wrk counted {figures.requests}")
            results.append(figures)
        return results
    finally:
        close_kvs_client(client)


if __name__ == "__main__":
    sys.exit(main())
