"""Corpus cases (see corpus.py for the shape of a case): outputs.

Class F (the grader itself): outputs nbformat cannot write (a lone surrogate, mimebundles
of the wrong types, numbers JSON cannot carry) are replaced, never fatal, and a correct
solution that makes them keeps its full marks; a flood of huge exceptions is bounded
(every output is charged to one budget) and every test still fails with its error.

Class D (hidden tests leak): a learner function called by the test reads the running
test's source from linecache and from every frame up the stack and both prints it and
returns it inside values a failing check quotes. No hidden line may reach the graded
notebook, result.json or the exports (see test_corpus.py).
"""

from __future__ import annotations

from benchmarks.submissions import error_flood
from tests.grading.corpus import EXERCISES, FULL, WRONG_SCORE, Case, solution_with

SURROGATE = 'print("a lone surrogate: \\ud800")\nimport sys\nsys.stderr.write("\\udfff\\n")'

# Each way a learner cell can hand the runner a display nbformat's schema does not accept.
INVALID_DISPLAYS = r"""
import sys
from IPython.display import display, publish_display_data
_ip = get_ipython()
_ip.display_pub.publish({"text/plain": 5, "image/png": {"not": "base64"}, "text/html": ["<b>", 1],
                         "application/json": object, "bad key \ud800": "x"}, metadata=[1, 2])
_ip.display_pub.publish({"application/json": {"n": float("nan"), "big": float("inf"), "s": "\ud800"}})
publish_display_data({"text/plain": 12345})
display({"application/json": object}, raw=True)
_items = sys.stdout.runner.current.items  # straight into the runner's list: no conversion at all
_items.append({"output_type": "display_data", "data": {"text/plain": 1.5}, "metadata": 7, "bogus": True})
_items.append({"output_type": "stream", "name": 3, "text": ["a", 1]})
_items.append({"output_type": "no such type"})
_items.append({"output_type": "execute_result", "data": {"text/plain": "x"}, "metadata": {}, "execution_count": "7"})
"""

# A number the child's JSON encoder refuses: that cell's reply becomes an OutputError.
HUGE_NUMBER = r"""
import sys
sys.set_int_max_str_digits(0)
sys.stdout.runner.current.items.append({"output_type": "display_data", "data": {"application/json": 10 ** 5000},
                                         "metadata": {}})
"""


# Called by test_add_products: everything it can find of the running test's source, from
# linecache and from every frame's locals up the stack (the runner's and the process's
# main loop included), printed, and put where the hidden check quotes it (the products'
# skus appear in its failure message, and so in result.json and the exports).
READ_THE_RUNNING_TEST = r"""
import linecache, sys
_real_add_products = add_products

def _peek():
    found = ["".join(entry[2]) for entry in list(linecache.cache.values()) if len(entry) > 2]
    frame = sys._getframe(1)
    while frame is not None:
        for value in list(frame.f_locals.values()):
            items = (list(value.values()) if isinstance(value, dict)
                     else list(value) if isinstance(value, (list, tuple)) else [value])
            for item in items:
                if isinstance(item, bytes):
                    item = item.decode("utf-8", "replace")
                if isinstance(item, str) and len(item) > 40:
                    found.append(item)
        frame = frame.f_back
    found.sort(key=lambda text: "HIDDEN" not in text)  # the best first: messages are cut
    return "\n".join(found)

async def add_products(Session, items):
    leaked = _peek()
    print(leaked[:200_000])
    made = await _real_add_products(Session, items)
    if len(items) == 3:  # the hidden call: its failure message quotes the skus
        for product in made:
            product.sku = leaked[:3000]
    return made
"""

CASES: list[Case] = [
    Case(
        "print_lone_surrogate", solution_with(SURROGATE, EXERCISES[0]), FULL, ("3 of 3 tests passed",), min_score=FULL
    ),
    Case(
        "invalid_mimebundles",
        solution_with(INVALID_DISPLAYS, EXERCISES[0]),
        FULL,
        ("3 of 3 tests passed",),
        min_score=FULL,
    ),
    Case(
        "number_json_cannot_carry",
        solution_with(HUGE_NUMBER, EXERCISES[1]),
        FULL,
        ("3 of 3 tests passed",),
        min_score=FULL,
    ),
    Case("error_output_flood", error_flood, 0.0, ("0 of 3 tests passed",)),
    Case(
        "read_the_running_test",
        solution_with(READ_THE_RUNNING_TEST, EXERCISES[2]),
        WRONG_SCORE,
        ("2 of 3 tests passed",),
        min_score=WRONG_SCORE,
    ),
]
