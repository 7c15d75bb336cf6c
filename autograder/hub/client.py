"""A participant's side of a workshop hub, driven over HTTP as a browser would: for tests and benchmarks.

    with Participant(hub_url, "alice", password) as alice:
        alice.sign_in()                  # the login form (a first sign-in sets the password)
        alice.start_server()             # "Start My Server", then wait until it answers through the proxy
        kernel = alice.start_kernel()    # a kernel in their server, as they are
        reply = kernel.run("1 + 1")

The kernel is reached through its connection file in the learner's home, which only root (the
hub's operator) can read: that is what the tests and the load benchmark run as.
"""

from __future__ import annotations

import pwd
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SPAWN_TIMEOUT_S = 120.0


class HubClientError(RuntimeError):
    pass


@dataclass
class KernelRun:
    status: str  # "ok" or "error"
    outputs: list[str] = field(default_factory=list)
    error: str = ""


class Kernel:
    def __init__(self, participant: Participant, kernel_id: str, connection_file: Path) -> None:
        from jupyter_client import BlockingKernelClient

        self.participant = participant
        self.id = kernel_id
        self._client = BlockingKernelClient(connection_file=str(connection_file))
        self._client.load_connection_file()
        # No heartbeat channel: it declares a kernel dead after 1 s without a beat, which a kernel that is
        # still importing on a loaded machine misses; kernel_info replies are what tell it is ready.
        self._client.start_channels(hb=False)
        self._client.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float = 300) -> KernelRun:
        outputs: list[str] = []

        def hook(message: dict[str, Any]) -> None:
            content = message.get("content", {})
            if "text" in content:
                outputs.append(content["text"])

        reply = self._client.execute_interactive(code, timeout=timeout, output_hook=hook)
        content = reply["content"]
        error = f"{content.get('ename', '')}: {content.get('evalue', '')}" if content["status"] != "ok" else ""
        return KernelRun(content["status"], outputs, error)

    def close(self) -> None:
        self._client.stop_channels()
        self.participant.client.delete(
            f"/user/{self.participant.name}/api/kernels/{self.id}", headers=self.participant.server_xsrf()
        )


class Participant:
    def __init__(self, hub_url: str, name: str, password: str, *, timeout: float = 60) -> None:
        self.name = name
        self.password = password
        self.client = httpx.Client(base_url=hub_url, follow_redirects=True, timeout=timeout)

    def __enter__(self) -> Participant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def sign_in(self) -> httpx.Response:
        self.client.get("/hub/login")
        return self.client.post(
            "/hub/login",
            data={"username": self.name, "password": self.password, "_xsrf": self.client.cookies.get("_xsrf", "")},
        )

    def server_xsrf(self) -> dict[str, str]:
        """The header a cookie-authenticated API request to the participant's server needs."""
        for cookie in self.client.cookies.jar:
            if cookie.name == "_xsrf" and cookie.path.startswith(f"/user/{self.name}"):
                return {"X-XSRFToken": cookie.value or ""}
        return {}

    def hub_xsrf(self) -> dict[str, str]:
        """The header a cookie-authenticated request to the hub's own API needs."""
        for cookie in self.client.cookies.jar:
            if cookie.name == "_xsrf" and cookie.path.startswith("/hub"):
                return {"X-XSRFToken": cookie.value or ""}
        return {}

    def stop_server(self) -> None:
        """Click "Stop My Server", and wait until the hub says it is stopped."""
        self.client.delete(f"/hub/api/users/{self.name}/server", headers=self.hub_xsrf())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            model = self.client.get(f"/hub/api/users/{self.name}", headers=self.hub_xsrf())
            if model.status_code == 200 and not model.json().get("servers"):
                return
            time.sleep(0.3)
        raise HubClientError(f"{self.name}'s server did not stop within 60 s")

    def server_answers(self) -> bool:
        self.client.get(f"/user/{self.name}/lab")  # the OAuth round trip that gives the server's cookie
        status = self.client.get(f"/user/{self.name}/api/status", headers=self.server_xsrf())
        return status.status_code == 200 and status.headers.get("content-type", "").startswith("application/json")

    def start_server(self, timeout: float = SPAWN_TIMEOUT_S) -> float:
        """Ask for the server and wait until it answers through the proxy; the seconds it took."""
        started = asked = time.monotonic()
        self.client.get(f"/hub/spawn/{self.name}")
        while time.monotonic() - started < timeout:
            if self.server_answers():
                return time.monotonic() - started
            if time.monotonic() - asked > 10:  # a spawn asked while a stop was pending: ask again
                self.client.get(f"/hub/spawn/{self.name}")
                asked = time.monotonic()
            time.sleep(0.3)
        raise HubClientError(f"{self.name}'s server did not answer within {timeout:.0f} s")

    def start_kernel(self) -> Kernel:
        started = self.client.post(
            f"/user/{self.name}/api/kernels", json={"name": "python3"}, headers=self.server_xsrf()
        )
        if started.status_code != 201:
            raise HubClientError(f"{self.name}: starting a kernel answered {started.status_code}: {started.text[:300]}")
        kernel_id = started.json()["id"]
        home = Path(pwd.getpwnam(self.name).pw_dir)
        connection = home / ".local" / "share" / "jupyter" / "runtime" / f"kernel-{kernel_id}.json"
        deadline = time.monotonic() + 30
        while not connection.exists():
            if time.monotonic() > deadline:
                raise HubClientError(f"{self.name}: the kernel's connection file did not appear")
            time.sleep(0.2)
        return Kernel(self, kernel_id, connection)
