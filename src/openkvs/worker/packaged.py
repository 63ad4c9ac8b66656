"""HLS and DASH outputs of an ``avtrans`` task (``f=hls``, ``f=dash``; spec §3.5): run the
plan of ``engine/hls.py`` or ``engine/dash.py``, measure what was written, write the
playlists or manifest, and upload the package beside ``DstObjectKey``.

Every file ffmpeg wrote in the package folder goes to ``<folder of DstObjectKey>/<name>``:
segments (and fMP4 init files) with ``segfile_acl`` (default the task's DstAcl), playlists
and the manifest with DstAcl, an HLS key with its own ACL (``hlsKey.acl``, default
``private``); the top playlist or manifest last, so a player that finds it finds every file
it names. Never split (``worker/split.py``): a package is many files.

The callback item is ``{"dstpath": DstObjectKey, "segmentlisttype": "", "outMediainfo":
<JSON text>}``: the ``outMediainfo`` of the top rendition as ffprobe reads its playlist (HLS)
or of the manifest's first (largest) video and first audio representation (DASH), with
``format.size`` the bytes of that rendition's files and ``format_name`` ``hls`` or ``dash``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openkvs.engine import ffmpeg
from openkvs.engine.dash import DashPlan, merge_manifests, plan_dash
from openkvs.engine.hls import (
    KEY_INFO,
    HlsPlan,
    Subtitles,
    Variant,
    bit_rates,
    codec_tag,
    key_info,
    master_playlist,
    plan_hls,
    playlist_entries,
    stem_of,
)
from openkvs.engine.hls_subtitles import (
    SubtitleMedia,
    media_header,
    mpegts_of,
    parse_cues,
    segment_names,
    segment_texts,
    subtitle_playlist,
)
from openkvs.engine.ladder import dash_audio_bitrates, dash_renditions, hls_ladder
from openkvs.engine.outinfo import out_mediainfo, outinfo_text
from openkvs.engine.runner import Limits
from openkvs.engine.transcode import SourceFacts
from openkvs.errors import TaskError
from openkvs.presets.avtrans import AvtransOptions, AvtransSpec
from openkvs.worker.composition import composed_source
from openkvs.worker.job import Job
from openkvs.worker.logos import LogoFetcher
from openkvs.worker.outputs import OutputFile, upload

#: Reading a playlist or a manifest and its packets (the files are local).
PROBE_TIMEOUT = 600.0
#: ffprobe's packet list of a long output (about 25 bytes a packet).
MAX_PACKETS_OUTPUT = 64 << 20
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"


def _rate(value: Any) -> float:
    """ffprobe's ``"30000/1001"`` as a number (0 when absent or undefined)."""
    num, _, den = str(value or "0").partition("/")
    try:
        return float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0


def run_packaged(
    job: Job,
    spec: AvtransSpec,
    options: AvtransOptions,
    facts: SourceFacts,
    *,
    found: dict[str, Any],
    logos: LogoFetcher | None = None,
    threads: int,
    limits: Limits,
) -> dict[str, Any]:
    """Make, describe and upload an ``f=hls`` or ``f=dash`` output; its callback item.
    ``found``: the first source's ffprobe JSON; with ``logos`` watermarks are fetched (the
    composition of ``worker/composition.py``: one rendition only)."""
    from openkvs.worker.avtrans import run_plan  # avtrans dispatches here

    key = job.destination.key
    scratch = str(job.scratch)
    planned: HlsPlan | DashPlan
    with composed_source(job, spec, options, facts, found, logos=logos) as (
        opened,
        composition,
        facts,
    ):
        if spec.f == "hls":
            planned = plan_hls(
                spec,
                options,
                facts,
                input_args=opened.args(),
                scratch=scratch,
                playlist_key=key,
                renditions=hls_ladder(facts) if options.mul_hls_rate else (),
                key=options.hls_key,
                threads=threads,
                composition=composition,
            )
        else:
            mul = spec.mul if spec.mul.enabled else None
            planned = plan_dash(
                spec,
                options,
                facts,
                input_args=opened.args(),
                scratch=scratch,
                manifest_key=key,
                renditions=dash_renditions(mul) if mul else (),
                audio_bitrates=dash_audio_bitrates(mul) if mul else (0,),
                threads=threads,
                composition=composition,
            )
        folder = Path(planned.folder)
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(planned, HlsPlan) and options.hls_key is not None:
            key_path = folder / planned.key_name
            key_path.write_bytes(bytes.fromhex(options.hls_key.key))
            text = key_info(options.hls_key, str(key_path), stem_of(key))
            (job.scratch / KEY_INFO).write_text(text, encoding="utf-8")
        run_plan(job, planned.plan, opened, limits)
    job.check()
    if isinstance(planned, HlsPlan):
        top, info = _finish_hls(job, planned)
    else:
        top, info = _finish_dash(job, planned)
    _upload(job, spec, options, folder, top)
    return {"dstpath": key, "segmentlisttype": "", "outMediainfo": outinfo_text(info)}


