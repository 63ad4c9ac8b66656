"""ffmpeg's stderr → spec §6.2 codes (engine/ffmpeg.py ``error_from_stderr``).

The golden samples are verbatim stderr of ffmpeg/ffprobe 5.1 runs (``-v error``), captured
while writing this module: HTTP answers came from a local server, the rest from files and
arguments named in each case. Samples marked "shaped" follow ffmpeg's message layout for
failures that cannot be provoked offline (a network that times out or resets).
"""

from __future__ import annotations

import pytest

from openkvs.engine.ffmpeg import ERROR_TEXTS, error_from_stderr, failure
from openkvs.errors import TASK_MESSAGES, TaskError

GOLDEN: dict[str, tuple[str, int]] = {
    "random bytes (random.dat)": ("r.dat: Invalid data found when processing input\n", 3150),
    "random bytes named .m4a": (
        "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5626015de1c0] moov atom not found\n"
        "r.m4a: Invalid data found when processing input\n",
        3150,
    ),
    "random bytes named .mp3": (
        "[mp3 @ 0x557dc065d1c0] Failed to read frame size: Could not seek to 66559.\n"
        "r.mp3: Invalid argument\n",
        3022,
    ),
    "random bytes, as ffmpeg (not ffprobe) says it": (
        "random.dat: could not find codec parameters\n",
        3150,
    ),
    "missing local file": ("nofile.mp3: No such file or directory\n", 2041),
    "http 400": ("http://127.0.0.1:33459/400.mp3: Server returned 400 Bad Request\n", 3161),
    "http 401": (
        "http://127.0.0.1:33459/401.mp3: Server returned 401 Unauthorized (authorization failed)\n",
        3162,
    ),
    "http 403": (
        "http://127.0.0.1:33459/403.mp3: Server returned 403 Forbidden (access denied)\n",
        3163,
    ),
    "http 404": ("http://127.0.0.1:33459/404.mp3: Server returned 404 Not Found\n", 3164),
    "http 418": (
        "http://127.0.0.1:33459/418.mp3: Server returned 4XX Client Error, "
        "but not one of 40{0,1,3,4}\n",
        3165,
    ),
    "http 503": (
        "http://127.0.0.1:33459/503.mp3: Server returned 5XX Server Error reply\n",
        3166,
    ),
    "connection refused": (
        "[tcp @ 0x56085d464f00] Connection to tcp://127.0.0.1:9 failed: Connection refused\n"
        "http://127.0.0.1:9/x.mp3: Connection refused\n",
        3242,
    ),
    "connection timed out (shaped)": (
        "[tcp @ 0x55d0c0a1e2c0] Connection to tcp://10.1.2.3:80 failed: Connection timed out\n"
        "http://10.1.2.3/x.mp3: Connection timed out\n",
        3240,
    ),
    "connection reset (shaped)": (
        "[tls @ 0x55d0c0a1e2c0] Error in the pull function.\n"
        "https://example.org/x.mp3: Connection reset by peer\n",
        3241,
    ),
    "unknown protocol": (
        "foo://bar/x.mp3: Protocol not found\nDid you mean file:foo://bar/x.mp3?\n",
        3154,
    ),
    "unknown option": (
        "Unrecognized option 'nosuchoption'.\n"
        "Error splitting the argument list: Option not found\n",
        3152,
    ),
    "unknown filter (the generic last line loses)": (
        "[AVFilterGraph @ 0x55863e4703c0] No such filter: 'nosuchfilter'\n"
        "Error reinitializing filters!\n"
        "Failed to inject frame into filter network: Invalid argument\n"
        "Error while processing the decoded data for stream #0:0\n",
        3149,
    ),
    "unknown encoder": ("Unknown encoder 'nosuchenc'\n", 3145),
    "unknown decoder": ("Unknown decoder 'nosuchdec'\n", 3143),
    "unknown input format": ("Unknown input format: 'nosuchdemux'\n", 3144),
    "unknown output format": (
        "[NULL @ 0x5604bf270600] Requested output format 'nosuchmux' is not a suitable "
        "output format\npipe:: Invalid argument\n",
        3151,
    ),
    "map of a missing stream": (
        "Stream map '0:v:0' matches no streams.\nTo ignore this, add a trailing '?' to the map.\n",
        3155,
    ),
    "unknown bitstream filter": (
        "Error parsing bitstream filter sequence 'nosuchbsf': Bitstream filter not found\n",
        3140,
    ),
    "EIO is not in the table (bin demuxer, large random data)": (
        "r.bin: Input/output error\n",
        3175,
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_samples(name: str) -> None:
    stderr, code = GOLDEN[name]
    error = error_from_stderr(stderr)
    assert isinstance(error, TaskError)
    assert error.code == code
    assert error.message == TASK_MESSAGES[code]
    assert error.detail  # the deciding line, for operators


#: The av_err2str texts of the brief, verbatim, and their codes.
AV_ERR_TEXTS = {
    "Bitstream filter not found": 3140,
    "Internal bug, should not have happened": 3141,
    "Buffer too small": 3142,
    "Decoder not found": 3143,
    "Demuxer not found": 3144,
    "Encoder not found": 3145,
    "End of file": 3146,
    "Immediate exit requested": 3147,
    "Generic error in an external library": 3148,
    "Filter not found": 3149,
    "Invalid data found when processing input": 3150,
    "Muxer not found": 3151,
    "Option not found": 3152,
    "Not yet implemented in FFmpeg, patches welcome": 3153,
    "Protocol not found": 3154,
    "Stream not found": 3155,
    "Bug detected, please report the issue": 3156,
    "Unknown error occurred": 3157,
    "Experimental feature": 3158,
    "Input changed": 3159,
    "Output changed": 3160,
    "Server returned 400 Bad Request": 3161,
    "Server returned 401 Unauthorized (authorization failed)": 3162,
    "Server returned 403 Forbidden (access denied)": 3163,
    "Server returned 404 Not Found": 3164,
    "Server returned 4XX Client Error, but not one of 40{0,1,3,4}": 3165,
    "Server returned 5XX Server Error reply": 3166,
    "Invalid argument": 3022,
    "Connection timed out": 3240,
    "Connection reset by peer": 3241,
    "Connection refused": 3242,
}


@pytest.mark.parametrize(("text", "code"), sorted(AV_ERR_TEXTS.items()))
def test_every_av_error_text(text: str, code: int) -> None:
    assert error_from_stderr(f"input.mp4: {text}\n").code == code


def test_every_table_code_is_documented() -> None:
    for _text, code in ERROR_TEXTS:
        assert code in TASK_MESSAGES


def test_missing_file_is_not_http_404() -> None:
    assert error_from_stderr("/data/in.mp3: No such file or directory").code == 2041


def test_matching_ignores_case() -> None:
    assert error_from_stderr("x: INVALID DATA FOUND WHEN PROCESSING INPUT").code == 3150


def test_the_last_specific_line_wins() -> None:
    stderr = "a: Connection refused\nb: Server returned 404 Not Found\n"
    assert error_from_stderr(stderr).code == 3164
    assert error_from_stderr(stderr).detail == "b: Server returned 404 Not Found"


def test_a_generic_text_is_used_when_nothing_else_is_known() -> None:
    stderr = "Error initializing filter 'pan' with args 'x'\nError initializing filters!\n"
    assert error_from_stderr(stderr + "Invalid argument\n").code == 3022


@pytest.mark.parametrize("stderr", ["", "\n\n", "something odd happened\n"])
def test_unrecognised_text_is_3175(stderr: str) -> None:
    assert error_from_stderr(stderr).code == 3175


def test_killed_by_a_signal_is_3255() -> None:
    assert failure(-9, "").code == 3255
    assert failure(1, "x: End of file").code == 3146
