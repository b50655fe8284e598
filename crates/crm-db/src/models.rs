//! Row types: what a table holds, as diesel reads and writes it. They never reach the wire;
//! the API layer maps them to its DTOs.

use crate::schema::*;
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = workspaces)]
pub struct WorkspaceRow {
    pub id: String,
    pub name: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub workspace_id: String,
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub active: bool,
    pub last_login_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
    /// Failed password sign-ins in a row since the last successful one.
    pub failed_sign_ins: i32,
    /// Password sign-in is refused until then (set after too many failures).
    pub locked_until: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = users, treat_none_as_null = true)]
pub struct UserChanges {
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub active: bool,
    pub updated_at: NaiveDateTime,
    pub version: i32,
    pub failed_sign_ins: i32,
    pub locked_until: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub workspace_id: String,
    pub id: String,
    pub user_id: String,
    pub family_id: String,
    pub token_hash: String,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub workspace_id: String,
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub secret_hash: String,
    pub last_four: String,
    pub created_by: String,
    pub last_used_at: Option<NaiveDateTime>,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    /// The key's own requests per minute (None: the server's budget; 0: unlimited).
    pub rate_limit: Option<i32>,
    /// The key's own batches and imports per minute (as `rate_limit`).
    pub bulk_rate_limit: Option<i32>,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = teams)]
pub struct TeamRow {
    pub workspace_id: String,
    pub id: String,
    pub name: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = team_members)]
pub struct TeamMemberRow {
    pub workspace_id: String,
    pub team_id: String,
    pub user_id: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = companies)]
pub struct CompanyRow {
    pub workspace_id: String,
    pub id: String,
    pub name: String,
    pub domain: Option<String>,
    pub industry: Option<String>,
    pub size: Option<String>,
    pub annual_revenue: Option<String>,
    pub currency: Option<String>,
    pub tier: Option<String>,
    pub region: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub address_city: Option<String>,
    pub address_region: Option<String>,
    pub address_postal_code: Option<String>,
    pub address_country: Option<String>,
    pub owner_id: Option<String>,
    pub tags: String,
    pub external_id: Option<String>,
    pub custom: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub archived_at: Option<NaiveDateTime>,
    pub version: i32,
}

/// Every writable column of a company: a merge-patch is applied to the whole record and
/// the result written back.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = companies, treat_none_as_null = true)]
pub struct CompanyChanges {
    pub name: String,
    pub domain: Option<String>,
    pub industry: Option<String>,
    pub size: Option<String>,
    pub annual_revenue: Option<String>,
    pub currency: Option<String>,
    pub tier: Option<String>,
    pub region: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub address_city: Option<String>,
    pub address_region: Option<String>,
    pub address_postal_code: Option<String>,
    pub address_country: Option<String>,
    pub owner_id: Option<String>,
    pub tags: String,
    pub external_id: Option<String>,
    pub custom: String,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = contacts)]
pub struct ContactRow {
    pub workspace_id: String,
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub additional_emails: String,
    pub phone: Option<String>,
    pub additional_phones: String,
    pub job_title: Option<String>,
    pub lifecycle_stage: String,
    pub lifecycle_stage_changed_at: NaiveDateTime,
    pub owner_id: Option<String>,
    pub source: Option<String>,
    pub tags: String,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub address_city: Option<String>,
    pub address_region: Option<String>,
    pub address_postal_code: Option<String>,
    pub address_country: Option<String>,
    pub preferred_channel: Option<String>,
    pub consent_email: bool,
    pub consent_sms: bool,
    pub consent_phone: bool,
    pub do_not_contact: bool,
    pub external_id: Option<String>,
    pub custom: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub archived_at: Option<NaiveDateTime>,
    pub version: i32,
}

/// Every writable column of a contact (see [`CompanyChanges`]).
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = contacts, treat_none_as_null = true)]
pub struct ContactChanges {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub additional_emails: String,
    pub phone: Option<String>,
    pub additional_phones: String,
    pub job_title: Option<String>,
    pub lifecycle_stage: String,
    pub owner_id: Option<String>,
    pub source: Option<String>,
    pub tags: String,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub address_city: Option<String>,
    pub address_region: Option<String>,
    pub address_postal_code: Option<String>,
    pub address_country: Option<String>,
    pub preferred_channel: Option<String>,
    pub consent_email: bool,
    pub consent_sms: bool,
    pub consent_phone: bool,
    pub do_not_contact: bool,
    pub external_id: Option<String>,
    pub custom: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = contact_companies)]
