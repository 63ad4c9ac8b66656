"""What each output container of an ``avtrans`` preset holds, and the encoder behind each
codec name: the one table the preset rules and the command builder both read.

The container × codec matrix (``f`` down, codecs across; ``·`` = refused at Preset time with
1001 naming ``VIDEO.vcodec`` or ``AUDIO.acodec``; ``d`` = the default when the key is absent):

========  ====  ====  ====  ===  ====  ====  ===  ====  ====  ===
f         h264  h265  vp9   gif  webp  aac   mp3  flac  opus  pcm
========  ====  ====  ====  ===  ====  ====  ===  ====  ====  ===
mp4       d     yes   yes   ·    ·     d     yes  ·     yes   ·
mov       d     yes   ·     ·    ·     d     yes  ·     ·     ·
mkv       d     yes   yes   ·    ·     d     yes  yes   yes   yes
webm      ·     ·     d     ·    ·     ·     ·    ·     d     ·
flv       d     ·     ·     ·    ·     d     yes  ·     ·     ·
mpegts    d     yes   ·     ·    ·     d     yes  ·     yes   ·
hls       d     yes   ·     ·    ·     d     yes  ·     ·     ·
dash      d     yes   yes   ·    ·     d     ·    ·     yes   ·
gif       ·     ·     ·     d    ·     ·     ·    ·     ·     ·
webp      ·     ·     ·     ·    d     ·     ·    ·     ·     ·
mp3       ·     ·     ·     ·    ·     ·     d    ·     ·     ·
adts      ·     ·     ·     ·    ·     d     ·    ·     ·     ·
flac      ·     ·     ·     ·    ·     ·     ·    d     ·     ·
wav       ·     ·     ·     ·    ·     ·     ·    ·     ·     d
========  ====  ====  ====  ===  ====  ====  ===  ====  ====  ===

``copy`` (no re-encode) is accepted in every container that holds that kind of stream; the
copied codec is checked against the same row when the task runs (2025 when it does not fit).
``gif``, ``webp`` and ``pcm`` are never named by a client: ``f`` implies them. FFmpeg also
muxes VP9 in MPEG-TS and FLAC in MP4 (experimental), but players do not read them, so the
table leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass

#: ``VIDEO.vcodec`` → FFmpeg encoder.
VIDEO_ENCODERS: dict[str, str] = {
    "h264": "libx264",
    "h265": "libx265",
    "vp9": "libvpx-vp9",
    "gif": "gif",
    "webp": "libwebp_anim",
}
#: ``AUDIO.acodec`` → FFmpeg encoder (HE-AAC needs ``libfdk_aac``: see :class:`Capabilities`).
AUDIO_ENCODERS: dict[str, str] = {
    "aac": "aac",
    "mp3": "libmp3lame",
    "flac": "flac",
    "opus": "libopus",
    "pcm": "pcm_s16le",
}
FDK_AAC = "libfdk_aac"

#: ffprobe ``codec_name`` → our codec name, to check a copied stream against a container.
PROBED_CODECS: dict[str, str] = {
    "h264": "h264",
    "hevc": "h265",
    "vp9": "vp9",
    "gif": "gif",
    "webp": "webp",
    "aac": "aac",
    "mp3": "mp3",
    "flac": "flac",
    "opus": "opus",
}

#: Sample rates an encoder (or, for FLV, the muxer) takes; absent = any within 8000–96000.
SAMPLE_RATES: dict[str, tuple[int, ...]] = {
    "aac": (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200,
            96000),
    "mp3": (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
    "opus": (8000, 12000, 16000, 24000, 48000),
    "flv+mp3": (11025, 22050, 44100),
}  # fmt: skip
#: Most channels an encoder takes (``AUDIO.channels`` is 1, 2 or 6).
MAX_CHANNELS: dict[str, int] = {"mp3": 2}


@dataclass(frozen=True)
class Container:
    """One value of ``Param.f``."""

    name: str
    muxer: str  # FFmpeg's output format name (``-f``)
    extension: str  # of the file written (``.ts`` for mpegts)
    video: tuple[str, ...]  # codecs it holds, the default first; () = no video
    audio: tuple[str, ...]
    faststart: bool = False  # moov atom first (``-movflags +faststart``)
    runs: bool = True  # False: accepted in presets, refused (1015) at CreateTask for now

    @property
    def default_video(self) -> str:
        return self.video[0] if self.video else ""

    @property
    def default_audio(self) -> str:
        return self.audio[0] if self.audio else ""


_AV = ("h264", "h265")
CONTAINERS: dict[str, Container] = {
    c.name: c
    for c in (
        Container("mp4", "mp4", ".mp4", (*_AV, "vp9"), ("aac", "mp3", "opus"), faststart=True),
        Container("flv", "flv", ".flv", ("h264",), ("aac", "mp3")),
        Container("hls", "hls", ".m3u8", _AV, ("aac", "mp3")),
        Container("mpegts", "mpegts", ".ts", _AV, ("aac", "mp3", "opus")),
        Container("mp3", "mp3", ".mp3", (), ("mp3",)),
        Container("adts", "adts", ".aac", (), ("aac",)),
        Container("dash", "dash", ".mpd", (*_AV, "vp9"), ("aac", "opus")),
        Container("gif", "gif", ".gif", ("gif",), ()),
        Container("webp", "webp", ".webp", ("webp",), ()),
        Container("flac", "flac", ".flac", (), ("flac",)),
        Container("webm", "webm", ".webm", ("vp9",), ("opus",)),
        Container("mkv", "matroska", ".mkv", (*_AV, "vp9"), ("aac", "mp3", "flac", "opus", "pcm")),
        Container("mov", "mov", ".mov", _AV, ("aac", "mp3"), faststart=True),
        Container("wav", "wav", ".wav", (), ("pcm",)),
    )
}
#: Every ``Param.f``, in the order error messages list them.
FORMATS: tuple[str, ...] = tuple(CONTAINERS)
#: Codecs ``f`` implies; a client cannot ask for them in another container.
IMPLIED = frozenset({"gif", "webp", "pcm"})


@dataclass(frozen=True)
class Capabilities:
    """What the ffmpeg that runs tasks can do beyond :data:`BASELINE`.

    The preset rules are pure: they judge a preset against a capability set given to them,
    never by running ffmpeg. :data:`BASELINE` is what openkvs requires of its ffmpeg (the
    encoders of :data:`VIDEO_ENCODERS` and :data:`AUDIO_ENCODERS`, and the SoX resampler:
    Debian's and Ubuntu's ``ffmpeg`` packages and the common static builds have them all).
    ``libfdk_aac`` (HE-AAC) is not in it: it is non-free and no redistributable ffmpeg build
    has it, and FFmpeg's own ``aac`` encoder makes only AAC-LC. ``engine.capabilities``
    reads the real set of an installed ffmpeg.
    """

    encoders: frozenset[str]
    resamplers: frozenset[str] = frozenset({"swr", "soxr"})

    @property
    def he_aac(self) -> bool:
        return FDK_AAC in self.encoders


BASELINE = Capabilities(frozenset({*VIDEO_ENCODERS.values(), *AUDIO_ENCODERS.values()}))
#: Everything the KVS API lets a preset ask for: what presets are judged against (a preset
#: is valid KVS whatever this openkvs's ffmpeg has); a task is then checked against the
#: ffmpeg that will run it (``engine.capabilities.installed``).
EVERYTHING = Capabilities(BASELINE.encoders | {FDK_AAC})


def extension_of(f: str) -> str:
    return CONTAINERS[f].extension
