# The learner lab in a container; the database is the `db` service (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /course
# Editable install: the CLI finds notebooks/ and jupyter/ relative to the checkout.
COPY . /course
RUN pip install -e ".[dev]"

# The learner's workspace: `autograder lab` copies the release (notebooks/) here on first start and
# syncs it on every start without overwriting edits. Mount a volume on it to keep the work
# (docker-compose.yml does: the `workspace` volume); .dockerignore keeps a local workspace/ out.
ENV COURSE_WORKSPACE=/workspace
VOLUME ["/workspace"]

EXPOSE 8888
# The supervisor handles SIGTERM (docker stop): it stops JupyterLab and exits.
CMD ["autograder", "lab", "--no-browser", "--ip", "0.0.0.0", "--port", "8888"]