pub struct ContactCompanyRow {
    pub workspace_id: String,
    pub contact_id: String,
    pub company_id: String,
    pub role: Option<String>,
    pub is_primary: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = contact_lifecycle_changes)]
pub struct LifecycleChangeRow {
    pub workspace_id: String,
    pub id: String,
    pub contact_id: String,
    pub from_stage: Option<String>,
    pub to_stage: String,
    pub changed_at: NaiveDateTime,
    pub changed_by: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = custom_field_definitions)]
pub struct CustomFieldRow {
    pub workspace_id: String,
    pub id: String,
    pub object_type: String,
    pub name: String,
    pub label: String,
    pub field_type: String,
    pub options: String,
    pub required: bool,
    pub description: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRow {
    pub workspace_id: String,
    /// Who sent the key (`user:<id>` or `key:<id>`): each caller has keys of its own.
    pub caller: String,
    pub idempotency_key: String,
    pub request_hash: String,
    pub response_status: Option<i32>,
    pub response_headers: Option<String>,
    pub response_body: Option<String>,
    pub created_at: NaiveDateTime,
}

/// One change, as the change feed and the audit log show it.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub workspace_id: String,
    pub seq: i64,
    pub id: String,
    pub event_type: String,
    pub record_type: String,
    pub record_id: String,
    pub actor_type: String,
    pub actor_id: String,
    /// The record after the change (before it, for a deletion), as JSON.
    pub data: String,
    /// `{"field": {"old": …, "new": …}}`, as JSON.
    pub changes: String,
    pub occurred_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub workspace_id: String,
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// JSON list of event type patterns (`*`, `contact.*`, `contact.created`).
    pub event_types: String,
    /// The filter language as JSON, matched against the event's record.
    pub filter: Option<String>,
    /// `whsec_<base64 key>`.
    pub secret: String,
    pub active: bool,
    /// The last event the dispatcher has queued deliveries for.
    pub cursor_seq: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
    /// The secret replaced by the last rotation, which signs deliveries too until
    /// `previous_secret_expires_at`.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub struct DeliveryRow {
    pub workspace_id: String,
    pub id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_seq: i64,
    pub record_id: String,
    /// `pending`, `succeeded` or `failed` (retries exhausted).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub locked_until: Option<NaiveDateTime>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl DeliveryRow {
    /// A delivery of an event, due now.
    pub fn pending(
        workspace_id: String,
        webhook_id: String,
        event_id: String,
        event_seq: i64,
        record_id: String,
        at: NaiveDateTime,
    ) -> Self {
        DeliveryRow {
            workspace_id,
            id: crm_domain::new_id().to_string(),
            webhook_id,
            event_id,
            event_seq,
            record_id,
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: Some(at),
            locked_until: None,
            last_status_code: None,
            last_error: None,
            created_at: at,
            updated_at: at,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_attempts)]
pub struct AttemptRow {
    pub workspace_id: String,
    pub delivery_id: String,
    pub attempt: i32,
    pub attempted_at: NaiveDateTime,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = leads)]
pub struct LeadRow {
    pub workspace_id: String,
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub title: Option<String>,
    pub source: Option<String>,
    pub campaign_id: Option<String>,
    pub status: String,
    pub disqualified_reason: Option<String>,
    pub score: Option<i32>,
    pub owner_id: Option<String>,
    pub tags: String,
    pub external_id: Option<String>,
    pub custom: String,
    pub converted_at: Option<NaiveDateTime>,
    pub converted_contact_id: Option<String>,
    pub converted_company_id: Option<String>,
    pub converted_deal_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub archived_at: Option<NaiveDateTime>,
    pub version: i32,
}

/// Every writable column of a lead (see [`CompanyChanges`]); conversion sets the rest.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = leads, treat_none_as_null = true)]
pub struct LeadChanges {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub title: Option<String>,
    pub source: Option<String>,
    pub campaign_id: Option<String>,
    pub status: String,
    pub disqualified_reason: Option<String>,
    pub score: Option<i32>,
    pub owner_id: Option<String>,
    pub tags: String,
    pub external_id: Option<String>,
    pub custom: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = assignment_rules)]
pub struct AssignmentRuleRow {
    pub workspace_id: String,
    pub id: String,
    pub name: String,
    pub object: String,
    pub position: i32,
    pub active: bool,
    pub filter: Option<String>,
    pub strategy: String,
    pub user_id: Option<String>,
    pub user_ids: String,
    pub team_id: Option<String>,
    pub assigned_count: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
}

