//! The requests each scenario sends, drawn at random from the seeded data.

use crate::load::{MakeRequest, Target};
use crate::seed::{Seeded, LAST_NAMES, SEGMENTS, STAGES};
use anyhow::Result;
use hyper::Method;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct Scenario {
    pub name: &'static str,
    pub description: &'static str,
    pub make: MakeRequest,
    /// Runs only at concurrency levels up to this (a batch is measured one at a time).
    pub max_concurrency: usize,
    /// Records each request reads or writes, when more than one (rows/s = this × req/s).
    pub rows_per_request: Option<u64>,
}

/// Operations in one request of the `batch_upsert_1000` scenario.
pub const BATCH_SIZE: usize = 1000;

/// The pieces every scenario draws from.
#[derive(Clone)]
struct Inputs {
    target: Target,
    ids: Arc<Vec<String>>,
    terms: Arc<Vec<String>>,
    emails: Arc<Vec<String>>,
    /// Makes each created contact's e-mail unique across the whole run.
    created: Arc<AtomicU64>,
    run_tag: String,
}

fn pick<'a, R: Rng>(rng: &mut R, items: &'a [String]) -> &'a str {
    if items.is_empty() {
        ""
    } else {
        &items[rng.gen_range(0..items.len())]
    }
}

fn pick_str<R: Rng>(rng: &mut R, items: &[&'static str]) -> &'static str {
    items[rng.gen_range(0..items.len())]
}

type Req = Result<hyper::Request<crate::load::Body>>;

impl Inputs {
    fn get_by_id<R: Rng>(&self, rng: &mut R) -> Req {
        let path = format!("/api/v1/contacts/{}", pick(rng, &self.ids));
        self.target.request(Method::GET, &path, None)
    }
    fn list_page(&self) -> Req {
        self.target
            .request(Method::GET, "/api/v1/contacts?limit=20", None)
    }
    fn list_sorted(&self) -> Req {
        self.target.request(
            Method::GET,
            "/api/v1/contacts?limit=20&sort=-updated_at",
            None,
        )
    }
    fn search_filtered<R: Rng>(&self, rng: &mut R) -> Req {
        let body = json!({
            "filter": {"and": [
                {"field": "lifecycle_stage", "op": "eq", "value": pick_str(rng, STAGES)},
                {"field": "custom.segment", "op": "eq", "value": pick_str(rng, SEGMENTS)},
            ]},
            "limit": 20,
        });
        self.post("/api/v1/contacts/search", body)
    }
    fn search_text<R: Rng>(&self, rng: &mut R) -> Req {
        let body = json!({"q": pick(rng, &self.terms), "limit": 20});
        self.post("/api/v1/contacts/search", body)
    }
    fn create<R: Rng>(&self, rng: &mut R) -> Req {
        let n = self.created.fetch_add(1, Ordering::Relaxed);
        let last = pick_str(rng, LAST_NAMES);
        let body = json!({
            "first_name": "Bench",
            "last_name": last,
            "email": format!("bench.{}.{n}@example.net", self.run_tag),
            "lifecycle_stage": pick_str(rng, STAGES),
            "tags": ["bench"],
            "custom": {"segment": pick_str(rng, SEGMENTS), "score": rng.gen_range(0..100)},
        });
        self.post("/api/v1/contacts", body)
    }
    fn patch<R: Rng>(&self, rng: &mut R) -> Req {
        let path = format!("/api/v1/contacts/{}", pick(rng, &self.ids));
        let body = json!({
            "job_title": format!("Title {}", rng.gen_range(0..1000)),
            "custom": {"score": rng.gen_range(0..100)},
        });
        self.target.request(
            Method::PATCH,
            &path,
            Some(("application/merge-patch+json", body.to_string())),
        )
    }
    /// 1000 upserts by e-mail: half of seeded contacts (a random run of the sample, so
    /// distinct), half new.
    fn batch_upsert<R: Rng>(&self, rng: &mut R) -> Req {
        let half = BATCH_SIZE / 2;
        let existing = self.emails.len().min(half);
        let start = rng.gen_range(0..=self.emails.len() - existing);
        let mut ops = Vec::with_capacity(BATCH_SIZE);
        for email in &self.emails[start..start + existing] {
            ops.push(json!({"op": "upsert", "match_on": "email", "data": {
                "email": email,
                "job_title": format!("Title {}", rng.gen_range(0..1000)),
                "custom": {"score": rng.gen_range(0..100)},
            }}));
        }
        while ops.len() < BATCH_SIZE {
            let n = self.created.fetch_add(1, Ordering::Relaxed);
            ops.push(json!({"op": "upsert", "match_on": "email", "data": {
                "email": format!("batch.{}.{n}@example.net", self.run_tag),
                "first_name": "Batch",
                "last_name": pick_str(rng, LAST_NAMES),
                "lifecycle_stage": pick_str(rng, STAGES),
                "custom": {"segment": pick_str(rng, SEGMENTS), "score": rng.gen_range(0..100)},
            }}));
        }
        self.post(
            "/api/v1/contacts/batch",
            json!({"operations": ops, "atomic": false}),
        )
    }
    fn export(&self) -> Req {
        self.target
            .request(Method::GET, "/api/v1/exports/contacts?format=csv", None)
    }
    fn post(&self, path: &str, body: serde_json::Value) -> Req {
        self.target.request(
            Method::POST,
            path,
            Some(("application/json", body.to_string())),
        )
    }
}

pub fn all(target: &Target, seeded: &Seeded, run_tag: &str) -> Vec<Scenario> {
    let inputs = Inputs {
        target: target.clone(),
        ids: Arc::new(seeded.contact_ids.clone()),
        terms: Arc::new(seeded.rare_terms.clone()),
        emails: Arc::new(seeded.contact_emails.clone()),
        created: Arc::new(AtomicU64::new(0)),
        run_tag: run_tag.to_string(),
    };
    let scenario = |name, description, make: MakeRequest| Scenario {
        name,
        description,
        make,
        max_concurrency: usize::MAX,
        rows_per_request: None,
    };
    let i = inputs;
    vec![
        scenario(
            "get_by_id",
            "GET /contacts/{id}, a random seeded contact",
            {
                let i = i.clone();
                Arc::new(move |rng: &mut StdRng, _: u64| i.get_by_id(rng))
            },
        ),
        scenario("list_page", "GET /contacts?limit=20 (default order)", {
            let i = i.clone();
            Arc::new(move |_: &mut StdRng, _: u64| i.list_page())
        }),
        scenario("list_sorted", "GET /contacts?limit=20&sort=-updated_at", {
            let i = i.clone();
            Arc::new(move |_: &mut StdRng, _: u64| i.list_sorted())
        }),
        scenario(
            "search_filtered",
            "POST /contacts/search, lifecycle_stage = X and custom.segment = Y",
            {
                let i = i.clone();
                Arc::new(move |rng: &mut StdRng, _: u64| i.search_filtered(rng))
            },
        ),
        scenario(
            "search_text",
            "POST /contacts/search, q = one person's e-mail term",
            {
                let i = i.clone();
                Arc::new(move |rng: &mut StdRng, _: u64| i.search_text(rng))
            },
        ),
        scenario("create", "POST /contacts with custom fields", {
            let i = i.clone();
            Arc::new(move |rng: &mut StdRng, _: u64| i.create(rng))
        }),
        scenario("patch", "PATCH /contacts/{id} merge-patch", {
            let i = i.clone();
            Arc::new(move |rng: &mut StdRng, _: u64| i.patch(rng))
        }),
        Scenario {
            max_concurrency: 1,
            ..scenario(
                "batch_upsert_1000",
                "POST /contacts/batch, 1000 upserts by email: 500 existing, 500 new",
                {
                    let i = i.clone();
                    Arc::new(move |rng: &mut StdRng, _: u64| i.batch_upsert(rng))
                },
            )
        },
        Scenario {
            max_concurrency: 1,
            rows_per_request: Some(seeded.contacts as u64),
            ..scenario(
                "export_contacts",
                "GET /exports/contacts?format=csv, every seeded contact streamed",
                {
                    let i = i.clone();
                    Arc::new(move |_: &mut StdRng, _: u64| i.export())
                },
            )
        },
        scenario(
            "mixed",
            "50% get, 15% list, 15% filtered search, 10% create, 10% patch",
            Arc::new(
                move |rng: &mut StdRng, _: u64| match rng.gen_range(0..100) {
                    0..50 => i.get_by_id(rng),
                    50..65 => i.list_page(),
                    65..80 => i.search_filtered(rng),
                    80..90 => i.create(rng),
                    _ => i.patch(rng),
                },
            ),
        ),
    ]
}
