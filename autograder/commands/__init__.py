"""One module per `autograder` subcommand; each defines `register(subparsers)`.

The order here is the order `autograder --help` lists them in.
"""

COMMANDS: list[str] = ["db", "lab", "workspace", "instructor", "hub", "grade", "grade_one", "check_server", "release"]
