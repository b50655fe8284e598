//! The end-to-end harness: the real server, over real HTTP, on a fresh database per test.
//!
//! `CRM_TEST_DB=sqlite` (default) gives each test its own SQLite file; `CRM_TEST_DB=postgres`
//! gives each test its own schema in the database at `CRM_TEST_PG_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::connection::SimpleConnection;
use diesel::Connection;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const JWT_SECRET: &str = "end-to-end-test-secret-of-at-least-32-bytes";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub database_url: String,
    handle: actix_web::dev::ServerHandle,
    _workers: crm_server::Background,
    pg_schema: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

/// A signed-in user of a workspace.
#[derive(Clone, Debug)]
pub struct Session {
    pub workspace_id: String,
    pub user_id: String,
    pub token: String,
    pub refresh_token: String,
}

pub fn backend() -> String {
    std::env::var("CRM_TEST_DB").unwrap_or_else(|_| "sqlite".into())
}

fn pg_admin_url() -> String {
    std::env::var("CRM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh, empty database for one test: (DATABASE_URL, schema to drop, temp dir).
pub fn fresh_database() -> (String, Option<(String, String)>, Option<tempfile::TempDir>) {
    if backend() == "postgres" {
        let admin = pg_admin_url();
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut c = diesel::PgConnection::establish(&admin)
            .expect("PostgreSQL for tests (CRM_TEST_PG_URL)");
        c.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("create schema");
        let sep = if admin.contains('?') { '&' } else { '?' };
        (
            format!("{admin}{sep}options=-csearch_path%3D{schema}"),
            Some((admin, schema)),
            None,
        )
    } else {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("crm.db");
        (format!("sqlite://{}", path.display()), None, Some(dir))
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut crm_server::Settings)) -> TestApp {
        Self::spawn_on(fresh_database(), adjust).await
    }

    /// The settings the tests run the server with, on `database_url`.
    pub fn settings(database_url: &str) -> crm_server::Settings {
        crm_server::Settings {
            database_url: database_url.to_string(),
            bind: "127.0.0.1:0".into(),
            env: "test".into(),
            jwt_secret: Some(JWT_SECRET.into()),
            open_signup: true,
            log: "warn".into(),
            log_format: "text".into(),
            webhook_allow_private: true,
            max_body_bytes: 1_048_576,
            access_token_ttl: 900,
            refresh_token_ttl: 3600,
            db_pool_size: Some(4),
            sqlite_cache_kib: crm_db::conn::DEFAULT_SQLITE_CACHE_KIB,
            workers: Some(2),
            auth_cache_ttl: 5,
            rate_limit: 6000,
            rate_limit_bulk: 120,
            sign_in_max_failures: 10,
            sign_in_lock_secs: 300,
            metrics_token: None,
            shutdown_timeout: 5,
            webhook_retry_schedule: "0.2,0.4".into(),
            webhook_poll_ms: 50,
            export_page_size: 2000,
            import_max_bytes: 64 * 1024 * 1024,
            import_batch_rows: 500,
            import_lease_secs: 60,
            import_max_attempts: 8,
            import_abandon_secs: 3600,
            import_poll_ms: 50,
            housekeeping_secs: 600,
            text_index_flush_ms: 250,
            delivery_retention_days: 30,
            event_retention_days: 0,
        }
    }

    /// Starts the server on a database made by [`fresh_database`] (which it then owns).
    pub async fn spawn_on(
        db: (String, Option<(String, String)>, Option<tempfile::TempDir>),
        adjust: impl FnOnce(&mut crm_server::Settings),
    ) -> TestApp {
        let (database_url, pg_schema, dir) = db;
        let mut settings = Self::settings(&database_url);
        adjust(&mut settings);
        let pool = crm_server::open_database(&settings).expect("database");
        let workers = settings.spawn_workers(&pool).expect("background workers");
        let (server, addr) = crm_server::start(&settings, pool).expect("server starts");
        let handle = server.handle();
        tokio::spawn(server);
        TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            database_url,
            handle,
            _workers: workers,
            pg_schema,
            _dir: dir,
        }
    }

    /// Runs SQL statements on the test's database, to set up a state the API cannot make
    /// (what a crash leaves behind, a damaged record).
    pub fn sql(&self, statements: &str) {
        let url = crm_db::DatabaseUrl::parse(&self.database_url).expect("database url");
        let conn = crm_db::conn::Manager::new(url)
            .establish()
            .expect("connect");
        match conn {
            crm_db::DbConnection::Pg(mut c) => c.batch_execute(statements),
            crm_db::DbConnection::Sqlite(mut c) => c.batch_execute(statements),
        }
        .expect("statements run");
    }

    /// The number a `SELECT count(*) AS n …` query on the test's database answers.
    pub fn sql_count(&self, query: &str) -> i64 {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let url = crm_db::DatabaseUrl::parse(&self.database_url).expect("database url");
        let mut conn = crm_db::conn::Manager::new(url)
            .establish()
            .expect("connect");
        let rows: Vec<Count> = diesel::sql_query(query).load(&mut conn).expect("count");
        rows[0].n
    }

    /// `GET /metrics`: the Prometheus text.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Sends a request; `body` None sends no body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v, headers)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::GET, path, Some(token), None).await;
        (s, v)
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::POST, path, Some(token), Some(body)).await;
        (s, v)
    }
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self
            .call(Method::PATCH, path, Some(token), Some(body))
            .await;
        (s, v)
    }
    pub async fn delete(&self, path: &str, token: &str) -> StatusCode {
        self.call(Method::DELETE, path, Some(token), None).await.0
    }

    /// Creates a workspace with an admin and signs in.
    pub async fn workspace(&self, name: &str) -> Session {
        let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
        let (s, v, _) = self
            .call(
                Method::POST,
                "/api/v1/workspaces",
                None,
                Some(json!({"name": name, "admin_email": email, "admin_password": PASSWORD, "admin_name": "Admin"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let mut session = self.login(&email, PASSWORD).await;
        session.workspace_id = v["workspace"]["id"].as_str().unwrap().to_string();
        session
    }

    pub async fn login(&self, email: &str, password: &str) -> Session {
        let (s, v, _) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let token = v["access_token"].as_str().unwrap().to_string();
        let (_, me, _) = self
            .call(Method::GET, "/api/v1/me", Some(&token), None)
            .await;
        Session {
            workspace_id: me["workspace"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            user_id: me["user"]["id"].as_str().unwrap_or_default().to_string(),
            token,
            refresh_token: v["refresh_token"].as_str().unwrap().to_string(),
        }
    }

    /// Adds a user with `role` to the admin's workspace and signs them in.
    /// Creates an API key with these scopes and returns its secret.
    pub async fn api_key(&self, admin: &Session, scopes: &[&str]) -> String {
        let (s, key) = self
            .post(
                "/api/v1/api-keys",
                &admin.token,
                json!({"name": "Integration", "scopes": scopes}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{key}");
        key["secret"].as_str().unwrap().to_string()
    }

    pub async fn user(&self, admin: &Session, role: &str) -> Session {
        let email = format!("{role}-{}@example.com", uuid::Uuid::new_v4().simple());
        let (s, v) = self
            .post(
                "/api/v1/users",
                &admin.token,
                json!({"email": email, "name": role, "role": role, "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        self.login(&email, PASSWORD).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some((admin, schema)) = &self.pg_schema {
            if let Ok(mut c) = diesel::PgConnection::establish(admin) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// The id of the stage called `name` in a pipeline as the API shows it.
pub fn stage_id(pipeline: &Value, name: &str) -> String {
    pipeline["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {pipeline}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Creates a deal, which must succeed, and returns it.
pub async fn create_deal(app: &TestApp, s: &Session, body: Value) -> Value {
    let (st, v) = app.post("/api/v1/deals", &s.token, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

/// The fields a problem's `errors` name, sorted.
pub fn error_fields(problem: &Value) -> Vec<String> {
    let mut fields: Vec<String> = problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str().map(String::from))
        .collect();
    fields.sort();
    fields
}

/// A batch response's per-item statuses, in input order.
/// The `type` of each event of a page of `/events` or `/audit-log`, in order.
pub fn event_types(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

pub fn batch_statuses(batch: &Value) -> Vec<i64> {
    batch["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_i64().unwrap())
        .collect()
}
