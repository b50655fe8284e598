//! Duplicate candidates (`GET /{resource}/duplicates`): pairs of live records that share a
//! normalised value (an e-mail address, a phone number, a name at the same company, a
//! domain), each pair scored by the evidence it has. The resource's records are read a page
//! at a time, only the columns that matter, and matched by hashed keys, so a million
//! contacts take one pass and a few tens of megabytes.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::QueryPairs;
use crate::listing::Page;
use crate::records::Record;
use crate::state::AppState;
use actix_web::web;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use crm_db::DbConnection;
use crm_domain::WorkspaceId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};
use utoipa::{IntoParams, ToSchema};

/// Records read per query while scanning.
const SCAN_PAGE: i64 = 20_000;
/// A value shared by more records than this (a switchboard number, a catch-all address)
/// says nothing about any two of them.
const MAX_GROUP: usize = 25;

/// Two records that may be the same, with the evidence.
#[derive(Debug, Serialize, ToSchema)]
pub struct Duplicate<T: ToSchema> {
    /// 0–1: how likely the two are one (1 − Π(1 − weight) over the reasons, where e-mail
    /// weighs 0.9, domain 0.9, name at the same company 0.7, company name 0.7 and phone 0.6).
    #[schema(minimum = 0, maximum = 1, example = 0.96)]
    pub score: f64,
    /// What the two share: `email` (an address, compared case-blind, without `+tags`,
    /// and for Gmail without dots), `phone` (the last 9 digits), `name_company` (first and
    /// last name, with the same primary company or, failing that, the same e-mail domain
    /// outside the free-mail providers), `domain`, `name` (the company name without legal
    /// suffixes such as Inc or GmbH).
    pub reasons: Vec<String>,
    /// The pair, the older record first (the usual survivor of a merge).
    pub records: Vec<T>,
}

/// The query of a duplicates list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DuplicateParams {
    /// Pairs per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only pairs scoring at least this, 0–1.
    #[param(minimum = 0, maximum = 1)]
    min_score: Option<f64>,
    /// Only the pairs this record is part of.
    record_id: Option<String>,
}

/// A pair before its records are read: ids in order (`a` < `b`) and the reasons by index
/// into the resource's weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub a: String,
    pub b: String,
    pub score: f64,
    pub reasons: Vec<&'static str>,
}

/// Collects each record's keys, then pairs the records that share one.
pub struct Finder {
    reasons: &'static [(&'static str, f64)],
    /// The records' ids (UUIDs), compactly.
    ids: Vec<u128>,
    /// (hash of reason and key, record index, reason index)
    keys: Vec<(u64, u32, u8)>,
}

