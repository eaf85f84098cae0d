"""Typed usage of the public API: mypy --strict must accept this file (run from .ci/run)."""

from __future__ import annotations

import neuron_guard
from neuron_guard import PreviewError, Tier, allow, configure, events, tier


@tier("beta", replacement="stable_api")
def preview_api(x: int) -> int:
    return x


@tier(Tier.ALPHA, name="mylib.Experimental")
class Experimental:
    def __init__(self, n: int) -> None:
        self.n = n


def use() -> int:
    settings = configure(mode="warn", allow=["api:mylib.*"])
    assert settings.mode == "warn"
    with allow("beta"):
        total: int = preview_api(1) + Experimental(2).n
    try:
        preview_api(2)
    except PreviewError as exc:
        reason: str = exc.remedy
        assert reason
    for ev in events():
        total += ev.count
    handle: neuron_guard.Installation = neuron_guard.install()
    assert handle.active in (True, False)
    return total
