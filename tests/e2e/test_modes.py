"""Modes, opt-ins, filters, locking and start-up rules, each in a fresh interpreter."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

LIB = """
import neuron_guard
from neuron_guard import tier

@tier("beta", name="demo.beta_fn")
def beta_fn():
    return "beta ran"

@tier("alpha", name="demo.alpha_fn")
def alpha_fn():
    return "alpha ran"
"""


def program(body: str) -> str:
    return LIB + textwrap.dedent(body)


class TestModes:
    def test_unset_means_warn_once(self, run_python) -> None:
        """Without NEURON_GUARD, importing warns once per item and runs the code."""
        r = run_python(program("print(beta_fn(), beta_fn())\n"))
        assert r.returncode == 0, r.stderr
        assert "beta ran beta ran" in r.stdout
        assert r.stderr.count("BetaWarning") == 1
        assert "prog.py:" in r.stderr  # attributed to the caller's file

    def test_warn_explicit(self, run_python) -> None:
        """NEURON_GUARD=warn behaves as unset."""
        r = run_python(program("print(alpha_fn())\n"), env={"NEURON_GUARD": "warn"})
        assert r.returncode == 0
        assert "AlphaWarning: alpha API 'demo.alpha_fn' is a developer preview" in r.stderr

    def test_off_installs_nothing(self, run_python) -> None:
        """NEURON_GUARD=off: @tier returns the function itself, nothing warns."""
        r = run_python(
            program("print(hasattr(beta_fn, '__wrapped__'), beta_fn())\n"),
            env={"NEURON_GUARD": "off"},
        )
        assert r.returncode == 0
        assert r.stdout.strip() == "False beta ran"
        assert "Warning" not in r.stderr

    def test_off_is_for_the_whole_process(self, run_python) -> None:
        """Objects decorated while off stay unguarded after configure(mode='strict')."""
        r = run_python(
            program("neuron_guard.configure(mode='strict')\nprint(beta_fn())\n"),
            env={"NEURON_GUARD": "off"},
        )
        assert r.returncode == 0, r.stderr
        assert "beta ran" in r.stdout

    def test_strict_raises_before_the_body(self, run_python) -> None:
        """Strict: PreviewError with the opt-in in the message, exit status 1."""
        r = run_python(program("print(beta_fn())\n"), env={"NEURON_GUARD": "strict"})
        assert r.returncode == 1
        assert "beta ran" not in r.stdout
        assert "neuron_guard.PreviewError: beta API 'demo.beta_fn' is not allowed" in r.stderr
        assert "NEURON_GUARD_ALLOW=api:demo.beta_fn" in r.stderr
        assert "During handling" not in r.stderr

    @pytest.mark.parametrize("value", ["STRICT", " strict ", "Strict"])
    def test_mode_values_are_case_insensitive(self, run_python, value: str) -> None:
        """Mode names ignore case and surrounding blanks."""
        r = run_python(program("beta_fn()\n"), env={"NEURON_GUARD": value})
        assert r.returncode == 1
        assert "PreviewError" in r.stderr

    @pytest.mark.parametrize("value", ["stict", "1", "true", "production", "warn,strict"])
    def test_typo_fails_closed_at_import(self, run_python, value: str) -> None:
        """Anything but off/warn/strict is a ConfigError at import naming the valid values."""
        r = run_python(program("print(beta_fn())\n"), env={"NEURON_GUARD": value})
        assert r.returncode != 0
        assert "beta ran" not in r.stdout
        assert f"invalid mode {value!r} in NEURON_GUARD" in r.stderr
        assert "'off', 'warn', 'strict'" in r.stderr

    def test_typo_stops_a_program_that_never_imports_the_guard(self, run_python) -> None:
        """The .pth start-up turns a bad mode into exit 2 with one line on stderr."""
        r = run_python("print('program ran')\n", env={"NEURON_GUARD": "strikt"})
        assert r.returncode == 2
        assert "program ran" not in r.stdout
        assert r.stderr.strip().splitlines() == [
            "neuron_guard: ConfigError: invalid mode 'strikt' in NEURON_GUARD; valid values are "
            "'off', 'warn', 'strict' (unset means 'warn')"
        ]


class TestAllowFromEnvironment:
    @pytest.mark.parametrize(
        ("allow", "beta_ok", "alpha_ok"),
        [
            ("beta", True, False),
            ("alpha", True, True),
            ("BETA", True, False),
            ("api:demo.*", True, True),
            ("api:demo.beta_fn", True, False),
            ("demo.alpha_fn", False, True),
            ("demo.*_fn", True, True),
            ("env:demo.*,flag:demo.*,package:demo.*,feature:demo.*,model:demo.*", False, False),
            (" api:demo.beta_fn , , api:demo.alpha_fn ", True, True),
        ],
    )
    def test_allow_patterns(self, run_python, allow: str, beta_ok: bool, alpha_ok: bool) -> None:
        """NEURON_GUARD_ALLOW accepts every form of DESIGN.md, comma-separated."""
        r = run_python(
            program(
                """
                for fn in (beta_fn, alpha_fn):
                    try:
                        print(fn())
                    except neuron_guard.PreviewError as exc:
                        print("blocked", exc.name)
                """
            ),
            env={"NEURON_GUARD": "strict", "NEURON_GUARD_ALLOW": allow},
        )
        assert r.returncode == 0, r.stderr
        lines = r.stdout.split("\n")
        assert lines[0] == ("beta ran" if beta_ok else "blocked demo.beta_fn")
        assert lines[1] == ("alpha ran" if alpha_ok else "blocked demo.alpha_fn")

    @pytest.mark.parametrize(
        ("allow", "fragment"),
        [
            ("api:", "has nothing after 'api:'"),
            ("apis:demo.x", "unknown prefix 'apis:'"),
            ("beta,env:", "has nothing after 'env:'"),
        ],
    )
    def test_bad_pattern_is_a_config_error(self, run_python, allow: str, fragment: str) -> None:
        """A bad pattern fails at import naming the pattern, its origin and the valid prefixes."""
        r = run_python(program("beta_fn()\n"), env={"NEURON_GUARD_ALLOW": allow})
        assert r.returncode != 0
        assert "ConfigError" in r.stderr
        assert fragment in r.stderr
        assert "env NEURON_GUARD_ALLOW" in r.stderr


class TestWarningsFilters:
    def test_dash_w_error_on_our_category(self, run_python) -> None:
        """python -W error::neuron_guard.BetaWarning turns the first use into an exception."""
        r = run_python(
            program(
                """
                for _ in range(2):
                    try:
                        beta_fn()
                    except neuron_guard.BetaWarning as exc:
                        print("raised", type(exc).__name__)
                print(alpha_fn())
                """
            ),
            python_args=["-W", "error::neuron_guard.BetaWarning"],
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[:3] == ["raised BetaWarning", "raised BetaWarning", "alpha ran"]

    def test_pythonwarnings_ignore(self, run_python) -> None:
        """PYTHONWARNINGS=ignore::neuron_guard.PreviewWarning silences both tiers."""
        r = run_python(
            program("print(beta_fn(), alpha_fn())\n"),
            env={"PYTHONWARNINGS": "ignore::neuron_guard.PreviewWarning"},
        )
        assert r.returncode == 0
        assert "BetaWarning" not in r.stderr
        assert "AlphaWarning" not in r.stderr

    def test_dedupe_off_warns_every_use(self, run_python) -> None:
        """NEURON_GUARD_DEDUPE=off warns on every use, even from one line."""
        r = run_python(
            program("for _ in range(3):\n    beta_fn()\n"),
            env={"NEURON_GUARD_DEDUPE": "off"},
        )
        assert r.returncode == 0
        assert r.stderr.count("BetaWarning") == 3


class TestPyproject:
    def test_mode_and_allow_from_pyproject(self, run_python, tmp_path: Path) -> None:
        """[tool.neuron_guard] in the nearest pyproject.toml sets mode and allow patterns."""
        (tmp_path / "pyproject.toml").write_text(
            '[tool.neuron_guard]\nmode = "strict"\nallow = ["api:demo.beta_fn"]\n'
        )
        sub = tmp_path / "nested" / "dir"
        sub.mkdir(parents=True)
        r = run_python(
            program(
                """
                print(beta_fn())
                try:
                    alpha_fn()
                except neuron_guard.PreviewError:
                    print("alpha blocked")
                """
            ),
            cwd=sub,
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[:2] == ["beta ran", "alpha blocked"]

    def test_environment_overrides_pyproject(self, run_python, tmp_path: Path) -> None:
        """NEURON_GUARD wins over [tool.neuron_guard] mode."""
        (tmp_path / "pyproject.toml").write_text('[tool.neuron_guard]\nmode = "strict"\n')
        r = run_python(program("print(beta_fn())\n"), env={"NEURON_GUARD": "warn"})
        assert r.returncode == 0, r.stderr
        assert "beta ran" in r.stdout

    def test_unknown_key_is_a_config_error(self, run_python, tmp_path: Path) -> None:
        """A typo in [tool.neuron_guard] names the file and the key."""
        (tmp_path / "pyproject.toml").write_text('[tool.neuron_guard]\nmodes = "strict"\n')
        r = run_python(program("beta_fn()\n"))
        assert r.returncode != 0
        assert "unknown key 'modes' in [tool.neuron_guard]" in r.stderr
        assert str(tmp_path / "pyproject.toml") in r.stderr


class TestLock:
    def test_strict_lock_refuses_widening(self, run_python) -> None:
        """Under NEURON_GUARD_LOCK=1, configure() and allow() cannot widen strict mode."""
        r = run_python(
            program(
                """
                for attempt in (
                    lambda: neuron_guard.configure(mode="warn"),
                    lambda: neuron_guard.configure(allow=["beta"]),
                    lambda: neuron_guard.allow("beta").__enter__(),
                ):
                    try:
                        attempt()
                        print("widened")
                    except neuron_guard.ConfigError as exc:
                        print("refused", "NEURON_GUARD_LOCK" in str(exc))
                try:
                    beta_fn()
                except neuron_guard.PreviewError:
                    print("still strict")
                print(sorted(e.action for e in neuron_guard.events()))
                """
            ),
            env={"NEURON_GUARD": "strict", "NEURON_GUARD_LOCK": "1"},
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[:4] == ["refused True"] * 3 + ["still strict"]
        assert "['raise', 'refused', 'refused', 'refused']" in r.stdout

    def test_lock_allows_narrowing_and_known_patterns(self, run_python) -> None:
        """Under the lock, going stricter and repeating an env pattern are fine."""
        r = run_python(
            program(
                """
                with neuron_guard.allow("api:demo.beta_fn"):
                    print(beta_fn())
                neuron_guard.configure(mode="strict")
                try:
                    alpha_fn()
                except neuron_guard.PreviewError:
                    print("alpha blocked")
                """
            ),
            env={"NEURON_GUARD_LOCK": "1", "NEURON_GUARD_ALLOW": "api:demo.beta_fn"},
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[:2] == ["beta ran", "alpha blocked"]

    def test_warn_lock_ignores_and_records(self, run_python) -> None:
        """In warn mode a widening attempt is ignored and recorded as an event."""
        r = run_python(
            program(
                """
                neuron_guard.configure(mode="off")
                with neuron_guard.allow("beta"):
                    beta_fn()
                print(neuron_guard.configure().mode)
                print([(e.kind, e.action) for e in neuron_guard.events()])
                """
            ),
            env={"NEURON_GUARD_LOCK": "1"},
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[0] == "warn"
        assert "('config', 'refused'), ('config', 'refused')" in r.stdout
        assert "BetaWarning" in r.stderr

    def test_lock_ignores_pyproject_allow(self, run_python, tmp_path: Path) -> None:
        """A pyproject.toml cannot widen the allow list under the lock."""
        (tmp_path / "pyproject.toml").write_text('[tool.neuron_guard]\nallow = ["beta"]\n')
        r = run_python(
            program("print(beta_fn())\n"), env={"NEURON_GUARD": "strict", "NEURON_GUARD_LOCK": "1"}
        )
        assert r.returncode == 1
        assert "PreviewError" in r.stderr


class TestAcrossProcesses:
    def test_preview_error_crosses_multiprocessing(self, run_python) -> None:
        """A PreviewError raised in a pool worker arrives intact in the parent."""
        r = run_python(
            """
            import multiprocessing as mp
            import neuron_guard
            import prog_lib

            if __name__ == "__main__":
                for method in ("fork", "spawn"):
                    ctx = mp.get_context(method)
                    with ctx.Pool(1) as pool:
                        try:
                            pool.apply(prog_lib.use)
                        except neuron_guard.PreviewError as exc:
                            print(method, type(exc).__name__, exc.kind, exc.name, exc.tier, exc.remedy)
            """,
            env={"NEURON_GUARD": "strict"},
            script="main.py",
        )
        assert r.returncode == 0, r.stderr
        for method in ("fork", "spawn"):
            assert (
                f"{method} PreviewError api demo.beta_fn beta NEURON_GUARD_ALLOW=api:demo.beta_fn"
                in r.stdout
            )

    @pytest.fixture(autouse=True)
    def _lib(self, tmp_path: Path) -> None:
        (tmp_path / "prog_lib.py").write_text(LIB + "\ndef use():\n    return beta_fn()\n")


class TestEveryKindInStrict:
    def test_all_decorated_kinds_raise(self, run_python) -> None:
        """Functions, methods, class/static methods, properties, classes, async, generators."""
        r = run_python(
            """
            import asyncio
            import neuron_guard
            from neuron_guard import tier

            class C:
                @tier("beta")
                def m(self): return 1
                @tier("beta")
                @classmethod
                def c(cls): return 1
                @staticmethod
                @tier("beta")
                def s(): return 1
                @tier("beta")
                @property
                def p(self): return 1

            @tier("beta")
            class K: pass

            @tier("beta")
            async def co(): return 1

            @tier("beta")
            def gen(): yield 1

            @tier("beta")
            async def agen(): yield 1

            async def drain(ag):
                return [x async for x in ag]

            cases = {
                "method": lambda: C().m(), "classmethod": lambda: C.c(),
                "staticmethod": lambda: C.s(), "property": lambda: C().p,
                "class": lambda: K(), "coroutine": lambda: asyncio.run(co()),
                "generator": lambda: list(gen()), "async generator": lambda: asyncio.run(drain(agen())),
            }
            for what, call in cases.items():
                try:
                    call()
                    print(what, "ran")
                except neuron_guard.PreviewError as exc:
                    print(what, "raised", exc.tier)
            """,
            env={"NEURON_GUARD": "strict"},
        )
        assert r.returncode == 0, r.stderr
        lines = [ln for ln in r.stdout.splitlines() if ln]
        assert len(lines) == 8
        assert all(ln.endswith("raised beta") for ln in lines), lines