impl Finder {
    pub fn new(reasons: &'static [(&'static str, f64)]) -> Self {
        Finder {
            reasons,
            ids: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// Starts the next record; its keys follow with [`Finder::key`]. False (and nothing
    /// to follow) for an id that is not a UUID, which no record has.
    pub fn record(&mut self, id: &str) -> bool {
        match uuid::Uuid::parse_str(id) {
            Ok(u) => {
                self.ids.push(u.as_u128());
                true
            }
            Err(_) => false,
        }
    }

    /// A key of the last record for reason `reason` (an index into the weights).
    pub fn key(&mut self, reason: u8, key: &str) {
        let mut h = DefaultHasher::new();
        reason.hash(&mut h);
        key.hash(&mut h);
        let index = self.ids.len().saturating_sub(1) as u32;
        self.keys.push((h.finish(), index, reason));
    }

    /// Every pair sharing at least one key, best first (score, then ids).
    pub fn pairs(mut self) -> Vec<Candidate> {
        self.keys.sort_unstable();
        self.keys.dedup();
        let mut found: HashMap<(u32, u32), u8> = HashMap::new();
        let mut start = 0;
        while start < self.keys.len() {
            let (hash, _, reason) = self.keys[start];
            let end = start
                + self.keys[start..]
                    .iter()
                    .take_while(|k| k.0 == hash && k.2 == reason)
                    .count();
            let group = &self.keys[start..end];
            if group.len() > 1 && group.len() <= MAX_GROUP {
                for (i, x) in group.iter().enumerate() {
                    for y in &group[i + 1..] {
                        if x.1 != y.1 {
                            let pair = (x.1.min(y.1), x.1.max(y.1));
                            *found.entry(pair).or_default() |= 1 << reason;
                        }
                    }
                }
            }
            start = end;
        }
        let mut out: Vec<Candidate> = found
            .into_iter()
            .map(|((i, j), mask)| {
                let (a, b) = (self.ids[i as usize], self.ids[j as usize]);
                let (a, b) = (a.min(b), a.max(b));
                let mut miss = 1.0;
                let mut reasons = Vec::new();
                for (n, (name, weight)) in self.reasons.iter().enumerate() {
                    if mask & (1 << n) != 0 {
                        miss *= 1.0 - weight;
                        reasons.push(*name);
                    }
                }
                Candidate {
                    a: uuid::Uuid::from_u128(a).to_string(),
                    b: uuid::Uuid::from_u128(b).to_string(),
                    score: ((1.0 - miss) * 100.0).round() / 100.0,
                    reasons,
                }
            })
            .collect();
        out.sort_by(|x, y| {
            y.score
                .total_cmp(&x.score)
                .then_with(|| x.a.cmp(&y.a))
                .then_with(|| x.b.cmp(&y.b))
        });
        out
    }
}

/// How a resource finds its duplicate candidates.
pub type FindFn = fn(&mut DbConnection, WorkspaceId) -> ApiResult<Vec<Candidate>>;

/// Scans kept per process, for this many (workspace, resource) pairs.
const CACHE_ENTRIES: usize = 32;

/// A scan's candidates, valid while the workspace's change feed stands at `seq`: every
/// write that could change them (a record or a company link created, changed, archived,
/// erased, merged) writes an event in its own transaction, so a feed that has not moved
/// means the same candidates. Paging through a long list thus scans once.
struct Scan {
    seq: i64,
    at: std::time::Instant,
    candidates: Arc<Vec<Candidate>>,
}

type ScanCache = Mutex<HashMap<(String, &'static str), Scan>>;

fn scans() -> &'static ScanCache {
    static SCANS: OnceLock<ScanCache> = OnceLock::new();
    SCANS.get_or_init(Default::default)
}

/// The candidates of a workspace's records, scanned now or kept from a scan made when the
/// change feed stood where it stands.
fn candidates(
    c: &mut DbConnection,
    ws: WorkspaceId,
    object: &'static str,
    find: FindFn,
) -> ApiResult<Arc<Vec<Candidate>>> {
    // Read before the scan: a write landing during it moves the feed on, so the next
    // request scans again rather than trusting a result that may predate the write.
    let seq = crm_db::repo::events::last_seq(c, ws)?;
    let key = (ws.as_string(), object);
    {
        let kept = scans().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(scan) = kept.get(&key).filter(|s| s.seq == seq) {
            return Ok(scan.candidates.clone());
        }
    }
    let found = Arc::new(find(c, ws)?);
    let mut kept = scans().lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() >= CACHE_ENTRIES && !kept.contains_key(&key) {
        if let Some(oldest) = kept
            .iter()
            .min_by_key(|(_, s)| s.at)
            .map(|(k, _)| k.clone())
        {
            kept.remove(&oldest);
        }
    }
    kept.insert(
        key,
        Scan {
            seq,
            at: std::time::Instant::now(),
            candidates: found.clone(),
        },
    );
    Ok(found)
}

/// Where a page of candidates ends.
#[derive(Serialize, Deserialize)]
struct After {
    s: f64,
    a: String,
    b: String,
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::field(field, "invalid_value", message)
}

/// The query of a duplicates list, checked.
struct Query {
    limit: usize,
    after: Option<After>,
    min_score: f64,
    record_id: Option<String>,
}

fn query(q: &QueryPairs) -> ApiResult<Query> {
    let mut out = Query {
        limit: 20,
        after: None,
        min_score: 0.0,
        record_id: None,
    };
    for (k, v) in &q.0 {
        match k.as_str() {
            "limit" => {
                out.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| invalid("limit", "must be an integer from 1 to 100"))?
            }
            "min_score" => {
                out.min_score = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| (0.0..=1.0).contains(s))
                    .ok_or_else(|| invalid("min_score", "must be a number from 0 to 1"))?
            }
            "cursor" => {
                let bad = || {
                    ApiError::field(
                        "cursor",
                        "invalid_cursor",
                        "the cursor is not valid for this list",
                    )
                };
                let bytes = URL_SAFE_NO_PAD.decode(v).map_err(|_| bad())?;
                out.after = Some(serde_json::from_slice(&bytes).map_err(|_| bad())?);
            }
            "record_id" => out.record_id = Some(v.clone()),
            other => {
                return Err(ApiError::field(
                    other,
                    "unknown_parameter",
                    "not a parameter of this list; use limit, cursor, min_score or record_id",
                ))
            }
        }
    }
    Ok(out)
}

