# The workshop hub's JupyterHub configuration: `autograder hub` (`make hub`) starts JupyterHub with
# this file and hands it its settings in AUTOGRADER_HUB_SETTINGS; everything is built in
# autograder/hub/config.py.
from autograder.hub.config import main_config

main_config(get_config())  # noqa: F821 - provided by traitlets when it loads this file
