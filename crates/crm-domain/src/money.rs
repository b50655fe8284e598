//! Money: rounding to a currency's minor unit, and quote totals in exact decimal
//! arithmetic.
//!
//! Amounts are [`Decimal`]s, never floats. A currency's minor unit comes from ISO 4217
//! (2 for EUR, 0 for JPY, 3 for KWD); codes without one (XAU, XDR) and codes the table does
//! not know round to 2 places. Rounding is half away from zero, the commercial rule
//! (0.005 → 0.01, −0.005 → −0.01).

use crate::FieldError;
use rust_decimal::{Decimal, RoundingStrategy};

/// The number of decimal places of a currency's minor unit.
pub fn minor_units(currency: &str) -> u32 {
    iso_currency::Currency::from_code(currency)
        .and_then(|c| c.exponent())
        .map_or(2, u32::from)
}

/// Rounds an amount to the currency's minor unit, half away from zero.
pub fn round(amount: Decimal, currency: &str) -> Decimal {
    amount.round_dp_with_strategy(
        minor_units(currency),
        RoundingStrategy::MidpointAwayFromZero,
    )
}

/// An amount shown at the currency's minor unit: `6` in EUR is `"6.00"`, in JPY `"6"`.
pub fn format(amount: Decimal, currency: &str) -> String {
    let mut a = round(amount, currency);
    a.rescale(minor_units(currency));
    a.to_string()
}

/// Parses an exact decimal string (as `values::normalize_decimal` accepts it).
pub fn parse(raw: &str) -> Result<Decimal, &'static str> {
    crate::values::normalize_decimal(raw)
        .and_then(|s| s.parse::<Decimal>().map_err(|_| "must be a decimal number"))
}

/// A price: an exact, non-negative decimal string, canonical (`"19.90"` → `"19.9"`).
pub fn normalize_price(raw: &str) -> Result<String, &'static str> {
    let d = parse(raw)?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err("must not be negative");
    }
    Ok(d.normalize().to_string())
}

/// A percentage such as a tax rate or a discount: an exact decimal string from 0 to 100.
pub fn normalize_percent(raw: &str) -> Result<String, &'static str> {
    let d = parse(raw)?;
    if (d.is_sign_negative() && !d.is_zero()) || d > Decimal::ONE_HUNDRED {
        return Err("must be a decimal string from \"0\" to \"100\"");
    }
    Ok(d.normalize().to_string())
}

/// `amount × percent / 100`, rounded to the currency's minor unit; `None` on overflow.
pub fn percent_of(amount: Decimal, percent: Decimal, currency: &str) -> Option<Decimal> {
    let product = amount
        .checked_mul(percent)?
        .checked_div(Decimal::ONE_HUNDRED)?;
    Some(round(product, currency))
}

/// One line of a quote as entered.
#[derive(Debug, Clone, PartialEq)]
pub struct LineInput {
    pub quantity: Decimal,
    pub unit_price: Decimal,
    /// 0 to 100.
    pub discount_percent: Decimal,
    /// 0 to 100.
    pub tax_rate: Decimal,
}

/// A line's amounts, each rounded to the currency's minor unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTotals {
    /// quantity × unit price.
    pub gross: Decimal,
    /// gross × discount percent.
    pub discount: Decimal,
    /// gross − discount.
    pub net: Decimal,
    /// net × tax rate.
    pub tax: Decimal,
    /// net + tax.
    pub total: Decimal,
}

/// A quote's amounts: the sums of its lines' rounded amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteTotals {
    pub lines: Vec<LineTotals>,
    /// Σ gross, before discounts.
    pub subtotal: Decimal,
    pub discount_total: Decimal,
    /// Tax on the discounted amounts.
    pub tax_total: Decimal,
    /// subtotal − discount_total + tax_total.
    pub total: Decimal,
}

fn check_percent(field: String, value: Decimal, errors: &mut Vec<FieldError>) {
    if value.is_sign_negative() || value > Decimal::ONE_HUNDRED {
        errors.push(FieldError::new(
            field,
            "out_of_range",
            "must be between 0 and 100",
        ));
    }
}