/// The writable columns of an assignment rule.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = assignment_rules, treat_none_as_null = true)]
pub struct AssignmentRuleChanges {
    pub name: String,
    pub object: String,
    pub position: i32,
    pub active: bool,
    pub filter: Option<String>,
    pub strategy: String,
    pub user_id: Option<String>,
    pub user_ids: String,
    pub team_id: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = pipelines)]
pub struct PipelineRow {
    pub workspace_id: String,
    pub id: String,
    pub name: String,
    pub is_default: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub archived_at: Option<NaiveDateTime>,
    pub version: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = pipeline_stages)]
pub struct StageRow {
    pub workspace_id: String,
    pub id: String,
    pub pipeline_id: String,
    pub name: String,
    pub position: i32,
    pub probability: i32,
    pub kind: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub archived_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = deals)]
pub struct DealRow {
    pub workspace_id: String,
    pub id: String,
    pub name: String,
    pub amount: Option<String>,
    pub amount_micros: Option<i64>,
    pub currency: Option<String>,
    pub pipeline_id: String,
    pub stage_id: String,
    pub stage_changed_at: NaiveDateTime,
    pub expected_close_date: Option<String>,
    pub owner_id: Option<String>,
    pub company_id: Option<String>,
    pub lost_reason: Option<String>,
    pub closed_at: Option<NaiveDateTime>,
    pub external_id: Option<String>,
    pub custom: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub archived_at: Option<NaiveDateTime>,
    pub version: i32,
}

/// Every writable column of a deal (see [`CompanyChanges`]); the stage's consequences
/// (`stage_changed_at`, `closed_at`) are set by the repository.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = deals, treat_none_as_null = true)]
pub struct DealChanges {
    pub name: String,
    pub amount: Option<String>,
    pub amount_micros: Option<i64>,
    pub currency: Option<String>,
    pub pipeline_id: String,
    pub stage_id: String,
    pub expected_close_date: Option<String>,
    pub owner_id: Option<String>,
    pub company_id: Option<String>,
    pub lost_reason: Option<String>,
    pub external_id: Option<String>,
    pub custom: String,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = deal_stage_changes)]
pub struct StageChangeRow {
    pub workspace_id: String,
    pub id: String,
    pub deal_id: String,
    pub from_stage_id: Option<String>,
    pub to_stage_id: String,
    pub changed_at: NaiveDateTime,
    pub changed_by: Option<String>,
    pub time_in_stage_seconds: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = deal_contacts)]
pub struct DealContactRow {
    pub workspace_id: String,
    pub deal_id: String,
    pub contact_id: String,
    pub role: Option<String>,
    pub is_primary: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = activities)]
pub struct ActivityRow {
    pub workspace_id: String,
    pub id: String,
    pub activity_type: String,
    pub subject: String,
    pub body: Option<String>,
    pub due_at: Option<NaiveDateTime>,
    pub start_at: Option<NaiveDateTime>,
    pub end_at: Option<NaiveDateTime>,
    pub all_day: bool,
    pub status: String,
    pub completed_at: Option<NaiveDateTime>,
    pub priority: String,
    pub assignee_id: Option<String>,
    pub owner_id: Option<String>,
    pub outcome: Option<String>,
    pub channel: Option<String>,
    pub occurred_at: NaiveDateTime,
    pub links: String,
    pub external_id: Option<String>,
    pub custom: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub archived_at: Option<NaiveDateTime>,
    pub version: i32,
}

/// The writable state of an activity (`completed_at` and `occurred_at` are derived from it).
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = activities, treat_none_as_null = true)]
pub struct ActivityChanges {
    pub activity_type: String,
    pub subject: String,
    pub body: Option<String>,
    pub due_at: Option<NaiveDateTime>,
    pub start_at: Option<NaiveDateTime>,
    pub end_at: Option<NaiveDateTime>,
    pub all_day: bool,
    pub status: String,
    pub priority: String,
    pub assignee_id: Option<String>,
    pub owner_id: Option<String>,
    pub outcome: Option<String>,
    pub channel: Option<String>,
    pub external_id: Option<String>,
    pub custom: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = activity_links)]
pub struct ActivityLinkRow {
    pub workspace_id: String,
    pub activity_id: String,
    pub record_type: String,
    pub record_id: String,
    pub occurred_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = products)]
pub struct ProductRow {
    pub workspace_id: String,
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub unit_price: String,
    pub currency: String,
    pub tax_rate: String,
    pub active: bool,
    pub custom: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub archived_at: Option<NaiveDateTime>,
    pub version: i32,
}

