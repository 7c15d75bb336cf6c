# A workshop instructor's nbgrader (formgrader, Create Assignment, terminals): `autograder hub` puts this folder
# first on the instructor's server's JUPYTER_CONFIG_PATH (then jupyter/instructor/). The course itself is the
# checkout's nbgrader_config.py (the server starts in the course root); the exchange is the hub's
# ($COURSE_EXCHANGE) and the gradebook is the instructors' own state folder's ($COURSE_DATA_DIR).
from autograder.course.layout import COURSE_ID

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file
c.CourseDirectory.course_id = COURSE_ID
# Several instructors share the exchange's course folder (its group is `course-instructors`, setgid):
# nbgrader makes what it writes there group-writable and does not insist on owning it.
c.CourseDirectory.groupshared = True
