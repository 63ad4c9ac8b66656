"""The :class:`~openkvs.engine.graph.Composition` of one avtrans job: what it adds around
its first source (more sources joined or mixed, watermarks, subtitles).

:func:`composed` opens what the parts need (more sources through the sandbox, logo and
subtitle files fetched into the scratch folder) for as long as the command runs, and gives
the composition with the :class:`SourceFacts` of what enters the preset's chain. Each part
is built by its own module; an ordinary one-source task without watermarks gets the empty
composition and its own facts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from openkvs.engine.graph import Composition, merge
from openkvs.engine.sandbox import SourceInput, source_input
from openkvs.engine.transcode import SourceFacts
from openkvs.presets.avtrans import AvtransOptions, AvtransSpec
from openkvs.worker.job import Job
from openkvs.worker.logos import LogoFetcher, watermarks
from openkvs.worker.sources_part import sources_part


@contextlib.contextmanager
def composed(
    job: Job,
    spec: AvtransSpec,
    options: AvtransOptions,
    facts: SourceFacts,
    found: dict[str, Any],
    *,
    logos: LogoFetcher | None = None,
) -> Iterator[tuple[Composition, SourceFacts]]:
    """The job's composition and the facts of the media entering the preset's chain
    (``found``: the first source's ffprobe JSON, ``facts`` its facts). Inputs are numbered
    from 1 in the order the parts add them."""
    with contextlib.ExitStack() as stack:
        parts: list[Composition] = []
        # First: the other sources (joined videos, soundtrack, subtitles: sources_part.py).
        sources, facts = sources_part(job, spec, options, facts, found, stack)
        parts.append(sources)
        # Watermarks (worker/logos.py): logo files fetched into the scratch folder;
        # ``logos`` fetches with the operator's address policy (default: the strict one).
        first = 1 + sum(len(p.inputs) for p in parts)
        parts.append(watermarks(job, spec, options, first=first, fetcher=logos or LogoFetcher()))
        yield merge(parts), facts


@contextlib.contextmanager
def composed_source(
    job: Job,
    spec: AvtransSpec,
    options: AvtransOptions,
    facts: SourceFacts,
    found: dict[str, Any],
    *,
    logos: LogoFetcher | None = None,
) -> Iterator[tuple[SourceInput, Composition, SourceFacts]]:
    """The job's first source opened through the sandbox (``engine/sandbox.py``) with its
    :func:`composed` composition: what every avtrans command of one job reads."""
    with (
        source_input(job.source.location) as opened,
        composed(job, spec, options, facts, found, logos=logos) as (composition, joined),
    ):
        yield opened, composition, joined