def _readable(playlist: Path, key: Path | None, scratch: Path) -> Path:
    """A copy of a media playlist that ffprobe reads from the scratch folder only: every
    segment by its absolute path, the key (whatever URL the playlist gives) from its file."""
    lines = []
    for line in playlist.read_text(encoding="utf-8").splitlines():
        if line.startswith("#EXT-X-KEY:") and key is not None:
            line = re.sub(r'URI="[^"]*"', f'URI="{key}"', line)
        elif line.startswith("#EXT-X-MAP:"):
            line = re.sub(r'URI="([^"]*)"', lambda m: f'URI="{playlist.parent / m[1]}"', line)
        elif line and not line.startswith("#"):
            line = str(playlist.parent / line)
        lines.append(line)
    copy = scratch / f".probe-{playlist.name}"
    copy.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return copy


def _probe(job: Job, path: Path, *entries: str) -> bytes:
    """ffprobe of a playlist or manifest the task wrote (local files only: no sandbox
    needed, and the protocols are limited to files)."""
    command = [ffmpeg.FFPROBE, "-v", "error", "-of", "json" if not entries else "compact=p=0"]
    if path.suffix == ".m3u8":
        command += ["-allowed_extensions", "ALL", "-protocol_whitelist", "file,crypto"]
    else:
        command += ["-protocol_whitelist", "file"]
    command += [*(entries or ("-show_streams", "-show_format")), str(path)]
    return ffmpeg.run(
        command,
        timeout=min(PROBE_TIMEOUT, job.remaining()),
        cancel=job.cancel,
        max_output=MAX_PACKETS_OUTPUT,
    )


def _described(
    job: Job, path: Path, fmt: str, size: int, keep: Sequence[int] | None = None
) -> dict[str, Any]:
    """``outMediainfo`` of a playlist or manifest: its streams (those of ``keep``, by
    index, when given) with their bit rates measured from their packets."""
    found = json.loads(_probe(job, path))
    streams = [s for s in found.get("streams") or [] if keep is None or s.get("index") in keep]
    found["streams"] = streams
    found.setdefault("format", {})["size"] = size
    found["format"]["format_name"] = fmt
    found["format"].pop("bit_rate", None)
    packets = _probe(job, path, "-show_entries", "packet=stream_index,size").decode()
    measured: dict[int, int] = {}
    for line in packets.splitlines():
        fields = dict(part.partition("=")[::2] for part in line.split("|"))
        if fields.get("stream_index", "").isdigit() and fields.get("size", "").isdigit():
            index = int(fields["stream_index"])
            measured[index] = measured.get(index, 0) + int(fields["size"])
    for stream in streams:
        stream.pop("bit_rate", None)
    return out_mediainfo(found, measured=measured)


def _finish_hls(job: Job, planned: HlsPlan) -> tuple[str, dict[str, Any]]:
    """Measure every media playlist; write the master playlist (``mulHlsRate``)."""
    folder = Path(planned.folder).resolve()
    key_path = folder / planned.key_name if planned.key_name else None
    variants: list[Variant] = []
    described: dict[str, Any] | None = None
    start = 0.0  # the first video segment's start time stamp (s), for WebVTT segments
    for output in planned.outputs:
        playlist = folder / output.playlist
        if not playlist.is_file():
            raise TaskError(3155, f"the HLS muxer wrote no playlist {output.playlist}")
        entries = playlist_entries(playlist.read_text(encoding="utf-8"))
        if not entries:
            raise TaskError(3155, f"the HLS playlist {output.playlist} lists no segment")
        sizes = []
        for entry in entries:
            path = folder / entry.uri
            if not path.is_file():
                raise TaskError(3155, f"the HLS segment {entry.uri} was not written")
            sizes.append(entry.length if entry.length is not None else path.stat().st_size)
        files = {entry.uri for entry in entries}
        size = sum((folder / name).stat().st_size for name in files)
        readable = _readable(playlist, key_path, job.scratch)
        if described is None:
            described = _described(job, readable, "hls", size + playlist.stat().st_size)
        if planned.master:
            peak, average = bit_rates(entries, sizes)
            found = json.loads(_probe(job, readable))
            streams = found.get("streams") or []
            empty: dict[str, Any] = {}
            video = next((s for s in streams if s.get("codec_type") == "video"), empty)
            # Where the output's time 0 is in the segments' time stamps: the picture's start.
            timed = [float(s["start_time"]) for s in streams if _number(s.get("start_time"))]
            if _number(video.get("start_time")):
                start = float(video["start_time"])
            else:
                start = min(timed, default=0.0)
            audio = next((s for s in streams if s.get("codec_type") == "audio"), empty)
            codecs = ",".join(tag for tag in (codec_tag(video), codec_tag(audio)) if tag)
            fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
            variants.append(
                Variant(
                    output.playlist,
                    peak,
                    average,
                    int(video.get("width") or 0),
                    int(video.get("height") or 0),
                    round(fps, 3),
                    codecs,
                )
            )
    assert described is not None
    media: list[SubtitleMedia] = []
    if planned.subtitles:  # one rendition: outputs[0] is the video playlist
        video_playlist = folder / planned.outputs[0].playlist
        for subtitles in planned.subtitles:
            _write_subtitles(video_playlist, subtitles, start)
            media.append(SubtitleMedia(subtitles.playlist, subtitles.name, subtitles.language))
    if planned.master:
        text = master_playlist(variants, independent=True, subtitles=media)
        (folder / planned.master).write_text(text, encoding="utf-8")
        return planned.master, described
    return planned.outputs[0].playlist, described


