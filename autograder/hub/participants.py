"""The workshop's participant list: who may sign in, and who is an instructor (a hub admin).

One participant per line, `#` starts a comment:

    # name        role (optional: learner by default)
    alice         instructor
    bob
    carol

A name is also the participant's account on this machine (their server runs as that user) and
part of their PostgreSQL role's name: lowercase letters, digits and single underscores, starting
with a letter, at most 24 characters (`__` is what separates a learner's role from a lesson in
their databases' names, so it never appears in a name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from autograder.errors import SetupError

NAME = re.compile(r"^[a-z](?:[a-z0-9]|_(?!_))*$")
MAX_NAME = 24
ROLES = ("learner", "instructor")
# Accounts every Linux machine has: a participant named like one would get that account's server.
RESERVED = frozenset(
    {"root", "admin", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy"}
    | {"www_data", "backup", "list", "irc", "gnats", "nobody", "postgres", "pgserver", "jupyterhub"}
)


@dataclass(frozen=True)
class Participant:
    name: str
    instructor: bool = False


def check_name(name: str, where: str = "") -> str:
    """`name` if it can be a participant's name, else SetupError with one sentence."""
    at = f" ({where})" if where else ""
    if len(name) > MAX_NAME or not NAME.match(name) or name.endswith("_"):
        raise SetupError(
            f"The participant name {name!r}{at} cannot be used: use lowercase letters, digits and single "
            f"underscores, starting with a letter and not ending with one, at most {MAX_NAME} characters."
        )
    if name in RESERVED:
        raise SetupError(f"The participant name {name!r}{at} is a system account's name; choose another one.")
    return name


def parse(text: str, source: str = "the participant list") -> list[Participant]:
    """The participants in `text`; SetupError naming the line of the first problem."""
    found: dict[str, Participant] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}, line {number}"
        fields = line.split()
        if len(fields) > 2 or (len(fields) == 2 and fields[1].lower() not in ROLES):
            raise SetupError(
                f"Line {number} of {source} is {raw.strip()!r}; write a name, optionally followed by "
                "`instructor` (or `learner`), one participant per line."
            )
        name = check_name(fields[0], where)
        if name in found:
            raise SetupError(f"{name!r} is listed twice in {source} (line {number}); list each participant once.")
        found[name] = Participant(name, instructor=len(fields) == 2 and fields[1].lower() == "instructor")
    if not found:
        raise SetupError(
            f"{source} lists nobody; add one participant per line (see jupyter/hub/participants.example.txt)."
        )
    return list(found.values())


def load(path: Path) -> list[Participant]:
    """The participants listed in `path`; SetupError when it is missing, unreadable or wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SetupError(
            f"The participant list {path} does not exist; create it with one name per line (`alice instructor`, "
            f"`bob`, ...), e.g. `cp jupyter/hub/participants.example.txt {path}`, or pass --participants FILE."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"Cannot read the participant list {path} ({exc}); fix the file or its permissions.") from None
    return parse(text, source=str(path))
