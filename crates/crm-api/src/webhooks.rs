//! What the webhook routes and the delivery worker share: secrets, signatures (Standard
//! Webhooks) and the check that a destination is not on a private network.

use base64::Engine;
use crm_domain::webhook::is_private;
use rand::RngCore;

/// The prefix of a signing secret: `whsec_<base64 of the key>`.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret with a 32-byte key.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// A caller-chosen secret must be `whsec_` and base64 of a 24- to 64-byte key.
pub fn valid_secret(s: &str) -> bool {
    s.strip_prefix(SECRET_PREFIX)
        .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
        .is_some_and(|k| (24..=64).contains(&k.len()))
}

/// The `webhook-signature` header value for one message (`v1,<base64 HMAC-SHA256>`).
pub fn signature(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, String> {
    let wh = standardwebhooks::Webhook::new(secret).map_err(|e| e.to_string())?;
    wh.sign(msg_id, timestamp, body).map_err(|e| e.to_string())
}

/// Refuses a destination whose host is, or resolves to, a loopback or private address
/// (unless the server allows them). Checked when a subscription is saved and again before
/// every attempt, since DNS can change in between.
pub async fn check_destination(url: &url::Url, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(443);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return if is_private(ip) {
            Err(format!("{ip} is a loopback or private address"))
        } else {
            Ok(())
        };
    }
    if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
        return Err("localhost is a loopback address".into());
    }
    let addrs = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| format!("the host `{host}` does not resolve: {e}"))?;
    for a in addrs {
        if is_private(a.ip()) {
            return Err(format!(
                "`{host}` resolves to {}, a loopback or private address",
                a.ip()
            ));
        }
    }
    Ok(())
}
