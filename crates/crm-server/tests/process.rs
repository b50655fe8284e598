//! The `crm` binary as operators run it: JSON logs with request ids and no secrets, a
//! graceful stop on SIGTERM that lets an in-flight request finish, and an import that
//! survives `kill -9`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "process-test-secret-of-at-least-32-bytes!";
const PASSWORD: &str = "correct horse battery";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends one HTTP/1.1 request (`Connection: close`) and returns (status, headers+body text).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    let typed = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if !body.is_empty() && !typed {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    read_response(&mut s)
}

fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

fn json_body(resp: &str) -> serde_json::Value {
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

struct Server {
    child: Child,
    port: u16,
}

/// A test that fails part-way leaves no server running behind it.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh database for one test, on the backend `CRM_TEST_DB` names: its URL, and the
/// temporary directory (SQLite) that must outlive the servers using it.
fn database() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    if std::env::var("CRM_TEST_DB").as_deref() == Ok("postgres") {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let admin = std::env::var("CRM_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut c = diesel::PgConnection::establish(&admin).unwrap();
        c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
        let sep = if admin.contains('?') { '&' } else { '?' };
        (format!("{admin}{sep}options=-csearch_path%3D{schema}"), dir)
    } else {
        let url = format!("sqlite://{}", dir.path().join("crm.db").display());
        (url, dir)
    }
}

fn start(database_url: &str, env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_crm"))
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("CRM_BIND", format!("127.0.0.1:{port}"))
        .env("CRM_JWT_SECRET", SECRET)
        .env("CRM_LOG", "info")
        .env("CRM_LOG_FORMAT", "json")
        .env("CRM_WORKERS", "1")
        .env_remove("CRM_ENV")
        // After the defaults, so a test can change them.
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http(port, "GET", "/readyz", &[], "").0 == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not become ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server { child, port }
}

/// Creates a workspace and signs its admin in; returns the bearer header value and the
/// tokens.
fn admin(port: u16) -> (String, String, String) {
    let (s, _) = http(
        port,
        "POST",
        "/api/v1/workspaces",
        &[],
        &format!(
            r#"{{"name":"Ops","admin_email":"ops@example.com","admin_password":"{PASSWORD}","admin_name":"Ops"}}"#
        ),
    );
    assert_eq!(s, 201);
    let (s, resp) = http(
        port,
        "POST",
        "/api/v1/auth/login",
        &[],
        &format!(r#"{{"email":"ops@example.com","password":"{PASSWORD}"}}"#),
    );
    assert_eq!(s, 200, "{resp}");
    let login = json_body(&resp);
    let token = login["access_token"].as_str().unwrap().to_string();
    let refresh = login["refresh_token"].as_str().unwrap().to_string();
    (format!("Bearer {token}"), token, refresh)
}

#[test]
fn logs_carry_request_ids_and_no_secrets_and_sigterm_drains_in_flight_requests() {
    let (db, _dir) = database();
    let mut srv = start(&db, &[]);
    let port = srv.port;
    let (auth, token, refresh) = admin(port);
    let (s, resp) = http(
        port,
        "GET",
        "/api/v1/me",
        &[("Authorization", &auth), ("X-Request-Id", "trace-me-42")],
        "",
    );
    assert_eq!(s, 200);
    assert!(
        resp.to_ascii_lowercase()
            .contains("x-request-id: trace-me-42"),
        "{resp}"
    );

    // A request whose body is still arriving when SIGTERM comes must still be answered.
    let body = r#"{"first_name":"Late","last_name":"Arrival"}"#;
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "POST /api/v1/contacts HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).unwrap();
    slow.write_all(&body.as_bytes()[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let killed = Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(300));
    // New connections are refused while the in-flight one drains.
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "no longer accepting"
    );
    slow.write_all(&body.as_bytes()[10..]).unwrap();
    let (s, resp) = read_response(&mut slow);
    assert_eq!(s, 201, "{resp}");
    assert_eq!(json_body(&resp)["first_name"], "Late");

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = srv.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");

    let mut lines = Vec::new();
    for line in BufReader::new(srv.child.stderr.take().unwrap()).lines() {
        lines.push(line.unwrap());
    }
    let logs: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let all = lines.join("\n");
    for secret in [token.as_str(), refresh.as_str(), PASSWORD, SECRET] {
        assert!(!all.contains(secret), "a secret reached the logs");
    }
    let traced = logs
        .iter()
        .find(|l| l["span"]["request_id"] == "trace-me-42")
        .expect("an access line with the caller's request id");
    assert_eq!(traced["fields"]["status"], 200);
    assert_eq!(traced["fields"]["route"], "/api/v1/me");
    assert!(
        all.contains("in-flight requests, the webhook round and the import batch have finished")
    );
}

/// Waits (bounded) for `GET path` to answer 200 with a body `done` accepts.
fn wait_for(
    port: u16,
    auth: &str,
    path: &str,
    secs: u64,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (s, resp) = http(port, "GET", path, &[("Authorization", auth)], "");
        let v = json_body(&resp);
        if s == 200 && done(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting on {path}: {resp}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn an_import_killed_mid_file_resumes_after_its_last_batch_and_writes_each_row_once() {
    const ROWS: usize = 12_000;
    let (db, _dir) = database();
    let env = [
        ("CRM_IMPORT_BATCH_ROWS", "100"),
        ("CRM_IMPORT_LEASE_SECS", "2"),
        ("CRM_IMPORT_POLL_MS", "50"),
        ("CRM_RATE_LIMIT", "0"),
        // Nobody reads this test's server logs: keep them from filling the pipe.
        ("CRM_LOG", "warn"),
    ];
    let mut first = start(&db, &env);
    let (auth, _, _) = admin(first.port);
    let mut file = String::from("email,first_name,last_name\n");
    for i in 0..ROWS {
        file.push_str(&format!("person{i}@example.com,Person,Number {i}\n"));
    }
    let (s, resp) = http(
        first.port,
        "POST",
        "/api/v1/imports?object=contacts",
        &[("Authorization", &auth), ("Content-Type", "text/csv")],
        &file,
    );
    assert_eq!(s, 202, "{resp}");
    let id = json_body(&resp)["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/imports/{id}");
    // Kill the server, without warning, once some batches have committed.
    let before = wait_for(first.port, &auth, &path, 60, |v| {
        v["rows_processed"].as_i64().unwrap_or(0) >= 2_000
    });
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert_eq!(before["status"], "running", "{before}");
    assert!(
        before["rows_processed"].as_i64().unwrap() < ROWS as i64,
        "{before}"
    );

    // Another process takes the job over once the dead one's lease lapses.
    let mut second = start(&db, &env);
    let done = wait_for(second.port, &auth, &path, 180, |v| v["status"] != "running");
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["rows_total"], ROWS, "{done}");
    assert_eq!(done["rows_processed"], ROWS, "{done}");
    // A row written twice would have been refused as a duplicate e-mail: none was.
    assert_eq!(done["created"], ROWS, "{done}");
    assert_eq!(done["failed"], 0, "{done}");
    let (s, resp) = http(
        second.port,
        "GET",
        "/api/v1/contacts?limit=1&count=true",
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(s, 200);
    assert_eq!(json_body(&resp)["total"], ROWS, "{resp}");
    second.child.kill().unwrap();
    second.child.wait().unwrap();
}

#[test]
fn crm_import_uploads_a_file_follows_the_job_and_exits_non_zero_when_rows_fail() {
    let (db, dir) = database();
    let mut srv = start(&db, &[("CRM_LOG", "warn")]);
    let (auth, token, _) = admin(srv.port);
    let server = format!("http://127.0.0.1:{}", srv.port);
    let run = |file: &std::path::Path, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_crm"))
            .args(["import", "contacts"])
            .arg(file)
            .args(["--server", &server])
            .args(extra)
            .env("CRM_TOKEN", &token)
            .output()
            .unwrap()
    };
    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "email,first_name\nada@example.com,Ada\nbob@example.com,Bob\n",
    )
    .unwrap();
    let out = run(&good, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("completed — 2 rows: 2 created, 0 updated, 0 failed"),
        "{stdout}"
    );

    // Upserts by e-mail from NDJSON (by extension); a refused row makes the exit code 2 and
    // is listed with its line.
    let bad = dir.path().join("changes.ndjson");
    std::fs::write(
        &bad,
        "{\"email\":\"ada@example.com\",\"job_title\":\"Engineer\"}\n{\"email\":\"nope\"}\n",
    )
    .unwrap();
    let out = run(&bad, &["--match-on", "email"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout} {stderr}");
    assert!(
        stdout.contains("0 created, 1 updated, 1 failed"),
        "{stdout}"
    );
    assert!(stderr.contains("line 2: email:"), "{stderr}");

    // A request the server refuses is reported with its problem, and exit code 1.
    let out = run(&good, &["--match-on", "phone"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("match_on"), "{stderr}");

    let (s, resp) = http(
        srv.port,
        "GET",
        "/api/v1/contacts?email=ada@example.com",
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(s, 200);
    assert_eq!(
        json_body(&resp)["data"][0]["job_title"],
        "Engineer",
        "{resp}"
    );
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
}
