"""``avtrans`` ``AUDIO`` (spec §3.2.2) → :class:`AudioSpec`, judged against the container and
the capabilities of the ffmpeg that runs tasks (``engine/formats.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openkvs.engine.formats import MAX_CHANNELS, SAMPLE_RATES, Capabilities, Container
from openkvs.errors import ApiError, invalid
from openkvs.service.param_values import parse_bitrate
from openkvs.service.params import given, to_int


@dataclass(frozen=True)
class AudioSpec:
    """What the output's audio stream is made of. ``codec`` "" = no audio stream."""

    codec: str = "aac"  # aac, mp3, flac, opus, pcm (f=wav) or copy
    bitrate: int = 0  # ab, bits/s; 0 = the encoder's default
    sample_rate: int = 0  # ar; 0 = the source's (or the nearest the encoder takes)
    channels: int = 0  # 0 = the source's
    profile: str = ""  # aac_low, aac_he, aac_he_v2
    he_compatible: bool = False  # aacheCompatible: HE-AAC signalled so AAC-LC players play it
    resampler: str = ""  # "" (FFmpeg's swr), "swr" or "soxr"


_KNOWN = ("acodec", "ab", "ar", "channels", "profile", "aacheCompatible", "resampler", "mulAb")
_NEEDS_ENCODE = ("ab", "ar", "channels", "profile", "resampler")


def parse_audio(
    path: str, audio: Mapping[str, Any], container: Container, capabilities: Capabilities
) -> AudioSpec:
    f = container.name
    an = given(audio, "an") and to_int(f"{path}.an", audio["an"]) == 1
    asked = [key for key in _KNOWN if given(audio, key)]
    if not container.audio:
        if asked and not an:
            raise invalid(
                f"{path}.{asked[0]}",
                f"does not apply to f={f}, which holds no audio (set {path}.an=1 or leave it out)",
            )
        return AudioSpec(codec="")
    if an:
        return AudioSpec(codec="")
    codec = str(audio["acodec"]) if given(audio, "acodec") else container.default_audio
    if codec != "copy" and codec not in container.audio:
        holds = ", ".join(c for c in container.audio if c != "pcm") or "its own pcm"
        raise invalid(f"{path}.acodec", f"{codec} cannot go in f={f} (it holds {holds} or copy)")
    for key in _NEEDS_ENCODE:
        if codec == "copy" and key in asked:
            raise invalid(f"{path}.{key}", "needs a re-encode: it cannot go with acodec=copy")
    if codec in ("flac", "pcm") and "ab" in asked:
        raise invalid(f"{path}.ab", f"does not apply to lossless {codec} audio")
    spec = AudioSpec(
        codec=codec,
        bitrate=parse_bitrate(audio["ab"]) if "ab" in asked else 0,
        sample_rate=to_int(f"{path}.ar", audio["ar"]) if "ar" in asked else 0,
        channels=to_int(f"{path}.channels", audio["channels"]) if "channels" in asked else 0,
        profile=str(audio["profile"]) if "profile" in asked else "",
        he_compatible=given(audio, "aacheCompatible")
        and to_int(f"{path}.aacheCompatible", audio["aacheCompatible"]) == 1,
        resampler=str(audio["resampler"]) if "resampler" in asked else "",
    )
    _check(path, spec, f, capabilities)
    return spec


def _check(path: str, spec: AudioSpec, f: str, capabilities: Capabilities) -> None:
    rates = SAMPLE_RATES.get("flv+mp3" if (f, spec.codec) == ("flv", "mp3") else spec.codec)
    if spec.sample_rate and rates and spec.sample_rate not in rates:
        where = f"{spec.codec} in f=flv" if f == "flv" else spec.codec
        listed = ", ".join(map(str, rates))
        raise invalid(f"{path}.ar", f"must be one of {listed} for {where}, got {spec.sample_rate}")
    most = MAX_CHANNELS.get(spec.codec)
    if most and spec.channels > most:
        raise invalid(f"{path}.channels", f"must be at most {most} for {spec.codec}")
    if spec.profile and spec.codec != "aac":
        raise invalid(f"{path}.profile", f"applies only to acodec=aac, not {spec.codec}")
    if spec.profile == "aac_he_v2" and spec.channels not in (0, 2):
        raise invalid(f"{path}.channels", "must be 2 for aac_he_v2 (parametric stereo)")
    if missing := _missing(spec, capabilities):
        raise invalid(f"{path}.{missing[0]}", missing[1])


def _missing(spec: AudioSpec, capabilities: Capabilities) -> tuple[str, str] | None:
    """(key, reason) when ``spec`` asks what ``capabilities`` lack, else None."""
    if spec.profile in ("aac_he", "aac_he_v2") and not capabilities.he_aac:
        return (
            "profile",
            f"{spec.profile} needs the libfdk_aac encoder, which this openkvs's ffmpeg does not "
            "have (FFmpeg's own aac encoder makes AAC-LC only): use aac_low",
        )
    if spec.resampler and spec.resampler not in capabilities.resamplers:
        return "resampler", f"{spec.resampler} is not in this openkvs's ffmpeg"
    return None


def require_capabilities(spec: AudioSpec, capabilities: Capabilities) -> None:
    """A task's preset asks only what the ffmpeg that runs it can do: else ``1018`` naming
    the key (the preset itself is valid KVS, so it was stored)."""
    if missing := _missing(spec, capabilities):
        raise ApiError(1018, f"Param.AUDIO.{missing[0]} {missing[1]}")