/// Checks a line's numbers; `path` is the line's field path (`lines[3]`).
pub fn check_line(path: &str, line: &LineInput) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if line.quantity <= Decimal::ZERO {
        errors.push(FieldError::new(
            format!("{path}.quantity"),
            "out_of_range",
            "must be greater than 0",
        ));
    }
    if line.unit_price.is_sign_negative() && !line.unit_price.is_zero() {
        errors.push(FieldError::new(
            format!("{path}.unit_price"),
            "out_of_range",
            "must not be negative",
        ));
    }
    check_percent(
        format!("{path}.discount_percent"),
        line.discount_percent,
        &mut errors,
    );
    check_percent(format!("{path}.tax_rate"), line.tax_rate, &mut errors);
    errors
}

fn line_totals(path: &str, line: &LineInput, currency: &str) -> Result<LineTotals, FieldError> {
    let overflow = || {
        FieldError::new(
            path.to_string(),
            "out_of_range",
            "the line's amount is too large",
        )
    };
    let gross = round(
        line.quantity
            .checked_mul(line.unit_price)
            .ok_or_else(overflow)?,
        currency,
    );
    let discount = percent_of(gross, line.discount_percent, currency).ok_or_else(overflow)?;
    let net = gross - discount;
    let tax = percent_of(net, line.tax_rate, currency).ok_or_else(overflow)?;
    let total = net.checked_add(tax).ok_or_else(overflow)?;
    Ok(LineTotals {
        gross,
        discount,
        net,
        tax,
        total,
    })
}

