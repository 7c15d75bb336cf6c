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

EXPOSE 8888
# The supervisor handles SIGTERM (docker stop): it stops JupyterLab and exits.
CMD ["autograder", "lab", "--no-browser", "--ip", "0.0.0.0", "--port", "8888"]
