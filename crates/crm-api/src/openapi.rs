//! The OpenAPI document, generated from the handlers and DTOs.

use crate::routes::{
    access, activities, assignment_rules, companies, contacts, deals, events, exports, fields,
    forecast, health, imports, leads, pipelines, price_books, products, quotas, quotes, teams,
    webhooks,
};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
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

/// Every operation that takes a request body can answer 413 (too large) and 415 (not JSON),
/// read endpoints such as search included: the body extractor decides both before the handler.
struct BodyErrors;

impl Modify for BodyErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let statuses = [
            ("413", "The body exceeds the configured limit."),
            ("415", "The body is not `application/json`."),
        ];
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                if op.request_body.is_none() {
                    continue;
                }
                for (status, description) in statuses {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(description)
                                .content(
                                    "application/problem+json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("Problem")))
                                        .build(),
                                )
                                .into()
                        });
                }
            }
        }
    }
}

/// Every operation under `/api/v1` can answer 429 when its caller's budget is spent (see
/// `ratelimit`); the request carried credentials, so public operations are counted too.
struct RateLimited;

impl Modify for RateLimited {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let mut response = ResponseBuilder::new().description(
            "Too many requests: the caller's budget for the window (per user or API key; \
             batches and imports have their own) is spent. Every authenticated response \
             carries `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and \
             `RateLimit-Policy`.",
        );
        for (name, description) in [
            ("Retry-After", "Seconds until the budget renews"),
            ("RateLimit-Limit", "Requests allowed per window"),
            ("RateLimit-Remaining", "Requests left in this window"),
            ("RateLimit-Reset", "Seconds until the window ends"),
        ] {
            let schema = ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0));
            response = response.header(
                name,
                HeaderBuilder::new()
                    .schema(schema)
                    .description(Some(description))
                    .build(),
            );
        }
        let response = response
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .responses
            .insert("TooManyRequests".to_string(), response.into());
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                op.responses
                    .responses
                    .entry("429".to_string())
                    .or_insert_with(|| Ref::new("#/components/responses/TooManyRequests").into());
            }
        }
    }
}

/// Every authenticated `POST` honours `Idempotency-Key` (see `idempotency`): the middleware
/// runs before every handler, so the header is declared here once for all of them.
struct IdempotentPosts;

impl Modify for IdempotentPosts {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::Required;
        for item in openapi.paths.paths.values_mut() {
            let Some(op) = item.post.as_mut() else {
                continue;
            };
            let authenticated = op
                .security
                .iter()
                .flatten()
                .any(|s| s != &utoipa::openapi::security::SecurityRequirement::default());
            let params = op.parameters.get_or_insert_with(Vec::new);
            if !authenticated || params.iter().any(|p| p.name == crate::idempotency::HEADER) {
                continue;
            }
            let schema = ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255));
            params.push(
                ParameterBuilder::new()
                    .name(crate::idempotency::HEADER)
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .schema(Some(schema))
                    .description(Some(
                        "A key of the caller's choosing (1 to 255 characters). A repeat of the \
                         request by the same caller (user or API key) under the same key within \
                         24 h is answered with the first response (`Idempotent-Replayed: true`) \
                         instead of running again; the same key with another request is a 422, \
                         and a repeat while the first still runs a 409. Keys are the caller's \
                         own: another caller's request under the same key runs as its own.",
                    ))
                    .build(),
            );
        }
    }
}

/// The `object` of `GET /exports/{object}` is one of the exportable resources, listed from
/// the same registry the route dispatches on.
struct ExportObjects;

