"""Import companies and contacts from CSV files into the CRM, then check the result.

Uses the client that openapi-python-client generates from api-spec/openapi.json
(`crm_client`, see README.md). Steps:

1. create a workspace (allowed while none exists, or with CRM_OPEN_SIGNUP=true),
   or sign in to the existing one when sign-up is closed;
2. create each company of data/companies.csv and each contact of data/contacts.csv
   (a record whose external_id or e-mail is already taken is updated instead),
   and link each contact to its company;
3. read everything back through lists, searches and filters, and exit with status 1
   on the first difference from the CSV files.

Configuration, from the environment: CRM_URL (default http://127.0.0.1:8080),
CRM_ADMIN_EMAIL, CRM_ADMIN_PASSWORD (the workspace administrator to create or sign in as).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from crm_client import AuthenticatedClient, Client
from crm_client.api.auth import create_workspace, login
from crm_client.api.companies import create_company, search_companies, update_company
from crm_client.api.contacts import (
    create_contact,
    link_contact_company,
    list_contact_companies,
    list_contacts,
    search_contacts,
    update_contact,
)
from crm_client.models import (
    Company,
    CompanyInput,
    CompanyLink,
    Contact,
    ContactInput,
    CreateWorkspace,
    FilterAnd,
    FilterCondition,
    FilterNot,
    FilterOp,
    FilterOr,
    LinkCompany,
    Login,
    PageCompany,
    PageContact,
    Problem,
    SearchRequest,
    TokenPair,
    WorkspaceCreated,
)
from crm_client.types import UNSET, Response

DATA = Path(__file__).resolve().parent / "data"


class Mismatch(Exception):
    """The server's answer differs from what the import wrote."""


def fail(message: str) -> NoReturn:
    raise Mismatch(message)


def expect(condition: bool, message: str) -> None:
    if not condition:
        fail(message)


def ok(response: Response[Any], what: str, statuses: tuple[int, ...] = (200, 201)) -> Any:
    """The parsed body of a successful response; a problem+json answer ends the import."""
    if response.status_code in statuses:
        return response.parsed
    parsed = response.parsed
    if isinstance(parsed, Problem):
        fail(f"{what}: {parsed.status} {parsed.title}: {parsed.detail} {parsed.errors or ''}")
    fail(f"{what}: unexpected status {response.status_code}: {response.content[:500]!r}")


def read_csv(name: str) -> list[dict[str, str]]:
    with open(DATA / name, encoding="utf-8", newline="") as f:
        return [{k: v.strip() for k, v in row.items()} for row in csv.DictReader(f)]


def split_tags(value: str) -> list[str]:
    return [t.strip() for t in value.split(";") if t.strip()]


# The CSV columns that are fields of the record as they are; `tags` is a list separated
# by `;`; the other columns (a contact's company and role) make the links.
COMPANY_COLUMNS = ("external_id", "name", "domain", "industry", "size")
CONTACT_COLUMNS = (
    "external_id",
    "first_name",
    "last_name",
    "email",
    "job_title",
    "lifecycle_stage",
)


def record(row: dict[str, str], columns: tuple[str, ...]) -> dict[str, Any]:
    """A record's fields, in the API's JSON shape, from a CSV row."""
    return {c: row[c] for c in columns} | {"tags": split_tags(row["tags"])}


def differences(found: Any, row: dict[str, str], columns: tuple[str, ...]) -> dict[str, Any]:
    """Each field whose value read back differs from the CSV row: (read, written)."""
    read = found.to_dict()
    wanted = record(row, columns)
    return {k: (read.get(k), v) for k, v in wanted.items() if read.get(k) != v}


Filter = FilterAnd | FilterOr | FilterNot | FilterCondition


def where(field: str, op: FilterOp, value: Any) -> FilterCondition:
    return FilterCondition(field=field, op=op, value=value)


def search_filter(node: Filter, limit: int = 100) -> SearchRequest:
    return SearchRequest(filter_=node, limit=limit)


def sign_in(base_url: str, email: str, password: str) -> AuthenticatedClient:
    """Creates the workspace when sign-up is open, then signs in as its administrator."""
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)
    created = create_workspace.sync_detailed(
        client=anonymous,
        body=CreateWorkspace(
            name="CSV import example",
            admin_email=email,
            admin_password=password,
            admin_name="Import Admin",
        ),
    )
    if created.status_code == 201:
        assert isinstance(created.parsed, WorkspaceCreated)
        print(f"created workspace {created.parsed.workspace.id}")
    elif created.status_code == 403:
        print("sign-up is closed: signing in to the existing workspace")
    else:
        ok(created, "create workspace")
    tokens: TokenPair = ok(
        login.sync_detailed(client=anonymous, body=Login(email=email, password=password)),
        "login",
    )
    expect(tokens.token_type == "Bearer", f"token_type is {tokens.token_type!r}")
    return AuthenticatedClient(
        base_url=base_url, token=tokens.access_token, raise_on_unexpected_status=True
    )


