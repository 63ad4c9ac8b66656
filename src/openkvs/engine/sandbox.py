"""What ffmpeg and ffprobe may open when they read a user's object.

A source is one object in one bucket, and it must stay one file: nothing in it may make
ffmpeg read another file of the host or open a network address. Left alone, FFmpeg follows
what a file says: an HLS playlist or a DASH manifest (whatever the object's name) lists
segments and subtitle tracks by absolute path or URL, an ``ffconcat`` list names other
files, a VobSub index opens its ``.sub`` companion, an image whose name holds ``%d`` (or
``%*``) is a pattern over its siblings, Magic Lantern and IMF sources open sidecars, a
QuickTime file may reference external tracks. Every input that comes from a user's object
is therefore opened through :func:`source_input`, in three layers:

``-format_whitelist``
    The demuxers a source may be read with: :data:`SOURCE_FORMATS`, containers and raw
    streams that read only the file they were given (none of them opens another file or
    URL in FFmpeg 5.1). FFmpeg still probes the content as usual, then refuses a demuxer
    that is not on the list ("Format not on whitelist") before it reads anything else, so
    playlists, manifests, lists and sidecar formats are never selected, whatever their name.
    ``image2`` (a still image read by its name) is added for a local file with a still-image
    extension: many real JPEGs (those whose end-of-image marker is past the first probe
    buffer) are probed as ``image2`` rather than ``jpeg_pipe``.

``-protocol_whitelist``
    For a local file: ``file`` only, so no input, nor anything nested in it, can open a
    network address. For a URL that the storage hands out (an S3 presigned URL): only the
    protocols of that URL's scheme (``https``, ``tls``, ``tcp``; or ``http``, ``tcp``).

A plain name in an empty folder
    ffmpeg is not given the object's path but a symbolic link to it named ``source`` plus
    the object's extension (so probing sees the same extension), alone in a fresh private
    folder. A key holding ``%d``, ``%*`` or glob characters never reaches ffmpeg as a
    pattern, and anything that resolves a name relative to the source (image sequences,
    VobSub companions, relative playlist entries) finds nothing: the bucket's other objects
    are not next to the name ffmpeg knows.

QuickTime external references (``enable_drefs``, ``use_absolute_path``) are off by default
in FFmpeg; ``-enable_drefs 0`` is not passed because ffmpeg refuses an input option that
the chosen demuxer does not have. A test checks those defaults of the installed ffmpeg.

A source refused because its format refers to other files or addresses (a playlist, a
manifest, a list, a sequence, a sidecar format: :data:`REFERRING_FORMATS`), or because it
tried to open a refused protocol, fails with :data:`REFUSED` (2037, "not file or
directory, or maybe wrong type": the object is not a file of a type a source may have).
Bytes that FFmpeg can only guess to be some other format that is not read for sources
(random data is guessed to be ``luodat``) fail as before with :data:`NOT_MEDIA` (3150,
"Invalid data found when processing input"). ``engine.ffmpeg`` maps the whitelist messages
to 2037; :meth:`SourceInput.explain` picks the code and words the detail for the client.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from openkvs.errors import TaskError
from openkvs.orphans import remove_orphans

#: Link folders are ``openkvs-source-<pid>-<random>`` in the temporary folder.
FOLDER_PREFIX = "openkvs-source-"
_FOLDER = re.compile(re.escape(FOLDER_PREFIX) + r"(\d+)-\w+")
#: Longest wait, in seconds, between two tries to reopen a dropped connection to a URL source.
RECONNECT_DELAY_MAX = 10
#: The task code of a source whose format refers to other files or addresses.
REFUSED = 2037
#: The task code of a source in any other format that is not read for sources.
NOT_MEDIA = 3150

#: FFmpeg 5.1 demuxers that open other files or network addresses named by the source or
#: derived from its name. None is in :data:`SOURCE_FORMATS`; this list only chooses the
#: error code (:data:`REFUSED` rather than :data:`NOT_MEDIA`) of a source refused for one.
REFERRING_FORMATS = frozenset(
    {
        "hls",  # playlists: segments, renditions, keys
        "dash",  # manifests: segments, subtitle tracks
        "concat",  # ffconcat lists
        "image2",  # image sequences and globs (or a still image without a plain name)
        "vobsub",  # .idx opens its .sub
        "imf",  # composition playlists open their asset map and track files
        "mlv",  # Magic Lantern sidecars .m00...
        "sdp",  # RTP sessions
        "rtsp",
        "rtp",
        "sap",
    }
)
#: Demuxers (FFmpeg names; a multi-name demuxer such as ``mov,mp4,m4a,3gp,3g2,mj2`` is
#: allowed by any of its names) that read only the file they are given.
SOURCE_FORMATS: tuple[str, ...] = (
    # containers
    "mov",  # mov,mp4,m4a,3gp,3g2,mj2 (external references are off: see the module doc)
    "matroska",  # matroska,webm
    "avi",
    "flv",
    "mpegts",
    "mpeg",  # MPEG program stream (.mpg, .vob)
    "asf",  # wmv, wma
    "mxf",
    "rm",
    "dv",
    "ogg",
    "ivf",
    # audio
    "mp3",
    "aac",
    "wav",
    "w64",
    "flac",
    "aiff",
    "caf",
    "amr",
    "ac3",
    "eac3",
    "dts",
    "wv",
    "ape",
    # raw video elementary streams
    "h264",
    "hevc",
    # still and animated images read from the file itself
    "gif",
    "apng",
    "bmp_pipe",
    "dpx_pipe",
    "exr_pipe",
    "gif_pipe",
    "j2k_pipe",
    "jpeg_pipe",
    "jpegls_pipe",
    "jpegxl_pipe",
    "pam_pipe",
    "pbm_pipe",
    "pcx_pipe",
    "pfm_pipe",
    "pgm_pipe",
    "phm_pipe",
    "png_pipe",
    "ppm_pipe",
    "psd_pipe",
    "qoi_pipe",
    "sgi_pipe",
    "tiff_pipe",
    "webp_pipe",
    # text that has no include directive in FFmpeg (probed, e.g. for avinfo)
    "srt",
    "ass",
    "webvtt",
    "ffmetadata",
)

#: Extensions for which ``image2`` may read a local file by its name. Not ``svg`` (the SVG
#: decoder can follow references), not ``y`` (raw planes: ``image2`` opens ``.u``/``.v``).
IMAGE2_EXTENSIONS = frozenset(
    {
        "bmp", "dpx", "exr", "j2c", "j2k", "jp2", "jpeg", "jpg", "jls", "jxl", "pam", "pbm",
        "pcx", "pfm", "pgm", "png", "ppm", "qoi", "sgi", "tga", "tif", "tiff", "webp",
    }
)  # fmt: skip
#: Characters that make ``image2`` read a name as a sequence or a glob (``%``), or would
#: under another ``pattern_type``.
_PATTERN_CHARS = frozenset("%*?[]{}")
#: The name ffmpeg is given for a local source (plus the object's extension).
LINK_NAME = "source"
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,16}")

#: Protocols each URL scheme needs (FFmpeg protocol names).
URL_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "https": ("https", "tls", "tcp"),
    "http": ("http", "tcp"),
}

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_FORMAT_REFUSED = re.compile(r"\[([^\]@]+?) @ [^\]]*\] Format not on whitelist")
_PROTOCOL_REFUSED = re.compile(r"Protocol '([^']*)' not on whitelist")


@dataclass(frozen=True)
class SourceInput:
    """One user's object as ffmpeg opens it (made by :func:`source_input`)."""

    source: str  # the caller's local path or URL
    url: str  # what ffmpeg is given: a plain-named link for a local file, else the URL
    protocols: tuple[str, ...]
    formats: tuple[str, ...]

    def args(self) -> list[str]:
        """The options and ``-i`` that open the source, for ffmpeg or ffprobe. A URL is
        read with reconnection: a connection to the store that drops mid-task is opened
        again at the same offset (up to :data:`RECONNECT_DELAY_MAX` s between tries)
        instead of failing the task."""
        reconnect = []
        if "http" in self.protocols or "https" in self.protocols:
            reconnect = [
                "-reconnect", "1",
                "-reconnect_on_network_error", "1",
                "-reconnect_delay_max", str(RECONNECT_DELAY_MAX),
            ]  # fmt: skip
        return [
            *reconnect,
            "-protocol_whitelist",
            ",".join(self.protocols),
            "-format_whitelist",
            ",".join(self.formats),
            "-i",
            self.url,
        ]

    def explain(self, error: TaskError) -> TaskError:
        """``error`` of a run on this input as the caller should see it.

        A refusal by the whitelists: :data:`REFUSED` when the format is one that refers to
        other files or addresses (:data:`REFERRING_FORMATS`) or a nested open was refused;
        :data:`NOT_MEDIA` (3150) for any other format that is not read for sources (ffmpeg's
        closest guess for bytes that are no accepted media, e.g. random data). Anything else
        keeps its code, with the source's own name in its detail instead of the link's.
        """
        if error.code == REFUSED:
            if found := _FORMAT_REFUSED.search(error.detail):
                names = found.group(1).split(",")
                if REFERRING_FORMATS.intersection(names):
                    return TaskError(
                        REFUSED,
                        f"the {names[0]} format is not accepted as a source: a source must "
                        "be a single media file, and playlists, manifests, lists, image "
                        "sequences and files that refer to other files are refused",
                    )
                return TaskError(
                    NOT_MEDIA,
                    "Invalid data found when processing input: not a format accepted for "
                    f"sources (the closest FFmpeg knows is {names[0]})",
                )
            if found := _PROTOCOL_REFUSED.search(error.detail):
                return TaskError(
                    REFUSED,
                    f"the source refers to a {found.group(1)} address, which a source may not open",
                )
        return TaskError(error.code, error.detail.replace(self.url, self.source))


