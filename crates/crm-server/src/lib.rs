//! The `crm` server: configuration, start-up and the command line.

pub mod client;
pub mod housekeeping;
pub mod imports;
pub mod running_totals;
pub mod text_indexes;
pub mod webhooks;

use actix_web::{web, App, HttpServer};
use base64::Engine;
use clap::{Args, Parser, Subcommand};
use crm_api::{ApiConfig, AppState};
use crm_db::DatabaseUrl;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "crm",
    version,
    about = "A headless CRM: REST/JSON API on SQLite or PostgreSQL"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations and serve the API (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Import a CSV or NDJSON file into a running server, with a progress bar; exits 2 when
    /// some rows were refused (listed with their lines), 1 when the import failed.
    Import(client::ImportArgs),
    /// Create a workspace and its first admin (for scripted set-up).
    Init {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long, env = "CRM_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: String,
        #[arg(long, default_value = "Admin")]
        admin_name: String,
    },
}

/// Configuration, from flags or the environment.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// `sqlite://crm.db` or `postgres://user:pass@host/db`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://crm.db",
        global = true
    )]
    pub database_url: String,
    #[arg(
        long,
        env = "CRM_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,
    /// `development` allows running without CRM_JWT_SECRET.
    #[arg(long, env = "CRM_ENV", default_value = "production", global = true)]
    pub env: String,
    /// HMAC key for access tokens, at least 32 bytes. Required outside development.
    #[arg(long, env = "CRM_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,
    #[arg(long, env = "CRM_OPEN_SIGNUP", default_value_t = false, global = true)]
    pub open_signup: bool,
    /// Log filter, e.g. `info` or `crm_api=debug`.
    #[arg(long, env = "CRM_LOG", default_value = "info", global = true)]
    pub log: String,
    /// `text` or `json`.
    #[arg(long, env = "CRM_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
    /// Allow webhook URLs on loopback and private networks.
    #[arg(
        long,
        env = "CRM_WEBHOOK_ALLOW_PRIVATE",
        default_value_t = false,
        global = true
    )]
    pub webhook_allow_private: bool,
    /// Largest JSON body accepted, in bytes.
    #[arg(
        long,
        env = "CRM_MAX_BODY_BYTES",
        default_value_t = 1_048_576,
        global = true
    )]
    pub max_body_bytes: usize,
    /// Access-token lifetime in seconds.
    #[arg(
        long,
        env = "CRM_ACCESS_TOKEN_TTL",
        default_value_t = 900,
        global = true
    )]
    pub access_token_ttl: i64,
    /// Refresh-token lifetime in seconds.
    #[arg(
        long,
        env = "CRM_REFRESH_TOKEN_TTL",
        default_value_t = 2_592_000,
        global = true
    )]
    pub refresh_token_ttl: i64,
    /// Database connections (default: 16 on PostgreSQL, 8 on SQLite).
    #[arg(long, env = "CRM_DB_POOL_SIZE", global = true)]
    pub db_pool_size: Option<u32>,
    /// Page cache of each SQLite connection, in KiB (the pool holds up to pool size × this).
    #[arg(
        long,
        env = "CRM_SQLITE_CACHE_KIB",
        default_value_t = crm_db::conn::DEFAULT_SQLITE_CACHE_KIB,
        global = true,
        value_parser = clap::value_parser!(u32).range(64..=4_194_304)
    )]
    pub sqlite_cache_kib: u32,
    /// Seconds a server trusts what it last read about a user's active flag and role or an
    /// API key's validity; changes made through another server process apply within this
    /// time (through this one, at once). 0 checks the database on every request.
    #[arg(long, env = "CRM_AUTH_CACHE_TTL", default_value_t = 5, global = true)]
    pub auth_cache_ttl: u64,
    /// Requests per minute each user and each API key may make (0: no limit). Past it the
    /// API answers 429 with `Retry-After`; every response carries `RateLimit-*` headers.
    #[arg(long, env = "CRM_RATE_LIMIT", default_value_t = 6000, global = true)]
    pub rate_limit: u32,
    /// Bulk requests (batches, imports) per minute each user and each API key may make,
    /// counted apart from the others (0: no limit).
    #[arg(
        long,
        env = "CRM_RATE_LIMIT_BULK",
        default_value_t = 120,
        global = true
    )]
    pub rate_limit_bulk: u32,
    /// Failed password sign-ins in a row after which an account's password sign-in is
    /// refused for a while (429 with `Retry-After`; 0: never).
    #[arg(
        long,
        env = "CRM_SIGN_IN_MAX_FAILURES",
        default_value_t = 10,
        global = true
    )]
    pub sign_in_max_failures: u32,
    /// Seconds the first lock lasts; each further failed sign-in after it doubles it, up to
    /// an hour.
    #[arg(
        long,
        env = "CRM_SIGN_IN_LOCK_SECS",
        default_value_t = 300,
        global = true
    )]
    pub sign_in_lock_secs: u64,
    /// When set, `GET /metrics` answers only requests carrying
    /// `Authorization: Bearer <this token>` (401 otherwise); unset, it is open, for a
    /// scraper on a private network.
    #[arg(long, env = "CRM_METRICS_TOKEN", global = true, hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "CRM_WORKERS", global = true)]
    pub workers: Option<usize>,
    /// On SIGTERM or SIGINT, seconds to let in-flight requests finish before closing.
    #[arg(
        long,
        env = "CRM_SHUTDOWN_TIMEOUT",
        default_value_t = 30,
        global = true
    )]
    pub shutdown_timeout: u64,
    /// Seconds before each webhook retry, comma-separated; a delivery fails for good after
    /// the last (the default spans 27 h 35 min).
    #[arg(
        long,
        env = "CRM_WEBHOOK_RETRY_SCHEDULE",
        default_value = "5,300,1800,7200,18000,36000,36000",
        global = true
    )]
    pub webhook_retry_schedule: String,
    /// How often the webhook worker looks for new events and due deliveries, in ms.
    #[arg(
        long,
        env = "CRM_WEBHOOK_POLL_MS",
        default_value_t = 500,
        global = true
    )]
    pub webhook_poll_ms: u64,
    /// Rows an export reads per database query (a tuning and testing knob).
    #[arg(
        long,
        env = "CRM_EXPORT_PAGE_SIZE",
        default_value_t = 2000,
        global = true,
        hide = true,
        value_parser = clap::value_parser!(i64).range(1..=100_000)
    )]
    pub export_page_size: i64,
    /// Largest file an import accepts, in bytes.
    #[arg(
        long,
        env = "CRM_IMPORT_MAX_BYTES",
        default_value_t = 10 * 1024 * 1024 * 1024,
        global = true
    )]
    pub import_max_bytes: u64,
    /// Rows an import writes per batch (and transaction).
    #[arg(
        long,
        env = "CRM_IMPORT_BATCH_ROWS",
        default_value_t = 1000,
        global = true,
        value_parser = clap::value_parser!(u64).range(1..=1000)
    )]
    pub import_batch_rows: u64,
    /// Seconds an import worker's claim on a job lasts without progress; after a crash,
    /// another process (or the restarted one) resumes the job once it lapses.
    #[arg(
        long,
        env = "CRM_IMPORT_LEASE_SECS",
        default_value_t = 60,
        global = true,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub import_lease_secs: u64,
    /// Turns in a row an import may end in an error at the same place (the database
    /// unreachable, say) before it ends `failed`; each is retried after a pause that doubles.
    #[arg(
        long,
        env = "CRM_IMPORT_MAX_ATTEMPTS",
        default_value_t = 8,
        global = true,
        value_parser = clap::value_parser!(u32).range(1..=1000)
    )]
    pub import_max_attempts: u32,
    /// Seconds after which an upload that stopped arriving (the server stopped while
    /// receiving it) is removed with what it stored.
    #[arg(
        long,
        env = "CRM_IMPORT_ABANDON_SECS",
        default_value_t = 3600,
        global = true,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub import_abandon_secs: u64,
    /// How often an idle import worker looks for queued jobs, in ms.
    #[arg(long, env = "CRM_IMPORT_POLL_MS", default_value_t = 500, global = true)]
    pub import_poll_ms: u64,
    /// Seconds between housekeeping sweeps (expired idempotency keys, old deliveries and
    /// events).
    #[arg(
        long,
        env = "CRM_HOUSEKEEPING_SECS",
        default_value_t = 600,
        global = true,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub housekeeping_secs: u64,
    /// Days finished webhook deliveries and their attempts are kept (0: for ever).
    #[arg(
        long,
        env = "CRM_DELIVERY_RETENTION_DAYS",
        default_value_t = 30,
        global = true
    )]
    pub delivery_retention_days: u64,
    /// Days events (the change feed and audit log) are kept (0, the default: for ever).
    /// Events a webhook has yet to deliver, or a stored delivery names, are kept anyway.
    #[arg(
        long,
        env = "CRM_EVENT_RETENTION_DAYS",
        default_value_t = 0,
        global = true
    )]
    pub event_retention_days: u64,
    /// On PostgreSQL, ms between two flushes of the free-text indexes' pending entries into
    /// the indexes, done in the background so that no write stalls doing it (0: leave it to
    /// PostgreSQL, which does it inside the write that fills the list, and in autovacuum).
    #[arg(
        long,
        env = "CRM_TEXT_INDEX_FLUSH_MS",
        default_value_t = 250,
        global = true
    )]
    pub text_index_flush_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(String),
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
}

