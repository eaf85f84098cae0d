"""Inferring the installed Neuron SDK release from the embedded SDK manifest.

Every expectation below is a row of ``src/neuron_guard/data/sdk_manifest.csv`` (taken from
the Neuron documentation's release manifests).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from neuron_guard import _sdk
from neuron_guard._sdk import SdkRelease, infer_sdk_release, sdk_releases

SRC = Path(__file__).resolve().parents[2] / "src"


class TestSdkReleases:
    """The list of releases the manifest knows."""

    def test_oldest_first_in_numeric_order(self) -> None:
        """Releases sort as numbers (2.9.1 before 2.10.0), oldest first."""
        releases = sdk_releases()
        assert releases[0] == "1.10.0"
        assert releases[-1] == "2.32.0"
        assert releases.index("2.9.1") + 1 == releases.index("2.10.0")
        assert list(releases) == sorted(releases, key=lambda r: tuple(map(int, r.split("."))))

    def test_every_release_once(self) -> None:
        """75 distinct releases, none twice."""
        releases = sdk_releases()
        assert len(releases) == len(set(releases)) == 75
        assert "2.22.1" not in releases  # driver-only release: no package list


class TestExactMatch:
    """One release matches every installed Neuron package."""

    def test_single_package_shipped_once(self) -> None:
        """torch-neuronx 2.7.0.2.9.9357 shipped only in SDK 2.25.0."""
        release = infer_sdk_release({"torch-neuronx": "2.7.0.2.9.9357"})
        assert release.version == "2.25.0"
        assert release.exact is True
        assert release.candidates == ("2.25.0",)
        assert "2.25.0" in release.reason

    def test_packages_narrow_each_other(self) -> None:
        """torch-neuronx 1.13.1.1.16.0 (2.20.0-2.20.2) with neuronx-cc 2.15.141.0 is 2.20.1."""
        alone = infer_sdk_release({"torch-neuronx": "1.13.1.1.16.0"})
        assert alone.candidates == ("2.20.0", "2.20.1", "2.20.2")
        together = infer_sdk_release({"torch-neuronx": "1.13.1.1.16.0", "neuronx-cc": "2.15.141.0"})
        assert together.version == "2.20.1"
        assert together.exact is True
        assert dict(together.packages) == {
            "neuronx-cc": "2.15.141.0",
            "torch-neuronx": "1.13.1.1.16.0",
        }

    def test_names_are_canonicalised(self) -> None:
        """Distribution names match whatever their spelling (PEP 503)."""
        installed = {"Torch_Neuronx": "2.7.0.2.9.9357", "NeuronX.CC": "2.20.9961.0"}
        release = infer_sdk_release(installed)
        assert release.version == "2.25.0"
        assert release.exact is True
        assert set(release.packages) == {"torch-neuronx", "neuronx-cc"}

    def test_pep440_equal_spelling(self) -> None:
        """neuronx-cc 2.21.18209 is the manifest's 2.21.18209.0 (SDK 2.26.0)."""
        release = infer_sdk_release({"neuronx-cc": "2.21.18209"})
        assert release.version == "2.26.0"
        assert release.exact is True

    def test_local_label_of_installed_wheel_ignored(self) -> None:
        """The vllm-neuron wheel 0.24.0.1.1.0+e8242a9 is the manifest's 0.24.0.1.1.0."""
        release = infer_sdk_release({"vllm-neuron": "0.24.0.1.1.0+e8242a9"})
        assert release.version == "2.32.0"
        assert release.exact is True

    def test_unrelated_packages_ignored(self) -> None:
        """Distributions the manifest does not list do not change the answer."""
        release = infer_sdk_release({"numpy": "2.2.0", "torch-neuronx": "2.7.0.2.9.9357"})
        assert release.version == "2.25.0"
        assert "numpy" not in release.packages


class TestAmbiguous:
    """Several releases shipped the same versions."""

    def test_neuron_cc_shipped_in_many_releases(self) -> None:
        """neuron-cc 1.24.0.0 is in 22 releases: not exact, newest assumed."""
        release = infer_sdk_release({"neuron-cc": "1.24.0.0"})
        assert release.exact is False
        assert release.candidates[0] == "2.20.0"
        assert release.candidates[-1] == "2.32.0"
        assert len(release.candidates) == 22
        assert release.version == "2.32.0"
        assert "22 releases" in release.reason

    def test_prerelease_build(self) -> None:
        """The torch-neuronx 2.0 beta build 2.0.0.2.0.1b0 shipped in 2.15.1 to 2.17.0."""
        release = infer_sdk_release({"torch-neuronx": "2.0.0.2.0.1b0"})
        assert release.candidates == ("2.15.1", "2.15.2", "2.16.0", "2.16.1", "2.17.0")
        assert release.exact is False
        assert release.version == "2.17.0"

    def test_candidates_are_oldest_first(self) -> None:
        """Candidates come in SDK order."""
        release = infer_sdk_release({"neuronx-cc": "2.12.68.0"})
        assert release.candidates == ("2.16.1", "2.17.0")


