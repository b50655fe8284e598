//! The physical baseline: `pgbench -S` (select-only, one primary-key lookup per
//! transaction) on the same PostgreSQL, at the same concurrency as the API runs.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::process::Command;

#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub clients: usize,
    pub tps: f64,
    pub latency_avg_ms: f64,
}

fn pgbench(args: &[&str]) -> Result<String> {
    let out = Command::new("pgbench")
        .args(args)
        .output()
        .context("running pgbench (is it installed? apt-get install postgresql-client)")?;
    if !out.status.success() {
        bail!(
            "pgbench {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The settings of the PostgreSQL at `url` that shape the figures, as `name=value` pairs:
/// with `autovacuum=off`, for one, tables keep the statistics of the bench's own `ANALYZE`
/// after seeding, and what a scenario writes is never vacuumed during the run.
pub fn settings(url: &str) -> Result<String> {
    let out = Command::new("psql")
        .args([
            url,
            "-AtXc",
            "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) \
             FROM pg_settings WHERE name IN ('autovacuum', 'shared_buffers', 'max_wal_size', \
             'synchronous_commit', 'fsync', 'max_connections', 'server_version')",
        ])
        .output()
        .context("running psql (apt-get install postgresql-client)")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `pgbench -i -s scale` into the (fresh) database at `url`.
pub fn init(url: &str, scale: u32) -> Result<()> {
    pgbench(&["-i", "-q", "-s", &scale.to_string(), url]).map(|_| ())
}

pub fn run(url: &str, clients: usize, seconds: u64) -> Result<Baseline> {
    let threads = clients.clamp(1, 2);
    let out = pgbench(&[
        "-S",
        "-n",
        "-c",
        &clients.to_string(),
        "-j",
        &threads.to_string(),
        "-T",
        &seconds.to_string(),
        url,
    ])?;
    let number_after = |prefix: &str| -> Option<f64> {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    Ok(Baseline {
        clients,
        tps: number_after("tps = ").context("no tps in pgbench's output")?,
        latency_avg_ms: number_after("latency average = ").unwrap_or(f64::NAN),
    })
}
