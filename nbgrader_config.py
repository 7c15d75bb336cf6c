# nbgrader's course layout mapped onto this repository (see autograder/course/layout.py):
# lessons are written in solutions/<lesson>/<lesson>.ipynb and released to notebooks/<lesson>/.
import os
from typing import TYPE_CHECKING, Any

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.converters import Autograde, GenerateAssignment
from nbgrader.preprocessors import GetGrades

from autograder.course.layout import COURSE_ID, RELEASE_DIR, SOURCE_DIR, exchange_dir, gradebook_url
from autograder.course.preprocessors import (
    MarkExpectedFailures,
    RedactHiddenTests,
    SanitizeOutputs,
    with_outputs_sanitised,
    with_pasted_answers_kept,
)

if TYPE_CHECKING:
    # Not defined here: nbgrader (traitlets' config loader) provides it when it loads this file.
    def get_config() -> Any: ...


c = get_config()

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = COURSE_ID
c.CourseDirectory.source_directory = SOURCE_DIR
c.CourseDirectory.release_directory = RELEASE_DIR
c.CourseDirectory.db_url = gradebook_url()
c.Exchange.root = str(exchange_dir())

# The learner's copy: nbgrader's own steps, then tag unsolved exercises so nbval expects them to fail.
c.GenerateAssignment.preprocessors = [
    *GenerateAssignment.class_traits()["preprocessors"].default(),
    MarkExpectedFailures,
]

# Feedback shows verdicts and messages, never hidden test code (nbgrader #917).
# Outputs and markdown are rendered as HTML there: sanitised last (scripts, handlers, javascript: URLs).
c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, RedactHiddenTests, SanitizeOutputs]
# formgrader renders autograded notebooks through an HTMLExporter with this configuration: those
# graded before outputs were sanitised are made inert when shown to the (logged-in) instructor.
c.HTMLExporter.preprocessors = [SanitizeOutputs]

# Autograding (stock `nbgrader autograde`, formgrader's button, and `autograder grade`):
# a copy-pasted answer cell is graded (not "KeyError: 'grade_id'"), and the stored
# autograded notebook carries no active content.
c.Autograde.sanitize_preprocessors = with_pasted_answers_kept(
    Autograde.class_traits()["sanitize_preprocessors"].default()
)
c.Autograde.autograde_preprocessors = with_outputs_sanitised(
    Autograde.class_traits()["autograde_preprocessors"].default()
)

# A test cell deleted from a submission comes back (and runs) instead of going ungraded.
c.OverwriteCells.add_missing_cells = True

# Lessons start an app and talk to PostgreSQL; the stock 30 s per cell is tight on 2 cores.
c.ExecutePreprocessor.timeout = 120
