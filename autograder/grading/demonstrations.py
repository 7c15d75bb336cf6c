"""Which cells a graded run may leave out: the lesson's demonstrations that nothing after them needs.

A lesson marks a code cell that only demonstrates something (a benchmark, a failure shown
on purpose, a stream of 200 000 rows) with cell metadata {"autograder": {"demo": true}} in
solutions/. No hidden test needs what they show, and they are most of a graded run's time.
But a learner may reuse a helper a demonstration defined (`csv_line`, `QUERY`): so a
demonstration is skipped only when no cell that runs after it reads a name it set, judged
on the submission's own code by reading it (names, not effects; what a demonstration does
to the database is covered by each lesson's graded-solution tests). A cell that cannot be
read (a syntax error, say) might read anything: then every demonstration runs.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEMO_METADATA = "autograder"
_MAGIC = re.compile(r"^\s*[%!]")
_TIMED = re.compile(r"^(\s*)%%?(?:time|timeit|prun)\b(?:\s+-\S+)*\s*(.*)$")  # %time stmt runs stmt


@dataclass(frozen=True)
class CodeCell:
    cell_id: str
    source: str
    nbgrader: bool  # an answer, test or locked cell: always runs


def demonstration_cells(source: Path) -> frozenset[str]:
    """Ids of the code cells a lesson's source marks as demonstrations.

    Read from the lesson's source (solutions/), never from a submission: what a learner
    writes into their notebook's metadata cannot make the grader skip a cell."""
    try:
        cells = json.loads(Path(source).read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return frozenset()
    return frozenset(
        str(cell["id"])
        for cell in cells
        if cell.get("cell_type") == "code"
        and cell.get("id")
        and (cell.get("metadata", {}).get(DEMO_METADATA) or {}).get("demo") is True
        and not cell.get("metadata", {}).get("nbgrader")
    )


def skippable(cells: Sequence[CodeCell], demos: frozenset[str]) -> frozenset[int]:
    """Positions (in `cells`) of the demonstrations a graded run can leave out.

    Read backwards: `needed` is what the cells after this point read from the notebook's
    namespace before setting it themselves. A demonstration that sets none of it is skipped."""
    if not demos:
        return frozenset()
    needed: set[str] = set()
    skip: set[int] = set()
    for position in range(len(cells) - 1, -1, -1):
        cell = cells[position]
        tree = parse(cell.source)
        if tree is None:
            return frozenset()  # unreadable: it might read any name
        sets = bound_at_top_level(tree)
        if cell.cell_id in demos and not cell.nbgrader and not sets & needed:
            skip.add(position)
            continue
        needed = (needed - sets) | reads(tree)
    return frozenset(skip)


def parse(source: str) -> ast.Module | None:
    code = "\n".join(_without_magic(line) for line in source.splitlines())
    try:
        tree = compile(code, "<cell>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except (SyntaxError, ValueError):
        return None
    return tree if isinstance(tree, ast.Module) else None


def _without_magic(line: str) -> str:
    timed = _TIMED.match(line)
    if timed:
        return timed.group(1) + timed.group(2)
    return "" if _MAGIC.match(line) else line


def bound_at_top_level(tree: ast.Module) -> set[str]:
    """Names a cell leaves in the notebook's namespace (not those inside its functions or classes)."""
    return _stored(list(tree.body))


def reads(tree: ast.Module) -> set[str]:
    """Names a cell reads from the notebook's namespace before it sets them itself.

    Statement by statement (`async with Probe(app) as probe:` then `probe.request()` reads
    `Probe` and `app`, not `probe`); inside functions, their own locals are left out. Where
    it cannot tell (a name set in a branch or a loop that may not run) it counts the read:
    a wrong "reads" only runs a demonstration that could have been skipped."""
    return _reads_in_order(list(tree.body), set())


def _reads_in_order(statements: list[ast.stmt], defined: set[str]) -> set[str]:
    found: set[str] = set()

    def read(node: ast.AST | None) -> None:
        if node is not None:
            found.update(_free(node, frozenset()) - defined)

    for stmt in statements:
        if isinstance(stmt, (ast.With, ast.AsyncWith)):  # the body always runs: what it sets stays set
            for item in stmt.items:
                read(item.context_expr)
                if item.optional_vars is not None:
                    defined |= _stored([item.optional_vars])
            found |= _reads_in_order(stmt.body, defined)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            read(stmt.iter)
            inner = defined | _stored([stmt.target])
            found |= _reads_in_order(stmt.body, inner) | _reads_in_order(stmt.orelse, set(defined))
        elif isinstance(stmt, (ast.If, ast.While)):
            read(stmt.test)
            found |= _reads_in_order(stmt.body, set(defined)) | _reads_in_order(stmt.orelse, set(defined))
        elif isinstance(stmt, ast.Try):
            found |= _reads_in_order(stmt.body, set(defined))
            for handler in stmt.handlers:
                read(handler.type)
                caught = {handler.name} if handler.name else set()
                found |= _reads_in_order(handler.body, defined | caught)
            found |= _reads_in_order(stmt.orelse, set(defined)) | _reads_in_order(stmt.finalbody, set(defined))
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            read(stmt.value)
            targets: list[ast.AST] = list(stmt.targets) if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:  # `rows[i] = x` reads rows and i
                if not isinstance(target, ast.Name):
                    read(target)
            defined |= _stored(targets)
        else:
            read(stmt)
            defined |= _stored([stmt])
    return found


def _stored(nodes: list[ast.AST]) -> set[str]:
    """Names these statements bind in their own scope (not inside nested functions or classes)."""
    names: set[str] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        stack.extend(ast.iter_child_nodes(node))
    return names


def _free(node: ast.AST, local: frozenset[str]) -> set[str]:
    """Names read under `node` that are not local to a function or comprehension around the read."""
    found: set[str] = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = node.args
        params = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
        params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        body: list[ast.AST] = list(node.body) if isinstance(node.body, list) else [node.body]
        declared_global = {n for stmt in ast.walk(node) if isinstance(stmt, ast.Global) for n in stmt.names}
        inner = frozenset((local | params | _stored(body)) - declared_global)
        for default in [*args.defaults, *args.kw_defaults]:
            if default is not None:
                found |= _free(default, local)
        if not isinstance(node, ast.Lambda):
            for decorator in node.decorator_list:
                found |= _free(decorator, local)
        for stmt in body:
            found |= _free(stmt, inner)
        return found
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        targets = frozenset(local | _stored([g.target for g in node.generators]))
        for child in ast.iter_child_nodes(node):
            found |= _free(child, targets)
        return found
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        return set() if node.id in local else {node.id}
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id not in local:
        found.add(node.target.id)  # `x += 1` reads x
    for child in ast.iter_child_nodes(node):
        found |= _free(child, local)
    return found
