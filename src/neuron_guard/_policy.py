"""Pure decisions and messages: (item, settings, scoped patterns) -> what to do.

Nothing here keeps state or has side effects; :mod:`neuron_guard._state` acts on it.
"""

from __future__ import annotations

from ._config import Pattern, Settings
from ._types import Kind, Mode, Tier, meaning

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Action", "ItemInfo", "decide", "message", "remedy"]


class Action:
    """What one use of an item leads to (plain strings, they end up in events and reports)."""

    OFF = "off"
    ALLOW = "allow"
    WARN = "warn"
    RAISE = "raise"
    DEPRECATED = "deprecated"
    REMOVED = "removed"


class ItemInfo:
    """The static facts about one guarded item (what the table or ``@tier`` says)."""

    __slots__ = (
        "argument",
        "deprecated",
        "key",
        "kind",
        "name",
        "reason",
        "removed",
        "removed_now",
        "replacement",
        "source",
        "tier",
        "trigger",
        "workload_note",
    )

    def __init__(
        self,
        kind: Kind | str,
        name: str,
        tier: Tier | str,
        *,
        replacement: str | None = None,
        reason: str | None = None,
        source: str | None = None,
        deprecated: str | None = None,
        removed: str | None = None,
        removed_now: bool = False,
        trigger: str | None = None,
        workload_note: str | None = None,
    ) -> None:
        self.kind = Kind(kind)
        self.name = name
        self.tier = Tier.parse(tier)
        self.replacement = replacement
        self.reason = reason
        self.source = source
        self.deprecated = deprecated
        self.removed = removed
        self.removed_now = removed_now
        self.trigger = trigger
        self.workload_note = workload_note
        self.key = f"{self.kind}:{name}"

    @property
    def preview(self) -> bool:
        return self.tier.preview


def allowed_by(info: ItemInfo, patterns: Iterable[Pattern], *, by_name_only: bool = False) -> bool:
    """True when one of ``patterns`` allows ``info`` (tier keywords only for preview tiers).

    A trigger of a feature or model class is also allowed by the feature's own pattern:
    the caller checks both keys.
    """
    for p in patterns:
        if by_name_only and p.tier is not None:
            continue
        if p.matches(info.kind, info.name, info.tier):
            return True
    return False


def decide(info: ItemInfo, settings: Settings, scoped: tuple[Pattern, ...]) -> tuple[str, bool]:
    """Decide one use: returns ``(action, global_only)``.

    ``global_only`` is True when the decision did not depend on a scoped ``allow()``, so
    later uses can take the fast path until the settings change.
    """
    mode = settings.mode
    if mode is Mode.OFF:
        return Action.OFF, True
    if info.preview:
        if allowed_by(info, settings.allow):
            pass
        elif scoped and allowed_by(info, scoped):
            return (_deprecation_action(info, settings, scoped) or Action.ALLOW), False
        elif mode is Mode.STRICT:
            return Action.RAISE, True
        else:
            return Action.WARN, True
    dep = _deprecation_action(info, settings, scoped)
    if dep is not None:
        return dep, not scoped
    return Action.ALLOW, True


def _deprecation_action(
    info: ItemInfo, settings: Settings, scoped: tuple[Pattern, ...]
) -> str | None:
    if info.deprecated is None and not info.removed_now:
        return None
    if allowed_by(info, settings.allow, by_name_only=True) or (
        scoped and allowed_by(info, scoped, by_name_only=True)
    ):
        return None
    if info.removed_now:
        return Action.RAISE if settings.mode is Mode.STRICT else Action.REMOVED
    return Action.DEPRECATED


def remedy(info: ItemInfo) -> str:
    """The exact opt-in for ``info``."""
    return f"NEURON_GUARD_ALLOW={info.kind}:{info.name}"


def _label(info: ItemInfo) -> str:
    return f"{info.tier} {info.kind.label} {info.name!r}"


def message(info: ItemInfo, action: str) -> str:
    """The warning or error message for one use of ``info`` leading to ``action``."""
    opt_in = remedy(info)
    tail = f"; details: neuron-guard explain {info.name}"
    if info.replacement:
        instead = f"; use {info.replacement!r} instead, or opt in with {opt_in}"
    else:
        instead = f"; to use it anyway, opt in with {opt_in}"
    trigger = f" (switched on by {info.trigger})" if info.trigger else ""
    if action in (Action.DEPRECATED, Action.REMOVED) or (
        action == Action.RAISE and not info.preview
    ):
        since = f" since {info.deprecated}" if info.deprecated else ""
        if info.removed_now or action == Action.REMOVED:
            what = (
                f"{info.kind.label} {info.name!r}{trigger} was removed in {info.removed} and is "
                "silently ignored by the installed release"
            )
        else:
            what = f"{info.kind.label} {info.name!r}{trigger} is deprecated{since}"
            if info.removed:
                what += f" and will be removed in {info.removed}"
        if action == Action.RAISE:
            what += " (strict mode)"
        return what + instead + tail
    why = meaning(info.kind, info.tier)
    reason = f"; {info.reason}" if info.reason else ""
    workload = f"; {info.workload_note}" if info.workload_note else ""
    if action == Action.RAISE:
        head = f"{_label(info)}{trigger} is not allowed in strict mode: it is a developer preview"
    else:
        head = f"{_label(info)}{trigger} is a developer preview"
    return f"{head} ({why}){reason}{workload}{instead}{tail}"
