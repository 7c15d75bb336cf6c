# The learner view's settings that need Python (the rest is in jupyter_server_config.json):
# JupyterLab finds the "Check my work" button's extension inside the autograder package.
from autograder.labcheck import LABEXTENSIONS_PATH

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file
c.LabApp.extra_labextensions_path = [str(LABEXTENSIONS_PATH)]