/// Computes a quote's totals, rounding each line to the currency's minor unit and
/// summing the rounded amounts, so the lines always add up to the totals shown.
/// Lines are expected to have passed [`check_line`]; an amount too large to represent
/// is reported against its line (`lines[i]`).
pub fn quote_totals(lines: &[LineInput], currency: &str) -> Result<QuoteTotals, FieldError> {
    let mut out = QuoteTotals {
        lines: Vec::with_capacity(lines.len()),
        subtotal: Decimal::ZERO,
        discount_total: Decimal::ZERO,
        tax_total: Decimal::ZERO,
        total: Decimal::ZERO,
    };
    for (i, line) in lines.iter().enumerate() {
        let path = format!("lines[{i}]");
        let t = line_totals(&path, line, currency)?;
        let too_large =
            || FieldError::new("lines", "out_of_range", "the quote's total is too large");
        out.subtotal = out.subtotal.checked_add(t.gross).ok_or_else(too_large)?;
        out.discount_total = out
            .discount_total
            .checked_add(t.discount)
            .ok_or_else(too_large)?;
        out.tax_total = out.tax_total.checked_add(t.tax).ok_or_else(too_large)?;
        out.total = out.total.checked_add(t.total).ok_or_else(too_large)?;
        out.lines.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn line(q: &str, p: &str, disc: &str, tax: &str) -> LineInput {
        LineInput {
            quantity: d(q),
            unit_price: d(p),
            discount_percent: d(disc),
            tax_rate: d(tax),
        }
    }

    #[test]
    fn minor_units_follow_iso_4217() {
        assert_eq!(minor_units("EUR"), 2);
        assert_eq!(minor_units("JPY"), 0);
        assert_eq!(minor_units("KWD"), 3);
        assert_eq!(minor_units("XAU"), 2, "no minor unit: 2 places");
        assert_eq!(minor_units("QQQ"), 2, "unknown code: 2 places");
    }

    #[test]
    fn rounding_is_half_away_from_zero_at_the_minor_unit() {
        assert_eq!(round(d("100.005"), "EUR"), d("100.01"));
        assert_eq!(round(d("100.004"), "EUR"), d("100.00"));
        assert_eq!(round(d("-0.005"), "EUR"), d("-0.01"));
        assert_eq!(round(d("1234.5"), "JPY"), d("1235"));
        assert_eq!(round(d("1.0005"), "KWD"), d("1.001"));
    }

    #[test]
    fn a_line_discounts_before_tax_and_rounds_each_step() {
        // 3 × 19.99 = 59.97; 10 % off = 5.997 → 6.00; net 53.97; 19 % tax = 10.2543 → 10.25.
        let t = quote_totals(&[line("3", "19.99", "10", "19")], "EUR").unwrap();
        assert_eq!(t.lines[0].gross, d("59.97"));
        assert_eq!(t.lines[0].discount, d("6.00"));
        assert_eq!(t.lines[0].net, d("53.97"));
        assert_eq!(t.lines[0].tax, d("10.25"));
        assert_eq!(t.lines[0].total, d("64.22"));
        assert_eq!(t.subtotal, d("59.97"));
        assert_eq!(t.discount_total, d("6.00"));
        assert_eq!(t.tax_total, d("10.25"));
        assert_eq!(t.total, d("64.22"));
    }

    #[test]
    fn totals_are_sums_of_rounded_lines() {
        // Each line's tax is 0.005 before rounding → 0.01; three lines → 0.03, where
        // rounding the sum once would give 0.02.
        let lines = vec![line("1", "0.05", "0", "10"); 3];
        let t = quote_totals(&lines, "EUR").unwrap();
        assert_eq!(t.tax_total, d("0.03"));
        assert_eq!(t.subtotal, d("0.15"));
        assert_eq!(t.total, d("0.18"));
        assert_eq!(
            t.total,
            t.lines.iter().map(|l| l.total).sum::<Decimal>(),
            "lines add up to the total"
        );
    }

    #[test]
    fn fractional_quantities_and_zero_decimal_currencies() {
        let t = quote_totals(&[line("2.5", "333", "0", "8")], "JPY").unwrap();
        assert_eq!(t.lines[0].gross, d("833")); // 832.5 → 833
        assert_eq!(t.lines[0].tax, d("67")); // 66.64 → 67
        assert_eq!(t.total, d("900"));
    }

    #[test]
    fn a_full_discount_leaves_nothing_to_tax() {
        let t = quote_totals(&[line("4", "12.50", "100", "20")], "EUR").unwrap();
        assert_eq!(t.subtotal, d("50.00"));
        assert_eq!(t.discount_total, d("50.00"));
        assert_eq!(t.tax_total, d("0.00"));
        assert_eq!(t.total, d("0.00"));
    }

    #[test]
    fn lines_are_checked_with_field_paths() {
        let errors = check_line("lines[2]", &line("0", "-1", "101", "-5"));
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "lines[2].quantity",
                "lines[2].unit_price",
                "lines[2].discount_percent",
                "lines[2].tax_rate"
            ]
        );
        assert!(check_line("lines[0]", &line("1", "0", "0", "0")).is_empty());
    }

    #[test]
    fn amounts_are_shown_at_the_minor_unit() {
        assert_eq!(format(d("6"), "EUR"), "6.00");
        assert_eq!(format(d("5.997"), "EUR"), "6.00");
        assert_eq!(format(d("833"), "JPY"), "833");
        assert_eq!(format(d("1.5"), "KWD"), "1.500");
    }

    #[test]
    fn prices_and_percentages_are_exact_and_bounded() {
        assert_eq!(normalize_price("19.90"), Ok("19.9".to_string()));
        assert_eq!(normalize_price("0"), Ok("0".to_string()));
        assert!(normalize_price("-1").is_err());
        assert!(normalize_price("1e3").is_err());
        assert_eq!(normalize_percent("7.70"), Ok("7.7".to_string()));
        assert_eq!(normalize_percent("100"), Ok("100".to_string()));
        assert!(normalize_percent("100.01").is_err());
        assert!(normalize_percent("-0.5").is_err());
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let huge = Decimal::MAX.to_string();
        let err = quote_totals(&[line(&huge, "10", "0", "0")], "EUR").unwrap_err();
        assert_eq!(err.field, "lines[0]");
        let err = quote_totals(
            &[line(&huge, "1", "0", "0"), line(&huge, "1", "0", "0")],
            "EUR",
        )
        .unwrap_err();
        assert_eq!(err.field, "lines");
    }
}