class TestFrameworkPrefixed:
    """Versions ``<framework>.<neuron>`` are matched by membership, never by ``>=``."""

    def test_lower_framework_line_of_later_release(self) -> None:
        """2.6.0.2.10.13553 (SDK 2.26.0) sorts below 2.7.0.2.9.9357 (SDK 2.25.0)."""
        from packaging.version import Version

        later = infer_sdk_release({"torch-neuronx": "2.6.0.2.10.13553"})
        earlier = infer_sdk_release({"torch-neuronx": "2.7.0.2.9.9357"})
        assert Version("2.6.0.2.10.13553") < Version("2.7.0.2.9.9357")
        assert later.version == "2.26.0"
        assert earlier.version == "2.25.0"
        assert later.exact
        assert earlier.exact

    def test_hotfix_placed_within_its_framework_line(self) -> None:
        """An unlisted 2.6.0.2.9.x build sits after 2.6.0.2.9.9357 (2.25.0), not 2.26.0."""
        release = infer_sdk_release({"torch-neuronx": "2.6.0.2.9.9999"})
        assert release.exact is False
        assert release.candidates == ("2.25.0",)
        assert release.version == "2.25.0"
        assert "not in the SDK manifest" in release.reason

    def test_new_framework_line_compared_on_neuron_part(self) -> None:
        """A torch 2.10 build 2.10.0.2.16.5 is newer than the newest listed (2.15.x, 2.31)."""
        release = infer_sdk_release({"torch-neuronx": "2.10.0.2.16.5"})
        assert release.exact is False
        assert release.candidates == ("2.31.0", "2.31.1")

    def test_jax_neuronx_line(self) -> None:
        """jax-neuronx 0.6.1.1.0.3499 (jax 0.6.1) shipped only in SDK 2.25.0."""
        release = infer_sdk_release({"jax-neuronx": "0.6.1.1.0.3499"})
        assert release.version == "2.25.0"
        assert release.exact is True


class TestNothingOrUnknown:
    """Nothing Neuron installed, or versions the manifest does not know."""

    def test_nothing_installed(self) -> None:
        """No distributions: no release, no candidates."""
        release = infer_sdk_release({})
        assert release == SdkRelease(None, False, (), release.packages, release.reason)
        assert dict(release.packages) == {}
        assert "no Neuron package" in release.reason

    def test_only_non_neuron_builds(self) -> None:
        """torch-xla alone (also a non-Neuron package) does not mean Neuron is installed."""
        release = infer_sdk_release({"torch-xla": "2.1.0", "numpy": "1.26.4"})
        assert release.version is None
        assert release.candidates == ()

    def test_unparseable_version(self) -> None:
        """A version that is not PEP 440 and not listed matches nothing."""
        release = infer_sdk_release({"neuronx-cc": "not-a-version"})
        assert release.version is None
        assert release.exact is False
        assert release.candidates == ()
        assert dict(release.packages) == {"neuronx-cc": "not-a-version"}

    def test_unlisted_newer_compiler(self) -> None:
        """A neuronx-cc newer than any listed is placed at the newest release, inexactly."""
        release = infer_sdk_release({"neuronx-cc": "2.99.1.0"})
        assert release.version == "2.32.0"
        assert release.exact is False

    def test_mixed_releases(self) -> None:
        """neuronx-cc of 2.23.0 with torch-neuronx of 2.25.0: both are best, neither exact."""
        release = infer_sdk_release({"neuronx-cc": "2.18.121.0", "torch-neuronx": "2.7.0.2.9.9357"})
        assert release.exact is False
        assert release.candidates == ("2.23.0", "2.25.0")
        assert "different SDK releases" in release.reason

    def test_majority_wins_over_one_stray_package(self) -> None:
        """Two packages of 2.25.0 outweigh one of 2.23.0."""
        release = infer_sdk_release(
            {
                "neuronx-cc": "2.20.9961.0",
                "torch-neuronx": "2.7.0.2.9.9357",
                "neuronx-distributed": "0.12.12111",
            }
        )
        assert release.exact is False
        assert release.candidates == ("2.25.0",)
        assert "neuronx-distributed 0.12.12111" in release.reason


class TestInstalled:
    """Reading the environment through importlib.metadata."""

    def test_reads_installed_versions(self, run_python: Any) -> None:
        """Installed distributions (real .dist-info metadata) are looked up by manifest names."""
        from ..conftest import FIXTURES

        r = run_python(
            """
            from neuron_guard._sdk import installed_sdk_release
            release = installed_sdk_release()
            print(release.version, release.exact, sorted(release.packages))
            """,
            env={"PYTHONPATH": str(FIXTURES / "standin_dists" / "sdk-2.25.0")},
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[0] == (
            "2.25.0 True ['neuronx-cc', 'neuronx-distributed-inference', 'torch-neuronx']"
        )

    def test_cached(self) -> None:
        """The environment is read once per process."""
        assert _sdk.installed_sdk_release() is _sdk.installed_sdk_release()

    def test_import_is_light(self) -> None:
        """Importing the module loads neither csv, packaging nor importlib.metadata."""
        code = textwrap.dedent(
            """
            import sys
            before = set(sys.modules)
            import neuron_guard._sdk
            loaded = set(sys.modules) - before
            heavy = {"csv", "packaging", "packaging.version", "importlib.metadata"}
            print(sorted(heavy & loaded))
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONPATH": str(SRC)},
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == "[]"