/// `GET /{resource}/duplicates`.
pub async fn list<R: Record>(
    state: web::Data<AppState>,
    p: Principal,
    q: QueryPairs,
) -> ApiResult<web::Json<Page<Duplicate<R::Dto>>>> {
    p.require(R::READ)?;
    let find = R::merge().ok_or(ApiError::NotFound)?.find;
    let q = query(&q)?;
    let ws = p.workspace;
    let (page, rows, next) = state
        .db(move |c| {
            let all = candidates(c, ws, R::OBJECT, find)?;
            let after = |x: &Candidate| match &q.after {
                None => true,
                Some(a) => {
                    x.score < a.s || (x.score == a.s && (x.a.as_str(), x.b.as_str()) > (&a.a, &a.b))
                }
            };
            let mut page: Vec<Candidate> = all
                .iter()
                .filter(|x| x.score >= q.min_score)
                .filter(|x| {
                    q.record_id
                        .as_ref()
                        .is_none_or(|id| &x.a == id || &x.b == id)
                })
                .filter(|x| after(x))
                .take(q.limit + 1)
                .cloned()
                .collect();
            let next = if page.len() > q.limit {
                page.truncate(q.limit);
                page.last().map(|x| After {
                    s: x.score,
                    a: x.a.clone(),
                    b: x.b.clone(),
                })
            } else {
                None
            };
            let mut ids: Vec<String> = page
                .iter()
                .flat_map(|x| [x.a.clone(), x.b.clone()])
                .collect();
            ids.sort();
            ids.dedup();
            let rows: Vec<R::Row> = crm_db::repo::bulk::rows_by_id(c, R::TABLE, ws, &ids)?;
            Ok((page, rows, next))
        })
        .await?;
    let mut by_id: HashMap<String, R::Row> = HashMap::new();
    for row in rows {
        by_id.insert(crate::records::id_of::<R>(&row)?, row);
    }
    let mut data = Vec::with_capacity(page.len());
    for x in page {
        // A record erased since the scan drops its pairs from the page.
        let (Some(a), Some(b)) = (by_id.get(&x.a), by_id.get(&x.b)) else {
            continue;
        };
        data.push(Duplicate {
            score: x.score,
            reasons: x.reasons.iter().map(|r| r.to_string()).collect(),
            records: vec![R::Dto::from(a.clone()), R::Dto::from(b.clone())],
        });
    }
    let next_cursor = next
        .map(|a| serde_json::to_vec(&a).map(|v| URL_SAFE_NO_PAD.encode(v)))
        .transpose()
        .map_err(ApiError::internal)?;
    Ok(web::Json(Page {
        data,
        next_cursor,
        total: None,
    }))
}

