"""The public surface: a snapshot, so that changes to it are deliberate."""

from __future__ import annotations

import neuron_guard


def test_all_snapshot() -> None:
    """__all__ lists exactly the public names, alphabetised."""
    assert neuron_guard.__all__ == [
        "AlphaWarning",
        "BetaWarning",
        "ConfigError",
        "Event",
        "Installation",
        "Kind",
        "Mode",
        "NeuronDeprecationWarning",
        "PreviewError",
        "PreviewImportError",
        "PreviewWarning",
        "Settings",
        "Tier",
        "__version__",
        "allow",
        "configure",
        "events",
        "install",
        "tier",
    ]
    for name in neuron_guard.__all__:
        assert getattr(neuron_guard, name) is not None


def test_public_classes_show_the_public_module() -> None:
    """Reprs name neuron_guard, not the private module."""
    for name in ("PreviewError", "ConfigError", "BetaWarning", "Tier", "Event", "allow"):
        assert getattr(neuron_guard, name).__module__ == "neuron_guard"


def test_error_hierarchy() -> None:
    """The classes of DESIGN.md, with the bases it names."""
    assert issubclass(neuron_guard.AlphaWarning, neuron_guard.PreviewWarning)
    assert issubclass(neuron_guard.BetaWarning, neuron_guard.PreviewWarning)
    assert issubclass(neuron_guard.PreviewWarning, UserWarning)
    assert issubclass(neuron_guard.PreviewError, RuntimeError)
    assert issubclass(neuron_guard.PreviewImportError, neuron_guard.PreviewError)
    assert issubclass(neuron_guard.PreviewImportError, ImportError)
    assert issubclass(neuron_guard.ConfigError, ValueError)
    assert issubclass(neuron_guard.NeuronDeprecationWarning, FutureWarning)


def test_version_is_served_lazily() -> None:
    """__version__ is a PEP 440 string."""
    from packaging.version import Version

    assert Version(neuron_guard.__version__)


def test_tier_kind_mode_compare_as_strings() -> None:
    """Tier, Kind and Mode members equal their lower-case names, and tiers are ordered."""
    assert neuron_guard.Tier.BETA == "beta"
    assert neuron_guard.Kind.API == "api"
    assert neuron_guard.Mode.STRICT == "strict"
    assert neuron_guard.Tier.ALPHA < neuron_guard.Tier.BETA < neuron_guard.Tier.STABLE
    assert not neuron_guard.Tier.STABLE.preview
    assert neuron_guard.Tier("beta") is neuron_guard.Tier.BETA
