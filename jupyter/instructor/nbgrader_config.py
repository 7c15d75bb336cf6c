# nbgrader (formgrader, Validate) finds this file because `autograder instructor` puts this folder first on
# JUPYTER_CONFIG_PATH. Normally it does nothing: the repository's nbgrader_config.py, in the folder JupyterLab
# runs in, is the configuration. `autograder instructor --course DIR` sets AUTOGRADER_COURSE_ROOT=DIR: then the
# repository's configuration applies re-rooted at DIR, with DIR's own gradebook (DIR/.course/gradebook.db, where
# `autograder grade --course DIR` writes), as `autograder.course.api.course_api(DIR)` does.
import os
from pathlib import Path

_root = os.environ.get("AUTOGRADER_COURSE_ROOT")
if _root:
    from autograder.course.api import load_config
    from autograder.course.layout import gradebook_url

    c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file
    c.merge(load_config(Path(_root), db_url=gradebook_url(Path(_root))))
