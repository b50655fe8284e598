//! Deals and pipelines (DOMAIN.md §4): stage kinds, the default sales pipeline, exact
//! amounts and the weighted pipeline.

use crate::records::string_enum;
use rust_decimal::{Decimal, RoundingStrategy};
use std::str::FromStr;

string_enum! {
    /// What reaching a stage means for a deal: still `open`, or closed as `won` or `lost`.
    StageKind {
        Open => "open",
        Won => "won",
        Lost => "lost",
    }
}

impl StageKind {
    pub fn is_closed(&self) -> bool {
        !matches!(self, StageKind::Open)
    }
}

/// The stages of the sales pipeline every workspace starts with: (name, probability, kind).
pub const DEFAULT_STAGES: &[(&str, i32, StageKind)] = &[
    ("Qualification", 10, StageKind::Open),
    ("Needs analysis", 25, StageKind::Open),
    ("Proposal", 50, StageKind::Open),
    ("Negotiation", 75, StageKind::Open),
    ("Won", 100, StageKind::Won),
    ("Lost", 0, StageKind::Lost),
];

pub const DEFAULT_PIPELINE_NAME: &str = "Sales";

/// Most decimal places a deal amount may have.
pub const AMOUNT_SCALE: u32 = 6;

/// A deal amount: non-negative, at most [`AMOUNT_SCALE`] decimal places and below 10^12,
/// as its canonical string and as an integer count of millionths. Sums of the integer form
/// are exact on both databases (SQLite has no exact decimal type).
pub fn parse_amount(raw: &str) -> Result<(String, i64), &'static str> {
    let d = Decimal::from_str(raw.trim())
        .map_err(|_| "must be a decimal number written as a string, like \"1234.50\"")?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err("must not be negative");
    }
    if d.scale() > AMOUNT_SCALE {
        return Err("may have at most 6 decimal places");
    }
    if d >= Decimal::from(1_000_000_000_000i64) {
        return Err("must be below 1000000000000");
    }
    let scaled = d * Decimal::from(1_000_000i64);
    let scaled = i64::try_from(scaled.trunc()).map_err(|_| "is out of range")?;
    Ok((d.normalize().to_string(), scaled))
}

/// A sum of amounts in millionths (as the database returns it) back to a decimal.
pub fn from_scaled(sum: &str) -> Option<Decimal> {
    let n = Decimal::from_str(sum.trim()).ok()?;
    Some(n / Decimal::from(1_000_000i64))
}

/// The number of decimal places of a currency's minor unit (ISO 4217); 2 for the many
/// currencies with cents and for codes not listed.
pub fn minor_units(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// Rounds an amount to the currency's minor unit, halves away from zero.
pub fn round_money(amount: Decimal, currency: &str) -> Decimal {
    let dp = minor_units(currency);
    let mut r = amount.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(dp);
    r
}

/// The weighted value of `total` at `probability` percent, rounded to the minor unit.
pub fn weighted(total: Decimal, probability: i32, currency: &str) -> Decimal {
    round_money(
        total * Decimal::from(probability) / Decimal::from(100),
        currency,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_and_bounded() {
        assert_eq!(parse_amount("100.005"), Ok(("100.005".into(), 100_005_000)));
        assert_eq!(parse_amount(" 12.50 ").map(|a| a.0), Ok("12.5".into()));
        assert!(parse_amount("-1").is_err());
        assert!(parse_amount("1.0000001").is_err());
        assert!(parse_amount("1000000000000").is_err());
        assert!(parse_amount("abc").is_err());
        assert_eq!(parse_amount("0").map(|a| a.1), Ok(0));
    }

    #[test]
    fn weighted_sums_round_once_to_the_minor_unit() {
        let total = from_scaled("300015000").unwrap_or_default();
        assert_eq!(total.to_string(), "300.015");
        // 150.0075 → 150.01; rounding each deal first would give 150.00.
        assert_eq!(weighted(total, 50, "EUR").to_string(), "150.01");
        assert_eq!(weighted(total, 50, "JPY").to_string(), "150");
        assert_eq!(weighted(total, 50, "KWD").to_string(), "150.008");
        assert_eq!(round_money(Decimal::from(7), "EUR").to_string(), "7.00");
    }

    #[test]
    fn default_pipeline_has_one_won_and_one_lost_stage() {
        let won = DEFAULT_STAGES
            .iter()
            .filter(|s| s.2 == StageKind::Won)
            .count();
        let lost = DEFAULT_STAGES
            .iter()
            .filter(|s| s.2 == StageKind::Lost)
            .count();
        assert_eq!((won, lost), (1, 1));
        assert_eq!(DEFAULT_STAGES[0].2, StageKind::Open);
    }
}
