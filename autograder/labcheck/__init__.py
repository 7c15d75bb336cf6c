""" "Check my work" in the learner's JupyterLab: a toolbar button that grades the saved notebook.

Two halves, no build step:
- a Jupyter server extension (this module): `/autograder/check`, served by `CheckService`,
  which grades through `grade_notebook` in a warm worker process — the same code path,
  sandbox and separate database as `autograder grade`, never the learner's own database;
- a JupyterLab extension, `labextensions/autograder-check/`, a hand-written module-federation
  container (see its header) that JupyterLab finds through `LABEXTENSIONS_PATH`, which the
  learner view's config adds to `LabApp.extra_labextensions_path`.
Enabled in jupyter/learner/jupyter_server_config.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LABEXTENSIONS_PATH = Path(__file__).parent / "labextensions"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "autograder.labcheck"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from jupyter_server.utils import url_path_join

    from autograder.labcheck.handlers import CheckHandler
    from autograder.labcheck.remote import service_for

    web_app = serverapp.web_app
    # Graded here when this installation holds the course's source; by the course's check
    # server when the lab holds the release only (COURSE_CHECK_URL: a hub, the compose lab).
    service = service_for(Path(serverapp.root_dir))
    web_app.settings["autograder_check_service"] = service
    route = url_path_join(web_app.settings["base_url"], "autograder", "check")
    web_app.add_handlers(".*$", [(route, CheckHandler)])
    # No stop hook for a plain server extension: when the server ends, the worker reads the
    # end of its requests and exits, or dies with its parent (worker.py).
    serverapp.log.info("autograder: Check my work is on (%s)", route)
