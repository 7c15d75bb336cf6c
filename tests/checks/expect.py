"""What a rejected verdict must say, checked all at once with a readable failure.

    rejected(v, actual=["-> 500"], hint=["session.rollback()"], shows=["INSERT INTO users"], sql=["INSERT"])

fails listing every fragment that is missing (and where), followed by the verdict
as the learner would read it.
"""

from collections.abc import Iterable

from autograder.checks import Verdict


def rejected(
    v: Verdict,
    *,
    actual: Iterable[str] = (),
    hint: Iterable[str] = (),
    shows: Iterable[str] = (),
    sql: Iterable[str] = (),
) -> None:
    """`v` failed, its "Got" has every `actual` fragment, its hint every `hint` fragment, its whole
    text (as printed, SQL included) every `shows` fragment, and one of its statements each `sql` one."""
    assert not v, f"expected the check to fail, it passed:\n{v}"
    text = str(v)
    missing = (
        [f"Got: lacks {a!r}" for a in actual if a not in v.actual]
        + [f"Hint: lacks {h!r}" for h in hint if h not in v.hint]
        + [f"the message lacks {s!r}" for s in shows if s not in text]
        + [f"no statement has {q!r}" for q in sql if not any(q in statement for statement in v.sql)]
    )
    assert not missing, "\n".join(missing) + f"\n--- the verdict:\n{text}"
