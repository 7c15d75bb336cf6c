# Two images from one file (docker-compose.yml builds both):
#
#   learner  the learner lab. It holds the RELEASE only: notebooks/, the autograder package and the lab's
#            config — never solutions/ (every answer and hidden test), tests/ or benchmarks/. Its files are
#            copied one allowed path at a time, so nothing the build context holds reaches an image layer
#            by accident (a file deleted in a later layer would still be readable in an earlier one).
#            "Check my work" sends the saved notebook to the checker (COURSE_CHECK_URL).
#   checker  the course's check server: the whole course (it needs solutions/ to grade), no published port.
#
# docker build --target learner -t course-lab .     docker build --target checker -t course-checker .

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /course


FROM base AS checker
COPY . /course
# Editable install: the CLI finds solutions/ and notebooks/ relative to the checkout.
RUN pip install -e ".[dev]"
EXPOSE 8890
CMD ["autograder", "check-server", "--ip", "0.0.0.0", "--port", "8890"]


FROM base AS learner
COPY pyproject.toml README.md Makefile nbgrader_config.py /course/
COPY autograder /course/autograder
COPY jupyter /course/jupyter
COPY notebooks /course/notebooks
RUN pip install -e ".[dev]"

# The learner's workspace: `autograder lab` copies the release (notebooks/) here on first start and
# syncs it on every start without overwriting edits. Mount a volume on it to keep the work
# (docker-compose.yml does: the `workspace` volume); .dockerignore keeps a local workspace/ out.
ENV COURSE_WORKSPACE=/workspace
VOLUME ["/workspace"]

EXPOSE 8888
# The supervisor handles SIGTERM (docker stop): it stops JupyterLab and exits.
CMD ["autograder", "lab", "--no-browser", "--ip", "0.0.0.0", "--port", "8888"]
