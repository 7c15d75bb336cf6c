"""Demo machinery for lesson 04 (transactions and money), shared with its hidden tests.

- `payroll(n, amount)`: n transfers of the same amount from account 1 to accounts 2, 3, 4
  in turn. One payer and one amount make lost updates exactly countable: every lost debit
  leaves account 1 one `amount` too rich, every lost credit leaves a payee one `amount` too
  poor, and no two can cancel (see `StormResult.lost_updates`).
- `balances_chart(result, title)`: expected (serial replay) vs actual balances, per account.

The storm runner itself is `autograder.checks.concurrency.run_transfer_storm`: the
demonstration measures exactly what the grader measures.
"""

from __future__ import annotations

from typing import Any

from autograder.teaching import Chart

__all__ = ["payroll", "balances_chart"]


def payroll(n: int, amount: str = "0.10", payer: int = 1, payees: tuple[int, ...] = (2, 3, 4)) -> list[dict]:
    return [{"from_id": payer, "to_id": payees[i % len(payees)], "amount": amount} for i in range(n)]


def balances_chart(result: Any, title: str) -> Chart:
    """Grouped bars: the balance a serial replay gives vs the balance PostgreSQL has."""
    expected = result.expected
    ids = list(expected)

    def build():
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.5, 3), layout="constrained")
        ax = fig.subplots()
        xs = range(len(ids))
        width = 0.38
        exp_bars = ax.bar(
            [x - width / 2 for x in xs],
            [float(expected[i]) for i in ids],
            width,
            label="expected (serial replay)",
            color="#9AA5B1",
        )
        act_bars = ax.bar(
            [x + width / 2 for x in xs],
            [float(result.after[i]) for i in ids],
            width,
            label="actual (in PostgreSQL)",
            color="#4C72B0",
        )
        ax.bar_label(exp_bars, labels=[f"{expected[i]:.2f}" for i in ids], fontsize=8)
        ax.bar_label(act_bars, labels=[f"{result.after[i]:.2f}" for i in ids], fontsize=8)
        ax.set_xticks(list(xs), [f"account {i}" for i in ids])
        ax.set_ylabel("balance")
        ax.set_title(title)
        top = max([float(v) for v in expected.values()] + [float(v) for v in result.after.values()] + [1])
        ax.set_ylim(0, top * 1.25)
        ax.legend(loc="upper right", fontsize=8, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return fig

    values = {f"account {i}": f"expected {float(expected[i]):.2f}, actual {float(result.after[i]):.2f}" for i in ids}
    return Chart(build=build, title=title, values=values)
