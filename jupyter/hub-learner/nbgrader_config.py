# A workshop learner's nbgrader (the assignment list: fetch and submit): the course's exchange on this
# machine. `autograder hub` gives every learner's server COURSE_EXCHANGE and puts this folder first on
# its JUPYTER_CONFIG_PATH (before jupyter/learner/).
import os

from autograder.course.layout import COURSE_ID, ENV_EXCHANGE

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file
c.CourseDirectory.course_id = COURSE_ID
c.Exchange.root = os.environ.get(ENV_EXCHANGE, "/srv/nbgrader/exchange")
# The learner's lessons are in their workspace (the server's root; the server itself runs in their home):
# nbgrader's assignment list finds them there as "fetched", submits them and fetches feedback into them.
c.Exchange.assignment_dir = os.environ.get("COURSE_WORKSPACE", ".")
