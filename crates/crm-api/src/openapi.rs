//! The OpenAPI document, generated from the handlers and DTOs.

use crate::routes::{access, companies, contacts, events, fields, health, teams, webhooks};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A JWT access token from /auth/login, or an API key (`crm_…`)",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Headless CRM API",
        description = "A REST/JSON CRM API. Conventions: base path /api/v1; errors are RFC 9457 problem+json; lists are cursor-paginated (`limit`, `cursor` → `next_cursor`); `PATCH` is a JSON Merge Patch; responses carry `ETag: \"<version>\"` and `PATCH`/`DELETE` honour `If-Match` (412 when stale); every authenticated `POST` accepts `Idempotency-Key`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    servers((url = "/", description = "The server that serves this document")),
    modifiers(&Security),
    paths(
        health::healthz, health::readyz, crate::observe::metrics,
        access::create_workspace, access::login, access::refresh, access::logout, access::me,
        access::list_users, access::create_user, access::get_user, access::update_user, access::deactivate_user,
        access::create_api_key, access::list_api_keys, access::revoke_api_key,
        teams::list_teams, teams::create_team, teams::get_team, teams::update_team, teams::delete_team,
        teams::list_team_members, teams::add_team_member, teams::remove_team_member,
        events::list_events, events::audit_log,
        webhooks::list_webhooks, webhooks::create_webhook, webhooks::get_webhook, webhooks::update_webhook,
        webhooks::delete_webhook, webhooks::rotate_secret, webhooks::list_deliveries, webhooks::replay_delivery,
        fields::list_fields, fields::create_field, fields::get_field, fields::update_field, fields::delete_field,
        contacts::list_contacts, contacts::batch_contacts, contacts::search_contacts, contacts::create_contact, contacts::get_contact,
        contacts::update_contact, contacts::delete_contact, contacts::restore_contact, contacts::lifecycle_history,
        contacts::list_contact_companies, contacts::link_company, contacts::update_link, contacts::unlink_company,
        companies::list_companies, companies::batch_companies, companies::search_companies, companies::create_company, companies::get_company,
        companies::update_company, companies::delete_company, companies::restore_company, companies::list_company_contacts,
    ),
    tags(
        (name = "auth", description = "Workspaces, sign-in and tokens"),
        (name = "users", description = "People of the workspace (admins manage them)"),
        (name = "api-keys", description = "Credentials for integrations"),
        (name = "teams", description = "Groups of users, for assignment and reporting"),
        (name = "fields", description = "Custom field definitions"),
        (name = "contacts", description = "People"),
        (name = "companies", description = "Accounts"),
        (name = "events", description = "The change feed and the audit log: every change to a record, in commit order"),
        (name = "webhooks", description = "Changes pushed to your endpoints, signed per Standard Webhooks"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON, as checked in at `api-spec/openapi.json`.
pub fn json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
