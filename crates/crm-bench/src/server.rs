//! The release server as a child process: start-up time to `/readyz`, resident memory.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Signs the benchmark's tokens; the server is reachable on loopback only.
pub const JWT_SECRET: &str = "crm-bench-secret-crm-bench-secret-0123456789";

pub struct Server {
    child: Child,
    /// From spawning the process to the first 200 from `/readyz`.
    pub ready_ms: f64,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn start(
        binary: &Path,
        database_url: &str,
        addr: SocketAddr,
        log: &Path,
    ) -> Result<Server> {
        let log = std::fs::File::create(log).with_context(|| format!("{}", log.display()))?;
        let started = Instant::now();
        let child = Command::new(binary)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("CRM_BIND", addr.to_string())
            .env("CRM_JWT_SECRET", JWT_SECRET)
            .env("CRM_LOG", "warn")
            // Long enough for a whole run on one login.
            .env("CRM_ACCESS_TOKEN_TTL", "86400")
            // The load comes from one caller: a budget it never reaches, so that the
            // limiter's cost is measured without its refusals.
            .env("CRM_RATE_LIMIT", "1000000000")
            .env("CRM_RATE_LIMIT_BULK", "1000000000")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Server {
            child,
            ready_ms: 0.0,
        };
        while started.elapsed() < Duration::from_secs(60) {
            if readyz(addr) {
                server.ready_ms = started.elapsed().as_secs_f64() * 1000.0;
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("the server exited during start-up ({status})");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        bail!("the server was not ready within 60 s")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One blocking `GET /readyz`; true on a 200.
fn readyz(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && &head[9..12] == b"200"
}

/// Resident set size of a process, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS missing from /proc")
}

/// Samples a process's RSS every 100 ms, keeping the highest and each sample in order.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    samples: Arc<std::sync::Mutex<Vec<u64>>>,
    handle: Option<JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicU64::new(0));
        let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, m, all) = (stop.clone(), max.clone(), samples.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(kib) = rss_kib(pid) {
                    m.fetch_max(kib, Ordering::Relaxed);
                    if let Ok(mut v) = all.lock() {
                        v.push(kib);
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        RssSampler {
            stop,
            max,
            samples,
            handle: Some(handle),
        }
    }

    /// Stops sampling and returns the highest RSS seen, in KiB.
    pub fn finish(self) -> u64 {
        self.finish_by_quarter().0
    }

    /// Stops sampling and returns the highest RSS seen and the highest in each quarter of
    /// the sampled time, in KiB: memory that stays flat shows four close figures.
    pub fn finish_by_quarter(mut self) -> (u64, [u64; 4]) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let samples = self.samples.lock().map(|v| v.clone()).unwrap_or_default();
        let mut quarters = [0u64; 4];
        for (i, kib) in samples.iter().enumerate() {
            let q = (i * 4 / samples.len().max(1)).min(3);
            quarters[q] = quarters[q].max(*kib);
        }
        (self.max.load(Ordering::Relaxed), quarters)
    }
}
