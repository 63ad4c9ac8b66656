"""Sending one callback: a Protocol, the real HTTP sender and an in-memory fake."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import httpx


@dataclass(frozen=True)
class SendResult:
    """The outcome of one POST: the HTTP status, or the error that prevented one."""

    http_status: int | None
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300


class CallbackSender(Protocol):
    def send(self, url: str, body: bytes) -> SendResult: ...

    def close(self) -> None: ...


class HttpSender:
    """POSTs JSON with a timeout; reuses connections between callbacks."""

    def __init__(self, timeout: float) -> None:
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)

    def send(self, url: str, body: bytes) -> SendResult:
        try:
            response = self._client.post(
                url,
                content=body,
                headers={"Content-Type": "application/json", "User-Agent": "openkvs-callback"},
            )
        except httpx.HTTPError as exc:
            return SendResult(None, f"{type(exc).__name__}: {exc}")
        return SendResult(response.status_code, "" if response.is_success else response.text[:200])

    def close(self) -> None:
        self._client.close()


@dataclass
class FakeSender:
    """Answers from a script of statuses (the last one repeats) and records every send."""

    statuses: list[int] = field(default_factory=lambda: [200])
    sent: list[tuple[str, bytes]] = field(default_factory=list)

    def send(self, url: str, body: bytes) -> SendResult:
        self.sent.append((url, body))
        status = self.statuses[min(len(self.sent), len(self.statuses)) - 1]
        return SendResult(status)

    def close(self) -> None:
        return None
