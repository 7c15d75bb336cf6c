"""What a submission's process sends back, made safe to keep and to write (parent side).

The child is the learner's process: whatever its runner promises, a reply may be any
bytes. Here a reply becomes plain JSON of bounded size (numbers nbformat and `json`
can write, no NaN), the outputs of a notebook are bounded in total, and each output is
reshaped into what nbformat's schema accepts and then validated with nbformat's own
validator. Anything that still does not fit is replaced by a stand-in that says so —
never dropped when it is an error (nbgrader scores a test on the presence of one),
and never fatal: one learner's `print("\\ud800")` must not stop a class's run.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

STAND_IN_CHARS = 500  # of an error's evalue, once it is reduced to a stand-in
MAX_DEPTH = 40  # nesting of a JSON value inside an output (a display of application/json)
MAX_OUTPUTS_PER_CELL = 110  # the runner keeps 100 per cell, plus its notes
_JSON_MIME = re.compile(r"^application/(.*\+)?json$")
_TAIL = re.compile(rb'(?:"status": "([a-z-]{1,20})", )?"cell": (-?\d{1,9}|null), "nonce": ("[0-9a-f]{0,64}"|null)\}$')


def _int(text: str) -> int | str:
    # A 5000-digit integer stops json (and nbformat's writer) with ValueError: keep it as text.
    return int(text) if len(text) <= 300 else text


def _float(text: str) -> float | str:
    value = float(text)
    return value if value - value == 0 else text  # 1e999 is inf: not writable as JSON


def parse(raw: bytes) -> dict[str, Any] | None:
    """A reply as a dict of plain, writable JSON values; None if it is not one."""
    try:
        message = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=str)
    except (ValueError, RecursionError):
        return None
    return message if isinstance(message, dict) else None


def oversized(size: int, limit: int, tail: bytes) -> dict[str, Any] | None:
    """A reply longer than `limit`, which was read through and not kept: which cell and nonce it
    answers (the runner writes them last), with an error in place of its outputs."""
    match = _TAIL.search(tail)
    if match is None:
        return None
    status, cell, nonce = match.groups()
    return {
        "cell": None if cell == b"null" else int(cell),
        "nonce": json.loads(nonce),
        "status": status.decode() if status else "error",
        "execution_count": None,
        "outputs": [
            error_output(
                "OutputError",
                f"this cell's output ({size} bytes) was over the grader's limit ({limit} bytes) and was not kept",
            )
        ],
    }


def error_output(ename: str, evalue: str) -> dict[str, Any]:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}


def reduced(outputs: list[Any]) -> list[dict[str, Any]]:
    """A cell's outputs once the notebook's allowance is spent: a note, and its last error as a
    short stand-in (kept: nbgrader scores on it)."""
    kept: list[dict[str, Any]] = [
        {
            "output_type": "stream",
            "name": "stderr",
            "text": "[output not kept: the notebook's output allowance is spent]\n",
        }
    ]
    errors = [o for o in outputs if isinstance(o, dict) and o.get("output_type") == "error"]
    if errors:
        last = errors[-1]
        kept.append(
            error_output(
                clean_text(last.get("ename", "Error"))[:100], clean_text(last.get("evalue", ""))[:STAND_IN_CHARS]
            )
        )
    return kept


def clean_text(value: Any) -> str:
    """`value` as a str UTF-8 can encode: a lone surrogate is written as its escape."""
    # a JSON value from `parse`: always encodable
    text: str = value if isinstance(value, str) else json.dumps(value)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _multiline(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "".join(value)
    return clean_text(value)


def _json_value(value: Any, depth: int = 0) -> Any:
    """Any JSON value, with its strings cleaned and its nesting bounded."""
    if isinstance(value, str):
        return clean_text(value)
    if depth >= MAX_DEPTH:
        return "[nested too deep]"
    if isinstance(value, list):
        return [_json_value(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {clean_text(k): _json_value(v, depth + 1) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return clean_text(str(value))


def _bundle(data: Any) -> dict[str, Any]:
    """A mimebundle as the schema has it: JSON types anything, every other type a string."""
    if not isinstance(data, dict):
        return {"text/plain": _multiline(data)}
    bundle = {}
    for key, value in data.items():
        key = clean_text(key)
        bundle[key] = _json_value(value) if _JSON_MIME.match(key) else _multiline(value)
    return bundle


def _shaped(output: Any) -> dict[str, Any] | None:
    """The output with only the fields its output_type has, each of the type the schema wants."""
    if not isinstance(output, dict):
        return None
    kind = output.get("output_type")
    if kind == "stream":
        name = output.get("name")
        return {
            "output_type": "stream",
            "name": name if name in ("stdout", "stderr") else "stdout",
            "text": _multiline(output.get("text", "")),
        }
    if kind == "error":
        traceback = output.get("traceback")
        traceback = traceback if isinstance(traceback, list) else [] if traceback is None else [traceback]
        return {
            "output_type": "error",
            "ename": clean_text(output.get("ename", "Error")),
            "evalue": clean_text(output.get("evalue", "")),
            "traceback": [clean_text(t) for t in traceback],
        }
    if kind in ("display_data", "execute_result"):
        metadata = output.get("metadata")
        shaped = {
            "output_type": kind,
            "data": _bundle(output.get("data", {})),
            "metadata": _json_value(metadata) if isinstance(metadata, dict) else {},
        }
        if kind == "execute_result":
            count = output.get("execution_count")
            shaped["execution_count"] = count if type(count) is int and count >= 0 else None
        return shaped
    return None


@functools.lru_cache(maxsize=1)
def _output_validator() -> Callable[[Any], Any] | None:
    """nbformat's schema for one output, compiled with fastjsonschema (nbformat's own default
    validator): 30 µs an output instead of 0.5 ms through `validate(ref=...)`, which goes
    through jsonschema. None when fastjsonschema is not installed."""
    try:
        import fastjsonschema
        from nbformat import v4
        from nbformat.validator import _get_schema_json
    except ImportError:
        return None
    schema = _get_schema_json(v4, version=4, version_minor=v4.nbformat_minor)
    return fastjsonschema.compile(
        {"$schema": schema.get("$schema"), "$ref": "#/definitions/output", "definitions": schema["definitions"]}
    )


def _problem(output: dict[str, Any]) -> str | None:
    """Why nbformat's schema rejects `output`, or None."""
    from nbformat import v4
    from nbformat.validator import ValidationError, validate

    compiled = _output_validator()
    if compiled is not None:
        from fastjsonschema import JsonSchemaException

        try:
            compiled(output)
        except JsonSchemaException as exc:
            return str(getattr(exc, "message", exc))[:200]
        return None
    try:
        validate(output, ref="output", version=4, version_minor=v4.nbformat_minor)
    except ValidationError as exc:
        return str(exc).splitlines()[0][:200]
    return None


