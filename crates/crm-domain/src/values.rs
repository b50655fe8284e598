//! Value types and normalisation rules shared by every resource.

use rust_decimal::Decimal;
use std::str::FromStr;
use std::sync::OnceLock;

fn email_re() -> Option<&'static regex::Regex> {
    static RE: OnceLock<Option<regex::Regex>> = OnceLock::new();
    // Pragmatic address check (WHATWG's `valid e-mail address`), not full RFC 5322.
    RE.get_or_init(|| {
        regex::Regex::new(
            r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+$",
        )
        .ok()
    })
    .as_ref()
}

/// Trims and lower-cases an e-mail address, or says why it is not one.
pub fn normalize_email(raw: &str) -> Result<String, &'static str> {
    let s = raw.trim();
    if s.len() > 254 {
        return Err("must be at most 254 characters");
    }
    if !email_re().is_some_and(|re| re.is_match(s)) {
        return Err("is not a valid e-mail address");
    }
    Ok(s.to_lowercase())
}

/// A phone number as people type it: digits with an optional leading `+` and the usual
/// separators. Kept as given (trimmed); `phone_digits` gives the comparable form.
pub fn normalize_phone(raw: &str) -> Result<String, &'static str> {
    let s = raw.trim();
    if s.len() > 40 {
        return Err("must be at most 40 characters");
    }
    let digits = phone_digits(s);
    if digits.len() < 3 || digits.len() > 20 {
        return Err("must contain between 3 and 20 digits");
    }
    let ok = s.chars().enumerate().all(|(i, c)| {
        c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')' | '/') || (c == '+' && i == 0)
    });
    if !ok {
        return Err("may contain only digits, a leading +, spaces and - . ( ) /");
    }
    Ok(s.to_string())
}

pub fn phone_digits(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_digit()).collect()
}

/// An exact decimal amount as a canonical string ("1234.5" stays "1234.5").
pub fn normalize_decimal(raw: &str) -> Result<String, &'static str> {
    let plain = raw.trim();
    if raw.chars().count() > 40 {
        return Err("must be at most 40 characters long");
    }
    if plain.contains(['e', 'E']) {
        return Err("must be a plain decimal number (no exponent), like \"1234.50\"");
    }
    let d = Decimal::from_str(plain)
        .map_err(|_| "must be a decimal number written as a string, like \"1234.50\"")?;
    if d.scale() > 8 {
        return Err("may have at most 8 decimal places");
    }
    Ok(d.normalize().to_string())
}

/// Three upper-case letters (ISO 4217).
pub fn normalize_currency(raw: &str) -> Result<String, &'static str> {
    let s = raw.trim().to_ascii_uppercase();
    if s.len() == 3 && s.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(s)
    } else {
        Err("must be an ISO 4217 currency code like \"EUR\"")
    }
}

/// Two upper-case letters (ISO 3166-1 alpha-2).
pub fn normalize_country(raw: &str) -> Result<String, &'static str> {
    let s = raw.trim().to_ascii_uppercase();
    if s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(s)
    } else {
        Err("must be an ISO 3166-1 alpha-2 country code like \"DE\"")
    }
}

/// A bare host name such as `example.com` (scheme, path and `www.` are removed).
pub fn normalize_domain(raw: &str) -> Result<String, &'static str> {
    let mut s = raw.trim().to_ascii_lowercase();
    for prefix in ["https://", "http://"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest.to_string();
        }
    }
    if let Some(i) = s.find('/') {
        s.truncate(i);
    }
    if let Some(rest) = s.strip_prefix("www.") {
        s = rest.to_string();
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if s.len() <= 253 && s.contains('.') && s.split('.').all(label_ok) {
        Ok(s)
    } else {
        Err("must be a domain name like \"example.com\"")
    }
}

/// Tags: trimmed, non-empty, at most 50 of at most 64 characters each, de-duplicated in order.
pub fn normalize_tags(raw: &[String]) -> Result<Vec<String>, &'static str> {
    if raw.len() > 50 {
        return Err("may hold at most 50 tags");
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for t in raw {
        let t = t.trim();
        if t.is_empty() || t.chars().count() > 64 {
            return Err("each tag must have 1 to 64 characters");
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email(" Ada@Example.COM ").as_deref(),
            Ok("ada@example.com")
        );
        assert!(normalize_email("ada").is_err());
        assert!(normalize_email("ada@localhost").is_err());
        assert!(normalize_email("a'; DROP TABLE contacts;--@x.io").is_err());
    }

    #[test]
    fn decimals_are_exact_strings() {
        assert_eq!(normalize_decimal("1234.50").as_deref(), Ok("1234.5"));
        assert_eq!(normalize_decimal("0.1").as_deref(), Ok("0.1"));
        assert!(normalize_decimal("1e3x").is_err());
        assert!(normalize_decimal("1e3").is_err(), "no exponents");
        assert!(
            normalize_decimal(&"0".repeat(41)).is_err(),
            "at most 40 characters"
        );
        assert_eq!(normalize_decimal(&"0".repeat(40)).as_deref(), Ok("0"));
        assert!(normalize_decimal("1.123456789").is_err());
    }

    #[test]
    fn phones_and_domains() {
        assert!(normalize_phone("+49 (30) 1234-567").is_ok());
        assert!(normalize_phone("12+3").is_err());
        assert_eq!(
            normalize_domain("https://www.Example.com/about").as_deref(),
            Ok("example.com")
        );
        assert!(normalize_domain("not a domain").is_err());
    }

    #[test]
    fn tags_dedupe() {
        let t = normalize_tags(&["a".into(), " a ".into(), "b".into()]);
        assert_eq!(t, Ok(vec!["a".to_string(), "b".to_string()]));
        assert!(normalize_tags(&["".into()]).is_err());
    }
}
