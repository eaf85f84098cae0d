"""Hardening suite: fuzzing, concurrency and faults. Bounded for CI (profile ``ci``).

``HYPOTHESIS_PROFILE=dev`` runs the fuzzers longer on a workstation.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=False,
    print_blob=True,
)
settings.register_profile("dev", max_examples=3000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
