"""The core guard in-process: @tier on every kind of object, modes, allow(), events."""

from __future__ import annotations

import asyncio
import functools
import inspect
import pickle
import threading
import warnings

import pytest

import neuron_guard
from neuron_guard import (
    AlphaWarning,
    BetaWarning,
    ConfigError,
    PreviewError,
    PreviewWarning,
    allow,
    configure,
    events,
    tier,
)

from . import pickle_targets


def _uses(name: str) -> dict[str, int]:
    return {e.action: e.count for e in events() if e.name == name}


class TestTierDecorator:
    def test_stable_returns_the_object_itself(self) -> None:
        """@tier("stable") adds no wrapper."""

        def f() -> int:
            return 1

        assert tier("stable")(f) is f
        assert tier("STABLE")(f) is f

    def test_unknown_tier_is_a_config_error_at_decoration(self) -> None:
        """A typo in a tier fails when the decorator is built, naming the valid tiers."""
        with pytest.raises(ConfigError, match=r"unknown tier 'betta'.*'alpha', 'beta', 'stable'"):
            tier("betta")

    def test_tier_names_are_case_insensitive(self) -> None:
        """'Beta' and 'BETA' mean beta."""

        @tier("Beta")
        def f() -> int:
            return 1

        with pytest.warns(BetaWarning):
            f()

    def test_function_keeps_metadata_signature_and_result(self) -> None:
        """The guard keeps __name__, __qualname__, __doc__, __module__, signature and result."""

        def add(a: int, b: int = 2) -> int:
            """Add two numbers."""
            return a + b

        g = tier("beta")(add)
        assert g is not add
        assert g.__wrapped__ is add
        assert inspect.unwrap(g) is add
        assert (g.__name__, g.__qualname__, g.__doc__, g.__module__) == (
            add.__name__,
            add.__qualname__,
            add.__doc__,
            add.__module__,
        )
        assert str(inspect.signature(g)) == "(a: 'int', b: 'int' = 2) -> 'int'"
        with pytest.warns(BetaWarning):
            assert g(1) == 3

    def test_pickles_by_reference(self) -> None:
        """A guarded module-level function and class pickle to themselves."""
        assert (
            pickle.loads(pickle.dumps(pickle_targets.beta_function)) is pickle_targets.beta_function
        )
        assert pickle.loads(pickle.dumps(pickle_targets.BetaClass)) is pickle_targets.BetaClass
        with pytest.warns(BetaWarning):
            obj = pickle_targets.BetaClass(3)
        assert pickle.loads(pickle.dumps(obj)).value == 3

    def test_methods_classmethods_staticmethods_properties(self) -> None:
        """Every method form is guarded, in either decorator order."""

        class C:
            @tier("beta")
            def m(self) -> str:
                return "m"

            @tier("beta")
            @classmethod
            def c1(cls) -> str:
                return cls.__name__

            @classmethod
            @tier("beta")
            def c2(cls) -> str:
                return cls.__name__

            @tier("beta")
            @staticmethod
            def s1() -> str:
                return "s1"

            @staticmethod
            @tier("beta")
            def s2() -> str:
                return "s2"

            @tier("beta")
            @property
            def p(self) -> int:
                return 7

            @property
            @tier("alpha")
            def q(self) -> int:
                return 8

        c = C()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = (c.m(), C.c1(), c.c2(), C.s1(), c.s2(), c.p, c.q)
        assert got == ("m", "C", "C", "s1", "s2", 7, 8)
        names = sorted(str(w.message).split("'")[1].rsplit(".", 1)[1] for w in caught)
        assert names == ["c1", "c2", "m", "p", "q", "s1", "s2"]
        assert isinstance(C.__dict__["c1"], classmethod)
        assert isinstance(C.__dict__["s2"], staticmethod)
        assert isinstance(C.__dict__["p"], property)

    def test_class_guards_instantiation_and_stays_the_same_class(self) -> None:
        """A beta class warns on instantiation; isinstance, issubclass, subclassing work."""

        @tier("beta")
        class Model:
            def __init__(self, n: int) -> None:
                self.n = n

        class Sub(Model):
            pass

        with pytest.warns(BetaWarning, match="Model"):
            m = Model(2)
        assert isinstance(m, Model)
        assert issubclass(Sub, Model)
        assert Sub(5).n == 5
        assert _uses(Model.__module__ + "." + Model.__qualname__)["warn"] == 2
        assert str(inspect.signature(Model)) == "(n: 'int') -> 'None'"

    def test_class_without_init_and_with_custom_new(self) -> None:
        """Classes that inherit __init__ (or define only __new__) keep working."""

        @tier("beta")
        class Plain:
            pass

        @tier("beta")
        class WithNew:
            def __new__(cls, value: int) -> WithNew:
                obj = super().__new__(cls)
                obj.value = value  # type: ignore[attr-defined]
                return obj

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert type(Plain()) is Plain
            assert WithNew(4).value == 4  # type: ignore[attr-defined]
            with pytest.raises(TypeError):
                Plain(1)  # type: ignore[call-arg]

    def test_coroutine_generator_and_async_generator_keep_their_nature(self) -> None:
        """async def, generators and async generators stay what they were."""

        @tier("beta")
        async def co(x: int) -> int:
            return x * 2

        @tier("beta")
        def gen(n: int):  # type: ignore[no-untyped-def]
            yield from range(n)
            return "done"

        @tier("beta")
        async def agen(n: int):  # type: ignore[no-untyped-def]
            for i in range(n):
                got = yield i
                if got:
                    yield got

        assert inspect.iscoroutinefunction(co)
        assert inspect.isgeneratorfunction(gen)
        assert inspect.isasyncgenfunction(agen)

        async def drive() -> list[int]:
            out = [await co(2)]
            ag = agen(3)
            out.append(await ag.__anext__())
            out.append(await ag.asend(10))
            out.extend([x async for x in ag])
            return out

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert asyncio.run(drive()) == [4, 0, 10, 1, 2]
            g = gen(2)
            assert list(g) == [0, 1]

    def test_cannot_guard_a_non_callable(self) -> None:
        """A plain value is a TypeError that says what can be guarded."""
        with pytest.raises(TypeError, match="neither callable"):
            tier("beta")(42)

    def test_explicit_name_replacement_and_reason_reach_the_message(self) -> None:
        """name=, replacement= and reason= appear in the warning."""

        @tier("alpha", name="mylib.fast_path", replacement="mylib.path", reason="kernel untested")
        def f() -> None:
            pass

        with pytest.warns(AlphaWarning) as rec:
            f()
        text = str(rec[0].message)
        assert "alpha API 'mylib.fast_path'" in text
        assert "kernel untested" in text
        assert "use 'mylib.path' instead" in text
        assert "NEURON_GUARD_ALLOW=api:mylib.fast_path" in text
        assert "major changes may happen; backward compatibility: no" in text


