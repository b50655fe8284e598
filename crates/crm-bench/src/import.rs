//! The bulk-import measurements, each sent by the `crm import` command line exactly as an
//! operator runs it, timed end to end (upload, every row validated and written, job
//! completed) while the server's RSS is sampled:
//! - `import_contacts`: a contacts CSV of `1M × scale` rows, upserted on e-mail (every other
//!   row an address the seed made, the rest new ones);
//! - `import_1gb`: a file of `--large-import-mib` MiB (1 GiB) of new contacts, by default
//!   as a dry run (every row read, validated and matched, nothing written), to show that
//!   the server's memory does not grow with the file.

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
/// The large-file import (`--large-import-mib`, 1 GiB by default), selected by name only.
pub const NAME_LARGE: &str = "import_1gb";

#[derive(Debug, Clone, Serialize)]
pub struct ImportResult {
    /// [`NAME`] or [`NAME_LARGE`].
    pub scenario: String,
    /// Validated and counted only (`dry_run=true`): nothing written.
    pub dry_run: bool,
    pub rows: usize,
    pub file_bytes: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
    /// The summary line `crm import` printed.
    pub summary: String,
    pub max_rss_kib: u64,
    /// The highest RSS in each quarter of the import's time: flat memory shows four close
    /// figures.
    pub rss_by_quarter_kib: [u64; 4],
}

/// The server the import is sent to.
pub struct Target<'a> {
    pub crm_bin: &'a Path,
    pub addr: SocketAddr,
    pub token: &'a str,
    pub server_pid: u32,
}

/// The file's header, and its `i`-th row with this e-mail.
const HEADER: &str = "email,first_name,last_name,job_title,phone,lifecycle_stage";

fn write_row(f: &mut impl Write, email: &str, i: usize) -> std::io::Result<()> {
    writeln!(
        f,
        "{email},Imported,Person {i},Buyer,+44 20 7946 {:04},new",
        i % 10_000
    )
}

/// Writes the 1M-row file (every other row an address the seed made), imports it, measures.
pub fn run(target: &Target, seeded: &Seeded, rows: usize, dir: &Path) -> Result<ImportResult> {
    let path = dir.join("import-contacts.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
    writeln!(f, "{HEADER}")?;
    let tag = chrono::Utc::now().format("%H%M%S");
    for i in 0..rows {
        let existing = (i % 2 == 0)
            .then(|| seeded.contact_emails.get(i / 2))
            .flatten();
        let email = match existing {
            Some(e) => e.clone(),
            None => format!("import.{tag}.{i}@example.net"),
        };
        write_row(&mut f, &email, i)?;
    }
    f.flush()?;
    drop(f);
    import(target, NAME, &path, rows, false)
}

/// Writes a file of at least `mib` MiB of new contacts and imports it, as a dry run unless
/// `write` (the server's memory must stay flat whatever the file's size).
pub fn run_large(target: &Target, mib: u64, write: bool, dir: &Path) -> Result<ImportResult> {
    let path = dir.join("import-large.csv");
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    writeln!(f, "{HEADER}")?;
    let tag = chrono::Utc::now().format("%H%M%S");
    let (goal, mut bytes, mut rows) = (mib << 20, HEADER.len() as u64 + 1, 0usize);
    let mut line = Vec::with_capacity(128);
    while bytes < goal {
        line.clear();
        write_row(&mut line, &format!("large.{tag}.{rows}@example.net"), rows)?;
        f.write_all(&line)?;
        bytes += line.len() as u64;
        rows += 1;
    }
    f.flush()?;
    drop(f);
    import(target, NAME_LARGE, &path, rows, !write)
}

/// Sends the file with `crm import` (upsert on e-mail) exactly as an operator runs it, timed
/// end to end (upload, every row validated and written, job completed) while the server's
/// RSS is sampled; removes the file.
fn import(
    target: &Target,
    scenario: &str,
    path: &Path,
    rows: usize,
    dry_run: bool,
) -> Result<ImportResult> {
    let file_bytes = std::fs::metadata(path)?.len();
    println!(
        "{scenario}: {rows} rows ({:.1} MiB), upsert on email{} …",
        file_bytes as f64 / 1048576.0,
        if dry_run { ", dry run" } else { "" }
    );
    let sampler = RssSampler::start(target.server_pid);
    let started = Instant::now();
    let mut cmd = std::process::Command::new(target.crm_bin);
    cmd.args(["import", "contacts"]).arg(path).args([
        "--server",
        &format!("http://{}", target.addr),
        "--match-on",
        "email",
        "--quiet",
    ]);
    if dry_run {
        cmd.arg("--dry-run");
    }
    let out = cmd
        .env("CRM_TOKEN", target.token)
        .output()
        .context("running crm import")?;
    let seconds = started.elapsed().as_secs_f64();
    let (max_rss_kib, rss_by_quarter_kib) = sampler.finish_by_quarter();
    let _ = std::fs::remove_file(path);
    let summary = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        bail!(
            "crm import failed ({}): {summary} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rows_per_second = rows as f64 / seconds;
    let quarters: Vec<String> = rss_by_quarter_kib
        .iter()
        .map(|k| format!("{:.1}", *k as f64 / 1024.0))
        .collect();
    println!(
        "{scenario}: {rows_per_second:.0} rows/s ({seconds:.1} s); max RSS {:.1} MiB (by quarter: {} MiB); {summary}",
        max_rss_kib as f64 / 1024.0,
        quarters.join(" / ")
    );
    Ok(ImportResult {
        scenario: scenario.to_string(),
        dry_run,
        rows,
        file_bytes,
        seconds,
        rows_per_second,
        summary,
        max_rss_kib,
        rss_by_quarter_kib,
    })
}