def _number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _write_subtitles(video_playlist: Path, subtitles: Subtitles, start: float) -> None:
    """Cut the converted WebVTT file at the video's segments; write its playlist."""
    vtt = Path(subtitles.vtt)
    if not vtt.is_file():
        raise TaskError(3155, f"the subtitle track {subtitles.name} was not converted to WebVTT")
    text = video_playlist.read_text(encoding="utf-8")
    durations = [entry.duration for entry in playlist_entries(text)]
    header = media_header(text, durations)
    cues = parse_cues(vtt.read_text(encoding="utf-8", errors="replace"))
    names = segment_names(subtitles.segments, len(durations), header.sequence)
    folder = video_playlist.parent
    for name, segment in zip(names, segment_texts(cues, durations, mpegts_of(start)), strict=True):
        (folder / name).write_text(segment, encoding="utf-8")
    playlist = subtitle_playlist(header, durations, names)
    (folder / subtitles.playlist).write_text(playlist, encoding="utf-8")


def _finish_dash(job: Job, planned: DashPlan) -> tuple[str, dict[str, Any]]:
    """Join the representations' manifests into the one at DstObjectKey."""
    folder = Path(planned.folder).resolve()
    texts = []
    for part in planned.parts:
        path = folder / part.manifest
        if not path.is_file():
            raise TaskError(3155, f"the DASH muxer wrote no manifest for {part.name}")
        texts.append((part.kind, path.read_text(encoding="utf-8")))
        path.unlink()
    manifest = folder / planned.manifest
    manifest.write_text(merge_manifests(texts), encoding="utf-8")
    found = json.loads(_probe(job, manifest))
    streams = found.get("streams") or []
    videos = [s for s in streams if s.get("codec_type") == "video"]
    top = max(
        videos, key=lambda s: int(s.get("width") or 0) * int(s.get("height") or 0), default=None
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    keep = [int(s["index"]) for s in (top, audio) if s is not None]
    names = {f"v{videos.index(top)}" if top is not None else "", "a0" if audio else ""}
    stem = stem_of(planned.manifest)
    size = sum(
        p.stat().st_size
        for p in folder.iterdir()
        if any(name and p.name.startswith(f"{stem}-{name}-") for name in names)
    )
    return planned.manifest, _described(job, manifest, "dash", size, keep)


def _upload(job: Job, spec: AvtransSpec, options: AvtransOptions, folder: Path, top: str) -> None:
    key = job.destination.key
    prefix = os.path.dirname(key)
    prefix = prefix + "/" if prefix else ""
    segment_acl = spec.segment.segfile_acl
    key_name = stem_of(key) + ".key" if options.hls_key is not None else ""
    files: list[OutputFile] = []
    lists: list[OutputFile] = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name == top:
            continue
        target = prefix + path.name
        if path.name == key_name and options.hls_key is not None:
            files.append(OutputFile(path, target, "application/octet-stream", options.hls_key.acl))
        elif path.suffix in (".m3u8", ".mpd"):
            lists.append(OutputFile(path, target, PLAYLIST_TYPE))
        else:
            files.append(OutputFile(path, target, "", segment_acl))
    content = PLAYLIST_TYPE if spec.f == "hls" else "application/dash+xml"
    upload(job, [*files, *lists, OutputFile(folder / top, key, content)])