impl Modify for ExportObjects {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(op) = openapi
            .paths
            .paths
            .get_mut("/api/v1/exports/{object}")
            .and_then(|item| item.get.as_mut())
        else {
            return;
        };
        for param in op.parameters.iter_mut().flatten() {
            if param.name == "object" {
                param.schema = Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(exports::objects()))
                        .into(),
                );
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Headless CRM API",
        description = "A REST/JSON CRM API. Conventions: base path /api/v1; errors are RFC 9457 problem+json; lists are cursor-paginated (`limit`, `cursor` → `next_cursor`); `PATCH` is a JSON Merge Patch; responses carry `ETag: \"<version>\"` and `PATCH`/`DELETE` honour `If-Match` (412 when stale); every authenticated `POST` accepts `Idempotency-Key`, kept per caller for 24 h.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    servers((url = "/", description = "The server that serves this document")),
    modifiers(&Security, &BodyErrors, &RateLimited, &ExportObjects, &IdempotentPosts),
    paths(
        health::healthz, health::readyz, crate::observe::metrics,
        access::create_workspace, access::login, access::refresh, access::logout, access::me,
        access::list_users, access::batch_users, access::create_user, access::get_user, access::update_user, access::deactivate_user,
        access::create_api_key, access::list_api_keys, access::revoke_api_key,
        teams::list_teams, teams::create_team, teams::batch_teams, teams::get_team, teams::update_team, teams::delete_team,
        teams::list_team_members, teams::add_team_member, teams::remove_team_member,
        events::list_events, events::audit_log,
        webhooks::list_webhooks, webhooks::create_webhook, webhooks::get_webhook, webhooks::update_webhook,
        webhooks::delete_webhook, webhooks::rotate_secret, webhooks::list_deliveries, webhooks::replay_delivery,
        fields::list_fields, fields::batch_fields, fields::create_field, fields::get_field, fields::update_field, fields::delete_field,
        contacts::list_contacts, contacts::batch_contacts, contacts::search_contacts, contacts::create_contact, contacts::get_contact,
        contacts::update_contact, contacts::delete_contact, contacts::restore_contact, contacts::merge_contacts, contacts::contact_duplicates, contacts::lifecycle_history,
        contacts::list_contact_companies, contacts::link_company, contacts::update_link, contacts::unlink_company,
        companies::list_companies, companies::batch_companies, companies::search_companies, companies::create_company, companies::get_company,
        companies::update_company, companies::delete_company, companies::restore_company, companies::merge_companies, companies::company_duplicates, companies::list_company_contacts,
        leads::list_leads, leads::batch_leads, leads::search_leads, leads::create_lead, leads::get_lead,
        leads::update_lead, leads::delete_lead, leads::restore_lead, leads::convert_lead,
        assignment_rules::list_assignment_rules, assignment_rules::create_assignment_rule, assignment_rules::batch_assignment_rules, assignment_rules::get_assignment_rule,
        assignment_rules::update_assignment_rule, assignment_rules::delete_assignment_rule,
        pipelines::list_pipelines, pipelines::create_pipeline, pipelines::batch_pipelines, pipelines::get_pipeline, pipelines::update_pipeline,
        pipelines::delete_pipeline, pipelines::restore_pipeline, pipelines::create_stage, pipelines::update_stage, pipelines::order_stages,
        pipelines::delete_stage, pipelines::pipeline_board,
        deals::list_deals, deals::batch_deals, deals::search_deals, deals::create_deal, deals::get_deal,
        deals::update_deal, deals::delete_deal, deals::restore_deal, deals::stage_history,
        deals::list_deal_contacts, deals::put_deal_contact, deals::delete_deal_contact, deals::list_contact_deals,
        activities::list_activities, activities::batch_activities, activities::search_activities, activities::create_activity,
        activities::get_activity, activities::update_activity, activities::delete_activity, activities::restore_activity,
        activities::get_calendar, activities::get_contact_timeline, activities::get_company_timeline,
        activities::get_deal_timeline, activities::get_lead_timeline,
        products::list_products, products::batch_products, products::search_products, products::create_product, products::get_product,
        products::update_product, products::delete_product, products::restore_product,
        price_books::list_price_books, price_books::batch_price_books, price_books::search_price_books, price_books::create_price_book, price_books::get_price_book,
        price_books::update_price_book, price_books::delete_price_book, price_books::restore_price_book,
        price_books::list_prices, price_books::set_price, price_books::delete_price,
        quotes::list_quotes, quotes::batch_quotes, quotes::search_quotes, quotes::create_quote, quotes::get_quote,
        quotes::update_quote, quotes::delete_quote, quotes::restore_quote, quotes::accept_quote,
        quotas::list_quotas, quotas::batch_quotas, quotas::search_quotas, quotas::create_quota, quotas::get_quota,
        quotas::update_quota, quotas::delete_quota, quotas::restore_quota,
        forecast::get_forecast,
        exports::export_records,
        imports::create_import, imports::list_imports, imports::get_import, imports::list_import_errors,
        imports::cancel_import,
    ),
    components(schemas(crate::exports::Format)),
    tags(
        (name = "auth", description = "Workspaces, sign-in and tokens"),
        (name = "users", description = "People of the workspace (admins manage them)"),
        (name = "api-keys", description = "Credentials for integrations"),
        (name = "teams", description = "Groups of users, for assignment and reporting"),
        (name = "fields", description = "Custom field definitions"),
        (name = "contacts", description = "People"),
        (name = "companies", description = "Accounts"),
        (name = "leads", description = "Prospects to qualify, distribute and convert"),
        (name = "assignment-rules", description = "Which rep owns a new lead: fixed or round robin, by filter"),
        (name = "pipelines", description = "Sales pipelines, their stages and boards"),
        (name = "deals", description = "Opportunities moving through a pipeline"),
        (name = "activities", description = "Tasks, calls, meetings, e-mails and notes linked to records; calendars"),
        (name = "products", description = "The product catalogue"),
        (name = "price-books", description = "Prices of products per currency and audience"),
        (name = "quotes", description = "Proposals with line items, discounts and taxes"),
        (name = "quotas", description = "What users and teams should close per month or quarter"),
        (name = "forecast", description = "Closed-won, weighted and best-case pipeline per period, against quotas"),
        (name = "events", description = "The change feed and the audit log: every change to a record, in commit order"),
        (name = "exports", description = "Every record resource as a CSV or NDJSON stream"),
        (name = "imports", description = "CSV and NDJSON files of any size written into records in the background, resumable, with per-row errors"),
        (name = "webhooks", description = "Changes pushed to your endpoints, signed per Standard Webhooks"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON, as checked in at `api-spec/openapi.json`.
pub fn json() -> &'static str {
    // Made once per process: building the document allocates megabytes, which every
    // request (and every HTTP worker) would otherwise repeat.
    static JSON: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    });
    &JSON
}

/// The documented paths as segment templates (`{…}` matches any one segment), each with
/// the methods it answers.
type RouteTable = Vec<(Vec<String>, Vec<&'static str>)>;

static ROUTES: std::sync::LazyLock<RouteTable> = std::sync::LazyLock::new(|| {
    ApiDoc::openapi()
        .paths
        .paths
        .iter()
        .map(|(path, item)| {
            let methods = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ]
            .into_iter()
            .filter_map(|(m, present)| present.then_some(m))
            .collect();
            (path.split('/').map(String::from).collect(), methods)
        })
        .collect()
});

/// For a path the API serves, the methods it answers (`GET, PATCH`), so that another method
/// is told 405 with `Allow` rather than 404; `None` for a path the API does not have. A
/// literal segment wins over a `{…}` one, as in routing: `/contacts/search` is not
/// `/contacts/{id}`.
pub fn allowed_methods(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    ROUTES
        .iter()
        .filter(|(template, _)| {
            template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
        })
        .max_by_key(|(template, _)| template.iter().filter(|t| !t.starts_with('{')).count())
        .map(|(_, methods)| methods.join(", "))
}
