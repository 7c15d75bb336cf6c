"""What one workshop hub is configured with: chosen by `autograder hub`, read by jupyterhub_config.py.

The supervisor (`autograder.hub.run`) hands the settings to the JupyterHub process as JSON in the
environment variable `ENV_SETTINGS`; `jupyter/hub/jupyterhub_config.py` reads them back.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from autograder.course.layout import COURSE_ID, ENV_EXCHANGE
from autograder.db import url as urls

ENV_SETTINGS = "AUTOGRADER_HUB_SETTINGS"
DEFAULT_PORT = 8000
# nbgrader's own default exchange root. Not the instructor's default (`.course/exchange`, see
# autograder.course.layout.exchange_dir): learners cannot pass through the state folder, which holds secrets.
DEFAULT_EXCHANGE = Path("/srv/nbgrader/exchange")


def default_exchange() -> Path:
    """$COURSE_EXCHANGE if set (the same exchange the instructor's nbgrader uses), else DEFAULT_EXCHANGE."""
    configured = os.environ.get(ENV_EXCHANGE, "").strip()
    return Path(configured).absolute() if configured else DEFAULT_EXCHANGE


DEFAULT_CULL_SECONDS = 3600


def default_hub_dir() -> Path:
    return urls.state_dir() / "hub"


@dataclass(frozen=True)
class HubSettings:
    hub_dir: Path = field(default_factory=default_hub_dir)
    participants: Path | None = None  # default: <hub_dir>/participants.txt
    ip: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    hub_port: int = 8081  # the hub's own API, on 127.0.0.1 (the supervisor picks a free one)
    proxy_api_port: int = 8001  # the proxy's REST API, on 127.0.0.1 (likewise)
    check_port: int = 8890  # the course's check server (a hub service), on 127.0.0.1 (likewise)
    check_workers: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2))
    exchange: Path = field(default_factory=default_exchange)
    cull_seconds: int = DEFAULT_CULL_SECONDS  # 0: no idle culler
    home_base: Path = Path("/home")
    connection_limit: int = 30
    venv_bin: Path = field(default_factory=lambda: Path(sys.executable).parent)
    learner_python: Path | None = None  # what learners' servers run (autograder.hub.interpreter); None: venv's
    course_id: str = COURSE_ID
    # Each learner's databases (with their temporary files), in MiB; 0: no quota (autograder.hub.watchdog).
    db_quota_mb: int = 2048
    # The hub cluster's max_connections; 0: every participant at their connection limit at once
    # (provision.max_connections_for).
    db_max_connections: int = 0
    db_quota_poll_seconds: float = 3.0

    @property
    def participants_file(self) -> Path:
        return self.participants or self.hub_dir / "participants.txt"

    @property
    def secrets_dir(self) -> Path:
        """The hub's own secrets (its sqlite, cookie secret, passwords, keys): root only."""
        return self.hub_dir / "secrets"

    def to_json(self) -> str:
        return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()})

    @classmethod
    def from_json(cls, text: str) -> HubSettings:
        data: dict[str, Any] = json.loads(text)
        paths = {f.name for f in fields(cls) if "Path" in str(f.type)}
        values: dict[str, Any] = {k: (Path(v) if k in paths and v is not None else v) for k, v in data.items()}
        return cls(**values)

    @classmethod
    def from_env(cls) -> HubSettings:
        raw = os.environ.get(ENV_SETTINGS)
        return cls.from_json(raw) if raw else cls()
