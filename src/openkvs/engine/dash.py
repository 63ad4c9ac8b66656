"""DASH outputs (``f=dash``, spec §3.5): the ffmpeg command and the manifest.

Pure. Every representation is one output of a single ffmpeg command (the source is read and
decoded once), each :func:`engine.transcode.plan_transcode`'s arguments for that rendition
with ffmpeg's ``dash`` muxer writing fragmented MP4 segments (``SegmentTemplate`` with a
``SegmentTimeline``) into the package folder:

- video representation ``i``: ``<stem>-v<i>-init.m4s`` and ``<stem>-v<i>-<n>.m4s``
  (``n`` from 1), with a keyframe forced at every multiple of the segment duration
  (``hls_time``, default 10 s) when the video is re-encoded;
- audio representation ``j`` (one per distinct ``AUDIO.mulAb``, else one):
  ``<stem>-a<j>-init.m4s`` and ``<stem>-a<j>-<n>.m4s``.

Each output writes its own small manifest (``.part-<name>.mpd``, never uploaded);
:func:`merge_manifests` joins them into the one ``.mpd`` at ``DstObjectKey``: one
``Period``, the video representations in one ``AdaptationSet`` and the audio ones in their
own.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, replace

from openkvs.engine.graph import EMPTY, Composition
from openkvs.engine.hls import PACKAGE, head_length, stem_of
from openkvs.engine.ladder import Rendition, rendition_spec
from openkvs.engine.transcode import SourceFacts, TranscodePlan, plan_transcode
from openkvs.errors import TaskError
from openkvs.presets.avtrans import AvtransOptions, AvtransSpec

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
_NAMESPACES = {
    "": MPD_NS,
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "xlink": "http://www.w3.org/1999/xlink",
}
_DURATION = re.compile(r"PT(?:(\d+(?:\.\d*)?)H)?(?:(\d+(?:\.\d*)?)M)?(?:(\d+(?:\.\d*)?)S)?")


@dataclass(frozen=True)
class Part:
    """One representation: ``v<i>`` or ``a<j>``, and the manifest its output writes."""

    name: str
    kind: str  # "video" or "audio"
    manifest: str  # file name in the package folder


@dataclass(frozen=True)
class DashPlan:
    """The command (``plan.output`` is the merged manifest, written after it runs), the
    package folder and the representations."""

    plan: TranscodePlan
    folder: str
    parts: tuple[Part, ...]
    manifest: str  # file name of the merged manifest in the package folder


def plan_dash(
    spec: AvtransSpec,
    options: AvtransOptions,
    facts: SourceFacts,
    *,
    input_args: Sequence[str],
    scratch: str,
    manifest_key: str,
    renditions: Sequence[Rendition] = (),
    audio_bitrates: Sequence[int] = (0,),
    threads: int = 0,
    composition: Composition = EMPTY,
) -> DashPlan:
    """The plan of an ``f=dash`` task: ``renditions`` (``engine.ladder.dash_renditions``)
    for ``mulrate=1``, else one representation of the preset's video; ``audio_bitrates``
    the audio representations (0 = the preset's ``ab``). ``composition`` (watermarks,
    several sources: ``engine/graph.py``) only with one video and one audio representation
    (CreateTask refuses it with ``mulrate=1``): each has its own filter graph."""
    if (len(renditions) > 1 or len(audio_bitrates) > 1) and not composition.empty:
        raise ValueError("a composition makes one representation of each kind only")
    folder = os.path.join(scratch, PACKAGE)
    stem = stem_of(manifest_key)
    seconds = spec.segment.hls_time or 10
    video = spec.video.codec if facts.has_video else ""
    audio = spec.audio.codec if facts.has_audio else ""
    if not video and not audio:
        raise TaskError(3155, "the source has none of the streams f=dash is asked to hold")
    jobs: list[tuple[str, str, AvtransSpec]] = []
    if video:
        for index, rendition in enumerate(renditions or [Rendition("v0")]):
            one = rendition_spec(spec, rendition)
            one = replace(one, video=replace(one.video, twopass=False), audio=replace(
                one.audio, codec=""))  # fmt: skip
            jobs.append((f"v{index}", "video", one))
    if audio:
        for index, bitrate in enumerate(audio_bitrates or [0]):
            one = rendition_spec(spec, Rendition(f"a{index}", audio_bitrate=bitrate))
            jobs.append((f"a{index}", "audio", replace(one, video=replace(one.video, codec=""))))
    encode = video not in ("", "copy")
    keyframes = ["-force_key_frames", f"expr:gte(t,n_forced*{seconds})"]
    head: list[str] = []
    tails: list[str] = []
    parts: list[Part] = []
    duration = 0.0
    for name, kind, one in jobs:
        plan = plan_transcode(
            one,
            options,
            facts,
            input_args=input_args,
            scratch=scratch,
            threads=threads,
            composition=composition,
        )
        last = plan.commands[-1]
        at = head_length(last, input_args, composition)
        head = list(last[:at])
        manifest = f".part-{name}.mpd"
        tails += [*last[at:-3], *(keyframes if kind == "video" and encode else [])]
        tails += ["-seg_duration", str(seconds), "-use_template", "1", "-use_timeline", "1"]
        tails += ["-init_seg_name", f"{stem}-{name}-init.m4s"]
        tails += ["-media_seg_name", f"{stem}-{name}-$Number$.m4s"]
        tails += ["-f", "dash", os.path.join(folder, manifest)]
        parts.append(Part(name, kind, manifest))
        duration = plan.duration
    output = os.path.join(folder, stem + ".mpd")
    return DashPlan(
        TranscodePlan(((*head, *tails),), output, duration, "application/dash+xml"),
        folder,
        tuple(parts),
        stem + ".mpd",
    )


def iso_seconds(text: str) -> float:
    """An MPD duration (``PT1H2M3.5S``) in seconds; 0 when it is not one."""
    found = _DURATION.fullmatch(text.strip())
    if not found:
        return 0.0
    hours, minutes, secs = (float(g) if g else 0.0 for g in found.groups())
    return hours * 3600 + minutes * 60 + secs


def _iso(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def _q(tag: str) -> str:
    return f"{{{MPD_NS}}}{tag}"


def merge_manifests(parts: Sequence[tuple[str, str]]) -> str:
    """One manifest of the ``(kind, manifest text)`` of each representation's output (each
    with one Period, one AdaptationSet, one Representation): the first one's MPD with one
    AdaptationSet of every video representation (ids ``0``..) and one of every audio one."""
    for prefix, uri in _NAMESPACES.items():
        ET.register_namespace(prefix, uri)
    trees = [(kind, ET.fromstring(text)) for kind, text in parts]
    if not trees:
        raise TaskError(2001, "no DASH representation was written")
    base = trees[0][1]
    period = base.find(_q("Period"))
    if period is None:
        raise TaskError(2001, "the DASH manifest has no Period")
    found_sets = [root.find(f"{_q('Period')}/{_q('AdaptationSet')}") for _kind, root in trees]
    for old in period.findall(_q("AdaptationSet")):
        period.remove(old)
    sets: dict[str, ET.Element] = {}
    longest = buffer = segment = 0.0
    for number, ((kind, root), found) in enumerate(zip(trees, found_sets, strict=True)):
        longest = max(longest, iso_seconds(root.get("mediaPresentationDuration", "")))
        buffer = max(buffer, iso_seconds(root.get("minBufferTime", "")))
        segment = max(segment, iso_seconds(root.get("maxSegmentDuration", "")))
        rep = found.find(_q("Representation")) if found is not None else None
        if found is None or rep is None:
            raise TaskError(2001, f"a DASH {kind} output wrote no Representation")
        if kind not in sets:
            adaptation = ET.Element(found.tag, dict(found.attrib))
            adaptation.set("id", str(len(sets)))
            sets[kind] = adaptation
            period.append(adaptation)
        adaptation = sets[kind]
        rep.set("id", str(number))
        if kind == "video" and found.get("frameRate"):
            rep.set("frameRate", found.get("frameRate", ""))
        adaptation.append(rep)
    video = sets.get("video")
    if video is not None:
        reps = video.findall(_q("Representation"))
        rates = {rep.get("frameRate") for rep in reps}
        if len(rates) == 1:
            for rep in reps:
                rep.attrib.pop("frameRate", None)
        else:
            video.attrib.pop("frameRate", None)
        widths = [int(rep.get("width", "0")) for rep in reps]
        heights = [int(rep.get("height", "0")) for rep in reps]
        video.set("maxWidth", str(max(widths)))
        video.set("maxHeight", str(max(heights)))
        if len(reps) > 1:
            video.attrib.pop("bitstreamSwitching", None)
            video.attrib.pop("par", None)
    for key, value in (
        ("mediaPresentationDuration", longest),
        ("minBufferTime", buffer),
        ("maxSegmentDuration", segment),
    ):
        if value:
            base.set(key, _iso(value))
    ET.indent(base, space="\t")
    body = ET.tostring(base, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"