def row_key(body: CompanyInput | ContactInput) -> str:
    """An Idempotency-Key made of the row's content: a re-run with an unchanged row replays
    the first answer instead of acting again; a changed row is a new request (and a 409)."""
    return (
        "import-" + hashlib.sha256(json.dumps(body.to_dict(), sort_keys=True).encode()).hexdigest()
    )


def created_or_updated(
    created: Response[Any], update: Callable[[str], Response[Any]], what: str
) -> Any:
    """The created record; when its external_id or e-mail is taken (409), that record updated."""
    problem = created.parsed
    if created.status_code == 409 and isinstance(problem, Problem):
        existing = problem.existing_id
        expect(isinstance(existing, str), f"{what}: 409 without existing_id")
        return ok(update(str(existing)), f"update {what}")
    return ok(created, f"create {what}")


def import_company(client: AuthenticatedClient, row: dict[str, str]) -> Company:
    body = CompanyInput.from_dict(record(row, COMPANY_COLUMNS))
    return created_or_updated(
        create_company.sync_detailed(client=client, body=body, idempotency_key=row_key(body)),
        lambda id: update_company.sync_detailed(id=id, client=client, body=body),
        f"company {row['name']}",
    )


def import_contact(
    client: AuthenticatedClient, row: dict[str, str], companies: dict[str, Company]
) -> Contact:
    body = ContactInput.from_dict(record(row, CONTACT_COLUMNS))
    contact: Contact = created_or_updated(
        create_contact.sync_detailed(client=client, body=body, idempotency_key=row_key(body)),
        lambda id: update_contact.sync_detailed(id=id, client=client, body=body),
        f"contact {row['email']}",
    )
    company = companies[row["company"]]
    ok(
        link_contact_company.sync_detailed(
            id=contact.id,
            client=client,
            body=LinkCompany(company_id=company.id, role=row["role"], is_primary=True),
        ),
        f"link {row['email']} to {company.name}",
    )
    return contact


def only_match(
    search: Callable[..., Response[Any]],
    client: AuthenticatedClient,
    field: str,
    value: str,
    what: str,
) -> Any:
    """The one record that a search for `field` equal to `value` finds."""
    page: PageCompany | PageContact = ok(
        search(client=client, body=search_filter(where(field, FilterOp.EQ, value))),
        f"search {what} {value}",
    )
    expect(len(page.data) == 1, f"{what} {value}: {len(page.data)} matches")
    return page.data[0]


def verify_companies(client: AuthenticatedClient, rows: list[dict[str, str]]) -> None:
    for row in rows:
        found = only_match(
            search_companies.sync_detailed, client, "external_id", row["external_id"], "company"
        )
        diff = differences(found, row, COMPANY_COLUMNS)
        expect(not diff, f"company {row['external_id']} (read, written): {diff}")


def verify_contacts(
    client: AuthenticatedClient,
    rows: list[dict[str, str]],
    companies: dict[str, Company],
) -> None:
    for row in rows:
        found = only_match(search_contacts.sync_detailed, client, "email", row["email"], "contact")
        diff = differences(found, row, CONTACT_COLUMNS)
        expect(not diff, f"contact {row['email']} (read, written): {diff}")
        links: list[CompanyLink] = ok(
            list_contact_companies.sync_detailed(id=found.id, client=client),
            f"companies of {row['email']}",
        )
        linked = [(link.company.id, link.role, link.is_primary) for link in links]
        company = companies[row["company"]]
        expect(
            linked == [(company.id, row["role"], True)],
            f"contact {row['email']} is linked to {linked}, expected {company.name}",
        )


