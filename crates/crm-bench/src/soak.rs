//! `crm-bench soak`: the release server on loopback under the `mixed` load for a fixed
//! number of minutes, its resident memory sampled every few seconds. Reports requests,
//! errors by status and latency per minute, and memory growth (first vs last minute).
//! Bounded: it stops by itself after `--minutes`.

use crate::load::{self, Target};
use crate::{scenarios, server, Cli, Db};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest soak accepted, in minutes.
const MAX_MINUTES: u64 = 24 * 60;

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// How long the load runs, in minutes (1 to 1440).
    #[arg(long, default_value_t = 5, env = "SOAK_MINUTES")]
    minutes: u64,
    /// The database to run against (a fresh one is created and seeded).
    #[arg(
        long = "soak-db",
        value_enum,
        default_value = "sqlite",
        env = "SOAK_DB"
    )]
    db: Db,
    /// Multiplier of the default data set (1M contacts); the default seeds 10 000.
    #[arg(long = "soak-scale", default_value_t = 0.01, env = "SOAK_SCALE")]
    scale: f64,
    /// Concurrent connections.
    #[arg(
        long = "soak-concurrency",
        default_value_t = 16,
        env = "SOAK_CONCURRENCY"
    )]
    concurrency: usize,
    /// Seconds between two samples of the server's resident memory.
    #[arg(long, default_value_t = 5, env = "SOAK_SAMPLE_SECS")]
    sample_secs: u64,
}

#[derive(Debug, Serialize)]
struct Minute {
    minute: u64,
    #[serde(flatten)]
    measured: load::Measured,
    rss_kib_min: u64,
    rss_kib_max: u64,
    rss_kib_mean: u64,
}

#[derive(Debug, Serialize)]
struct SoakReport {
    db: String,
    contacts: usize,
    concurrency: usize,
    minutes: Vec<Minute>,
    total_requests: u64,
    errors_by_status: BTreeMap<String, u64>,
    rss_samples_kib: Vec<(f64, u64)>,
    first_minute_rss_kib: u64,
    last_minute_rss_kib: u64,
    growth_kib: i64,
}

