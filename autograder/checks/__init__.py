"""Checks that observe what an app did to the database, never how its code reads.

async with Probe(app) as probe:
    (await rolled_back(probe, Call.post("/users", json=bad), table="users")).require()
    ex = await probe.request("GET", "/authors")
    max_queries(ex, 2).require()
"""

from autograder.checks.concurrency import takes_row_lock, transfer_storm
from autograder.checks.concurrency_safety import fans_out_concurrently
from autograder.checks.connections import no_connection_leak
from autograder.checks.content import matches_database
from autograder.checks.errors import maps_integrity_error, not_retried, retried_until_success, retries_bounded
from autograder.checks.health import healthy_when_up, unhealthy_when_down, unreachable_url
from autograder.checks.lifespan import fails_at_startup, no_connections_after_shutdown, separate_engines
from autograder.checks.loading import no_lazy_load
from autograder.checks.migrations import Revision, data_migrated, migration_roundtrip, schema_matches_models
from autograder.checks.mutation import suite_kills_mutants, suite_passes
from autograder.checks.optimistic import single_winner
from autograder.checks.pagination import keyset_pages_stable
from autograder.checks.probe import Call, Exchange, Probe
from autograder.checks.queries import exact_queries, max_queries
from autograder.checks.savepoints import nothing_kept, rows_exactly, savepoint_per_item
from autograder.checks.sessions import session_per_request
from autograder.checks.streaming import streams_within_memory
from autograder.checks.transactions import committed_once, rolled_back, savepoint_trace
from autograder.checks.unit_of_work import session_from_dependency, single_transaction
from autograder.checks.verdict import CheckFailed, Verdict

__all__ = [
    "Probe",
    "Call",
    "Exchange",
    "Verdict",
    "CheckFailed",
    "rolled_back",
    "committed_once",
    "savepoint_trace",
    "max_queries",
    "exact_queries",
    "no_connection_leak",
    "no_lazy_load",
    "session_per_request",
    "savepoint_per_item",
    "rows_exactly",
    "nothing_kept",
    "single_transaction",
    "session_from_dependency",
    "matches_database",
    "fails_at_startup",
    "no_connections_after_shutdown",
    "separate_engines",
    "fans_out_concurrently",
    "streams_within_memory",
    "healthy_when_up",
    "unhealthy_when_down",
    "unreachable_url",
    "transfer_storm",
    "takes_row_lock",
    "Revision",
    "schema_matches_models",
    "migration_roundtrip",
    "data_migrated",
    "keyset_pages_stable",
    "single_winner",
    "maps_integrity_error",
    "not_retried",
    "retried_until_success",
    "retries_bounded",
    "suite_kills_mutants",
    "suite_passes",
]
