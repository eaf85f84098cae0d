"""Module-level guarded objects, so pickle can find them by reference."""

from __future__ import annotations

from neuron_guard import tier


@tier("beta", name="tests.pickle_targets.beta_function")
def beta_function(x: int) -> int:
    return x


@tier("beta", name="tests.pickle_targets.BetaClass")
class BetaClass:
    def __init__(self, value: int) -> None:
        self.value = value
