//! The requests each scenario sends, drawn at random from the seeded data.

use crate::load::{MakeRequest, Target};
use crate::seed::{Seeded, LAST_NAMES, SEGMENTS, STAGES};
use anyhow::Result;
use chrono::{Months, NaiveDate};
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

/// The scenarios that need the sales seed (deals and activities).
pub const SALES: &[&str] = &[
    "pipeline_board",
    "record_timeline",
    "quote_50_lines",
    "forecast",
];

/// Lines of the quote the `quote_50_lines` scenario creates.
pub const QUOTE_LINES: usize = 50;

/// Operations in one request of the `batch_upsert_1000` scenario.
pub const BATCH_SIZE: usize = 1000;

/// The pieces every scenario draws from.
#[derive(Clone)]
struct Inputs {
    target: Target,
    ids: Arc<Vec<String>>,
    terms: Arc<Vec<String>>,
    emails: Arc<Vec<String>>,
    /// The sales seed's pipeline, deals and activity-heavy contacts (empty without it).
    pipeline_id: String,
    deal_ids: Arc<Vec<String>>,
    hot_contact_ids: Arc<Vec<String>>,
    /// `from` and `to` of the forecast: the four quarters before this one, this one and
    /// the three after (24 months, the most a forecast spans).
    forecast_range: (String, String),
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
    /// A last name many contacts share: the search's worst case, where the term narrows
    /// little and the page is taken from thousands of matches.
    fn search_text_common<R: Rng>(&self, rng: &mut R) -> Req {
        let body = json!({"q": pick_str(rng, LAST_NAMES), "limit": 20});
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
    fn pipeline_board(&self) -> Req {
        let path = format!("/api/v1/pipelines/{}/board?currency=EUR", self.pipeline_id);
        self.target.request(Method::GET, &path, None)
    }
    fn record_timeline<R: Rng>(&self, rng: &mut R) -> Req {
        let path = format!(
            "/api/v1/contacts/{}/timeline",
            pick(rng, &self.hot_contact_ids)
        );
        self.target.request(Method::GET, &path, None)
    }
    fn quote<R: Rng>(&self, rng: &mut R) -> Req {
        let lines: Vec<serde_json::Value> = (0..QUOTE_LINES)
            .map(|i| {
                json!({
                    "description": format!("Line {i}"),
                    "quantity": format!("{}", rng.gen_range(1..20)),
                    "unit_price": format!("{}.{:02}", rng.gen_range(1..5000), rng.gen_range(0..100)),
                    "discount_percent": pick_str(rng, &["0", "5", "12.5"]),
                    "tax_rate": pick_str(rng, &["0", "7", "19"]),
                })
            })
            .collect();
        let body = json!({"deal_id": pick(rng, &self.deal_ids), "currency": "EUR", "lines": lines});
        self.post("/api/v1/quotes", body)
    }
    fn forecast(&self) -> Req {
        let (from, to) = &self.forecast_range;
        let path = format!(
            "/api/v1/forecast?period=quarter&from={from}&to={to}&currency=EUR&group_by=owner"
        );
        self.target.request(Method::GET, &path, None)
    }
    fn export(&self) -> Req {
        self.target
            .request(Method::GET, "/api/v1/exports/contacts?format=csv", None)
    }
    fn duplicates(&self) -> Req {
        self.target
            .request(Method::GET, "/api/v1/contacts/duplicates?limit=20", None)
    }
    fn post(&self, path: &str, body: serde_json::Value) -> Req {
        self.target.request(
            Method::POST,
            path,
            Some(("application/json", body.to_string())),
        )
    }
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub fn all(target: &Target, seeded: &Seeded, run_tag: &str) -> Vec<Scenario> {
    let sales = seeded.sales.as_ref();
    let q0 = crm_domain::forecast::PeriodKind::Quarter.start_of(chrono::Utc::now().date_naive());
    let inputs = Inputs {
        target: target.clone(),
        ids: Arc::new(seeded.contact_ids.clone()),
        terms: Arc::new(seeded.rare_terms.clone()),
        emails: Arc::new(seeded.contact_emails.clone()),
        pipeline_id: sales.map(|s| s.pipeline_id.clone()).unwrap_or_default(),
        deal_ids: Arc::new(sales.map(|s| s.deal_ids.clone()).unwrap_or_default()),
        hot_contact_ids: Arc::new(sales.map(|s| s.hot_contact_ids.clone()).unwrap_or_default()),
        forecast_range: (
            day(q0.checked_sub_months(Months::new(12)).unwrap_or(q0)),
            day(q0
                .checked_add_months(Months::new(12))
                .and_then(|d| d.pred_opt())
                .unwrap_or(q0)),
        ),
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
    let mut sales_scenarios = vec![
        scenario(
            "pipeline_board",
            "GET /pipelines/{id}/board?currency=EUR over the seeded deals",
            {
                let i = i.clone();
                Arc::new(move |_: &mut StdRng, _: u64| i.pipeline_board())
            },
        ),
        scenario(
            "record_timeline",
            "GET /contacts/{id}/timeline, first page, of a contact with very many activities",
            {
                let i = i.clone();
                Arc::new(move |rng: &mut StdRng, _: u64| i.record_timeline(rng))
            },
        ),
        scenario(
            "quote_50_lines",
            "POST /quotes with 50 lines (discounts, taxes) for a seeded deal",
            {
                let i = i.clone();
                Arc::new(move |rng: &mut StdRng, _: u64| i.quote(rng))
            },
        ),
        scenario(
            "forecast",
            "GET /forecast, 8 quarters around today, per owner, in EUR",
            {
                let i = i.clone();
                Arc::new(move |_: &mut StdRng, _: u64| i.forecast())
            },
        ),
    ];
    if sales.is_none() {
        sales_scenarios.clear();
    }
    let mut all = vec![
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
        scenario(
            "search_text_common",
            "POST /contacts/search, q = a last name thousands of contacts share",
            {
                let i = i.clone();
                Arc::new(move |rng: &mut StdRng, _: u64| i.search_text_common(rng))
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
        Scenario {
            max_concurrency: 1,
            ..scenario(
                "contact_duplicates",
                "GET /contacts/duplicates?limit=20, a page of candidate pairs (the scan of every contact is kept until the next write)",
                {
                    let i = i.clone();
                    Arc::new(move |_: &mut StdRng, _: u64| i.duplicates())
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
    ];
    all.append(&mut sales_scenarios);
    all
}
