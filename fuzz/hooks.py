"""Schemathesis hooks for `make fuzz-api`.

The run signs in as one admin (`CRM_FUZZ_SELF_ID`). Access tokens are checked against
the caller's current role on every request, so a generated `PATCH /api/v1/users/{id}`
that demotes the caller itself would turn every later request into a 403 and leave the
rest of the run testing nothing. Such a request is sent to a second admin created for
the run (`CRM_FUZZ_PEER_ID`) instead: the operation is still exercised with the same
body, on a user that the run can afford to demote, deactivate or re-password.

Deactivating oneself (`DELETE /api/v1/users/{id}`) is refused by the server (409) and
stays fuzzed as is.

One failure is dropped, for a reason given at `filter_failure` below.

`POST /api/v1/imports` takes the file itself as its body (`text/csv` or
`application/x-ndjson`, documented as a string): generated strings are sent as their UTF-8
bytes, so the import's parsers are fuzzed with whatever text the schema allows.
"""

import os

import schemathesis

SELF_ID = os.environ.get("CRM_FUZZ_SELF_ID", "")
PEER_ID = os.environ.get("CRM_FUZZ_PEER_ID", "")


@schemathesis.serializer("text/csv", "application/x-ndjson")
def file_body(ctx, value):
    if isinstance(value, bytes):
        return {"data": value}
    if not isinstance(value, str):
        value = str(value)
    return {"data": value.encode("utf8")}


@schemathesis.hook
def before_call(context, case, kwargs):
    operation = case.operation
    if (
        SELF_ID
        and PEER_ID
        and operation.method.upper() == "PATCH"
        and operation.path.endswith("/users/{id}")
        and case.path_parameters
        and case.path_parameters.get("id") == SELF_ID
    ):
        case.path_parameters["id"] = PEER_ID


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps every failure but one reading of the contract.

    `DELETE` on a contact or company archives it, and `?archived=true` asks for archived
    records (the API contract), so that read answering 200 after the `DELETE` is what the
    API promises, not a deleted resource still served. Without `archived=true` the same
    read must be a 404, and the check keeps failing it.
    """
    query = case.query or {}
    archived = str(query.get("archived", "")).lower() in ("true", "1")
    return not (failure.code == "ST301" and archived)