/// Every writable column of a product.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = products, treat_none_as_null = true)]
pub struct ProductChanges {
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub unit_price: String,
    pub currency: String,
    pub tax_rate: String,
    pub active: bool,
    pub custom: String,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = price_books)]
pub struct PriceBookRow {
    pub workspace_id: String,
    pub id: String,
    pub name: String,
    pub currency: String,
    pub active: bool,
    pub is_default: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub archived_at: Option<NaiveDateTime>,
    pub version: i32,
}

/// Every writable column of a price book.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = price_books)]
pub struct PriceBookChanges {
    pub name: String,
    pub currency: String,
    pub active: bool,
    pub is_default: bool,
}

/// A product's price in a price book (in the book's currency).
#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = price_book_prices)]
pub struct PriceRow {
    pub workspace_id: String,
    pub price_book_id: String,
    pub product_id: String,
    pub unit_price: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = quotes)]
pub struct QuoteRow {
    pub workspace_id: String,
    pub id: String,
    pub number: i64,
    pub deal_id: Option<String>,
    pub status: String,
    pub currency: String,
    pub price_book_id: Option<String>,
    pub valid_until: Option<String>,
    pub subtotal: String,
    pub discount_total: String,
    pub tax_total: String,
    pub total: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub archived_at: Option<NaiveDateTime>,
    pub version: i32,
}

/// Every writable column of a quote (its number never changes).
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = quotes, treat_none_as_null = true)]
pub struct QuoteChanges {
    pub deal_id: Option<String>,
    pub status: String,
    pub currency: String,
    pub price_book_id: Option<String>,
    pub valid_until: Option<String>,
    pub subtotal: String,
    pub discount_total: String,
    pub tax_total: String,
    pub total: String,
}

/// One line of a quote, as entered (prices resolved) and with its computed amounts.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = quote_lines)]
pub struct QuoteLineRow {
    pub workspace_id: String,
    pub quote_id: String,
    pub position: i32,
    pub product_id: Option<String>,
    pub description: Option<String>,
    pub quantity: String,
    pub unit_price: String,
    pub discount_percent: String,
    pub tax_rate: String,
    pub gross: String,
    pub discount: String,
    pub net: String,
    pub tax: String,
    pub total: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = lead_status_changes)]
pub struct LeadStatusChangeRow {
    pub workspace_id: String,
    pub id: String,
    pub lead_id: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub changed_at: NaiveDateTime,
    pub changed_by: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, Insertable)]
#[diesel(table_name = quotas)]
pub struct QuotaRow {
    pub workspace_id: String,
    pub id: String,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub period: String,
    pub period_start: String,
    pub amount: String,
    pub currency: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub archived_at: Option<NaiveDateTime>,
    pub version: i32,
}

/// Every writable column of a quota.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = quotas, treat_none_as_null = true)]
pub struct QuotaChanges {
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub period: String,
    pub period_start: String,
    pub amount: String,
    pub currency: String,
}

/// A bulk import job (see the `imports` migration).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = imports)]
pub struct ImportRow {
    pub workspace_id: String,
    pub id: String,
    pub object: String,
    /// `csv` or `ndjson`.
    pub format: String,
    /// `create` or `upsert`.
    pub mode: String,
    pub match_on: Option<String>,
    pub dry_run: bool,
    /// The column → field mapping the upload named, as JSON.
    pub mapping: Option<String>,
    /// CSV: the field each column goes to (null: skipped), as a JSON list.
    pub column_targets: Option<String>,
    /// `uploading`, `queued`, `running`, `completed`, `failed` or `cancelled`.
    pub status: String,
    pub bytes_total: i64,
    pub rows_total: i64,
    pub rows_processed: i64,
    pub created: i64,
    pub updated: i64,
    pub failed: i64,
    /// Where the next unprocessed row starts: its byte offset in the file and its line.
    pub next_offset: i64,
    pub next_line: i64,
    /// Why a job failed as a whole.
    pub error: Option<String>,
    /// Who started it: `user` or `api_key`, and its id; the job writes as them.
    pub actor_kind: String,
    pub actor_id: String,
    pub lease_owner: Option<String>,
    pub lease_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    /// Claims in a row that committed no batch.
    pub attempts: i32,
}

/// A row of an import that failed: its line and the problem, as JSON.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = import_errors)]
pub struct ImportErrorRow {
    pub workspace_id: String,
    pub import_id: String,
    pub line: i64,
    pub problem: String,
}
