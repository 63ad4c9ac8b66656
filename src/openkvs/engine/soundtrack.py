"""The filtergraph that gives a video another soundtrack: a ``SrcInfo`` item of type
``audio`` replaces the video's own sound, or is mixed into it (ExtParam ``audio_mix``).

Pure. The soundtrack is read from its start on the output's timeline: timestamps from 0,
the clip window's start cut off (``ss``: the soundtrack follows the video's own time), then
padded with silence and cut to the output's length (``apad`` + ``atrim``), so the output's
sound is exactly as long as its picture whether the file is shorter or longer (``-shortest``
without its rounding to whole packets). Mixing adds both at their own levels (``amix`` with
``normalize=0``: nothing is turned down; the sum may clip where both are loud), the video's
own sound padded to the same length.
"""

from __future__ import annotations

from openkvs.engine.concat import seconds
from openkvs.engine.graph import AUDIO_SOURCE


def soundtrack(
    extra: str,
    *,
    start: float,
    length: float,
    own: str = "",
    mix: bool = False,
    out: str = AUDIO_SOURCE,
) -> str:
    """The fragment ending in ``out``: ``extra`` (the soundtrack's stream, ``[2:a:0]``)
    from ``start`` s for ``length`` s (0: unknown, then it is neither padded nor cut);
    with ``mix``, added to ``own`` (the video's sound, already in the output's window; ""
    when the video has none: then the soundtrack alone)."""
    head = f"{extra}asetpts=PTS-STARTPTS"
    if start:
        head += f",atrim=start={seconds(start)},asetpts=PTS-STARTPTS"
    fitted = f"{head},apad,atrim=duration={seconds(length)}" if length else head
    if not (mix and own):
        return fitted + out
    own_fitted = f"{own}apad,atrim=duration={seconds(length)}" if length else own
    return (
        f"{own_fitted}[mixown];{fitted}[mixnew];"
        f"[mixown][mixnew]amix=inputs=2:duration=longest:normalize=0{out}"
    )
