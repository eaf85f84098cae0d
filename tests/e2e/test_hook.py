"""The import hook on stand-in SDK packages, in real processes (.pth start-up and import)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import FIXTURES

TABLE = str(FIXTURES / "tables" / "standin.toml")


def env(**extra: str) -> dict[str, str]:
    return {"NEURON_GUARD_TABLES": TABLE, **extra}


class TestStrictWithoutImportingTheGuard:
    """Production: NEURON_GUARD=strict and no `import neuron_guard` in the program."""

    def test_function_and_its_reexports_raise(self, run_python) -> None:
        """The API raises wherever it is reached: defining module, package, from-import."""
        r = run_python(
            """
            import sys
            import torch_neuronx
            from torch_neuronx.experimental import set_neuron_cores
            for label, fn in [
                ("module", torch_neuronx.experimental.set_neuron_cores),
                ("package", torch_neuronx.set_neuron_cores),
                ("from-import", set_neuron_cores),
            ]:
                try:
                    fn("model")
                    print(label, "ran")
                except RuntimeError as exc:
                    print(label, type(exc).__name__, exc.name)
            print("guard imported by the .pth:", "neuron_guard" in sys.modules)
            """,
            env=env(NEURON_GUARD="strict"),
        )
        assert r.returncode == 0, r.stderr
        name = "torch_neuronx.experimental.set_neuron_cores"
        assert f"module PreviewError {name}" in r.stdout
        assert f"package PreviewError {name}" in r.stdout
        assert f"from-import PreviewError {name}" in r.stdout
        assert "guard imported by the .pth: True" in r.stdout

    def test_uncaught_error_stops_the_program(self, run_python) -> None:
        """An uncaught PreviewError ends the program with status 1 and the opt-in on stderr."""
        r = run_python(
            """
            import torch_neuronx
            torch_neuronx.move_trace_to_device("m", 0)
            print("unreachable")
            """,
            env=env(NEURON_GUARD="strict"),
        )
        assert r.returncode == 1
        assert "unreachable" not in r.stdout
        assert "alpha API 'torch_neuronx.xla_impl.trace.move_trace_to_device'" in r.stderr
        assert (
            "NEURON_GUARD_ALLOW=api:torch_neuronx.xla_impl.trace.move_trace_to_device" in r.stderr
        )

    def test_allowed_items_run(self, run_python) -> None:
        """NEURON_GUARD_ALLOW opts in by exact name or glob; the rest still raises."""
        r = run_python(
            """
            import torch_neuronx
            print(torch_neuronx.set_neuron_cores("m", 0, 1))
            try:
                torch_neuronx.move_trace_to_device("m", 0)
            except RuntimeError as exc:
                print("blocked", exc.name)
            """,
            env=env(NEURON_GUARD="strict", NEURON_GUARD_ALLOW="api:torch_neuronx.experimental.*"),
        )
        assert r.returncode == 0, r.stderr
        assert "('m', 0, 1)" in r.stdout
        assert "blocked torch_neuronx.xla_impl.trace.move_trace_to_device" in r.stdout

    def test_nothing_happens_when_unset(self, run_python) -> None:
        """With NEURON_GUARD unset the .pth file imports nothing and guards nothing."""
        r = run_python(
            """
            import sys
            import torch_neuronx
            torch_neuronx.move_trace_to_device("m", 0)
            print(sorted(m for m in sys.modules if m.startswith(("neuron_guard", "wrapt"))))
            """,
            env=env(),
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "[]"
        assert r.stderr == ""

    def test_unrelated_program_does_not_import_wrapt(self, run_python) -> None:
        """A strict process that imports nothing guarded never pays for wrapt or the table."""
        r = run_python(
            """
            import sys, json, email.parser
            print(sorted(m for m in sys.modules if m.startswith("wrapt")))
            print("neuron_guard._embedded_table" in sys.modules)
            """,
            env=env(NEURON_GUARD="strict"),
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[:2] == ["[]", "False"]


class TestWarnMode:
    def test_warns_once_per_item_at_the_callers_line(self, run_python) -> None:
        """Each preview API warns once, pointing at the user's line; counts are exact."""
        r = run_python(
            """
            import neuron_guard
            import torch_neuronx
            for _ in range(3):
                torch_neuronx.set_neuron_cores("m")
            events = [e for e in neuron_guard.events() if e.name.endswith("set_neuron_cores")]
            print([(e.action, e.count, e.line) for e in events])
            """,
            env=env(),
        )
        assert r.returncode == 0, r.stderr
        assert "[('warn', 3, 5)]" in r.stdout
        assert r.stderr.count("BetaWarning") == 1
        assert (
            "prog.py:5: BetaWarning: beta API 'torch_neuronx.experimental.set_neuron_cores'"
            in r.stderr
        )
        assert "use 'torch_neuronx.set_neuron_cores' instead" in r.stderr

    def test_modules_imported_before_the_guard_are_patched(self, run_python) -> None:
        """Importing the SDK first and the guard second still guards it."""
        r = run_python(
            """
            import torch_neuronx
            from torch_neuronx.experimental import set_neuron_cores as early
            import neuron_guard
            neuron_guard.configure(mode="strict")
            try:
                torch_neuronx.set_neuron_cores("m")
            except neuron_guard.PreviewError:
                print("patched at once")
            print("early binding unguarded:", early("m") == ("m", -1, -1))
            """,
            env=env(),
        )
        assert r.returncode == 0, r.stderr
        assert "patched at once" in r.stdout
        assert "early binding unguarded: True" in r.stdout


