"""The scenarios, in the order they run: a name, how many guest messages at what rate, and a fault."""

from __future__ import annotations

from dataclasses import dataclass

from harness import faults
from harness.faults import Fault


@dataclass(frozen=True)
class Scenario:
    name: str
    deliveries: int
    rate_per_s: float
    fault: Fault | None = None
    drain_s: float = 0.0  # wait at least this long afterwards: the fault's retries land in this scenario

    @property
    def window_s(self) -> float:
        return self.deliveries / self.rate_per_s


def plan(*, deliveries: int, kills: int, quick: bool) -> list[Scenario]:
    """Full: the numbers the hardening issue asks for. Quick: the same faults, shorter (about 2-3 minutes)."""
    # Chatwoot's faults first, then the ones that hit the sidecar's own processes and stores, so
    # that a fault whose damage outlives its window (a dead rq scheduler, leased events) does not
    # hide what the next scenario would show.
    if quick:
        return [
            Scenario("baseline", 20, 5),
            Scenario("chatwoot 500/429 10s", 60, 5, faults.chatwoot_errors(10)),
            Scenario("chatwoot 502 after save", 30, 5, faults.after_save("502", 5), drain_s=8),
            Scenario("chatwoot hang after save", 30, 5, faults.after_save("hang", 2), drain_s=32),
            Scenario("postgres down 10s", 100, 5, faults.stop_postgres(10)),
            Scenario("redis restart", 50, 5, faults.restart_redis(2)),
            Scenario(f"worker kill -9 x{kills}", deliveries, 10, faults.kill_worker(kills)),
        ]
    return [
        Scenario("baseline", 100, 10),
        Scenario("chatwoot 500/429 60s", 800, 10, faults.chatwoot_errors(60)),
        Scenario("chatwoot 502 after save", 100, 5, faults.after_save("502", 10), drain_s=8),
        Scenario("chatwoot hang after save", 100, 5, faults.after_save("hang", 3), drain_s=32),
        Scenario("postgres down 30s", 600, 10, faults.stop_postgres(30)),
        Scenario("redis restart", 300, 10, faults.restart_redis(3)),
        Scenario(f"worker kill -9 x{kills}", deliveries, 20, faults.kill_worker(kills)),
    ]