/// Mail providers whose domain says nothing about the company a person works for.
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "proton.me",
    "protonmail.com",
    "mail.ru",
    "yandex.ru",
    "qq.com",
    "163.com",
];

/// An e-mail address as duplicates compare it: lower case, without a `+tag`, and for
/// Gmail without dots in the local part.
pub fn email_key(email: &str) -> Option<String> {
    let email = email.trim().to_lowercase();
    let (local, domain) = email.rsplit_once('@')?;
    let local = local.split('+').next().unwrap_or(local);
    if domain == "gmail.com" || domain == "googlemail.com" {
        return Some(format!("{}@gmail.com", local.replace('.', "")));
    }
    Some(format!("{local}@{domain}"))
}

/// A phone number as duplicates compare it: its last 9 digits (a national number without
/// its country or trunk prefix), or all of them when there are 7 or 8; shorter: none.
pub fn phone_key(phone: &str) -> Option<String> {
    let digits = crm_domain::values::phone_digits(phone);
    match digits.len() {
        0..=6 => None,
        7..=9 => Some(digits),
        n => Some(digits[n - 9..].to_string()),
    }
}

fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Legal forms left off company names.
const LEGAL: &[&str] = &[
    "inc",
    "incorporated",
    "llc",
    "ltd",
    "limited",
    "gmbh",
    "ag",
    "sa",
    "sas",
    "sarl",
    "bv",
    "nv",
    "plc",
    "corp",
    "corporation",
    "co",
    "company",
    "srl",
    "spa",
    "oy",
    "ab",
    "kg",
    "pty",
    "llp",
];

/// A company name as duplicates compare it: its words in lower case, without the legal
/// forms at its end ("ACME, Inc." → "acme").
pub fn company_name_key(name: &str) -> Option<String> {
    let mut w = words(name);
    while w.len() > 1 && w.last().is_some_and(|l| LEGAL.contains(&l.as_str())) {
        w.pop();
    }
    (!w.is_empty()).then(|| w.join(" "))
}

fn list_of(json: &str) -> Vec<String> {
    if json == "[]" {
        return Vec::new();
    }
    serde_json::from_str(json).unwrap_or_default()
}

/// The reasons contact pairs are found by, with their weights.
static CONTACT_REASONS: &[(&str, f64)] = &[("email", 0.9), ("phone", 0.6), ("name_company", 0.7)];

/// A page of records after an id, at most so many, in id order.
type PageFn<T> =
    fn(&mut DbConnection, WorkspaceId, Option<&str>, i64) -> Result<Vec<T>, crm_db::RepoError>;

/// Reads every record a page at a time, giving each to `keys` once [`Finder::record`]
/// has taken its id, and pairs them.
fn scan<T>(
    c: &mut DbConnection,
    ws: WorkspaceId,
    reasons: &'static [(&'static str, f64)],
    page: PageFn<T>,
    id: fn(&T) -> &str,
    keys: fn(&mut Finder, &T),
) -> ApiResult<Vec<Candidate>> {
    let mut f = Finder::new(reasons);
    let mut after: Option<String> = None;
    loop {
        let rows = page(c, ws, after.as_deref(), SCAN_PAGE)?;
        let Some(last) = rows.last() else { break };
        after = Some(id(last).to_string());
        for r in &rows {
            if f.record(id(r)) {
                keys(&mut f, r);
            }
        }
        if (rows.len() as i64) < SCAN_PAGE {
            break;
        }
    }
    Ok(f.pairs())
}

/// Candidate pairs of live contacts.
pub fn contact_candidates(c: &mut DbConnection, ws: WorkspaceId) -> ApiResult<Vec<Candidate>> {
    scan(
        c,
        ws,
        CONTACT_REASONS,
        crm_db::repo::merges::contact_signals,
        |r| &r.id,
        contact_keys,
    )
}

