"""The ``avtrans`` executor (spec §3.2): transcode the first source to DstObjectKey.

One run: probe the source (through the sandbox) → plan the ffmpeg commands
(``engine.transcode``) → record them → run them with progress and limits
(``engine.runner``) → describe the output file (``outMediainfo``, ``engine.outinfo``) →
upload it with DstAcl and its content type (``worker.outputs``). The callback item is
``{"dstpath": key, "segmentlisttype": "", "outMediainfo": <JSON text>}`` (spec §5.4 b).
Segment mode (``segment_time > 0``, ``engine/segments.py``) never splits: it uploads every
file and the m3u8 list at the key, and its item is ``{"dstpath", "segmentlisttype": "m3u8",
"segmentsinfo": <JSON text>}`` (spec §5.4 c); its files get ``segfile_acl`` (default DstAcl).
``f=hls`` and ``f=dash`` (``worker/packaged.py``) never split either.

A long output may instead be made in parts by several workers (``worker/split.py``, given
to the executor as ``split`` by processes that run tasks): the plan is checked as for a
single pass, then the split transcoder makes the output file, which is described and
uploaded the same way.

Failures (spec §6.2; ``docs/error-codes.md`` lists them for users):

==============================================  ==========================================
source deleted after CreateTask                 2041 (when the job is made, or ffmpeg's
                                                "No such file or directory")
destination bucket deleted, or a failed write   2033, checked before the transcode too
source not media / corrupt                      3150, or FFmpeg's own code for its error
ffmpeg killed by a signal that was not ours     3255
the task's time limit (OPENKVS_TASK_TIMEOUT)    2038
output over OPENKVS_MAX_OUTPUT_MB               2010
ffmpeg over OPENKVS_FFMPEG_MAX_RSS_MB           2002
DelTaskByTaskID while it runs                   2005
a watermark logo that cannot be fetched         2032 (``worker/logos.py``)
a watermark logo that is not an image           3150
==============================================  ==========================================

Each failure of an ffmpeg run carries the end of its stderr as ``log`` (kept for the
operator: ``openkvs task show``), with the sandbox's link replaced by the source's path.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openkvs import metrics
from openkvs.config import Settings
from openkvs.engine.loudnorm import MeasuredLoudness, output_measure, run_measure, shown_loudness
from openkvs.engine.outinfo import describe_output, outinfo_text
from openkvs.engine.probe import positive_seconds, probe
from openkvs.engine.runner import Limits, run_commands
from openkvs.engine.sandbox import SourceInput
from openkvs.engine.segments import (
    LIST_TYPE,
    Segment,
    listed_files,
    m3u8_list,
    plan_segments,
    segments_info,
)
from openkvs.engine.transcode import (
    SourceFacts,
    TranscodePlan,
    command_text,
    facts_from_probe,
    loudness_measure,
    plan_transcode,
)
from openkvs.errors import TaskError
from openkvs.notify.policy import AddressPolicy
from openkvs.presets.avtrans import AvtransOptions, AvtransSpec
from openkvs.presets.codec import load
from openkvs.storage.base import ObjectStorage
from openkvs.worker.composition import composed_source
from openkvs.worker.job import Job, Phase, ffmpeg_limits
from openkvs.worker.logos import LogoFetcher
from openkvs.worker.outputs import OutputFile, require_bucket, upload
from openkvs.worker.packaged import run_packaged

if TYPE_CHECKING:
    from openkvs.worker.split import SplitTranscoder

#: ffprobe reads headers and a few packets; a minute covers slow remote storage.
PROBE_TIMEOUT = 60.0
#: Describing the output may read all its packets (containers without per-stream bit rates).
DESCRIBE_TIMEOUT = 600.0


class AvtransExecutor:
    """``avtrans`` tasks (also the legacy ``avop`` and ``avm3u8`` preset types)."""

    def __init__(
        self,
        settings: Settings,
        storage: ObjectStorage,
        *,
        split: SplitTranscoder | None = None,
    ) -> None:
        self._storage = storage
        self._split = split
        self._threads = settings.ffmpeg_threads
        self._limits = ffmpeg_limits(settings)
        # Logos over http(s) follow the callbacks' address rules (worker/logos.py).
        self._logos = LogoFetcher(AddressPolicy(settings.callback_allow))

    def run(self, job: Job) -> list[dict[str, Any]]:
        if job.task.request.get("first_stage"):  # a preset chain "A|B"
            from openkvs.worker.chain import run_chain

            return run_chain(self, job)
        spec: AvtransSpec = job.spec
        options = load(AvtransOptions, job.options)
        source, destination = job.source, job.destination
        job.report(Phase.TRANSCODING, 0)
        require_bucket(self._storage, destination.bucket)
        found = probe(source.location, min(PROBE_TIMEOUT, job.remaining()), cancel=job.cancel)
        facts = facts_from_probe(found)
        if spec.f in ("hls", "dash"):  # a package of files: worker/packaged.py
            threads, limits = self._threads, self._limits
            return [
                run_packaged(
                    job,
                    spec,
                    options,
                    facts,
                    found=found,
                    logos=self._logos,
                    threads=threads,
                    limits=limits,
                )
            ]
        if spec.segment.segment_time > 0:
            return [self._segments(job, spec, options, facts, found)]
        with composed_source(job, spec, options, facts, found, logos=self._logos) as (
            opened,
            composition,
            facts,
        ):
            measure = None
            if not composition.audio_source:  # (a joined soundtrack is refused at CreateTask)
                measure = loudness_measure(spec, options, facts, input_args=opened.args())
            loudness = _measure_source(job, measure, opened) if measure else None
            plan = plan_transcode(
                spec,
                options,
                facts,
                input_args=opened.args(),
                scratch=str(job.scratch),
                threads=self._threads,
                loudness=loudness,
                composition=composition,
            )
            stitched = None
            # Parts read the source from storage: a chain's stage-1 file (no bucket) is not.
            if self._split is not None and composition.empty and source.bucket:
                stitched = self._split.transcode(job, spec, options, found, facts, opened)
            if stitched is None:
                run_plan(job, plan, opened, self._limits, before=[measure] if measure else [])
            else:
                plan = stitched.plan
        job.check()
        info = describe_output(
            plan.output, timeout=min(DESCRIBE_TIMEOUT, job.remaining()), cancel=job.cancel
        )
        item: dict[str, Any] = {"dstpath": destination.key, "segmentlisttype": ""}
        item["outMediainfo"] = outinfo_text(info)
        if loudness is not None and options.loudnorm is not None:
            command = output_measure(plan.output, options.loudnorm)
            output = run_measure(command, deadline=job.deadline, cancel=job.cancel)
            item["loudness"] = shown_loudness(loudness, output)
        upload(job, [OutputFile(Path(plan.output), destination.key, plan.content_type)])
        if stitched is not None and self._split is not None:
            self._split.discard(stitched.bucket, stitched.keys)
        return [item]

    def produce(self, job: Job) -> Path:
        """Transcode the job's source with its spec and options into its scratch folder and
        return the file, not uploaded: the first stage of a preset chain (worker/chain.py)."""
        spec: AvtransSpec = job.spec
        options = load(AvtransOptions, job.options)
        found = probe(job.source.location, min(PROBE_TIMEOUT, job.remaining()), cancel=job.cancel)
        facts = facts_from_probe(found)
        with composed_source(job, spec, options, facts, found, logos=self._logos) as (
            opened,
            composition,
            facts,
        ):
            plan = plan_transcode(
                spec,
                options,
                facts,
                input_args=opened.args(),
                scratch=str(job.scratch),
                threads=self._threads,
                composition=composition,
            )
            run_plan(job, plan, opened, self._limits)
        job.check()
        return Path(plan.output)

    def _segments(
        self,
        job: Job,
        spec: AvtransSpec,
        options: AvtransOptions,
        facts: SourceFacts,
        found: dict[str, Any],
    ) -> dict[str, Any]:
        """Segment mode (``engine/segments.py``): cut, measure and upload every file, then
        the m3u8 list at DstObjectKey."""
        key = job.destination.key
        with composed_source(job, spec, options, facts, found, logos=self._logos) as (
            opened,
            composition,
            facts,
        ):
            planned = plan_segments(
                spec,
                options,
                facts,
                input_args=opened.args(),
                scratch=str(job.scratch),
                list_key=key,
                threads=self._threads,
                composition=composition,
            )
            run_plan(job, planned.plan, opened, self._limits)
        job.check()
        names = listed_files(Path(planned.plan.output).read_text(encoding="utf-8"))
        if not names:
            raise TaskError(3155, "segment mode wrote no files")
        parts = []
        for name in names:
            path = job.scratch / name
            found = probe(str(path), min(PROBE_TIMEOUT, job.remaining()), cancel=job.cancel)
            seconds = positive_seconds((found.get("format") or {}).get("duration")) or 0.0
            parts.append(Segment(name, seconds, path.stat().st_size))
        listed = job.scratch / (".list" + os.path.splitext(key)[1])
        listed.write_text(m3u8_list(parts), encoding="utf-8")
        files = [
            OutputFile(
                job.scratch / p.name,
                planned.prefix + p.name,
                planned.content_type,
                spec.segment.segfile_acl,  # "" = DstAcl
            )
            for p in parts
        ]
        upload(job, [*files, OutputFile(listed, key, "application/vnd.apple.mpegurl")])
        return {"dstpath": key, "segmentlisttype": LIST_TYPE, "segmentsinfo": segments_info(parts)}


def run_plan(
    job: Job,
    plan: TranscodePlan,
    opened: SourceInput,
    limits: Limits,
    *,
    before: Sequence[Sequence[str]] = (),
) -> None:
    """Record and run ``plan``'s commands on the job's source (opened as ``opened``),
    reporting transcoding progress; a failure names the source by its storage location,
    never by the sandbox link or URL ffmpeg was given. ``before``: commands that already
    ran (the loudness measure), recorded first."""
    location = job.source.location
    job.record_command(command_text(shown([*before, *plan.commands], opened.url, location)))
    started = time.monotonic()
    try:
        run_commands(
            plan.commands,
            duration=plan.duration,
            deadline=job.deadline,
            cancel=job.cancel,
            on_progress=lambda percent: job.report(Phase.TRANSCODING, percent),
            folder=job.scratch,
            limits=limits,
        )
    except TaskError as exc:
        explained = opened.explain(exc)
        explained.log = exc.log.replace(opened.url, location)
        raise explained from exc
    metrics.ffmpeg_speed(job.task.task_type, plan.duration, time.monotonic() - started)


def _measure_source(job: Job, command: Sequence[str], opened: SourceInput) -> MeasuredLoudness:
    """Pass 1 of ExtParam ``loudnorm`` (recorded as the task's command while it runs)."""
    location = job.source.location
    job.record_command(command_text(shown([command], opened.url, location)))
    try:
        return run_measure(command, deadline=job.deadline, cancel=job.cancel)
    except TaskError as exc:
        explained = opened.explain(exc)
        explained.log = exc.log.replace(opened.url, location)
        raise explained from exc


def shown(commands: Sequence[Sequence[str]], link: str, location: str) -> list[list[str]]:
    """``commands`` as a person can run them again: the sandbox's link to the source (a
    temporary name) replaced by the source's own path or URL in storage."""
    return [[location if word == link else word for word in command] for command in commands]
