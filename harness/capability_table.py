"""Which strategy runs on which backend, from the registries themselves.

The table in docs/backends.md is this module's output (a test keeps them equal), so it cannot drift from
the code: a strategy is asked to `adapt` to each backend's capabilities, as the loop does
before a run, and what it then needs is compared with what the backend has.
"""

from __future__ import annotations

from harness.core.registry import BACKENDS, STRATEGIES

RUNS = "yes"


def verdict(strategy_cls, backend_cls) -> str:
    """'yes', 'yes (view flip)' where the strategy adapts, or 'no: needs X, Y'."""
    strategy = strategy_cls()
    default_views = tuple(strategy.views)
    strategy.adapt(backend_cls.capabilities)
    missing = sorted(set(strategy.needs) - set(backend_cls.capabilities))
    if missing:
        return "no: needs " + ", ".join(missing)
    if tuple(strategy.views) != default_views:
        return f"{RUNS} (view {', '.join(strategy.views)})"
    return RUNS


def matrix() -> dict[str, dict[str, str]]:
    """strategy -> backend -> verdict, for every registered strategy and backend."""
    return {s: {b: verdict(s_cls, b_cls) for b, b_cls in BACKENDS.items()}
            for s, s_cls in STRATEGIES.items()}


def markdown() -> str:
    backends = BACKENDS.names()
    lines = ["| strategy | " + " | ".join(f"`{b}`" for b in backends) + " |",
             "|---|" + "---|" * len(backends)]
    for strategy, row in matrix().items():
        lines.append(f"| `{strategy}` | " + " | ".join(row[b] for b in backends) + " |")
    return "\n".join(lines)
