//! Realistic data at scale, written through the repository layer's bulk path
//! (`crm_db::repo::bulk`): companies, contacts with custom fields and lifecycle history,
//! and contact–company links.

use anyhow::{anyhow, Context, Result};
use chrono::{NaiveDateTime, TimeDelta};
use crm_db::models::{CompanyRow, ContactCompanyRow, ContactRow, CustomFieldRow};
use crm_db::repo::{bulk, fields};
use crm_db::DbConnection;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::time::Instant;

/// Rows generated and written per transaction.
const BATCH: usize = 10_000;
/// How many seeded contact ids the load generator draws from.
const SAMPLE_IDS: usize = 100_000;

pub const FIRST_NAMES: &[&str] = &[
    "ada",
    "alan",
    "barbara",
    "brian",
    "claude",
    "donald",
    "edsger",
    "frances",
    "grace",
    "guido",
    "hedy",
    "ivan",
    "james",
    "jean",
    "john",
    "ken",
    "linus",
    "margaret",
    "mary",
    "niklaus",
    "radia",
    "richard",
    "rob",
    "sophie",
    "tim",
    "tony",
    "vint",
    "whitfield",
    "yukihiro",
    "zoe",
];
pub const LAST_NAMES: &[&str] = &[
    "allen",
    "backus",
    "berners",
    "cerf",
    "dijkstra",
    "engelbart",
    "hamilton",
    "hoare",
    "hopper",
    "johnson",
    "kahn",
    "kay",
    "knuth",
    "lamarr",
    "lamport",
    "liskov",
    "lovelace",
    "mccarthy",
    "milner",
    "perlman",
    "pike",
    "ritchie",
    "rossum",
    "shannon",
    "stallman",
    "stroustrup",
    "sutherland",
    "thompson",
    "torvalds",
    "turing",
    "wilson",
    "wirth",
];
const JOB_TITLES: &[&str] = &[
    "CEO",
    "CTO",
    "Head of Sales",
    "Account Executive",
    "Engineer",
    "Buyer",
    "Office Manager",
    "Marketing Lead",
    "Procurement",
    "Founder",
];
pub const STAGES: &[&str] = &[
    "prospect",
    "new",
    "growing",
    "mature",
    "declining",
    "churned",
];
const CHANNELS: &[&str] = &["email", "sms", "phone", "mail", "in_person"];
const SOURCES: &[&str] = &["web", "referral", "event", "import", "outbound"];
const TAGS: &[&str] = &["vip", "eu", "us", "partner", "newsletter", "beta"];
const CITIES: &[(&str, &str)] = &[
    ("Berlin", "DE"),
    ("Paris", "FR"),
    ("London", "GB"),
    ("New York", "US"),
    ("Austin", "US"),
    ("Toronto", "CA"),
    ("Madrid", "ES"),
    ("Tokyo", "JP"),
];
pub const SEGMENTS: &[&str] = &["smb", "mid_market", "enterprise"];
const INDUSTRIES: &[&str] = &[
    "Retail",
    "Logistics",
    "Software",
    "Manufacturing",
    "Healthcare",
    "Finance",
    "Education",
];
const SIZES: &[&str] = &[
    "1-10",
    "11-50",
    "51-200",
    "201-500",
    "501-1000",
    "1001-5000",
    "5001+",
];
const PLANS: &[&str] = &["free", "pro", "enterprise"];
const COMPANY_WORDS: &[&str] = &[
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent",
    "Tyrell",
];

/// What was written, and what the scenarios draw from.
#[derive(Debug, Clone, Serialize)]
pub struct Seeded {
    pub contacts: usize,
    pub companies: usize,
    pub links: usize,
    pub lifecycle_rows: usize,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub analyze_seconds: f64,
    /// Deals and activities, when a sales scenario runs.
    pub sales: Option<crate::seed_sales::SalesSeeded>,
    #[serde(skip)]
    pub contact_ids: Vec<String>,
    /// One contact's e-mail local part per sample: a term that matches a handful of rows.
    #[serde(skip)]
    pub rare_terms: Vec<String>,
    /// The e-mails of the sampled contacts (same sample as `contact_ids`).
    #[serde(skip)]
    pub contact_emails: Vec<String>,
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

/// The creation time of the `i`-th of `n` records: spread over the last three years in
/// creation order, as a CRM fills up, in whole microseconds as the database stores them.
fn created_at(i: usize, n: usize, now: NaiveDateTime) -> NaiveDateTime {
    let span: i128 = 3 * 365 * 24 * 3600 * 1_000_000;
    let back = span - span * i as i128 / n.max(1) as i128;
    now - TimeDelta::microseconds(i64::try_from(back).unwrap_or(0))
}

fn time_ordered_id(at: NaiveDateTime, rng: &mut StdRng) -> String {
    let ts = at.and_utc();
    let secs = u64::try_from(ts.timestamp()).unwrap_or(0);
    let nanos = ts.timestamp_subsec_nanos();
    let mut bytes =
        *uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, nanos)).as_bytes();
    // The clock part stays; the rest is this generator's, so a seeded run repeats itself.
    rng.fill(&mut bytes[8..]);
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).to_string()
}