class TestWhatGetsWrapped:
    def test_c_callable(self, run_python) -> None:
        """A C-implemented callable is guarded where the table names it, returns the same."""
        r = run_python(
            """
            import zlib, inspect
            import neuron_guard, torch_neuronx
            neuron_guard.configure(mode="strict")
            try:
                torch_neuronx.crc32(b"abc")
            except neuron_guard.PreviewError as exc:
                print("raised", exc.name)
            with neuron_guard.allow("api:torch_neuronx.crc32"):
                print(torch_neuronx.crc32(b"abc") == zlib.crc32(b"abc"))
            print("zlib itself untouched:", zlib.crc32 is inspect.unwrap(torch_neuronx.crc32))
            """,
            env=env(),
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[:3] == [
            "raised torch_neuronx.crc32",
            "True",
            "zlib itself untouched: True",
        ]

    def test_class_keeps_isinstance_pickling_and_methods(self, run_python) -> None:
        """A guarded class stays the same class object."""
        r = run_python(
            """
            import pickle, warnings
            warnings.simplefilter("ignore")
            import neuron_guard
            from torch_neuronx.experimental.profiler import profile
            import torch_neuronx.experimental.profiler as mod
            p = profile(port=1)
            q = pickle.loads(pickle.dumps(p))
            print(isinstance(p, profile), mod.profile is profile, q.port, p.start())
            print([e.count for e in neuron_guard.events() if e.name.endswith("profiler.profile")])
            """,
            env=env(),
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[:2] == ["True True 1 started", "[1]"]

    def test_reexports_share_one_guard(self, run_python) -> None:
        """The same object under two names is wrapped once, never twice."""
        r = run_python(
            """
            import inspect, neuron_guard, torch_neuronx
            from torch_neuronx.xla_impl import trace as impl
            a, b = torch_neuronx.move_trace_to_device, impl.move_trace_to_device
            print(a is b, inspect.unwrap(a) is not a, getattr(a.__wrapped__, "__wrapped__", None))
            neuron_guard.install()
            print(torch_neuronx.move_trace_to_device is a)
            """,
            env=env(),
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[:2] == ["True True None", "True"]

    def test_argument_entry_fires_only_for_a_non_default_value(self, run_python) -> None:
        """inline_weights_to_neff=False fires; the default or no argument does not."""
        r = run_python(
            """
            import inspect, neuron_guard, torch_neuronx
            neuron_guard.configure(mode="strict")
            print(torch_neuronx.trace("f", 1)["inline_weights_to_neff"])
            print(torch_neuronx.trace("f", 1, inline_weights_to_neff=True)["inline_weights_to_neff"])
            try:
                torch_neuronx.trace("f", 1, inline_weights_to_neff=False)
            except neuron_guard.PreviewError as exc:
                print("raised", exc.name)
            print(list(inspect.signature(torch_neuronx.trace).parameters)[:2])
            """,
            env=env(),
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[:4] == [
            "True",
            "True",
            "raised torch_neuronx.trace:inline_weights_to_neff",
            "['func', 'example_inputs']",
        ]

    def test_argument_bound_by_position_or_keyword(self, run_python) -> None:
        """An argument entry fires whether the argument is passed by position or keyword."""
        r = run_python(
            """
            import neuron_guard, torch_neuronx
            neuron_guard.configure(mode="strict")
            for args, kwargs in [((), {}), ((0,), {}), ((0, 2), {}), ((), {"nc_count": 2}), ((0,), {"nc_count": -1})]:
                try:
                    with torch_neuronx.neuron_cores_context(*args, **kwargs):
                        print("ran", args, kwargs)
                except neuron_guard.PreviewError as exc:
                    print("raised", args, kwargs, exc.name)
            """,
            # the embedded table classifies the function itself: allow it, not its argument
            env=env(NEURON_GUARD_ALLOW="api:torch_neuronx.experimental.neuron_cores_context"),
        )
        assert r.returncode == 0, r.stderr
        name = "torch_neuronx.experimental.neuron_cores_context:nc_count"
        assert r.stdout.split("\n")[:5] == [
            "ran () {}",
            "ran (0,) {}",
            f"raised (0, 2) {{}} {name}",
            f"raised () {{'nc_count': 2}} {name}",
            "ran (0,) {'nc_count': -1}",
        ]

    def test_missing_target_is_skipped(self, run_python) -> None:
        """An entry naming something the installed version lacks never breaks the import."""
        r = run_python(
            """
            import torch_neuronx.experimental as ex
            print(hasattr(ex, "not_in_this_version"), ex.multicore_context is not None)
            """,
            env=env(NEURON_GUARD="strict"),
        )
        assert r.returncode == 0, r.stderr
        assert "False True" in r.stdout


class TestPackages:
    def test_strict_refuses_before_the_body_runs(self, run_python, tmp_path: Path) -> None:
        """A preview package raises PreviewImportError from the finder; its body never runs."""
        table = tmp_path / "pkg.toml"
        table.write_text(
            '[[package]]\nname = "neuronx-distributed-inference"\n'
            'module = "neuronx_distributed_inference"\ntier = "beta"\n'
        )
        mark = tmp_path / "mark.txt"
        r = run_python(
            """
            try:
                import neuronx_distributed_inference
            except ImportError as exc:
                print(type(exc).__name__, exc.name)
            """,
            env={
                "NEURON_GUARD": "strict",
                "NEURON_GUARD_TABLES": str(table),
                "STANDIN_MARK": str(mark),
            },
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "PreviewImportError neuronx_distributed_inference"
        assert not mark.exists()

    def test_importerror_fallback_keeps_working(self, run_python) -> None:
        """`try: import x except ImportError:` fallbacks see an ImportError."""
        r = run_python(
            """
            try:
                import neuronx_distributed_training as ndt
            except ImportError:
                ndt = None
            print("fallback" if ndt is None else "imported")
            """,
            env=env(NEURON_GUARD="strict"),
        )
        assert r.returncode == 0, r.stderr
        assert "fallback" in r.stdout

    def test_allowed_package_and_its_submodules_import(self, run_python) -> None:
        """package:NAME opts the package in, submodules included."""
        r = run_python(
            """
            import neuronx_distributed_inference.models.llama.modeling_llama as m
            import neuronx_distributed_training
            print(m.NeuronLlamaForCausalLM("p").model_path, neuronx_distributed_training.BODY_RAN)
            """,
            env=env(
                NEURON_GUARD="strict",
                NEURON_GUARD_ALLOW="package:neuronx-distributed-training,package:neuronx-distributed-inference",
            ),
        )
        assert r.returncode == 0, r.stderr
        assert "p True" in r.stdout

    def test_warn_mode_warns_once_and_imports(self, run_python) -> None:
        """In warn mode the package imports, with one BetaWarning at the import line."""
        r = run_python(
            """
            import neuronx_distributed_training
            import neuronx_distributed_training
            print(neuronx_distributed_training.BODY_RAN)
            """,
            env=env(NEURON_GUARD="warn"),
        )
        assert r.returncode == 0, r.stderr
        assert r.stderr.count("BetaWarning") == 1
        assert "prog.py:2: BetaWarning: beta package 'neuronx-distributed-training'" in r.stderr

    def test_missing_package_is_a_plain_module_not_found(self, run_python, tmp_path: Path) -> None:
        """A preview package that is not installed gives the usual ModuleNotFoundError."""
        table = tmp_path / "t.toml"
        table.write_text('[[package]]\nname = "no-such-neuron-pkg"\ntier = "beta"\n')
        r = run_python(
            """
            try:
                import no_such_neuron_pkg
            except ImportError as exc:
                print(type(exc).__name__)
            """,
            env={"NEURON_GUARD": "warn", "NEURON_GUARD_TABLES": str(table)},
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "ModuleNotFoundError"
        assert "BetaWarning" not in r.stderr

    @pytest.mark.parametrize(("version", "blocked"), [("0.2.0", True), ("0.5.9230", False)])
    def test_versions_decide(self, run_python, tmp_path: Path, version: str, blocked: bool) -> None:
        """The embedded entry: NxD Inference is beta before 0.3.5591 and stable from it."""
        dist = tmp_path / f"neuronx_distributed_inference-{version}.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: neuronx-distributed-inference\nVersion: {version}\n"
        )
        r = run_python(
            """
            try:
                import neuronx_distributed_inference
                print("imported")
            except ImportError as exc:
                print("blocked", exc.name)
            """,
            env={"NEURON_GUARD": "strict"},
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == (
            "blocked neuronx_distributed_inference" if blocked else "imported"
        )


class TestProcesses:
    @pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
    def test_multiprocessing_children_are_guarded(self, run_python, method: str) -> None:
        """Pool workers of every start method are guarded (spawned ones through the .pth)."""
        r = run_python(
            f"""
            import multiprocessing as mp

            def work(_):
                import torch_neuronx
                try:
                    torch_neuronx.set_neuron_cores("m")
                    return "ran"
                except RuntimeError as exc:
                    return type(exc).__name__

            if __name__ == "__main__":
                with mp.get_context("{method}").Pool(2) as pool:
                    print(pool.map(work, range(2)))
            """,
            env=env(NEURON_GUARD="strict"),
        )
        assert r.returncode == 0, r.stderr
        assert "['PreviewError', 'PreviewError']" in r.stdout

    def test_launcher_children_are_guarded(self, run_python, tmp_path: Path) -> None:
        """A torchrun-style launcher's Python workers inherit the guard through the environment."""
        (tmp_path / "worker.py").write_text(
            "import os, torch_neuronx\n"
            "try:\n    torch_neuronx.set_neuron_cores('m')\n    print('ran', os.environ['RANK'])\n"
            "except RuntimeError as exc:\n    print(type(exc).__name__, os.environ['RANK'])\n"
        )
        r = run_python(
            f"""
            import os, subprocess, sys
            procs = [
                subprocess.Popen([sys.executable, {str(tmp_path / "worker.py")!r}],
                                 env={{**os.environ, "RANK": str(rank)}}, stdout=subprocess.PIPE, text=True)
                for rank in range(2)
            ]
            print(sorted(p.communicate(timeout=60)[0].strip() for p in procs))
            """,
            env=env(NEURON_GUARD="strict"),
        )
        assert r.returncode == 0, r.stderr
        assert "['PreviewError 0', 'PreviewError 1']" in r.stdout

    def test_concurrent_imports_and_first_uses(self, run_python) -> None:
        """Threads importing and using a guarded module at once: one warning, exact counts."""
        r = run_python(
            """
            import threading, warnings
            import neuron_guard
            warnings.simplefilter("always")
            caught = []
            warnings.showwarning = lambda *a, **k: caught.append(a[0])
            barrier = threading.Barrier(8)

            def work():
                barrier.wait()
                from torch_neuronx.experimental import set_neuron_cores
                for _ in range(100):
                    set_neuron_cores("m")

            threads = [threading.Thread(target=work) for _ in range(8)]
            for t in threads: t.start()
            for t in threads: t.join(timeout=60)
            print(all(not t.is_alive() for t in threads), len(caught))
            print([e.count for e in neuron_guard.events() if e.name.endswith("set_neuron_cores")])
            """,
            env=env(),
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[:2] == ["True 1", "[800]"]


class TestTableSources:
    def test_missing_table_fails_closed_in_strict(self, run_python, tmp_path: Path) -> None:
        """Strict: a table file that does not exist stops the process at start-up."""
        missing = tmp_path / "nope.toml"
        r = run_python(
            "print('program ran')\n",
            env={"NEURON_GUARD": "strict", "NEURON_GUARD_TABLES": str(missing)},
        )
        assert r.returncode == 2
        assert "program ran" not in r.stdout
        assert f"cannot read tier table {str(missing)!r}" in r.stderr

    def test_bad_table_fails_open_in_warn(self, run_python, tmp_path: Path) -> None:
        """Warn: a bad table is one clear stderr line and the program goes on."""
        bad = tmp_path / "bad.toml"
        bad.write_text('[[api]]\nname = "x.y"\ntierr = "beta"\n')
        r = run_python(
            "print('program ran')\n", env={"NEURON_GUARD": "warn", "NEURON_GUARD_TABLES": str(bad)}
        )
        assert r.returncode == 0
        assert "program ran" in r.stdout
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1
        assert "unknown key 'tierr'" in lines[0]
        assert "did you mean 'tier'?" in lines[0]
        assert str(bad) in lines[0]

    def test_pyproject_and_entry_point_tables_override_in_order(
        self, run_python, tmp_path: Path
    ) -> None:
        """Later sources override earlier ones: env tables < pyproject tables < entry points."""
        (tmp_path / "env.toml").write_text(
            '[[api]]\nname = "torch_neuronx.experimental.multicore_context"\ntier = "alpha"\n'
            '[[api]]\nname = "torch_neuronx.experimental.neuron_cores_context"\ntier = "alpha"\n'
        )
        (tmp_path / "pyproject.toml").write_text('[tool.neuron_guard]\ntables = ["proj.toml"]\n')
        (tmp_path / "proj.toml").write_text(
            '[[api]]\nname = "torch_neuronx.experimental.multicore_context"\ntier = "stable"\n'
            '[[api]]\nname = "torch_neuronx.experimental.neuron_cores_context"\ntier = "beta"\n'
        )
        pkg = tmp_path / "vendor_tables"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        (pkg / "extra.toml").write_text(
            '[[api]]\nname = "torch_neuronx.experimental.neuron_cores_context"\ntier = "stable"\n'
        )
        dist = tmp_path / "vendor_tables-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vendor-tables\nVersion: 1.0\n")
        (dist / "entry_points.txt").write_text(
            "[neuron_guard.tables]\nvendor = vendor_tables:extra.toml\n"
        )
        r = run_python(
            """
            import neuron_guard, torch_neuronx.experimental as ex
            with ex.multicore_context(): pass
            with ex.neuron_cores_context(): pass
            from neuron_guard._hook import current
            print([o for o, n in current().table.sources])
            print("ok")
            """,
            env={"NEURON_GUARD": "strict", "NEURON_GUARD_TABLES": str(tmp_path / "env.toml")},
        )
        assert r.returncode == 0, r.stderr
        assert "ok" in r.stdout
        assert "entry point vendor = vendor_tables:extra.toml" in r.stdout
        assert str(tmp_path / "proj.toml") in r.stdout


class TestEmbeddedTableEndToEnd:
    """A sample of the embedded Neuron table's entries, on stand-ins shaped like the SDK."""

    def test_experimental_profiler_is_alpha_and_deprecated(self, run_python) -> None:
        """torch_neuronx.experimental.profiler.profile: alpha, deprecated since SDK 2.28."""
        r = run_python(
            """
            from torch_neuronx.experimental.profiler import profile
            try:
                profile()
            except RuntimeError as exc:
                print(type(exc).__name__, exc.tier, exc.name)
                print(exc)
            """,
            env={"NEURON_GUARD": "strict"},
        )
        assert r.returncode == 0, r.stderr
        first, message = r.stdout.strip().split("\n")
        assert first == "PreviewError alpha torch_neuronx.experimental.profiler.profile"
        assert "use 'torch.profiler.profile' instead" in message
        warn = run_python(
            "from torch_neuronx.experimental.profiler import profile\nprofile()\n",
            env={"NEURON_GUARD": "warn"},
        )
        assert warn.returncode == 0, warn.stderr
        assert "AlphaWarning" in warn.stderr
        assert (
            "NeuronDeprecationWarning: API 'torch_neuronx.experimental.profiler.profile' is deprecated since 2.28"
            in warn.stderr
        )

    def test_sdk_range_decides_with_the_installed_release(self, run_python) -> None:
        """The placement APIs were beta before SDK 2.25: with 2.25 installed they are not."""
        from ..conftest import FIXTURES

        code = """
            import torch_neuronx
            try:
                with torch_neuronx.experimental.neuron_cores_context(0, 1):
                    print("ran")
            except RuntimeError as exc:
                print(type(exc).__name__, exc.tier)
            """
        unknown = run_python(code, env={"NEURON_GUARD": "strict"})
        assert unknown.returncode == 0, unknown.stderr
        assert unknown.stdout.strip() == "PreviewError beta"  # release unknown: cautious
        sdk_225 = run_python(
            code,
            env={
                "NEURON_GUARD": "strict",
                "PYTHONPATH": str(FIXTURES / "standin_dists" / "sdk-2.25.0"),
            },
        )
        assert sdk_225.returncode == 0, sdk_225.stderr
        assert sdk_225.stdout.strip() == "ran"
        assert "deprecated since 2.25" in sdk_225.stderr
