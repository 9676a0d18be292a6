"""Spend budgets per key, in dollars: per UTC day, per UTC month or per fixed period, in process
or shared through Redis.

    budgets = BudgetTracker(daily=10.0, monthly=200.0)
    if not (verdict := budgets.check("team-a", estimated_cost=0.02)):
        refuse(verdict.reason)
    ...
    budgets.record("team-a", response_cost)
    budgets.status("team-a").remaining

Amounts are whole nanodollars, so concurrent records add exactly. The rule is written out in
``fast_litellm/_fallback/budget.py``; the native core (``src/budget/``), the fallback and the Redis
script (``_lua/budget.lua``) implement it and give the same answers.

Modules: ``tracker`` (the API below), ``redis_protocol`` (key name, script arguments and reply),
``redis_backend`` (the rate limiter's Redis backend and failure policy, applied to budgets).
"""

from __future__ import annotations

from .tracker import (
    MAX_DOLLARS,
    BudgetCheck,
    BudgetStatus,
    BudgetTracker,
    BudgetWindow,
    health_probe,
    health_sections,
)

__all__ = [
    "MAX_DOLLARS",
    "BudgetCheck",
    "BudgetStatus",
    "BudgetTracker",
    "BudgetWindow",
    "health_probe",
    "health_sections",
]
