//! Webhook rules: which URLs may receive deliveries, the retry schedule, and which events a
//! subscription wants.

use std::net::IpAddr;

/// Most characters in a webhook URL.
pub const MAX_URL_CHARS: usize = 2048;

/// Seconds to wait before each retry after a failed attempt (Standard Webhooks' schedule:
/// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — 27 h 35 min in all, so a receiver that is
/// down for a day still gets everything).
pub const RETRY_SCHEDULE: [f64; 7] = [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0];

/// Parses a webhook URL: absolute `http` or `https` with a host, no credentials, at most
/// [`MAX_URL_CHARS`].
pub fn parse_url(raw: &str) -> Result<url::Url, &'static str> {
    if raw.chars().count() > MAX_URL_CHARS {
        return Err("at most 2048 characters");
    }
    let u = url::Url::parse(raw.trim()).map_err(|_| "is not an absolute URL")?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err("must be an http or https URL");
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("must name a host");
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("must not carry credentials");
    }
    Ok(u)
}

/// True for addresses a server must not be tricked into calling: loopback, private,
/// link-local, unique-local, carrier-grade NAT, unspecified, broadcast, multicast and
/// documentation ranges (and IPv4 mapped into IPv6).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || s[0] == 0x2001 && s[1] == 0x0db8
        }
    }
}

/// Whether an event type matches a subscription's patterns: `*` (everything),
/// `contact.*` (every verb of a record type) or an exact type.
pub fn type_matches(patterns: &[String], event_type: &str) -> bool {
    patterns.iter().any(|p| {
        p == "*"
            || p == event_type
            || p.strip_suffix(".*").is_some_and(|prefix| {
                event_type
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('.'))
            })
    })
}

/// Webhook filters are evaluated against the event's record by the filter language's own
/// evaluator.
pub use crate::filter::matches;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_http_urls_without_credentials() {
        assert!(parse_url("https://hooks.example.com/crm?x=1").is_ok());
        assert!(parse_url("ftp://example.com").is_err());
        assert!(parse_url("https://user:pw@example.com").is_err());
        assert!(parse_url("/relative").is_err());
        assert!(parse_url(&format!("https://e.com/{}", "a".repeat(2100))).is_err());
    }

    #[test]
    fn private_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                is_private(ip.parse().unwrap_or_else(|_| panic!("{ip}"))),
                "{ip}"
            );
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(
                !is_private(ip.parse().unwrap_or_else(|_| panic!("{ip}"))),
                "{ip}"
            );
        }
    }

    #[test]
    fn type_patterns() {
        let p = vec!["contact.*".to_string(), "company.created".to_string()];
        assert!(type_matches(&p, "contact.updated"));
        assert!(type_matches(&p, "company.created"));
        assert!(!type_matches(&p, "company.updated"));
        assert!(!type_matches(&p, "contactx.updated"));
        assert!(type_matches(&["*".to_string()], "deal.stage_changed"));
    }

    #[test]
    fn filters_evaluate_against_a_record() {
        let doc = json!({"lifecycle_stage": "mature", "tags": ["vip", "eu"], "address": {"city": "Lyon"}, "custom": {"score": 42}, "email": null});
        let f = |v: serde_json::Value| {
            crate::filter::parse(&v, "filter").unwrap_or_else(|e| panic!("{e:?}"))
        };
        assert!(matches(
            &f(json!({"field": "lifecycle_stage", "op": "eq", "value": "Mature"})),
            &doc
        ));
        assert!(matches(
            &f(json!({"field": "tags", "op": "contains", "value": "vip"})),
            &doc
        ));
        assert!(matches(
            &f(json!({"field": "address.city", "op": "starts_with", "value": "ly"})),
            &doc
        ));
        assert!(matches(
            &f(
                json!({"and": [{"field": "custom.score", "op": "gte", "value": 40}, {"field": "email", "op": "is_null", "value": true}]})
            ),
            &doc
        ));
        assert!(!matches(
            &f(
                json!({"not": {"field": "lifecycle_stage", "op": "in", "value": ["mature", "new"]}})
            ),
            &doc
        ));
        assert!(!matches(
            &f(json!({"field": "custom.score", "op": "lt", "value": 40})),
            &doc
        ));
    }
}
