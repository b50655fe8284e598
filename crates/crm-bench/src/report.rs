//! `results.json` and the Markdown table, with each API figure as a ratio to `pgbench -S`
//! at the same concurrency and the project's targets checked against the measurements.

use crate::load::Measured;
use crate::pgbench::Baseline;
use crate::seed::Seeded;
use anyhow::Result;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct ScenarioResult {
    pub scenario: String,
    pub description: String,
    pub concurrency: usize,
    #[serde(flatten)]
    pub measured: Measured,
    /// For scenarios that read or write many records per request (exports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_per_second: Option<f64>,
    /// API requests per second over `pgbench -S` transactions per second.
    pub vs_pgbench: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct DbReport {
    pub db: String,
    pub seed: Seeded,
    pub ready_ms: f64,
    pub idle_rss_kib: u64,
    pub max_rss_kib_under_load: u64,
    pub results: Vec<ScenarioResult>,
    /// The bulk imports that ran.
    pub imports: Vec<crate::import::ImportResult>,
}

/// One target of the "Quality gates" issue, and where the measurements stand.
#[derive(Debug, Serialize)]
pub struct TargetCheck {
    pub db: String,
    pub target: String,
    pub concurrency: Option<usize>,
    pub measured: String,
    pub met: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub generated_at: String,
    pub cores: usize,
    pub client_threads: usize,
    pub scale: f64,
    pub duration_s: u64,
    pub concurrency: Vec<usize>,
    pub binary_size_bytes: u64,
    pub pgbench_scale: u32,
    /// The PostgreSQL settings that shape the figures (`name=value, …`).
    pub postgres_settings: Option<String>,
    pub databases: Vec<DbReport>,
    pub pgbench: Vec<Baseline>,
    pub targets: Vec<TargetCheck>,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Report {
    pub fn new(
        scale: f64,
        duration_s: u64,
        concurrency: &[usize],
        client_threads: usize,
        binary_size_bytes: u64,
    ) -> Report {
        Report {
            generated_at: chrono::Utc::now().to_rfc3339(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            client_threads,
            scale,
            duration_s,
            concurrency: concurrency.to_vec(),
            binary_size_bytes,
            pgbench_scale: 0,
            postgres_settings: None,
            databases: Vec::new(),
            pgbench: Vec::new(),
            targets: Vec::new(),
        }
    }

    pub fn machine_note(&self) -> String {
        format!(
            "{} cores shared by the server, its database and the load generator ({} runtime thread{}); \
             scale {} ({} contacts), {} s per scenario and concurrency",
            self.cores,
            self.client_threads,
            if self.client_threads == 1 { "" } else { "s" },
            self.scale,
            (1_000_000.0 * self.scale).round(),
            self.duration_s
        )
    }

    fn baseline(&self, clients: usize) -> Option<f64> {
        self.pgbench
            .iter()
            .find(|b| b.clients == clients)
            .map(|b| b.tps)
    }

    /// Fills in the ratios to pgbench and checks the targets.
    pub fn finish(&mut self) {
        let tps: Vec<(usize, f64)> = self.pgbench.iter().map(|b| (b.clients, b.tps)).collect();
        for d in &mut self.databases {
            for r in &mut d.results {
                r.vs_pgbench = tps
                    .iter()
                    .find(|(c, _)| *c == r.concurrency)
                    .map(|(_, t)| r.measured.rps / t);
            }
        }
        let mut targets = Vec::new();
        for d in &self.databases {
            let find = |name: &str, c: usize| {
                d.results
                    .iter()
                    .find(|r| r.scenario == name && r.concurrency == c)
            };
            let check = |target: &str, c: Option<usize>, measured: String, met: bool| TargetCheck {
                db: d.db.clone(),
                target: target.to_string(),
                concurrency: c,
                measured,
                met,
            };
            if let (Some(r), Some(base)) = (find("get_by_id", 64), self.baseline(64)) {
                let ratio = r.measured.rps / base;
                targets.push(check(
                    "get by id ≥ 50 % of pgbench -S",
                    Some(64),
                    format!(
                        "{:.0} % ({:.0} / {:.0})",
                        ratio * 100.0,
                        r.measured.rps,
                        base
                    ),
                    ratio >= 0.5,
                ));
            }
            if let Some(r) = find("get_by_id", 64) {
                targets.push(check(
                    "get by id p99 < 5 ms",
                    Some(64),
                    format!("{:.2} ms", r.measured.p99_ms),
                    r.measured.p99_ms < 5.0,
                ));
            }
            if let Some(r) = d.results.iter().find(|r| r.scenario == "export_contacts") {
                let rows = r.rows_per_second.unwrap_or_default();
                targets.push(check(
                    "export ≥ 200,000 contacts/s (at 1M)",
                    Some(r.concurrency),
                    format!("{rows:.0} rows/s of {} contacts", d.seed.contacts),
                    rows >= 200_000.0,
                ));
            }
            let latency_goals = [
                ("list_page", 20.0, "list page p99 < 20 ms"),
                ("list_sorted", 20.0, "sorted list page p99 < 20 ms"),
                ("search_filtered", 20.0, "filtered search p99 < 20 ms"),
                ("search_text", 50.0, "free-text search p99 < 50 ms"),
                (
                    "search_text_common",
                    50.0,
                    "free-text search for a common name p99 < 50 ms",
                ),
                ("create", 10.0, "create p99 < 10 ms"),
                ("batch_upsert_1000", 250.0, "1000-upsert batch p99 < 250 ms"),
                ("pipeline_board", 20.0, "pipeline board p99 < 20 ms"),
                ("record_timeline", 10.0, "record timeline page p99 < 10 ms"),
                (
                    "quote_50_lines",
                    15.0,
                    "quote of 50 lines created p99 < 15 ms",
                ),
            ];
            for (name, goal, label) in latency_goals {
                for &c in &self.concurrency {
                    if let Some(r) = find(name, c) {
                        targets.push(check(
                            label,
                            Some(c),
                            format!("{:.2} ms", r.measured.p99_ms),
                            r.measured.p99_ms < goal
                                && r.measured.errors + r.measured.timeouts == 0,
                        ));
                    }
                }
            }
            for i in &d.imports {
                if i.dry_run {
                    targets.push(check(
                        "server RSS < 300 MB during a dry run of the large file",
                        None,
                        format!(
                            "{:.1} MiB over {:.0} MiB",
                            mib(i.max_rss_kib),
                            i.file_bytes as f64 / 1048576.0
                        ),
                        i.max_rss_kib * 1024 < 300_000_000,
                    ));
                    continue;
                }
                targets.push(check(
                    "import ≥ 50,000 rows/s (CSV, upsert on email)",
                    None,
                    format!("{:.0} rows/s of {} rows", i.rows_per_second, i.rows),
                    i.rows_per_second >= 50_000.0,
                ));
                targets.push(check(
                    "server RSS < 300 MB during the import",
                    None,
                    format!("{:.1} MiB", mib(i.max_rss_kib)),
                    i.max_rss_kib * 1024 < 300_000_000,
                ));
            }
            targets.push(check(
                "idle RSS < 30 MB",
                None,
                format!("{:.1} MiB", mib(d.idle_rss_kib)),
                d.idle_rss_kib * 1024 < 30_000_000,
            ));
            targets.push(check(
                "ready in < 200 ms",
                None,
                format!("{:.1} ms", d.ready_ms),
                d.ready_ms < 200.0,
            ));
        }
        self.targets = targets;
    }

    pub fn write(&self, out: &Path) -> Result<()> {
        std::fs::write(
            out.join("results.json"),
            serde_json::to_string_pretty(self)? + "\n",
        )?;
        std::fs::write(out.join("results.md"), self.markdown())?;
        Ok(())
    }

    pub fn markdown(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "# crm-bench results\n");
        let _ = writeln!(
            m,
            "{} ({}). Release binary: {:.1} MiB.",
            self.machine_note(),
            self.generated_at,
            self.binary_size_bytes as f64 / (1024.0 * 1024.0)
        );
        if let Some(pg) = &self.postgres_settings {
            let _ = writeln!(m, "\nPostgreSQL: {pg}.");
        }
        let mut seeds = Table::new(&[
            "database",
            "seed (contacts / companies / links)",
            "seed time",
            "rows/s",
            "ready",
            "idle RSS",
            "max RSS under load",
        ]);
        for d in &self.databases {
            let s = &d.seed;
            seeds.row(vec![
                d.db.clone(),
                format!("{} / {} / {}", s.contacts, s.companies, s.links),
                format!("{:.1} s (+ {:.1} s analyze)", s.seconds, s.analyze_seconds),
                format!("{:.0}", s.rows_per_second),
                format!("{:.1} ms", d.ready_ms),
                format!("{:.1} MiB", mib(d.idle_rss_kib)),
                format!("{:.1} MiB", mib(d.max_rss_kib_under_load)),
            ]);
        }
        seeds.write(&mut m);
        let mut runs = Table::new(&[
            "database",
            "scenario",
            "conc.",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "errors",
            "vs pgbench -S",
        ]);
        for d in &self.databases {
            for r in &d.results {
                let x = &r.measured;
                runs.row(vec![
                    d.db.clone(),
                    r.scenario.clone(),
                    r.concurrency.to_string(),
                    format!("{:.0}", x.rps),
                    format!("{:.2}", x.p50_ms),
                    format!("{:.2}", x.p90_ms),
                    format!("{:.2}", x.p99_ms),
                    (x.errors + x.timeouts).to_string(),
                    r.vs_pgbench
                        .map_or("–".into(), |v| format!("{:.1} %", v * 100.0)),
                ]);
            }
        }
        runs.write(&mut m);
        let imports: Vec<_> = self
            .databases
            .iter()
            .flat_map(|d| d.imports.iter().map(move |i| (d, i)))
            .collect();
        if !imports.is_empty() {
            let mut t = Table::new(&[
                "database",
                "import",
                "rows",
                "file",
                "time",
                "rows/s",
                "max RSS",
                "max RSS by quarter",
                "outcome",
            ]);
            for (d, i) in imports {
                let quarters: Vec<String> = i
                    .rss_by_quarter_kib
                    .iter()
                    .map(|k| format!("{:.1}", mib(*k)))
                    .collect();
                t.row(vec![
                    d.db.clone(),
                    format!(
                        "{}{}",
                        i.scenario,
                        if i.dry_run { " (dry run)" } else { "" }
                    ),
                    i.rows.to_string(),
                    format!("{:.1} MiB", i.file_bytes as f64 / 1048576.0),
                    format!("{:.1} s", i.seconds),
                    format!("{:.0}", i.rows_per_second),
                    format!("{:.1} MiB", mib(i.max_rss_kib)),
                    format!("{} MiB", quarters.join(" / ")),
                    i.summary.clone(),
                ]);
            }
            t.write(&mut m);
        }
        if !self.pgbench.is_empty() {
            let title = format!("pgbench -S (same PostgreSQL, scale {})", self.pgbench_scale);
            let mut base = Table::new(&[&title, "tps", "avg latency ms"]);
            for b in &self.pgbench {
                base.row(vec![
                    format!("{} clients", b.clients),
                    format!("{:.0}", b.tps),
                    format!("{:.3}", b.latency_avg_ms),
                ]);
            }
            base.write(&mut m);
        }
        if !self.targets.is_empty() {
            let mut goals = Table::new(&["database", "target", "conc.", "measured", "met"]);
            for t in &self.targets {
                goals.row(vec![
                    t.db.clone(),
                    t.target.clone(),
                    t.concurrency.map_or("–".into(), |c| c.to_string()),
                    t.measured.clone(),
                    if t.met { "yes" } else { "no" }.into(),
                ]);
            }
            goals.write(&mut m);
        }
        m
    }
}

/// A Markdown table.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn write(&self, m: &mut String) {
        let line = |cells: &[String]| format!("| {} |", cells.join(" | "));
        let _ = writeln!(m, "\n{}", line(&self.header));
        let _ = writeln!(m, "|{}", "---|".repeat(self.header.len()));
        for r in &self.rows {
            let _ = writeln!(m, "{}", line(r));
        }
    }
}
