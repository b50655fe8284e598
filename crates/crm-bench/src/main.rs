//! `crm-bench`: seeds a large CRM on PostgreSQL and/or SQLite, starts the release server,
//! drives it over loopback at fixed concurrency levels and compares it with `pgbench -S`
//! on the same PostgreSQL. Writes `results.json` and `results.md`; it reports numbers and
//! never fails on one.

mod import;
mod load;
mod pgbench;
mod report;
mod scenarios;
mod seed;
mod seed_sales;
mod server;
mod soak;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use crm_db::{DatabaseUrl, DbConnection};
use diesel::connection::SimpleConnection;
use diesel::Connection;
use report::{DbReport, Report, ScenarioResult};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ADMIN_EMAIL: &str = "bench-admin@example.com";
const ADMIN_PASSWORD: &str = "bench admin password, loopback only";
const DEFAULT_CONTACTS: f64 = 1_000_000.0;
const DEFAULT_COMPANIES: f64 = 100_000.0;
/// Deals and activities of the sales scenarios (at scale 1: 100k deals, 1M activities).
const DEFAULT_DEALS: f64 = 100_000.0;
const DEFAULT_ACTIVITIES: f64 = 1_000_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Db {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Parser)]
#[command(
    name = "crm-bench",
    about = "Seeds a large CRM and measures its HTTP API"
)]
struct Cli {
    /// Which database(s) to measure.
    #[arg(long, value_enum, default_value = "both", env = "BENCH_DB")]
    db: Db,
    /// Multiplier of the default data set (1M contacts, 100k companies); 0.1 for a quick run.
    #[arg(long, default_value_t = 1.0, env = "BENCH_SCALE")]
    scale: f64,
    /// Seconds per scenario and concurrency level.
    #[arg(long, default_value_t = 10, env = "BENCH_DURATION")]
    duration: u64,
    /// Concurrent connections, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,16,64",
        env = "BENCH_CONCURRENCY"
    )]
    concurrency: Vec<usize>,
    /// Where results.json, results.md, the server logs and the SQLite file go.
    #[arg(long, default_value = "bench", env = "BENCH_OUT")]
    out: PathBuf,
    /// PostgreSQL server (no database name): `crm_bench` and `pgbench_baseline` are
    /// (re)created on it.
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432",
        env = "BENCH_PG_URL"
    )]
    pg_url: String,
    /// The server binary (built with `cargo build --release`).
    #[arg(long, default_value = "target/release/crm")]
    crm_bin: PathBuf,
    /// First loopback port; each database run takes the next one.
    #[arg(long, default_value_t = 18080)]
    port: u16,
    /// Worker threads of the load generator's runtime (the server shares the machine).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// `pgbench -i -s` scale of the baseline database.
    #[arg(long, default_value_t = 10)]
    pgbench_scale: u32,
    /// Size of the `import_1gb` scenario's file, in MiB.
    #[arg(long, default_value_t = 1024, env = "BENCH_LARGE_IMPORT_MIB")]
    large_import_mib: u64,
    /// Write the `import_1gb` file's rows instead of a dry run (validate and count only).
    #[arg(long, env = "BENCH_LARGE_IMPORT_WRITE")]
    large_import_write: bool,
    /// Only these scenarios, comma-separated (default: all but `import_1gb`), e.g.
    /// `get_by_id`.
    #[arg(long, value_delimiter = ',', env = "BENCH_SCENARIOS")]
    scenarios: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Runs the release server under a mixed read/write load for some minutes and reports
    /// requests, errors by status, latency per minute and memory growth (`make soak`).
    Soak(soak::SoakArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Soak(args)) = &cli.command {
        return soak::run(&cli, args);
    }
    if cli.scale <= 0.0 || cli.duration == 0 || cli.concurrency.is_empty() {
        bail!("--scale and --duration must be positive and --concurrency non-empty");
    }
    std::fs::create_dir_all(&cli.out)?;
    let crm_bin = server_binary(&cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.client_threads.max(1))
        .enable_all()
        .build()?;
    let mut report = Report::new(
        cli.scale,
        cli.duration,
        &cli.concurrency,
        cli.client_threads.max(1),
        std::fs::metadata(&crm_bin)?.len(),
    );
    println!("{}", report.machine_note());
    let pg_root = cli.pg_url.trim_end_matches('/').to_string();
    let dbs: &[&str] = match cli.db {
        Db::Postgres => &["postgres"],
        Db::Sqlite => &["sqlite"],
        Db::Both => &["postgres", "sqlite"],
    };
    for (i, db) in dbs.iter().enumerate() {
        let url = match *db {
            "postgres" => {
                let url = fresh_pg_database(&pg_root, "crm_bench")?;
                let settings = pgbench::settings(&url)?;
                println!("PostgreSQL: {settings}");
                report.postgres_settings = Some(settings);
                url
            }
            _ => fresh_sqlite_file(&cli.out.join("crm-bench.sqlite"))?,
        };
        let port = cli.port + i as u16;
        let r = run_database(&cli, &runtime, &crm_bin, db, &url, port)?;
        report.databases.push(r);
        report.write(&cli.out)?;
    }
    if dbs.contains(&"postgres") {
        let url = fresh_pg_database(&pg_root, "pgbench_baseline")?;
        println!("pgbench -i -s {} …", cli.pgbench_scale);
        pgbench::init(&url, cli.pgbench_scale)?;
        report.pgbench_scale = cli.pgbench_scale;
        for &c in &cli.concurrency {
            let b = pgbench::run(&url, c, cli.duration)?;
            println!(
                "pgbench -S  c={c:<3} {:>9.0} tps  avg {:.3} ms",
                b.tps, b.latency_avg_ms
            );
            report.pgbench.push(b);
        }
    }
    report.finish();
    report.write(&cli.out)?;
    println!("\n{}", report.markdown());
    println!(
        "wrote {} and {}",
        cli.out.join("results.json").display(),
        cli.out.join("results.md").display()
    );
    Ok(())
}

