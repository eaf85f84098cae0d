"""neuron_guard, shown on the embedded Neuron tier table.

Runs small programs in fresh interpreters against stand-in modules shaped like the Neuron
SDK (the real packages cannot be installed from PyPI; see tests/fixtures/standin_sdk), once
per scenario: development (warn), production (strict), opt-ins, a preview package, and a
library author's own ``@tier("beta")`` API.

    python examples/demo.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "tests" / "fixtures" / "standin_sdk"

TRAIN_SCRIPT = """
import torch_neuronx
from torch_neuronx.experimental.profiler import profile

model = torch_neuronx.trace(lambda x: x, example_inputs=[1])
with profile(port=9012):                      # experimental (alpha), deprecated since SDK 2.28
    print("profiling a step")
print("training script finished")
"""

PACKAGE_SCRIPT = """
try:
    import neuronx_distributed_training      # a beta package
    print("using NxD Training")
except ImportError as exc:                    # PreviewImportError is an ImportError
    print(f"fallback path: {type(exc).__name__}: {exc.name}")
"""

LIBRARY_SCRIPT = """
import neuron_guard
from neuron_guard import tier

@tier("beta", replacement="mylib.attention")
def fused_attention(q, k, v):
    return q + k + v

print("result:", fused_attention(1, 2, 3), fused_attention(1, 2, 3))
for event in neuron_guard.events():
    print(f"event: {event.kind} {event.name} tier={event.tier} {event.action} x{event.count}")
"""

SCENARIOS = [
    (
        "1. development: warn once per preview item, the program runs",
        TRAIN_SCRIPT,
        {"NEURON_GUARD": "warn"},
    ),
    (
        "2. production: NEURON_GUARD=strict stops before preview code runs",
        TRAIN_SCRIPT,
        {"NEURON_GUARD": "strict"},
    ),
    (
        "3. production with an explicit opt-in for the profiler",
        TRAIN_SCRIPT,
        {
            "NEURON_GUARD": "strict",
            "NEURON_GUARD_ALLOW": "api:torch_neuronx.experimental.profiler.*",
        },
    ),
    (
        "4. a beta package in strict mode: refused at import",
        PACKAGE_SCRIPT,
        {"NEURON_GUARD": "strict"},
    ),
    ("5. a library author's @tier('beta') API, in development", LIBRARY_SCRIPT, {}),
    ("6. the same in strict mode", LIBRARY_SCRIPT, {"NEURON_GUARD": "strict"}),
]


def run(title: str, code: str, env_extra: dict[str, str]) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEURON_GUARD")}
    env["PYTHONPATH"] = os.pathsep.join([str(STANDIN), env.get("PYTHONPATH", "")])
    env.update(env_extra)
    shown = " ".join(f"{k}={v}" for k, v in env_extra.items()) or "(no NEURON_GUARD variable)"
    print(f"\n=== {title}\n    $ {shown} python train.py")
    # the guard comes from the installed neuron_guard.pth start-up file: the
    # programs above never `import neuron_guard` unless they use @tier
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in proc.stdout.splitlines():
        print(f"    | {line}")
    for line in proc.stderr.splitlines():
        if line.startswith(("Traceback", "  File", "    ")):
            continue  # keep the demo short: the error line is what matters
        print(f"    ! {textwrap.shorten(line, 400)}")
    print(f"    exit status {proc.returncode}")
    return proc.returncode


def main() -> int:
    expected = [0, 1, 0, 0, 0, 1]
    got = [run(title, code, env) for title, code, env in SCENARIOS]
    if got != expected:
        print(f"\nunexpected exit statuses {got}, expected {expected}", file=sys.stderr)
        return 1
    print("\nAll scenarios behaved as documented; `neuron-guard explain NAME` says more.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