@contextlib.contextmanager
def source_input(source: str, formats: tuple[str, ...] = SOURCE_FORMATS) -> Iterator[SourceInput]:
    """``source`` (a local path or an http(s) URL) ready to be opened by ffmpeg; a local
    file's link and folder exist until the block ends.

    The link's folder is a fresh ``openkvs-source-<pid>-*`` folder (mode 0700) in the
    system's temporary folder (``TMPDIR``); failing to make it or the link → 2013. ``formats`` is
    for tests (they show that each layer holds on its own). Any other kind of source
    (``pipe:``, ``concat:``, a ``data:`` URL...) is a programming error: :class:`ValueError`.
    """
    scheme = ""
    if not os.path.isabs(source):
        head, colon, _ = source.partition(":")
        scheme = head.lower() if colon and _SCHEME.fullmatch(head) else ""
    if scheme:
        protocols = URL_PROTOCOLS.get(scheme)
        if protocols is None:
            raise ValueError(f"a source must be a local file or an http(s) URL, not {scheme}:")
        yield SourceInput(source, source, protocols, tuple(formats))
        return
    try:
        folder = tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-")
    except OSError as exc:
        raise TaskError(2013, f"cannot create a folder for the source's link: {exc}") from exc
    try:
        extension = os.path.splitext(source)[1]
        link = os.path.join(
            folder, LINK_NAME + (extension if _EXTENSION.fullmatch(extension) else "")
        )
        try:
            os.symlink(os.path.abspath(source), link)
        except OSError as exc:
            raise TaskError(2013, f"cannot link the source: {exc}") from exc
        allowed = (*formats, "image2") if image2_allowed(link) else tuple(formats)
        yield SourceInput(source, link, ("file",), allowed)
    finally:
        _remove_folder(folder)


def _remove_folder(folder: str) -> None:
    """Remove a link folder: its one link, then itself (cheaper than ``rmtree``, which
    stays the fallback for anything else found in it)."""
    try:
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)


def sweep_stale_folders(parent: str | None = None) -> int:
    """Remove the link folders of processes that no longer exist (a worker killed with
    ``kill -9`` leaves its folder behind); returns how many were removed. A folder whose
    pid is alive (or was reused) is left alone: it is tiny and holds only a link."""
    return remove_orphans(parent or tempfile.gettempdir(), _FOLDER)


def image2_allowed(path: str) -> bool:
    """Whether ``image2`` may read the local file ``path``: a still-image extension and no
    character that could make its name a pattern."""
    extension = os.path.splitext(path)[1][1:].lower()
    return extension in IMAGE2_EXTENSIONS and not _PATTERN_CHARS.intersection(path)
