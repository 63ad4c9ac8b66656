"""How a flow's items and a chain's stages share the task's progress (worker/flow.py,
worker/chain.py): never backwards across items, uploading only at the very end."""

from __future__ import annotations

from openkvs.worker.chain import share
from openkvs.worker.flow import item_share
from openkvs.worker.job import Phase


def test_items_share_transcoding_and_only_the_last_uploads() -> None:
    seen: list[tuple[Phase, float]] = []
    for position in range(2):
        report = item_share(lambda phase, percent: seen.append((phase, percent)), position, 2)
        report(Phase.TRANSCODING, 0)
        report(Phase.TRANSCODING, 50)
        report(Phase.UPLOADING, 0)
        report(Phase.UPLOADING, 100)
    assert seen == [
        (Phase.TRANSCODING, 0.0),
        (Phase.TRANSCODING, 25.0),
        (Phase.TRANSCODING, 50.0),
        (Phase.TRANSCODING, 50.0),
        (Phase.TRANSCODING, 50.0),
        (Phase.TRANSCODING, 75.0),
        (Phase.UPLOADING, 0),
        (Phase.UPLOADING, 100),
    ]


def test_chain_stages_share_transcoding() -> None:
    seen: list[tuple[Phase, float]] = []
    first = share(lambda phase, percent: seen.append((phase, percent)), 0.0, 0.5)
    last = share(lambda phase, percent: seen.append((phase, percent)), 0.5, 0.5)
    first(Phase.TRANSCODING, 100)
    last(Phase.TRANSCODING, 40)
    last(Phase.UPLOADING, 30)
    assert seen == [(Phase.TRANSCODING, 50.0), (Phase.TRANSCODING, 70.0), (Phase.UPLOADING, 30)]
