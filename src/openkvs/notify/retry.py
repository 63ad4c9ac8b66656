"""When to try a callback again: a policy object, testable on its own."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """``backoff[i]`` seconds pass between attempt ``i + 1`` and attempt ``i + 2``; after
    ``len(backoff) + 1`` attempts the callback has failed for good."""

    backoff: tuple[float, ...] = (10.0, 60.0, 300.0)

    @property
    def max_attempts(self) -> int:
        return len(self.backoff) + 1

    def next_delay(self, attempts_made: int) -> float | None:
        """Seconds until the next attempt after ``attempts_made`` failures, or None."""
        if attempts_made < 1 or attempts_made > len(self.backoff):
            return None
        return self.backoff[attempts_made - 1]