/// Samples a process's RSS every `every` into a shared list of (seconds since start, KiB).
struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(f64, u64)>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(pid: u32, every: Duration, started: Instant) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, out) = (stop.clone(), samples.clone());
        let handle = std::thread::spawn(move || {
            let mut next = Instant::now();
            while !s.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    if let Ok(kib) = server::rss_kib(pid) {
                        let t = started.elapsed().as_secs_f64();
                        out.lock().unwrap_or_else(|e| e.into_inner()).push((t, kib));
                    }
                    next += every;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Sampler {
            stop,
            samples,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> Vec<(f64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.clone()
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn run(cli: &Cli, args: &SoakArgs) -> Result<()> {
    if !(1..=MAX_MINUTES).contains(&args.minutes) {
        bail!("--minutes must be 1 to {MAX_MINUTES}");
    }
    if args.scale <= 0.0 || args.concurrency == 0 || args.sample_secs == 0 {
        bail!("--soak-scale, --soak-concurrency and --sample-secs must be positive");
    }
    let db = match args.db {
        Db::Sqlite => "sqlite",
        Db::Postgres => "postgres",
        Db::Both => bail!("a soak runs against one database: sqlite or postgres"),
    };
    std::fs::create_dir_all(&cli.out)?;
    let crm_bin = crate::server_binary(cli)?;
    let url = match db {
        "postgres" => crate::fresh_pg_database(cli.pg_url.trim_end_matches('/'), "crm_soak")?,
        _ => crate::fresh_sqlite_file(&cli.out.join("crm-soak.sqlite"))?,
    };
    let seeded = crate::seed_database(&crm_bin, db, &url, args.scale, false)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.client_threads.max(1))
        .enable_all()
        .build()?;
    // Loopback only.
    let addr: SocketAddr = ([127, 0, 0, 1], cli.port).into();
    let srv = server::Server::start(&crm_bin, &url, addr, &cli.out.join("server-soak.log"))?;
    let token = runtime.block_on(crate::login(addr))?;
    let target = Target { addr, token };
    let run_tag = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let mixed = scenarios::all(&target, &seeded, &format!("soak{run_tag}"))
        .into_iter()
        .find(|s| s.name == "mixed")
        .context("the mixed scenario is missing")?;
    println!(
        "\n== soak on {db}: {} min, {} connections, `{}`",
        args.minutes, args.concurrency, mixed.description
    );
    let started = Instant::now();
    let sampler = Sampler::start(srv.pid(), Duration::from_secs(args.sample_secs), started);
    let mut minutes = Vec::new();
    for minute in 1..=args.minutes {
        let from = started.elapsed().as_secs_f64();
        let m = runtime.block_on(load::run(
            addr,
            args.concurrency,
            Duration::from_secs(60),
            mixed.make.clone(),
        ))?;
        let to = started.elapsed().as_secs_f64();
        let rss: Vec<u64> = sampler
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, k)| *k)
            .collect();
        let (lo, hi) = (
            rss.iter().copied().min().unwrap_or(0),
            rss.iter().copied().max().unwrap_or(0),
        );
        let mean = rss.iter().sum::<u64>() / (rss.len().max(1) as u64);
        println!(
            "minute {minute:>3}: {:>7} requests {:>7.0} req/s  p50 {:>7.2}  p90 {:>7.2}  p99 {:>7.2}  max {:>8.2} ms  errors {:?}  RSS {:.1}–{:.1} MiB",
            m.requests, m.rps, m.p50_ms, m.p90_ms, m.p99_ms, m.max_ms, m.errors_by_status, mib(lo), mib(hi)
        );
        minutes.push(Minute {
            minute,
            measured: m,
            rss_kib_min: lo,
            rss_kib_max: hi,
            rss_kib_mean: mean,
        });
    }
    let samples = sampler.finish();
    drop(srv);
    let mut errors_by_status = BTreeMap::new();
    for m in &minutes {
        for (k, n) in &m.measured.errors_by_status {
            *errors_by_status.entry(k.clone()).or_default() += n;
        }
    }
    let first = minutes.first().map(|m| m.rss_kib_mean).unwrap_or(0);
    let last = minutes.last().map(|m| m.rss_kib_mean).unwrap_or(0);
    let report = SoakReport {
        db: db.to_string(),
        contacts: seeded.contacts,
        concurrency: args.concurrency,
        total_requests: minutes.iter().map(|m| m.measured.requests).sum(),
        minutes,
        errors_by_status,
        rss_samples_kib: samples,
        first_minute_rss_kib: first,
        last_minute_rss_kib: last,
        growth_kib: last as i64 - first as i64,
    };
    let md = markdown(&report);
    println!("\n{md}");
    std::fs::write(
        cli.out.join("soak.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(cli.out.join("soak.md"), &md)?;
    println!(
        "wrote {} and {}",
        cli.out.join("soak.json").display(),
        cli.out.join("soak.md").display()
    );
    Ok(())
}

fn markdown(r: &SoakReport) -> String {
    let mut s = format!(
        "# crm-bench soak\n\n{} with {} contacts, {} connections, `mixed` load, {} minute(s).\n\n",
        r.db,
        r.contacts,
        r.concurrency,
        r.minutes.len()
    );
    s.push_str("| minute | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | RSS mean MiB | RSS max MiB |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for m in &r.minutes {
        let errors = if m.measured.errors_by_status.is_empty() {
            "0".to_string()
        } else {
            m.measured
                .errors_by_status
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.1} |\n",
            m.minute,
            m.measured.requests,
            m.measured.rps,
            m.measured.p50_ms,
            m.measured.p90_ms,
            m.measured.p99_ms,
            m.measured.max_ms,
            errors,
            mib(m.rss_kib_mean),
            mib(m.rss_kib_max)
        ));
    }
    let errors: u64 = r.errors_by_status.values().sum();
    s.push_str(&format!(
        "\nTotal: {} requests, {} errors {:?}. RSS: first minute {:.1} MiB, last minute {:.1} MiB, growth {:+.1} MiB.\n",
        r.total_requests,
        errors,
        r.errors_by_status,
        mib(r.first_minute_rss_kib),
        mib(r.last_minute_rss_kib),
        r.growth_kib as f64 / 1024.0
    ));
    s
}