def verify_relation_filter(
    client: AuthenticatedClient,
    rows: list[dict[str, str]],
    company_rows: list[dict[str, str]],
) -> None:
    """Filters on the linked company's fields, combined with and / or / not."""
    industry_of = {c["external_id"]: c["industry"] for c in company_rows}
    only_imported = where("external_id", FilterOp.IN, [r["external_id"] for r in rows])

    def emails(node: Filter, what: str) -> list[str]:
        page: PageContact = ok(
            search_contacts.sync_detailed(
                client=client, body=search_filter(FilterAnd(and_=[only_imported, node]))
            ),
            what,
        )
        return sorted(c.email or "" for c in page.data)

    for industry in sorted(set(industry_of.values())):
        in_industry = where("companies.industry", FilterOp.EQ, industry)
        wanted = sorted(r["email"] for r in rows if industry_of[r["company"]] == industry)
        got = emails(in_industry, f"contacts in {industry}")
        expect(got == wanted, f"contacts in {industry}: {got} != {wanted}")
        others = sorted(r["email"] for r in rows if industry_of[r["company"]] != industry)
        got = emails(FilterNot(not_=in_industry), f"contacts outside {industry}")
        expect(got == others, f"contacts outside {industry}: {got} != {others}")

    mature_or_vip = FilterOr(
        or_=[
            where("lifecycle_stage", FilterOp.EQ, "mature"),
            where("tags", FilterOp.CONTAINS, "vip"),
        ]
    )
    wanted = sorted(
        r["email"]
        for r in rows
        if r["lifecycle_stage"] == "mature" or "vip" in split_tags(r["tags"])
    )
    got = emails(mature_or_vip, "mature or vip contacts")
    expect(got == wanted, f"mature or vip contacts: {got} != {wanted}")


def verify_listing(client: AuthenticatedClient, rows: list[dict[str, str]]) -> None:
    """Pages through every contact two at a time, and searches by free text."""
    seen: list[str] = []
    cursor: str | None = None
    while True:
        # A cursor is valid only with the sort it was made for.
        response = list_contacts.sync_detailed(
            client=client, limit=2, sort="-created_at", cursor=UNSET if cursor is None else cursor
        )
        page: PageContact = ok(response, "list contacts")
        expect(len(page.data) <= 2, f"a page of limit 2 has {len(page.data)} contacts")
        seen.extend(c.email or "" for c in page.data)
        if not isinstance(page.next_cursor, str):
            break
        cursor = page.next_cursor
    expect(len(seen) == len(set(seen)), f"pagination repeated a contact: {seen}")
    missing = {r["email"] for r in rows} - set(seen)
    expect(not missing, f"pagination missed {sorted(missing)}")

    for row in rows:
        page = ok(list_contacts.sync_detailed(client=client, q=row["last_name"]), "free text")
        emails = [c.email for c in page.data]
        expect(row["email"] in emails, f"q={row['last_name']!r} finds {emails}")


def verify_problems(client: AuthenticatedClient, contact: Contact) -> None:
    """Errors come back as problem+json documents that the generated client parses."""
    duplicate = create_contact.sync_detailed(
        client=client, body=ContactInput(first_name="Copy", email=contact.email)
    )
    problem = duplicate.parsed
    expect(
        duplicate.status_code == 409 and isinstance(problem, Problem),
        f"a duplicate e-mail gave {duplicate.status_code}",
    )
    assert isinstance(problem, Problem)
    expect(problem.existing_id == contact.id, f"409 names {problem.existing_id}, not {contact.id}")

    invalid = create_contact.sync_detailed(
        client=client, body=ContactInput(first_name="Bad", email="not an e-mail")
    )
    problem = invalid.parsed
    expect(
        invalid.status_code == 422 and isinstance(problem, Problem),
        f"an invalid e-mail gave {invalid.status_code}",
    )
    assert isinstance(problem, Problem)
    fields = [e.field for e in problem.errors or []]
    expect(fields == ["email"], f"422 names the fields {fields}, expected ['email']")


def main() -> int:
    base_url = os.environ.get("CRM_URL", "http://127.0.0.1:8080")
    email = os.environ.get("CRM_ADMIN_EMAIL", "import-admin@example.com")
    password = os.environ.get("CRM_ADMIN_PASSWORD", "correct horse battery staple")
    company_rows = read_csv("companies.csv")
    contact_rows = read_csv("contacts.csv")
    try:
        client = sign_in(base_url, email, password)
        with client:
            companies = {row["external_id"]: import_company(client, row) for row in company_rows}
            contacts = [import_contact(client, row, companies) for row in contact_rows]
            print(f"imported {len(companies)} companies and {len(contacts)} contacts")
            verify_companies(client, company_rows)
            verify_contacts(client, contact_rows, companies)
            verify_relation_filter(client, contact_rows, company_rows)
            verify_listing(client, contact_rows)
            verify_problems(client, contacts[0])
    except Mismatch as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("verified: every company, contact and link reads back as imported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
