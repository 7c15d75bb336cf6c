"""What a submission's process sends back, made safe to keep and write (autograder/grading/outputs.py).

The corpus (corpus_outputs.py) grades whole notebooks that produce such outputs; here each
rule is checked on its own, and every cleaned output is checked with nbformat's validator.
"""

from __future__ import annotations

import json

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from autograder.grading import outputs


def _valid(cleaned: list[dict]) -> None:
    """nbformat accepts the outputs in a notebook and can write it."""
    nb = nbformat.from_dict(new_notebook(cells=[new_code_cell("x", outputs=cleaned)]))
    nbformat.validate(nb)
    nbformat.writes(nb)


# -- parse: a reply as plain JSON


def test_parse_keeps_a_dict_and_refuses_anything_else():
    assert outputs.parse(b'{"cell": 1, "outputs": []}') == {"cell": 1, "outputs": []}
    assert outputs.parse(b"[1, 2]") is None
    assert outputs.parse(b"not json") is None
    assert outputs.parse(b"[" * 100_000) is None  # too deep for json: refused, not raised


def test_parse_keeps_numbers_json_can_write_back():
    parsed = outputs.parse(b'{"big": ' + b"9" * 5000 + b', "inf": 1e999, "nan": NaN, "ok": 1.5, "n": 12}')
    assert parsed is not None
    assert parsed["big"] == "9" * 5000  # a 5000-digit int stops json's writer: kept as text
    assert parsed["inf"] == "1e999" and parsed["nan"] == "NaN"
    assert parsed["ok"] == 1.5 and parsed["n"] == 12
    json.dumps(parsed, allow_nan=False)  # writable as strict JSON


# -- oversized: a reply too long to keep


def test_oversized_names_the_cell_and_nonce_from_the_tail():
    tail = b'..."status": "ok", "cell": 3, "nonce": "abc123"}'
    reply = outputs.oversized(9_000_000, 1_000_000, tail)
    assert reply is not None
    assert (reply["cell"], reply["nonce"], reply["status"]) == (3, "abc123", "ok")
    [error] = reply["outputs"]
    assert error["output_type"] == "error" and error["ename"] == "OutputError"
    assert "9000000 bytes" in error["evalue"] and "1000000 bytes" in error["evalue"]


def test_oversized_without_a_status_is_an_error_and_without_a_tail_is_none():
    reply = outputs.oversized(10, 5, b'"cell": null, "nonce": null}')
    assert reply is not None
    assert (reply["cell"], reply["nonce"], reply["status"]) == (None, None, "error")
    assert outputs.oversized(10, 5, b"garbage") is None


# -- clean_text


def test_clean_text_escapes_a_lone_surrogate_and_dumps_non_strings():
    assert outputs.clean_text("fine") == "fine"
    assert outputs.clean_text("a\ud800b") == "a\\ud800b"
    assert outputs.clean_text({"a": 1}) == '{"a": 1}'
    outputs.clean_text("a\ud800b").encode("utf-8")  # encodable now


# -- clean: one output in the shape nbformat's schema wants


def test_clean_keeps_a_valid_stream_as_it_is():
    out = {"output_type": "stream", "name": "stdout", "text": "hello\n"}
    assert outputs.clean(out) == out


def test_clean_reshapes_fields_of_the_wrong_type():
    stream = outputs.clean({"output_type": "stream", "name": 3, "text": ["a", "b"], "bogus": True})
    assert stream == {"output_type": "stream", "name": "stdout", "text": "ab"}
    result = outputs.clean(
        {"output_type": "execute_result", "data": {"text/plain": 5}, "metadata": 7, "execution_count": "7"}
    )
    assert result == {
        "output_type": "execute_result",
        "data": {"text/plain": "5"},
        "metadata": {},
        "execution_count": None,
    }
    display = outputs.clean(
        {"output_type": "display_data", "data": {"application/json": {"s": "\ud800", "deep": [[[1]]]}}, "metadata": {}}
    )
    assert display["data"]["application/json"] == {"s": "\\ud800", "deep": [[[1]]]}  # JSON types kept for JSON
    _valid([stream, result, display])


def test_clean_bounds_the_nesting_of_a_json_display() -> None:
    deep: object = 1
    for _ in range(outputs.MAX_DEPTH + 10):
        deep = [deep]
    cleaned = outputs.clean({"output_type": "display_data", "data": {"application/json": {"v": deep}}, "metadata": {}})
    assert "[nested too deep]" in json.dumps(cleaned)
    _valid([cleaned])


def test_clean_replaces_an_unknown_output_with_a_note():
    cleaned = outputs.clean({"output_type": "no such type"})
    assert cleaned["output_type"] == "stream" and cleaned["name"] == "stderr"
    assert "an output was replaced" in cleaned["text"]
    assert outputs.clean("not even a dict")["name"] == "stderr"


def test_clean_keeps_an_error_an_error():
    cleaned = outputs.clean({"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": "one line"})
    assert cleaned == {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": ["one line"]}
    _valid([cleaned])


# -- clean_cell and reduced: bounded per cell, the last error kept


def test_clean_cell_bounds_the_outputs_and_keeps_the_last_error():
    many = [{"output_type": "stream", "name": "stdout", "text": f"{i}\n"} for i in range(500)]
    error = {"output_type": "error", "ename": "AssertionError", "evalue": "last", "traceback": []}
    cleaned = outputs.clean_cell([*many, error])
    assert len(cleaned) <= outputs.MAX_OUTPUTS_PER_CELL
    assert cleaned[-1] == error
    assert any("more outputs were not kept" in o.get("text", "") for o in cleaned)
    _valid(cleaned)


def test_clean_cell_of_something_that_is_not_a_list_is_empty():
    assert outputs.clean_cell(None) == []
    assert outputs.clean_cell({"output_type": "stream"}) == []


def test_reduced_keeps_a_note_and_a_short_stand_in_for_the_last_error():
    errors = [
        {"output_type": "error", "ename": "KeyError", "evalue": "first", "traceback": []},
        {"output_type": "error", "ename": "ValueError", "evalue": "x" * 5000, "traceback": ["..."]},
    ]
    kept = outputs.reduced([{"output_type": "stream", "name": "stdout", "text": "hi"}, *errors])
    note, stand_in = kept
    assert "allowance is spent" in note["text"]
    assert stand_in["ename"] == "ValueError" and len(stand_in["evalue"]) == outputs.STAND_IN_CHARS
    assert outputs.reduced([{"output_type": "stream", "name": "stdout", "text": "hi"}]) == [note]
    _valid(kept)