/// The release server binary, as an absolute path.
fn server_binary(cli: &Cli) -> Result<PathBuf> {
    std::fs::canonicalize(&cli.crm_bin).with_context(|| {
        format!(
            "{} (run `cargo build --release` first)",
            cli.crm_bin.display()
        )
    })
}

/// Drops and creates database `name`; returns its URL.
pub(crate) fn fresh_pg_database(root: &str, name: &str) -> Result<String> {
    let mut admin = diesel::PgConnection::establish(&format!("{root}/postgres"))
        .with_context(|| format!("connecting to PostgreSQL at {}", crm_db::conn::redact(root)))?;
    // Two statements: DROP DATABASE refuses to run inside a multi-statement batch.
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
    Ok(format!("{root}/{name}"))
}

pub(crate) fn fresh_sqlite_file(path: &Path) -> Result<String> {
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        if p.exists() {
            std::fs::remove_file(&p)?;
        }
    }
    let dir = std::fs::canonicalize(path.parent().unwrap_or(Path::new(".")))?;
    let name = path
        .file_name()
        .context("the SQLite path has no file name")?;
    Ok(format!("sqlite://{}", dir.join(name).display()))
}

/// `crm init`: migrations, the workspace and its admin, as an operator would set them up.
fn init_workspace(crm_bin: &Path, url: &str) -> Result<String> {
    let out = std::process::Command::new(crm_bin)
        .args(["init", "--workspace", "Bench", "--admin-email", ADMIN_EMAIL])
        .args(["--admin-name", "Bench Admin"])
        .env("DATABASE_URL", url)
        .env("CRM_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("CRM_LOG", "warn")
        .output()?;
    if !out.status.success() {
        bail!("crm init: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub(crate) async fn login(addr: SocketAddr) -> Result<String> {
    let target = load::Target {
        addr,
        token: String::new(),
    };
    let body = serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
    let mut req = target.request(
        hyper::Method::POST,
        "/api/v1/auth/login",
        Some(("application/json", body.to_string())),
    )?;
    req.headers_mut().remove(hyper::header::AUTHORIZATION);
    let (status, body) = load::send_once(addr, req).await?;
    if !status.is_success() {
        bail!("login: {status} {}", String::from_utf8_lossy(&body));
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    v["access_token"]
        .as_str()
        .map(String::from)
        .context("login returned no access_token")
}

/// Creates the workspace and its admin and seeds `scale` × the default data set.
pub(crate) fn seed_database(
    crm_bin: &Path,
    db: &str,
    url: &str,
    scale: f64,
    sales: bool,
) -> Result<seed::Seeded> {
    let contacts = (DEFAULT_CONTACTS * scale).round() as usize;
    let companies = (DEFAULT_COMPANIES * scale).round() as usize;
    println!("\n== {db}: seeding {contacts} contacts, {companies} companies");
    let ws = init_workspace(crm_bin, url)?;
    let mut conn: DbConnection = crm_db::conn::Manager::new(DatabaseUrl::parse(url)?)
        .establish()
        .context("connecting for the seed")?;
    let workspace = crm_domain::WorkspaceId::from_authenticated(uuid::Uuid::parse_str(&ws)?);
    let owner = crm_db::repo::access::users_by_email(&mut conn, ADMIN_EMAIL)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .into_iter()
        .find(|u| u.workspace_id == workspace.as_string())
        .context("the admin user is missing")?;
    if matches!(conn, DbConnection::Pg(_)) {
        // The contact seed's links and history point at rows of the same run, so it skips
        // the per-row foreign-key triggers (the sales seed turns them back on, below);
        // commits need not wait for the disk.
        conn.batch_execute("SET session_replication_role = replica; SET synchronous_commit = off")?;
    }
    let mut seeded = seed::seed(&mut conn, &ws, &owner.id, contacts, companies)?;
    if sales {
        let deals = (DEFAULT_DEALS * scale).round() as usize;
        let activities = (DEFAULT_ACTIVITIES * scale).round() as usize;
        println!("seeding {deals} deals, {activities} activities");
        if matches!(conn, DbConnection::Pg(_)) {
            // Triggers on `deals` keep the pipeline board's and the forecast's running
            // totals, which their scenarios read: the sales seed runs with every trigger.
            conn.batch_execute("SET session_replication_role = origin")?;
        }
        let s = seed_sales::seed(
            &mut conn,
            workspace,
            &owner.id,
            &seeded.contact_ids,
            deals,
            activities,
        )?;
        println!(
            "seeded {} deals ({} stage changes, {} quotes with {} lines), {} activities ({} on {} contacts) in {:.1} s ({:.0} rows/s)",
            s.deals,
            s.stage_changes,
            s.quotes,
            s.quote_lines,
            s.activities,
            s.hot_contact_activities,
            s.hot_contact_ids.len(),
            s.seconds,
            s.rows_per_second
        );
        seeded.sales = Some(s);
    }
    seeded.analyze_seconds = seed::analyze(&mut conn)?;
    drop(conn);
    println!(
        "seeded {} contacts, {} companies, {} links, {} lifecycle rows in {:.1} s ({:.0} rows/s); analyze {:.1} s",
        seeded.contacts,
        seeded.companies,
        seeded.links,
        seeded.lifecycle_rows,
        seeded.seconds,
        seeded.rows_per_second,
        seeded.analyze_seconds
    );
    Ok(seeded)
}

fn run_database(
    cli: &Cli,
    runtime: &tokio::runtime::Runtime,
    crm_bin: &Path,
    db: &str,
    url: &str,
    port: u16,
) -> Result<DbReport> {
    let sales = cli.scenarios.is_empty()
        || cli
            .scenarios
            .iter()
            .any(|n| scenarios::SALES.contains(&n.as_str()));
    let seeded = seed_database(crm_bin, db, url, cli.scale, sales)?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let log = cli.out.join(format!("server-{db}.log"));
    let server = server::Server::start(crm_bin, url, addr, &log)?;
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss_kib = server::rss_kib(server.pid())?;
    println!(
        "ready in {:.1} ms; idle RSS {:.1} MiB",
        server.ready_ms,
        idle_rss_kib as f64 / 1024.0
    );
    let token = runtime.block_on(login(addr))?;
    let target = load::Target { addr, token };
    let run_tag = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let mut scenarios = scenarios::all(&target, &seeded, &format!("{db}{run_tag}"));
    if !cli.scenarios.is_empty() {
        scenarios.retain(|s| cli.scenarios.iter().any(|n| n == s.name));
    }

    let sampler = server::RssSampler::start(server.pid());
    let mut results = Vec::new();
    for s in &scenarios {
        let mut levels: Vec<usize> = cli
            .concurrency
            .iter()
            .copied()
            .filter(|&c| c <= s.max_concurrency)
            .collect();
        if levels.is_empty() {
            levels.push(1);
        }
        for c in levels {
            let m = runtime.block_on(load::run(
                addr,
                c,
                Duration::from_secs(cli.duration),
                s.make.clone(),
            ))?;
            let rows_per_second = s.rows_per_request.map(|n| n as f64 * m.rps);
            if let Some(rows) = rows_per_second {
                println!("{db:<8} {:<16} c={c:<3} {rows:>8.0} rows/s", s.name);
            }
            println!(
                "{db:<8} {:<16} c={c:<3} {:>8.0} req/s  p50 {:>8.2}  p90 {:>8.2}  p99 {:>8.2} ms  errors {}{}",
                s.name,
                m.rps,
                m.p50_ms,
                m.p90_ms,
                m.p99_ms,
                m.errors + m.timeouts,
                m.first_error
                    .as_deref()
                    .map(|e| format!("  first: {}", e.chars().take(160).collect::<String>()))
                    .unwrap_or_default()
            );
            results.push(ScenarioResult {
                scenario: s.name.to_string(),
                description: s.description.to_string(),
                concurrency: c,
                measured: m,
                rows_per_second,
                vs_pgbench: None,
            });
        }
    }
    let max_rss_kib = sampler.finish();
    let target = import::Target {
        crm_bin,
        addr,
        token: &target.token,
        server_pid: server.pid(),
    };
    let mut imports = Vec::new();
    if cli.scenarios.is_empty() || cli.scenarios.iter().any(|n| n == import::NAME) {
        let rows = ((1_000_000.0 * cli.scale) as usize).max(1000);
        imports.push(import::run(&target, &seeded, rows, &cli.out)?);
    }
    if cli.scenarios.iter().any(|n| n == import::NAME_LARGE) {
        let (mib, write) = (cli.large_import_mib, cli.large_import_write);
        imports.push(import::run_large(&target, mib, write, &cli.out)?);
    }
    let ready_ms = server.ready_ms;
    drop(server);
    Ok(DbReport {
        db: db.to_string(),
        seed: seeded,
        ready_ms,
        idle_rss_kib,
        max_rss_kib_under_load: max_rss_kib,
        results,
        imports,
    })
}
