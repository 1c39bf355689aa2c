"""What every step test needs: up a set of steps, prove a second up is a no-op, prove down is clean."""

from __future__ import annotations

import pointapp
from pointapp.target import Context


def up_is_idempotent(ctx: Context, only: str) -> None:
    """A second ``up`` makes no mutating call and the plan is empty."""
    before = len(ctx.calls)
    outcome = pointapp.up(ctx, only=only)
    assert outcome.applied == [], [c.line() for c in outcome.applied]
    assert [c for c in ctx.calls[before:] if c.mutating] == []
    assert pointapp.plan(ctx, only=only).empty


def down_leaves_nothing(ctx: Context, only: str) -> list[str]:
    """``down`` then nothing owned is found; returns its warnings (what the target could not delete)."""
    outcome = pointapp.down(ctx, only=only)
    remaining = pointapp.plan_destroy(ctx, only=only)
    skipped = [w.split(":")[0] for w in outcome.warnings]
    assert [f"{c.kind} {c.name}" for c in remaining.changes if f"{c.kind} {c.name}" not in skipped] == []
    return outcome.warnings