fn json_list(items: &[&str]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn field(ws: &str, object: &str, name: &str, kind: &str, options: &[&str]) -> CustomFieldRow {
    let now = crm_domain::values_time::now();
    CustomFieldRow {
        workspace_id: ws.into(),
        id: crm_domain::new_id().to_string(),
        object_type: object.into(),
        name: name.into(),
        label: name.replace('_', " "),
        field_type: kind.into(),
        options: json_list(options),
        required: false,
        description: None,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

/// The custom field definitions the seeded values use.
pub fn define_fields(conn: &mut DbConnection, ws: &str) -> Result<()> {
    let defs = [
        field(ws, "contacts", "segment", "select", SEGMENTS),
        field(ws, "contacts", "score", "number", &[]),
        field(ws, "contacts", "newsletter", "boolean", &[]),
        field(ws, "companies", "plan", "select", PLANS),
        field(ws, "companies", "employees", "number", &[]),
    ];
    for d in &defs {
        fields::insert(conn, d).map_err(|e| anyhow!("custom field {}: {e:?}", d.name))?;
    }
    Ok(())
}

fn company(
    rng: &mut StdRng,
    ws: &str,
    owner: &str,
    (i, n): (usize, usize),
    now: NaiveDateTime,
) -> CompanyRow {
    let created = created_at(i, n, now);
    let word = pick(rng, COMPANY_WORDS);
    let (city, country) = CITIES[rng.gen_range(0..CITIES.len())];
    let custom = serde_json::json!({
        "plan": pick(rng, PLANS),
        "employees": rng.gen_range(1..20_000),
    });
    CompanyRow {
        workspace_id: ws.into(),
        id: time_ordered_id(created, rng),
        name: format!("{word} {i}"),
        domain: Some(format!("{}{i}.example.com", word.to_lowercase())),
        industry: Some(pick(rng, INDUSTRIES).into()),
        size: Some(pick(rng, SIZES).into()),
        annual_revenue: Some(format!("{}.00", rng.gen_range(10_000..50_000_000))),
        currency: Some(if country == "US" { "USD" } else { "EUR" }.into()),
        tier: Some(format!("tier{}", rng.gen_range(1..4))),
        region: Some(country.into()),
        address_line1: Some(format!("{} Market Street", rng.gen_range(1..999))),
        address_line2: None,
        address_city: Some(city.into()),
        address_region: None,
        address_postal_code: Some(format!("{:05}", rng.gen_range(1000..99999))),
        address_country: Some(country.into()),
        owner_id: Some(owner.into()),
        tags: json_list(&[pick(rng, TAGS)]),
        external_id: Some(format!("co-{i}")),
        custom: custom.to_string(),
        created_at: created,
        updated_at: created,
        archived_at: None,
        version: 1,
    }
}

fn contact(
    rng: &mut StdRng,
    ws: &str,
    owner: &str,
    (i, n): (usize, usize),
    now: NaiveDateTime,
) -> ContactRow {
    let created = created_at(i, n, now);
    let updated = created + (now - created) / rng.gen_range(2..10);
    let first = pick(rng, FIRST_NAMES);
    let last = pick(rng, LAST_NAMES);
    let (city, country) = CITIES[rng.gen_range(0..CITIES.len())];
    let tags: Vec<&str> = (0..rng.gen_range(0..3)).map(|_| pick(rng, TAGS)).collect();
    let custom = serde_json::json!({
        "segment": pick(rng, SEGMENTS),
        "score": rng.gen_range(0..100),
        "newsletter": rng.gen_bool(0.3),
    });
    ContactRow {
        workspace_id: ws.into(),
        id: time_ordered_id(created, rng),
        first_name: Some(capitalise(first)),
        last_name: Some(capitalise(last)),
        email: Some(format!("{first}.{last}{i}@example.org")),
        additional_emails: "[]".into(),
        phone: Some(format!("+1555{:07}", i % 10_000_000)),
        additional_phones: "[]".into(),
        job_title: Some(pick(rng, JOB_TITLES).into()),
        lifecycle_stage: pick(rng, STAGES).into(),
        lifecycle_stage_changed_at: created,
        owner_id: Some(owner.into()),
        source: Some(pick(rng, SOURCES).into()),
        tags: json_list(&tags),
        address_line1: None,
        address_line2: None,
        address_city: Some(city.into()),
        address_region: None,
        address_postal_code: None,
        address_country: Some(country.into()),
        preferred_channel: Some(pick(rng, CHANNELS).into()),
        consent_email: rng.gen_bool(0.6),
        consent_sms: rng.gen_bool(0.2),
        consent_phone: rng.gen_bool(0.3),
        do_not_contact: rng.gen_bool(0.02),
        external_id: None,
        custom: custom.to_string(),
        created_at: created,
        updated_at: updated,
        archived_at: None,
        version: 1,
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Seeds `contacts` contacts and `companies` companies into workspace `ws`. Each contact
/// has a primary company, and one in five a second one.
pub fn seed(
    conn: &mut DbConnection,
    ws: &str,
    owner: &str,
    contacts: usize,
    companies: usize,
) -> Result<Seeded> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(0x00c0_ffee);
    let now = crm_domain::values_time::now();
    define_fields(conn, ws)?;

    let mut company_ids = Vec::with_capacity(companies);
    let mut start = 0;
    while start < companies {
        let end = (start + BATCH).min(companies);
        let rows: Vec<CompanyRow> = (start..end)
            .map(|i| company(&mut rng, ws, owner, (i, companies), now))
            .collect();
        bulk::insert_companies(conn, &rows).map_err(|e| anyhow!("companies: {e:?}"))?;
        company_ids.extend(rows.into_iter().map(|r| r.id));
        start = end;
    }

    let stride = (contacts / SAMPLE_IDS).max(1);
    let mut contact_ids = Vec::new();
    let mut rare_terms = Vec::new();
    let mut contact_emails = Vec::new();
    let mut links = 0;
    let mut start = 0;
    while start < contacts {
        let end = (start + BATCH).min(contacts);
        let rows: Vec<ContactRow> = (start..end)
            .map(|i| contact(&mut rng, ws, owner, (i, contacts), now))
            .collect();
        bulk::insert_contacts(conn, &rows, Some(owner)).map_err(|e| anyhow!("contacts: {e:?}"))?;
        let mut link_rows = Vec::with_capacity(rows.len() * 6 / 5);
        for (k, r) in rows.iter().enumerate() {
            if company_ids.is_empty() {
                break;
            }
            let first = rng.gen_range(0..company_ids.len());
            link_rows.push(link(r, &company_ids[first], true, "Employee"));
            if rng.gen_bool(0.2) {
                let second = (first + 1 + rng.gen_range(0..company_ids.len() - 1).min(1000))
                    % company_ids.len();
                if second != first {
                    link_rows.push(link(r, &company_ids[second], false, "Advisor"));
                }
            }
            if (start + k) % stride == 0 {
                contact_ids.push(r.id.clone());
                contact_emails.extend(r.email.clone());
                if let Some(local) = r.email.as_deref().and_then(|e| e.split('@').next()) {
                    // `ada.lovelace123` → `lovelace123`: a search for one person.
                    rare_terms.push(local.rsplit('.').next().unwrap_or(local).to_string());
                }
            }
        }
        links += bulk::insert_links(conn, &link_rows).map_err(|e| anyhow!("links: {e:?}"))?;
        start = end;
    }
    let seconds = started.elapsed().as_secs_f64();
    let rows = companies + 2 * contacts + links;
    Ok(Seeded {
        contacts,
        companies,
        links,
        lifecycle_rows: contacts,
        seconds,
        rows_per_second: rows as f64 / seconds.max(1e-9),
        analyze_seconds: 0.0,
        sales: None,
        contact_ids,
        rare_terms,
        contact_emails,
    })
}

fn link(c: &ContactRow, company_id: &str, primary: bool, role: &str) -> ContactCompanyRow {
    ContactCompanyRow {
        workspace_id: c.workspace_id.clone(),
        contact_id: c.id.clone(),
        company_id: company_id.into(),
        role: Some(role.into()),
        is_primary: primary,
        created_at: c.created_at,
        updated_at: c.created_at,
    }
}

/// Refreshes the planner's statistics after the load, as autovacuum (PostgreSQL) or
/// `PRAGMA optimize` (SQLite) would in service.
pub fn analyze(conn: &mut DbConnection) -> Result<f64> {
    use diesel::connection::SimpleConnection;
    let started = Instant::now();
    let sql = match conn {
        DbConnection::Pg(_) => "VACUUM ANALYZE",
        DbConnection::Sqlite(_) => "ANALYZE",
    };
    conn.batch_execute(sql).context("analyze")?;
    Ok(started.elapsed().as_secs_f64())
}
