"""One plausible wrong answer per lesson, for the autograde tests.

Each replaces one exercise cell (by grade_id) with code a learner could really
write; the matching test cell must lose its points, and the feedback must say
why in words the learner can act on.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class WrongAnswer:
    solution_id: str
    source: str
    test_id: str
    feedback_says: tuple[str, ...]


WRONG_ANSWERS: dict[str, WrongAnswer] = {}
