//! The bulk-import measurement: a contacts CSV of `1M × scale` rows, upserted on e-mail
//! (every other row an address the seed made, the rest new ones), sent by the `crm import` command line
//! exactly as an operator runs it, timed end to end (upload, every row written, job
//! completed) while the server's RSS is sampled.

use crate::seed::Seeded;
use crate::server::RssSampler;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

/// The name `--scenarios` selects it by.
pub const NAME: &str = "import_contacts";

#[derive(Debug, Clone, Serialize)]
pub struct ImportResult {
    pub rows: usize,
    pub file_bytes: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
    /// The summary line `crm import` printed.
    pub summary: String,
    pub max_rss_kib: u64,
}

/// Writes the file, imports it and measures.
pub fn run(
    crm_bin: &Path,
    addr: SocketAddr,
    token: &str,
    server_pid: u32,
    seeded: &Seeded,
    rows: usize,
    dir: &Path,
) -> Result<ImportResult> {
    let path = dir.join("import-contacts.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
    writeln!(
        f,
        "email,first_name,last_name,job_title,phone,lifecycle_stage"
    )?;
    let tag = chrono::Utc::now().format("%H%M%S");
    for i in 0..rows {
        let existing = (i % 2 == 0)
            .then(|| seeded.contact_emails.get(i / 2))
            .flatten();
        let email = match existing {
            Some(e) => e.clone(),
            None => format!("import.{tag}.{i}@example.net"),
        };
        writeln!(
            f,
            "{email},Imported,Person {i},Buyer,+44 20 7946 {:04},new",
            i % 10_000
        )?;
    }
    f.flush()?;
    drop(f);
    let file_bytes = std::fs::metadata(&path)?.len();
    println!(
        "import: {rows} rows ({:.1} MiB), upsert on email …",
        file_bytes as f64 / 1048576.0
    );
    let sampler = RssSampler::start(server_pid);
    let started = Instant::now();
    let out = std::process::Command::new(crm_bin)
        .args(["import", "contacts"])
        .arg(&path)
        .args([
            "--server",
            &format!("http://{addr}"),
            "--match-on",
            "email",
            "--quiet",
        ])
        .env("CRM_TOKEN", token)
        .output()
        .context("running crm import")?;
    let seconds = started.elapsed().as_secs_f64();
    let max_rss_kib = sampler.finish();
    let _ = std::fs::remove_file(&path);
    let summary = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        bail!(
            "crm import failed ({}): {summary} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rows_per_second = rows as f64 / seconds;
    println!(
        "import: {rows_per_second:.0} rows/s ({seconds:.1} s); max RSS {:.1} MiB; {summary}",
        max_rss_kib as f64 / 1024.0
    );
    Ok(ImportResult {
        rows,
        file_bytes,
        seconds,
        rows_per_second,
        summary,
        max_rss_kib,
    })
}
