"""``python -m neuron_guard``: the ``neuron-guard`` command."""

from __future__ import annotations

from ._cli import entrypoint

if __name__ == "__main__":
    entrypoint()