fn contact_keys(f: &mut Finder, r: &crm_db::repo::merges::ContactSignals) {
    let additional = list_of(&r.additional_emails);
    for e in r.email.iter().chain(&additional) {
        if let Some(k) = email_key(e) {
            f.key(0, &k);
        }
    }
    let additional = list_of(&r.additional_phones);
    for ph in r.phone.iter().chain(&additional) {
        if let Some(k) = phone_key(ph) {
            f.key(1, &k);
        }
    }
    let given = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.trim().is_empty());
    if !(given(&r.first_name) && given(&r.last_name)) {
        return;
    }
    let company = r.company_id.clone().or_else(|| {
        let domain = r.email.as_deref()?.rsplit_once('@')?.1.to_lowercase();
        (!FREE_MAIL.contains(&domain.as_str())).then(|| format!("@{domain}"))
    });
    if let Some(company) = company {
        let name = words(&format!(
            "{} {}",
            r.first_name.as_deref().unwrap_or(""),
            r.last_name.as_deref().unwrap_or("")
        ));
        f.key(2, &format!("{}|{company}", name.join(" ")));
    }
}

static COMPANY_REASONS: &[(&str, f64)] = &[("domain", 0.9), ("name", 0.7)];

/// Candidate pairs of live companies.
pub fn company_candidates(c: &mut DbConnection, ws: WorkspaceId) -> ApiResult<Vec<Candidate>> {
    scan(
        c,
        ws,
        COMPANY_REASONS,
        crm_db::repo::merges::company_signals,
        |r| &r.id,
        |f, r| {
            if let Some(d) = r.domain.as_deref().filter(|d| !d.is_empty()) {
                f.key(0, &d.to_lowercase());
            }
            if let Some(k) = company_name_key(&r.name) {
                f.key(1, &k);
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalise_what_people_type_differently() {
        assert_eq!(
            email_key(" Ada.Lovelace+crm@GoogleMail.com").as_deref(),
            Some("adalovelace@gmail.com")
        );
        assert_eq!(
            email_key("ada+x@example.com").as_deref(),
            Some("ada@example.com")
        );
        assert_eq!(phone_key("+44 20 7946 0018"), phone_key("020 7946 0018"));
        assert_eq!(phone_key("123"), None);
        assert_eq!(company_name_key("ACME, Inc.").as_deref(), Some("acme"));
        assert_eq!(
            company_name_key("Acme GmbH & Co. KG").as_deref(),
            Some("acme")
        );
        assert_eq!(company_name_key("Inc").as_deref(), Some("inc"));
    }

    #[test]
    fn pairs_are_scored_by_their_evidence_and_big_groups_ignored() {
        let id = |n: u128| uuid::Uuid::from_u128(n).to_string();
        let mut f = Finder::new(CONTACT_REASONS);
        assert!(f.record(&id(1)));
        f.key(0, "x@example.com");
        f.key(1, "207946001");
        assert!(f.record(&id(2)));
        f.key(0, "x@example.com");
        f.key(1, "207946001");
        assert!(f.record(&id(3)));
        f.key(1, "207946001");
        assert!(!f.record("not-a-uuid"));
        for i in 0..30 {
            assert!(f.record(&id(100 + i)));
            f.key(1, "000000000");
        }
        let pairs = f.pairs();
        assert_eq!(pairs.len(), 3, "{pairs:?}");
        assert_eq!(
            pairs[0],
            Candidate {
                a: id(1),
                b: id(2),
                score: 0.96,
                reasons: vec!["email", "phone"],
            }
        );
        assert_eq!(pairs[1].score, 0.6);
        assert_eq!((pairs[1].a.clone(), pairs[1].b.clone()), (id(1), id(3)));
        assert_eq!((pairs[2].a.clone(), pairs[2].b.clone()), (id(2), id(3)));
    }
}