impl Settings {
    /// The API's settings; a missing secret is an error unless in development, where a
    /// random one is made for this run (tokens then end with the process).
    pub fn api_config(&self) -> Result<ApiConfig, StartError> {
        let secret = match &self.jwt_secret {
            Some(s) if s.len() >= 32 => s.as_bytes().to_vec(),
            Some(_) => {
                return Err(StartError::Config(
                    "CRM_JWT_SECRET must be at least 32 bytes".into(),
                ))
            }
            None if self.env == "development" => {
                tracing::warn!(
                    "CRM_JWT_SECRET is not set: using a random key for this run (development only)"
                );
                let mut b = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
                base64::engine::general_purpose::STANDARD
                    .encode(b)
                    .into_bytes()
            }
            None => {
                return Err(StartError::Config(
                    "CRM_JWT_SECRET is required (or set CRM_ENV=development)".into(),
                ))
            }
        };
        if self.access_token_ttl < 10 || self.refresh_token_ttl < 60 {
            return Err(StartError::Config("token lifetimes are too short".into()));
        }
        Ok(ApiConfig {
            jwt_secret: secret,
            access_token_ttl_secs: self.access_token_ttl,
            refresh_token_ttl_secs: self.refresh_token_ttl,
            open_signup: self.open_signup,
            max_body_bytes: self.max_body_bytes,
            webhook_allow_private: self.webhook_allow_private,
            auth_cache_ttl: std::time::Duration::from_secs(self.auth_cache_ttl),
            rate_limits: crm_api::ratelimit::Limits {
                per_window: self.rate_limit,
                bulk_per_window: self.rate_limit_bulk,
            },
            export_page_size: self.export_page_size,
            import_max_bytes: self.import_max_bytes,
            sign_in_lockout: crm_domain::sign_in::LockoutPolicy {
                max_failures: self.sign_in_max_failures,
                lock_secs: self.sign_in_lock_secs,
            },
            metrics_token: self.metrics_token.clone().filter(|t| !t.is_empty()),
        })
    }