def clean(output: Any) -> dict[str, Any]:
    """One output nbformat can validate and write, or a stand-in saying it was replaced."""
    try:
        shaped = _shaped(output)
        problem = "unknown output type" if shaped is None else _problem(shaped)
    except (RecursionError, ValueError, TypeError) as exc:  # never fatal: replaced below
        shaped, problem = None, f"{type(exc).__name__}"
    if problem is None and shaped is not None:
        return shaped
    log.debug("replaced an output nbformat cannot write: %s", problem)
    if isinstance(output, dict) and output.get("output_type") == "error":
        ename = output.get("ename")
        return error_output(
            clean_text(ename)[:100] if isinstance(ename, str) and ename else "Error",
            clean_text(output.get("evalue", ""))[:STAND_IN_CHARS],
        )
    return {
        "output_type": "stream",
        "name": "stderr",
        "text": f"[an output was replaced: nbformat cannot write it ({problem})]\n",
    }


def clean_cell(outputs: Any) -> list[dict[str, Any]]:
    """A cell's outputs, each cleaned, at most MAX_OUTPUTS_PER_CELL (the last error kept)."""
    outputs = outputs if isinstance(outputs, list) else []
    if len(outputs) > MAX_OUTPUTS_PER_CELL:
        errors = [o for o in outputs if isinstance(o, dict) and o.get("output_type") == "error"]
        first = outputs[: MAX_OUTPUTS_PER_CELL - 2]
        outputs = first + [
            {"output_type": "stream", "name": "stderr", "text": "[more outputs were not kept]\n"},
            *[e for e in errors[-1:] if not any(e is o for o in first)],
        ]
    return [clean(o) for o in outputs]
