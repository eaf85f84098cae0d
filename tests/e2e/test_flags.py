"""Flags in their carriers: NEURON_CC_FLAGS, API arguments, a real neuronx-cc subprocess."""

from __future__ import annotations

import pytest

from tests.conftest import STANDIN_SDK
from tests.e2e import test_environ
from tests.e2e.test_environ import PRINT_EVENTS, Run, events_of

run = test_environ.run  # the fixture: the test table loaded, a mode set

FAKE_CC = STANDIN_SDK / "bin" / "neuronx-cc"

FOO = ["flag", "--enable-foo", "beta", "warn", None]
OPT = ["flag", "--opt_mode", "alpha", "warn", None]


class TestNeuronCcFlags:
    @pytest.mark.parametrize(
        ("flags", "expected"),
        [
            ("--enable-foo", [FOO]),
            ("--enable_foo", [FOO]),  # `_` and `-` are interchangeable
            ("-ef", [FOO]),  # alias
            ("--enable-foobar --enable-fo", []),  # exact names only
            ("  --x=1 '--enable-foo'  ", [FOO]),  # quoted
            ('--workdir="/tmp/a b" --enable-foo', [FOO]),  # quoted value with a space
            ("--retry_failed_compilation--enable-foo", [FOO]),  # glued by a missing space
            ("--opt-mode=fast", [OPT]),  # glued value
            ("--opt_mode fast", [OPT]),  # separate value
            ("-M fast", [OPT]),  # alias with a value
            ("-Mfast", [OPT]),  # one-letter alias with a glued value
            ('--opt-mode="fast"', [OPT]),  # quoted value
            ("--opt-mode=slow", []),  # not one of `values`
            ("--opt-mode=fast --opt-mode=slow", []),  # the rightmost wins
            ("--opt-mode slow -M fast", [OPT]),  # the rightmost wins (alias)
            ("--cli-only", []),  # this flag's carriers do not include NEURON_CC_FLAGS
            ("", []),
        ],
    )
    def test_warn(self, run: Run, flags: str, expected: list[list[object]]) -> None:
        """What NEURON_CC_FLAGS at start-up counts as a use, under the matching rules."""
        r = run("import neuron_guard\n" + PRINT_EVENTS, env={"NEURON_CC_FLAGS": flags})
        assert r.returncode == 0, r.stderr
        assert events_of(r) == expected

    def test_strict_stops_at_startup(self, run: Run) -> None:
        """Strict: a preview flag in NEURON_CC_FLAGS stops the program; the message says where."""
        r = run(
            "print('program ran')\n", mode="strict", env={"NEURON_CC_FLAGS": "-O1 --enable-foo"}
        )
        assert r.returncode == 1
        assert "program ran" not in r.stdout
        assert "beta flag '--enable-foo' is not allowed in strict mode" in r.stderr
        assert "NEURON_GUARD_ALLOW=flag:--enable-foo" in r.stderr
        assert "found in NEURON_CC_FLAGS" in r.stderr

    @pytest.mark.parametrize(
        "allow", ["flag:--enable-foo", "flag:--enable_foo", "flag:--enable-*", "beta"]
    )
    def test_strict_allowed(self, run: Run, allow: str) -> None:
        """Strict with an opt-in for the flag (any spelling) runs the program."""
        r = run(
            "print('program ran')\n",
            mode="strict",
            env={"NEURON_CC_FLAGS": "--enable-foo", "NEURON_GUARD_ALLOW": allow},
        )
        assert r.returncode == 0, r.stderr
        assert "program ran" in r.stdout

    def test_append_at_run_time(self, run: Run) -> None:
        """The usual append idiom raises before the write in strict mode."""
        code = (
            "import os, neuron_guard\n"
            "os.environ['NEURON_CC_FLAGS'] = '--x'\n"
            "try:\n"
            "    os.environ['NEURON_CC_FLAGS'] = os.environ.get('NEURON_CC_FLAGS', '') + ' -M fast'\n"
            "except neuron_guard.PreviewError as exc:\n"
            "    print('refused', exc.name)\n"
            "print('value', os.environ['NEURON_CC_FLAGS'])\n"
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert "refused --opt_mode" in r.stdout
        assert "value --x" in r.stdout

    def test_deprecated_and_removed_flag(self, run: Run) -> None:
        """A flag removed in the installed neuronx-cc raises in strict, warns in warn."""
        env = {"NEURON_CC_FLAGS": "--old_flag"}
        r = run("print('program ran')\n", mode="strict", env=env, sdk=True)
        assert r.returncode == 1
        assert "flag '--old-flag' was removed in 2.19" in r.stderr
        r = run("import neuron_guard\n" + PRINT_EVENTS, env=env)
        assert r.returncode == 0, r.stderr
        assert "NeuronDeprecationWarning: flag '--old-flag' is deprecated since 2.0" in r.stderr
        assert events_of(r) == [["flag", "--old-flag", "stable", "deprecated", None]]

    def test_embedded_model_type_value(self, run: Run) -> None:
        """The embedded table's --model-type=transformer-inference is deprecated; =transformer is not."""
        r = run(
            "import neuron_guard\n" + PRINT_EVENTS,
            env={"NEURON_CC_FLAGS": "--model-type=transformer-inference"},
            table=False,
        )
        assert r.returncode == 0, r.stderr
        assert events_of(r) == [["flag", "--model-type", "stable", "deprecated", None]]
        assert "use '--model-type=transformer' instead" in r.stderr
        r = run(PRINT_EVENTS, env={"NEURON_CC_FLAGS": "--model-type transformer"}, table=False)
        assert events_of(r) == []


class TestBadFlagStrings:
    def test_unbalanced_quote_warn_notes_it(self, run: Run) -> None:
        """Warn: an unbalanced quote is noted and the readable flags still count."""
        r = run(
            "import neuron_guard\n" + PRINT_EVENTS, env={"NEURON_CC_FLAGS": '--x "--enable-foo'}
        )
        assert r.returncode == 0, r.stderr
        assert (
            "RuntimeWarning: neuron_guard: NEURON_CC_FLAGS is malformed (unbalanced double quote)"
            in r.stderr
        )
        assert events_of(r) == [FOO]

    def test_unbalanced_quote_strict_says_so(self, run: Run) -> None:
        """Strict decides by the parts it can read and says so in the error."""
        r = run("print('program ran')\n", mode="strict", env={"NEURON_CC_FLAGS": "--enable-foo 'x"})
        assert r.returncode == 1
        assert (
            "malformed (unbalanced single quote); decided by the parts that could be read"
            in r.stderr
        )

    def test_unbalanced_quote_without_preview_flags(self, run: Run) -> None:
        """Nothing preview in a broken string: strict runs the program, with the note."""
        r = run("print('program ran')\n", mode="strict", env={"NEURON_CC_FLAGS": '--x="a'})
        assert r.returncode == 0, r.stderr
        assert "program ran" in r.stdout
        assert "unbalanced double quote" in r.stderr

    def test_trailing_backslash_written_at_run_time(self, run: Run) -> None:
        """A broken value written at run time is noted at the writing line, never a crash."""
        code = (
            "import os, neuron_guard\nos.environ['NEURON_CC_FLAGS'] = '--x \\\\'\n" + PRINT_EVENTS
        )
        r = run(code)
        assert r.returncode == 0, r.stderr
        assert (
            "prog.py:2: RuntimeWarning: neuron_guard: NEURON_CC_FLAGS is malformed (trailing backslash)"
            in r.stderr
        )


class TestApiCarrier:
    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            ("'--enable-foo -O1'", [FOO]),
            ("['--opt-mode', 'fast']", [OPT]),
            ("('-O1', '--enable_foo')", [FOO]),
            ("['--enable-foo --opt-mode=fast']", [FOO, OPT]),  # several flags in one element
            ("'--opt-mode=fast --opt-mode=slow'", []),
            ("None", []),
            ("42", []),  # not a string or list: ignored
        ],
    )
    def test_compiler_args(self, run: Run, args: str, expected: list[list[object]]) -> None:
        """torch_neuronx.trace(compiler_args=...) as a string, list or tuple of strings."""
        code = (
            "import neuron_guard, torch_neuronx\n"
            f"out = torch_neuronx.trace(len, [1], compiler_args={args})\n"
            "print('traced', out['compiler_args'] is not None)\n" + PRINT_EVENTS
        )
        r = run(code, env={"NEURON_GUARD_DEDUPE": "off"})
        assert r.returncode == 0, r.stderr
        assert "traced" in r.stdout
        assert [e for e in events_of(r) if e[0] == "flag"] == expected

    def test_strict_raises_before_the_call(self, run: Run) -> None:
        """Strict: the call raises PreviewError before trace runs."""
        code = (
            "import neuron_guard, torch_neuronx\n"
            "try:\n"
            "    torch_neuronx.trace(len, [1], compiler_args=['-ef'])\n"
            "except neuron_guard.PreviewError as exc:\n"
            "    print('refused', exc.name, '|', exc)\n"
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert "refused --enable-foo |" in r.stdout
        assert "found in argument 'compiler_args' of torch_neuronx.trace" in r.stdout


class TestCliCarrier:
    RUN = (
        "import subprocess, sys, neuron_guard\n"
        "FAKE_CC = {fake!r}\n"
        "try:\n"
        "    out = subprocess.run({cmd}, capture_output=True, text=True, check=True{shell})\n"
        "    print(out.stdout.strip())\n"
        "except neuron_guard.PreviewError as exc:\n"
        "    print('refused', exc.name)\n"
    )

    def program(self, cmd: str, shell: bool = False) -> str:
        return self.RUN.format(fake=str(FAKE_CC), cmd=cmd, shell=", shell=True" if shell else "")

    @pytest.mark.parametrize(
        "cmd",
        [
            "[FAKE_CC, 'compile', 'model.hlo', '--enable-foo']",
            "[sys.executable, FAKE_CC, 'compile', '--enable_foo']",  # python script.py ...
            "FAKE_CC + ' compile -M fast'",  # shell=True
        ],
    )
    def test_strict_refuses_the_subprocess(self, run: Run, cmd: str) -> None:
        """Strict: the child never starts when its argument list holds a preview flag."""
        r = run(self.program(cmd, shell="+" in cmd), mode="strict")
        assert r.returncode == 0, r.stderr
        assert "neuronx-cc ran" not in r.stdout
        assert "refused --" in r.stdout

    def test_warn_runs_it_and_points_at_the_call(self, run: Run) -> None:
        """Warn: the compiler runs; the warning names the subprocess.run line."""
        cmd = "[FAKE_CC, 'compile', '--cli-only', '--enable-foo']"
        r = run(self.program(cmd) + PRINT_EVENTS)
        assert r.returncode == 0, r.stderr
        assert "neuronx-cc ran: compile --cli-only --enable-foo" in r.stdout
        assert "prog.py:4: BetaWarning: beta flag '--cli-only'" in r.stderr
        assert events_of(r) == [FOO, ["flag", "--cli-only", "beta", "warn", None]]

    def test_stable_flags_and_other_programs(self, run: Run) -> None:
        """Other programs, and neuronx-cc without preview flags, are no events."""
        code = (
            "import subprocess, neuron_guard\n"
            f"subprocess.run([{str(FAKE_CC)!r}, 'compile', '-O1', '--enable-foobar'], check=True)\n"
            "subprocess.run(['echo', '--enable-foo'], check=True)\n" + PRINT_EVENTS
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert events_of(r) == []

    def test_allowed(self, run: Run) -> None:
        """Strict with the flag allowed: the compiler runs."""
        cmd = "[FAKE_CC, '--enable-foo']"
        r = run(self.program(cmd), mode="strict", env={"NEURON_GUARD_ALLOW": "flag:--enable-foo"})
        assert r.returncode == 0, r.stderr
        assert "neuronx-cc ran: --enable-foo" in r.stdout

    @pytest.mark.parametrize(
        "start",
        [
            "os.posix_spawn(FAKE_CC, [FAKE_CC, '-ef'], dict(os.environ))",
            "os.execv(FAKE_CC, [FAKE_CC, '--enable-foo'])",
            "os.system(FAKE_CC + ' --enable-foo')",
        ],
    )
    def test_os_level_starts(self, run: Run, start: str) -> None:
        """os.posix_spawn, os.exec*, os.spawn* and os.system are checked before they start."""
        code = (
            "import os, neuron_guard\n"
            f"FAKE_CC = {str(FAKE_CC)!r}\n"
            "try:\n"
            f"    {start}\n"
            "except neuron_guard.PreviewError as exc:\n"
            "    print('refused', exc.name)\n"
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert "neuronx-cc ran" not in r.stdout
        assert "refused --enable-foo" in r.stdout

    def test_os_spawnv_child_never_runs(self, run: Run) -> None:
        """os.spawnv forks, then execs in the child: the refused exec ends the child (127)."""
        code = (
            "import os, neuron_guard\n"
            f"FAKE_CC = {str(FAKE_CC)!r}\n"
            "print('status', os.spawnv(os.P_WAIT, FAKE_CC, [FAKE_CC, '--enable-foo']))\n"
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert "neuronx-cc ran" not in r.stdout
        assert "status 127" in r.stdout

    def test_popen_through_posix_spawn_counts_once(self, run: Run) -> None:
        """Popen starting the child with posix_spawn is one use, not two."""
        code = (
            "import subprocess, neuron_guard\n"
            f"subprocess.run([{str(FAKE_CC)!r}, '--enable-foo'], close_fds=False, check=True)\n"
            "print('count', [e.count for e in neuron_guard.events()])\n"
        )
        r = run(code, env={"NEURON_GUARD_DEDUPE": "off"})
        assert r.returncode == 0, r.stderr
        assert "neuronx-cc ran: --enable-foo" in r.stdout
        assert "count [1]" in r.stdout