    pub fn worker_settings(&self) -> Result<webhooks::WorkerSettings, StartError> {
        let retry_schedule = self
            .webhook_retry_schedule
            .split(',')
            .map(|s| {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
            })
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| {
                StartError::Config(
                    "CRM_WEBHOOK_RETRY_SCHEDULE must list seconds, e.g. 5,300,1800".into(),
                )
            })?;
        Ok(webhooks::WorkerSettings {
            allow_private: self.webhook_allow_private,
            retry_schedule,
            poll: std::time::Duration::from_millis(self.webhook_poll_ms.max(10)),
        })
    }

    pub fn import_settings(&self) -> imports::ImportSettings {
        imports::ImportSettings {
            job: crm_api::imports::JobSettings {
                batch_rows: self.import_batch_rows as usize,
                lease: std::time::Duration::from_secs(self.import_lease_secs),
                max_attempts: self.import_max_attempts,
            },
            poll: std::time::Duration::from_millis(self.import_poll_ms.max(10)),
            abandon: std::time::Duration::from_secs(self.import_abandon_secs),
        }
    }

    pub fn retention(&self) -> housekeeping::Retention {
        let days = |d: u64| (d > 0).then(|| std::time::Duration::from_secs(d * 86_400));
        housekeeping::Retention {
            every: std::time::Duration::from_secs(self.housekeeping_secs),
            deliveries: days(self.delivery_retention_days),
            events: days(self.event_retention_days),
        }
    }

    /// Starts the background workers: webhook delivery, imports, housekeeping and, on
    /// PostgreSQL, the text-index flush and the running totals' vacuum.
    pub fn spawn_workers(&self, pool: &crm_db::Pool) -> Result<Background, StartError> {
        let webhooks = webhooks::spawn(pool.clone(), self.worker_settings()?)
            .map_err(|e| StartError::Config(e.to_string()))?;
        let imports = imports::spawn(pool.clone(), self.import_settings());
        let housekeeping = housekeeping::spawn(pool.clone(), self.retention());
        let postgres = matches!(self.database()?, DatabaseUrl::Postgres(_));
        let text_indexes = (postgres && self.text_index_flush_ms > 0).then(|| {
            text_indexes::spawn(
                pool.clone(),
                std::time::Duration::from_millis(self.text_index_flush_ms),
            )
        });
        let running_totals = postgres.then(|| running_totals::spawn(pool.clone()));
        Ok(Background {
            webhooks,
            imports,
            housekeeping,
            text_indexes,
            running_totals,
        })
    }

    pub fn database(&self) -> Result<DatabaseUrl, StartError> {
        DatabaseUrl::parse(&self.database_url).map_err(|e| StartError::Config(e.to_string()))
    }
}