class TestWarnMode:
    def test_first_use_warns_later_uses_are_counted(self) -> None:
        """One warning per item, exact counts, attributed to the caller's line."""

        @tier("beta", name="t.warn_once")
        def f() -> None:
            pass

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            f()
            line = inspect.currentframe().f_lineno - 1  # type: ignore[union-attr]
            for _ in range(9):
                f()
        assert len(caught) == 1
        assert caught[0].filename == __file__
        assert caught[0].lineno == line
        assert issubclass(caught[0].category, PreviewWarning)
        [ev] = [e for e in events() if e.name == "t.warn_once"]
        assert (ev.kind, ev.tier, ev.action, ev.count, ev.file, ev.line) == (
            "api",
            "beta",
            "warn",
            10,
            __file__,
            line,
        )

    def test_warning_points_at_the_callers_line_for_every_kind(self) -> None:
        """Methods, properties and classes warn at the user's line, not ours."""

        class C:
            @tier("beta", name="t.line.method")
            def m(self) -> None:
                pass

            @tier("beta", name="t.line.prop")
            @property
            def p(self) -> int:
                return 1

        @tier("beta", name="t.line.Cls")
        class K:
            pass

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            here = inspect.currentframe().f_lineno  # type: ignore[union-attr]
            C().m()
            _ = C().p
            K()
        got = sorted((str(w.message).split("'")[1], w.filename, w.lineno) for w in caught)
        assert got == [
            ("t.line.Cls", __file__, here + 3),
            ("t.line.method", __file__, here + 1),
            ("t.line.prop", __file__, here + 2),
        ]

    def test_dedupe_survives_catch_warnings(self) -> None:
        """Warn-once is ours: resetting the warnings registry does not warn again."""

        @tier("beta", name="t.registry")
        def f() -> None:
            pass

        with pytest.warns(BetaWarning):
            f()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            f()
        assert caught == []

    def test_threads_race_first_use(self) -> None:
        """16 threads racing the first use: one warning, exact count."""

        @tier("beta", name="t.race")
        def f() -> None:
            pass

        barrier = threading.Barrier(16)

        def worker() -> None:
            barrier.wait()
            for _ in range(500):
                f()

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            threads = [threading.Thread(target=worker) for _ in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
        assert len([w for w in caught if "t.race" in str(w.message)]) == 1
        assert _uses("t.race") == {"warn": 16 * 500}


class TestStrictMode:
    def test_raises_before_the_body_runs(self, strict: object) -> None:
        """PreviewError carries kind, name, tier, explanation and remedy; the body never ran."""
        ran = []

        @tier("beta", name="t.strict")
        def f() -> None:
            ran.append(1)

        with pytest.raises(PreviewError) as info:
            f()
        err = info.value
        assert ran == []
        assert err.kind == "api"
        assert err.tier == "beta"
        assert err.name == "t.strict"
        assert err.remedy == "NEURON_GUARD_ALLOW=api:t.strict"
        assert "minor changes may happen" in err.explanation
        assert "not allowed in strict mode" in str(err)
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is PreviewError
        assert (again.kind, again.name, again.tier, again.remedy, str(again)) == (
            err.kind,
            err.name,
            err.tier,
            err.remedy,
            str(err),
        )

    def test_strict_raises_every_time(self, strict: object) -> None:
        """Every blocked use raises and is counted."""

        @tier("alpha", name="t.strict_again")
        def f() -> None:
            pass

        for _ in range(3):
            with pytest.raises(PreviewError):
                f()
        assert _uses("t.strict_again") == {"raise": 3}

    @pytest.mark.parametrize(
        ("patterns", "beta_ok", "alpha_ok"),
        [
            (["beta"], True, False),
            (["alpha"], True, True),
            (["api:t.allow.*"], True, True),
            (["t.allow.b*"], True, False),
            (["api:t.allow.beta_fn"], True, False),
            (["env:t.allow.*"], False, False),
            (["package:t.allow.*"], False, False),
        ],
    )
    def test_allow_forms(
        self, strict: object, patterns: list[str], beta_ok: bool, alpha_ok: bool
    ) -> None:
        """Tier keywords, kind:glob and bare globs allow exactly what DESIGN.md says."""

        @tier("beta", name="t.allow.beta_fn")
        def b() -> str:
            return "b"

        @tier("alpha", name="t.allow.alpha_fn")
        def a() -> str:
            return "a"

        configure(allow=patterns)
        for fn, ok in ((b, beta_ok), (a, alpha_ok)):
            if ok:
                assert fn() in ("a", "b")
            else:
                with pytest.raises(PreviewError):
                    fn()

    def test_configure_changes_mode_at_run_time(self) -> None:
        """configure() switches warn -> strict -> off for already guarded objects."""

        @tier("beta", name="t.configure")
        def f() -> int:
            return 1

        with pytest.warns(BetaWarning):
            assert f() == 1
        configure(mode="strict")
        with pytest.raises(PreviewError):
            f()
        configure(mode="off")
        assert f() == 1
        configure(mode="warn")
        assert f() == 1  # already warned once in this process

    def test_bad_mode_and_pattern_in_configure(self) -> None:
        """configure() rejects a bad mode and a bad pattern with a ConfigError naming it."""
        with pytest.raises(ConfigError, match="invalid mode 'strikt'"):
            configure(mode="strikt")
        with pytest.raises(
            ConfigError, match=r"pattern 'api:' from configure\(\) has nothing after"
        ):
            configure(allow=["api:"])
        with pytest.raises(ConfigError, match=r"unknown prefix 'ap:'.*'api:'"):
            configure(allow=["ap:foo"])


class TestScopedAllow:
    def test_context_manager_restores_exactly(self, strict: object) -> None:
        """allow() opts in inside the block only, nested scopes included."""

        @tier("beta", name="t.scope")
        def f() -> int:
            return 1

        with allow("api:t.scope"):
            assert f() == 1
            with allow("alpha"):
                assert f() == 1
            assert f() == 1
        with pytest.raises(PreviewError):
            f()

    def test_decorator_sync_and_async(self, strict: object) -> None:
        """@allow(...) works on sync and async functions."""

        @tier("beta", name="t.scope_deco")
        def f() -> int:
            return 2

        @allow("beta")
        def sync_user() -> int:
            return f()

        @allow("beta")
        async def async_user() -> int:
            await asyncio.sleep(0)
            return f()

        assert sync_user() == 2
        assert asyncio.run(async_user()) == 2
        assert inspect.iscoroutinefunction(async_user)
        with pytest.raises(PreviewError):
            f()

    def test_generator_function_is_refused(self) -> None:
        """@allow on a generator function is a TypeError saying what to do instead."""
        with pytest.raises(TypeError, match="use 'with allow"):

            @allow("beta")
            def gen():  # type: ignore[no-untyped-def]
                yield 1

    def test_threads_do_not_see_each_others_opt_ins(self, strict: object) -> None:
        """A thread inside allow() does not opt in another thread."""

        @tier("beta", name="t.thread_scope")
        def f() -> int:
            return 3

        inside = threading.Event()
        done = threading.Event()
        results: dict[str, object] = {}

        def opted_in() -> None:
            with allow("beta"):
                inside.set()
                results["in"] = f()
                done.wait(30)

        def other() -> None:
            inside.wait(30)
            try:
                f()
            except PreviewError:
                results["out"] = "blocked"
            done.set()

        threads = [threading.Thread(target=opted_in), threading.Thread(target=other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert results == {"in": 3, "out": "blocked"}

    def test_asyncio_tasks_are_isolated(self, strict: object) -> None:
        """Tasks with different allow() scopes never see each other's opt-ins."""

        @tier("beta", name="t.task_scope")
        def f() -> str:
            return "ok"

        async def opted(gate: asyncio.Event, back: asyncio.Event) -> str:
            with allow("api:t.task_scope"):
                gate.set()
                await back.wait()
                return f()

        async def plain(gate: asyncio.Event, back: asyncio.Event) -> str:
            await gate.wait()
            try:
                return f()
            except PreviewError:
                return "blocked"
            finally:
                back.set()

        async def main() -> list[str]:
            gate, back = asyncio.Event(), asyncio.Event()
            return list(await asyncio.gather(opted(gate, back), plain(gate, back)))

        assert asyncio.run(main()) == ["ok", "blocked"]

    def test_bad_pattern_names_it_and_the_valid_prefixes(self) -> None:
        """allow('foo:bar') is a ConfigError listing valid prefixes."""
        with pytest.raises(ConfigError) as info:
            allow("foo:bar")
        assert "'foo:bar'" in str(info.value)
        assert "'api:', 'env:', 'flag:', 'package:', 'feature:', 'model:'" in str(info.value)


class TestEvents:
    def test_allowed_uses_are_events_too(self, strict: object) -> None:
        """Opted-in uses are recorded with action 'allow'."""

        @tier("beta", name="t.allowed_events")
        def f() -> None:
            pass

        with allow("beta"):
            f()
            f()
        assert _uses("t.allowed_events") == {"allow": 2}

    def test_event_fields(self) -> None:
        """Events unpack like the tuple DESIGN.md names."""

        @tier("beta", name="t.fields")
        def f() -> None:
            pass

        with pytest.warns(BetaWarning):
            f()
        [ev] = [e for e in events() if e.name == "t.fields"]
        kind, name, tier_, action, _file, _line, count, pid, trigger = ev
        assert (kind, name, tier_, action, count, trigger) == (
            "api",
            "t.fields",
            "beta",
            "warn",
            1,
            None,
        )
        assert ev._asdict()["pid"] == pid > 0


def test_wrapped_chain_is_functools_compatible() -> None:
    """functools.wraps on top of a guard still reaches the original via inspect.unwrap."""

    def base(x: int) -> int:
        return x

    guarded = tier("beta")(base)

    @functools.wraps(guarded)
    def outer(x: int) -> int:
        return guarded(x)

    assert inspect.unwrap(outer) is base
    assert neuron_guard.Tier.parse("beta") < neuron_guard.Tier.parse("stable")
