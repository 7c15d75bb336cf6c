"""A PostgreSQL socket of its own for a submission graded on an external server.

With GRADING_DATABASE_URL the grading server is not ours: its `pg_hba.conf` may trust every
local connection (a docker image, a developer's server), so binding its socket folder into
the sandbox would let a submission log in as the superuser and run `COPY ... FROM PROGRAM` on
the host. Instead each submission gets a unix socket of its own, served by the grader, that
relays exactly one kind of connection to the real server: its own role to its own database.

The relay reads the startup message (the one place a connection names its role and database,
in the clear, before any authentication) and refuses anything else with an ErrorResponse the
driver shows as a normal error; after that it copies bytes both ways and never looks again.
Authentication is still the server's: the role's password travels through untouched.
SSL is declined on the submission's side (the socket is local to the machine); the relay
reaches the server without it, so a server that demands SSL refuses the relayed connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
MAX_STARTUP = 10_000  # the server's own limit on a startup packet is about this size
SOCKET_NAME = ".s.PGSQL.5432"


@dataclass(frozen=True)
class Upstream:
    """Where the real server listens: a unix socket folder and port, or a host and port."""

    host: str
    port: int = 5432

    @property
    def unix_path(self) -> str | None:
        return f"{self.host}/.s.PGSQL.{self.port}" if self.host.startswith("/") else None

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.unix_path:
            return await asyncio.open_unix_connection(self.unix_path)
        return await asyncio.open_connection(self.host, self.port)


def _error_response(message: str, code: str = "28000") -> bytes:
    fields = b"".join(
        kind + value.encode() + b"\0"
        for kind, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


def parse_startup(body: bytes) -> dict[str, str]:
    """The parameters of a protocol 3.0 startup message (after its length and version)."""
    parts = body.split(b"\0")
    params: dict[str, str] = {}
    for key, value in zip(parts[0::2], parts[1::2], strict=False):
        if not key:
            break
        params[key.decode(errors="replace")] = value.decode(errors="replace")
    return params


@dataclass
class SubmissionProxy:
    """One submission's socket: `folder` holds `.s.PGSQL.5432`; only `role` on `database` passes."""

    folder: Path
    upstream: Upstream
    role: str
    database: str
    refused: list[str] = field(default_factory=list)  # what it turned away, for the verdict
    _server: asyncio.AbstractServer | None = None
    _relays: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def socket_path(self) -> Path:
        return self.folder / SOCKET_NAME

    async def start(self, uid: int | None = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.socket_path))
        # Only the submission's uid may connect (0700 folder it owns, socket 0600).
        os.chmod(self.socket_path, 0o600)
        if uid is not None:
            os.chown(self.folder, uid, uid)
            os.chown(self.socket_path, uid, uid)
        os.chmod(self.folder, 0o700)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._relays):
            task.cancel()
        if self._relays:
            await asyncio.gather(*self._relays, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._relays.add(task)
        try:
            await self._relay(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
            log.debug("relay for %s ended: %s", self.role, exc)
        finally:
            if task is not None:
                self._relays.discard(task)
            writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            length, code = struct.unpack("!II", await reader.readexactly(8))
            if not 8 <= length <= MAX_STARTUP:
                return
            body = await reader.readexactly(length - 8)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                writer.write(b"N")  # no encryption on a local socket; the client goes on in the clear
                await writer.drain()
                continue
            break
        if code == CANCEL_REQUEST:
            # Carries only a backend's pid and secret key, which only its own connection knows.
            up_reader, up_writer = await self.upstream.open()
            up_writer.write(struct.pack("!II", length, code) + body)
            await up_writer.drain()
            up_writer.close()
            return
        params = parse_startup(body) if code == PROTOCOL_3 else {}
        role, database = params.get("user", ""), params.get("database") or params.get("user", "")
        if code != PROTOCOL_3 or role != self.role or database != self.database or params.get("replication"):
            what = f"role {role!r} on database {database!r}" if code == PROTOCOL_3 else f"protocol {code}"
            self.refused.append(what)
            writer.write(
                _error_response(
                    f"the grader lets this submission reach its own database only, as its own role; refused: {what}"
                )
            )
            await writer.drain()
            return
        up_reader, up_writer = await self.upstream.open()
        try:
            up_writer.write(struct.pack("!II", length, code) + body)
            await up_writer.drain()
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.write_eof()