/// The background workers; `shutdown` lets each finish what it is doing (an import gives
/// its job back at its last checkpoint).
pub struct Background {
    webhooks: webhooks::Workers,
    imports: imports::Worker,
    housekeeping: housekeeping::Worker,
    text_indexes: Option<housekeeping::Worker>,
    running_totals: Option<housekeeping::Worker>,
}

impl Background {
    pub async fn shutdown(self) {
        self.imports.shutdown().await;
        self.webhooks.shutdown().await;
        self.housekeeping.shutdown().await;
        for w in [self.text_indexes, self.running_totals]
            .into_iter()
            .flatten()
        {
            w.shutdown().await;
        }
    }
}

/// Opens the pool and applies pending migrations.
pub fn open_database(settings: &Settings) -> Result<crm_db::Pool, StartError> {
    let url = settings.database()?;
    let size = settings.db_pool_size.unwrap_or(match url {
        DatabaseUrl::Postgres(_) => 16,
        DatabaseUrl::Sqlite(_) => 8,
    });
    let manager = crm_db::conn::Manager::new(url).sqlite_cache_kib(settings.sqlite_cache_kib);
    let pool =
        crm_db::build_pool(manager, size).map_err(|e| StartError::Database(e.to_string()))?;
    let mut conn = pool
        .get()
        .map_err(|e| StartError::Database(e.to_string()))?;
    let applied =
        crm_db::run_migrations(&mut conn).map_err(|e| StartError::Database(e.to_string()))?;
    for m in applied {
        tracing::info!(migration = %m, "applied migration");
    }
    Ok(pool)
}

/// Binds and returns the running server (not yet awaited) and its address.
pub fn start(
    settings: &Settings,
    pool: crm_db::Pool,
) -> Result<(actix_web::dev::Server, SocketAddr), StartError> {
    let config = Arc::new(settings.api_config()?);
    let state = AppState::new(pool, config);
    let listener = TcpListener::bind(&settings.bind)?;
    let addr = listener.local_addr()?;
    let max_body = settings.max_body_bytes;
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(
                crm_api::observe::request_context,
            ))
            .app_data(web::PayloadConfig::new(max_body))
            .configure(crm_api::configure(state.clone()))
    })
    .shutdown_timeout(settings.shutdown_timeout)
    .listen(listener)?;
    if let Some(w) = settings.workers {
        server = server.workers(w.max(1));
    }
    Ok((server.run(), addr))
}

pub fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs a parsed command line (everything but `openapi`, which `main` prints before
/// logging starts, and `import`, a client that `main` runs without the server's logging).
pub fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let settings = cli.settings;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi | Command::Import(_) => Ok(()),
        Command::Migrate => {
            open_database(&settings)?;
            tracing::info!("migrations are up to date");
            Ok(())
        }
        Command::Init {
            workspace,
            admin_email,
            admin_password,
            admin_name,
        } => {
            let pool = open_database(&settings)?;
            let id = crm_api::routes::access::init_workspace(
                &pool,
                &workspace,
                &admin_email,
                &admin_password,
                &admin_name,
            )?;
            println!("{id}");
            Ok(())
        }
        Command::Serve => {
            let started = std::time::Instant::now();
            let pool = open_database(&settings)?;
            actix_web::rt::System::new().block_on(async move {
                let workers = settings.spawn_workers(&pool)?;
                let (server, addr) = start(&settings, pool)?;
                tracing::info!(%addr, database = %crm_db::conn::redact(&settings.database_url), ready_ms = started.elapsed().as_millis() as u64, "listening");
                server.await?;
                workers.shutdown().await;
                tracing::info!(
                    "stopped: in-flight requests, the webhook round and the import batch have finished"
                );
                Ok(())
            })
        }
    }
}
