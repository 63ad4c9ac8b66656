"""Loudness normalisation (EBU R128 / ITU-R BS.1770) with ffmpeg's ``loudnorm``, two passes.

Pass 1 measures the source's audio (:func:`measure_command`: ``loudnorm`` with
``print_format=json`` into ``-f null``); the transcode then applies ``loudnorm`` with the
measured values and ``linear=true`` (:func:`apply_chain`), so the output hits the target
instead of approximating it, and ``aresample`` brings the audio back from loudnorm's
internal 192 kHz to the output's rate. The output is measured the same way afterwards.

Pure command pieces and the parser of the JSON block ffmpeg prints on stderr, plus one
runner (:func:`run_measure`) that keeps that stderr.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openkvs.engine import ffmpeg
from openkvs.errors import TaskError

#: ffmpeg's own ranges and defaults for the targets (``ffmpeg -h filter=loudnorm``).
I_RANGE = (-70.0, -5.0)
TP_RANGE = (-9.0, 0.0)
LRA_RANGE = (1.0, 50.0)


@dataclass(frozen=True)
class LoudnessTarget:
    """ExtParam ``loudnorm``: integrated loudness (LUFS), true peak (dBTP), loudness range (LU)."""

    i: float = -24.0
    tp: float = -2.0
    lra: float = 7.0


@dataclass(frozen=True)
class MeasuredLoudness:
    """What loudnorm measured: integrated loudness, true peak, range, gate threshold and
    the offset to the target (``target_offset``)."""

    i: float
    tp: float
    lra: float
    thresh: float
    offset: float


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _targets(target: LoudnessTarget) -> str:
    return f"I={_num(target.i)}:TP={_num(target.tp)}:LRA={_num(target.lra)}"


def measure_filter(target: LoudnessTarget) -> str:
    return f"loudnorm={_targets(target)}:print_format=json"


def _clamp(value: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, value))


def apply_chain(
    target: LoudnessTarget, measured: MeasuredLoudness, rate: int, *, soxr: bool = False
) -> list[str]:
    """The filters that normalise: ``loudnorm`` with the measured values (clamped to the
    ranges loudnorm accepts; silence measures ``-inf``), then ``aresample`` to ``rate``."""
    m = measured
    loud = (
        f"loudnorm={_targets(target)}"
        f":measured_I={_num(_clamp(m.i, -99, 0))}:measured_TP={_num(_clamp(m.tp, -99, 99))}"
        f":measured_LRA={_num(_clamp(m.lra, 0, 99))}"
        f":measured_thresh={_num(_clamp(m.thresh, -99, 0))}"
        f":offset={_num(_clamp(m.offset, -99, 99))}:linear=true"
    )
    resample = f"aresample={rate}" + (":resampler=soxr" if soxr else "")
    return [loud, resample]


def measure_command(
    head: Sequence[str],
    audio_map: str,
    limit: Sequence[str],
    pre_filters: Sequence[str],
    target: LoudnessTarget,
) -> list[str]:
    """Pass 1: ``head`` (ffmpeg, its options, ``-ss`` and the input) then the audio stream
    ``audio_map`` through ``pre_filters`` (the task's volume) and loudnorm's measure, for
    ``limit`` (``-t``) into nothing."""
    chain = ",".join([*pre_filters, measure_filter(target)])
    return [
        *head, "-nostats", "-map", audio_map, *limit, "-vn", "-sn", "-dn",
        "-af", chain, "-f", "null", "-",
    ]  # fmt: skip


def _value(raw: Any) -> float:
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"not a number: {raw!r}") from None
    return number if not math.isnan(number) else -math.inf


def parse_stats(stderr: str, which: str = "input") -> MeasuredLoudness:
    """The last loudnorm JSON block in ``stderr``: its ``input_*`` (or ``output_*``) values.
    Raises ``ValueError`` when there is none."""
    blocks = re.findall(r"\{[^{}]*\"input_i\"[^{}]*\}", stderr)
    if not blocks:
        raise ValueError("ffmpeg printed no loudnorm statistics")
    data = json.loads(blocks[-1])
    return MeasuredLoudness(
        i=_value(data[f"{which}_i"]),
        tp=_value(data[f"{which}_tp"]),
        lra=_value(data[f"{which}_lra"]),
        thresh=_value(data[f"{which}_thresh"]),
        offset=_value(data.get("target_offset", 0)),
    )


def shown(measured: MeasuredLoudness) -> dict[str, Any]:
    """For GetTaskByTaskID: ``I`` (LUFS), ``TP`` (dBTP), ``LRA`` (LU), ``Thresh`` (LUFS);
    silence (``-inf``) as null."""

    def num(value: float) -> float | None:
        return round(value, 2) if math.isfinite(value) else None

    return {
        "I": num(measured.i),
        "TP": num(measured.tp),
        "LRA": num(measured.lra),
        "Thresh": num(measured.thresh),
    }


def run_measure(
    command: Sequence[str], *, deadline: float, cancel: threading.Event | None = None
) -> MeasuredLoudness:
    """Run a measure command to its end and parse what it printed on stderr; its failure
    is ffmpeg's (:func:`openkvs.engine.ffmpeg.failure`), over ``deadline``
    (``time.monotonic()``) 2038, ``cancel`` 2005."""
    with ffmpeg._popen(command) as proc:
        output = ffmpeg._Output(proc)
        stop: TaskError | None = None
        while output.open and stop is None:
            output.read(max(0.0, min(ffmpeg.POLL_INTERVAL, deadline - time.monotonic())))
            if cancel is not None and cancel.is_set():
                stop = TaskError(2005, "cancelled while measuring the loudness")
            elif time.monotonic() >= deadline:
                stop = TaskError(2038, "the task ran over its time limit measuring the loudness")
        if stop is None and not ffmpeg.wait_exit(proc, max(0.1, deadline - time.monotonic())):
            stop = TaskError(2038, "the task ran over its time limit measuring the loudness")
        if stop is not None:
            ffmpeg._kill(proc)
            proc.communicate()
            raise stop
    stderr = output.err.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise ffmpeg.failure(proc.returncode, stderr)
    try:
        return parse_stats(stderr)
    except (ValueError, KeyError) as exc:
        error = TaskError(3150, f"the loudness measure failed: {exc}")
        error.log = stderr[-4096:]
        raise error from None


def output_measure(path: str, target: LoudnessTarget) -> list[str]:
    """The measure of the output file's first audio stream (what the task shows as
    ``Loudness.Output``)."""
    head = [ffmpeg.FFMPEG, "-hide_banner", "-nostdin", "-i", path]
    return measure_command(head, "0:a:0", [], [], target)


def shown_loudness(source: MeasuredLoudness, output: MeasuredLoudness) -> dict[str, Any]:
    """The result item's ``loudness``: ``{"Input": {...}, "Output": {...}}``."""
    return {"Input": shown(source), "Output": shown(output)}
