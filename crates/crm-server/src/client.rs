//! `crm import`: runs a bulk import against a (remote) server from the command line. The
//! file is streamed as the body of `POST /api/v1/imports`, then the job is followed until it
//! ends, with a live progress bar (rows/s, ETA) on a terminal.

use clap::Args;
use futures_util::stream;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code when the import ended but some rows were refused.
pub const EXIT_ROWS_FAILED: u8 = 2;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What the rows become: contacts, companies, leads, deals, activities, products, …
    pub object: String,
    /// The CSV (with a header row) or NDJSON file.
    pub file: PathBuf,
    /// The server's base URL.
    #[arg(long, env = "CRM_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// An access token or API key with write access to the object.
    #[arg(long, env = "CRM_TOKEN", hide_env_values = true)]
    pub token: String,
    /// `csv` or `ndjson` (default: from the file's extension, `.ndjson`/`.jsonl` or CSV).
    #[arg(long)]
    pub format: Option<String>,
    /// `create` or `upsert` (the default with `--match-on`).
    #[arg(long)]
    pub mode: Option<String>,
    /// The field upserts match on: `external_id`, `email` (contacts), `sku` (products).
    #[arg(long)]
    pub match_on: Option<String>,
    /// Validate and count only; nothing is written.
    #[arg(long)]
    pub dry_run: bool,
    /// Column → field mapping as JSON, e.g. '{"E-mail":"email","Notes":null}'.
    #[arg(long)]
    pub mapping: Option<String>,
    /// No progress bar (there is none either when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
    /// How many refused rows to list at the end.
    #[arg(long, default_value_t = 20)]
    pub show_errors: u32,
}

/// Runs the import; prints a summary on stdout and the refused rows on stderr.
pub fn run_import(args: ImportArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("crm import: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(import(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("crm import: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bar(quiet: bool, len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(len),
        if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The problem's detail, for a failed request.
fn problem(status: reqwest::StatusCode, body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut out = format!("{status}: {}", v["detail"].as_str().unwrap_or(body).trim());
    for e in v["errors"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n  {}: {} ({})",
            e["field"].as_str().unwrap_or(""),
            e["message"].as_str().unwrap_or(""),
            e["code"].as_str().unwrap_or("")
        ));
    }
    out
}

async fn import(args: ImportArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let base = args.server.trim_end_matches('/').to_string();
    let file =
        std::fs::File::open(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let size = file.metadata()?.len();
    let format = args.format.clone().unwrap_or_else(|| {
        match args.file.extension().and_then(|e| e.to_str()) {
            Some("ndjson" | "jsonl") => "ndjson".into(),
            _ => "csv".into(),
        }
    });
    let mut url = reqwest::Url::parse(&format!("{base}/api/v1/imports"))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("object", &args.object)
            .append_pair("format", &format);
        if let Some(m) = &args.mode {
            q.append_pair("mode", m);
        }
        if let Some(m) = &args.match_on {
            q.append_pair("match_on", m);
        }
        if args.dry_run {
            q.append_pair("dry_run", "true");
        }
        if let Some(m) = &args.mapping {
            q.append_pair("mapping", m);
        }
    }
    let quiet = args.quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let upload = bar(
        quiet,
        size,
        "uploading {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    );
    let sent = upload.clone();
    let body = stream::unfold(file, move |mut f| {
        let sent = sent.clone();
        async move {
            let mut buf = vec![0u8; 256 * 1024];
            match f.read(&mut buf) {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    sent.inc(n as u64);
                    Some((Ok::<_, std::io::Error>(buf), f))
                }
                Err(e) => Some((Err(e), f)),
            }
        }
    });
    let client = reqwest::Client::builder()
        .user_agent(concat!("crm-import/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let content_type = if format == "ndjson" {
        "application/x-ndjson"
    } else {
        "text/csv"
    };
    let res = client
        .post(url)
        .bearer_auth(&args.token)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header(reqwest::header::CONTENT_LENGTH, size)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await?;
    upload.finish_and_clear();
    let status = res.status();
    let text = res.text().await?;
    if status != reqwest::StatusCode::ACCEPTED {
        return Err(problem(status, &text).into());
    }
    let job: Value = serde_json::from_str(&text)?;
    let id = job["id"]
        .as_str()
        .ok_or("the server gave no import id")?
        .to_string();
    let total = job["rows_total"].as_u64().unwrap_or(0);
    let progress = bar(
        quiet,
        total,
        "importing {bar:40} {pos}/{len} rows {per_sec} eta {eta} {msg}",
    );
    let job = loop {
        let res = client
            .get(format!("{base}/api/v1/imports/{id}"))
            .bearer_auth(&args.token)
            .send()
            .await?;
        let status = res.status();
        let text = res.text().await?;
        if !status.is_success() {
            return Err(problem(status, &text).into());
        }
        let job: Value = serde_json::from_str(&text)?;
        progress.set_position(job["rows_processed"].as_u64().unwrap_or(0));
        progress.set_message(format!("({} failed)", job["failed"].as_u64().unwrap_or(0)));
        if ["completed", "failed", "cancelled"].contains(&job["status"].as_str().unwrap_or("")) {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    progress.finish_and_clear();
    let failed = job["failed"].as_u64().unwrap_or(0);
    println!(
        "import {id}: {} — {} rows: {} created, {} updated, {} failed{}",
        job["status"].as_str().unwrap_or(""),
        job["rows_processed"],
        job["created"],
        job["updated"],
        failed,
        if args.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        },
    );
    if let Some(reason) = job["error"].as_str() {
        eprintln!("the import failed: {reason}");
    }
    if failed > 0 && args.show_errors > 0 {
        let res = client
            .get(format!(
                "{base}/api/v1/imports/{id}/errors?limit={}",
                args.show_errors.min(500)
            ))
            .bearer_auth(&args.token)
            .send()
            .await?;
        let page: Value = res.json().await?;
        for row in page["data"].as_array().into_iter().flatten() {
            let e = &row["error"];
            let fields: Vec<String> = e["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f["field"].as_str().unwrap_or(""),
                        f["message"].as_str().unwrap_or("")
                    )
                })
                .collect();
            let detail = if fields.is_empty() {
                e["detail"].as_str().unwrap_or("").to_string()
            } else {
                fields.join("; ")
            };
            eprintln!("line {}: {detail}", row["line"]);
        }
        if failed > u64::from(args.show_errors) {
            eprintln!(
                "… and {} more: GET {base}/api/v1/imports/{id}/errors",
                failed - u64::from(args.show_errors)
            );
        }
    }
    Ok(match job["status"].as_str() {
        Some("completed") if failed == 0 => ExitCode::SUCCESS,
        Some("completed") => ExitCode::from(EXIT_ROWS_FAILED),
        _ => ExitCode::FAILURE,
    })
}
