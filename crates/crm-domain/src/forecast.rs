//! Forecasting against quotas (DOMAIN.md §4): calendar periods, and the figures of a
//! period in exact decimal arithmetic.

use crate::deals::{round_money, weighted};
use crate::records::string_enum;
use chrono::{Datelike, Months, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};

string_enum! {
    /// The length of a quota or forecast period: a calendar month or quarter.
    PeriodKind {
        Month => "month",
        Quarter => "quarter",
    }
}

/// Longest range a forecast covers, in months.
pub const MAX_FORECAST_MONTHS: u32 = 24;

impl PeriodKind {
    fn months(&self) -> u32 {
        match self {
            PeriodKind::Month => 1,
            PeriodKind::Quarter => 3,
        }
    }

    /// The first day of the period holding `day`.
    pub fn start_of(&self, day: NaiveDate) -> NaiveDate {
        let m0 = day.month0() - day.month0() % self.months();
        NaiveDate::from_ymd_opt(day.year(), m0 + 1, 1).unwrap_or(day)
    }

    /// Whether `day` is the first day of a period of this kind.
    pub fn is_start(&self, day: NaiveDate) -> bool {
        self.start_of(day) == day
    }

    /// The last day of the period starting at `start`.
    pub fn end_of(&self, start: NaiveDate) -> NaiveDate {
        start
            .checked_add_months(Months::new(self.months()))
            .and_then(|d| d.pred_opt())
            .unwrap_or(start)
    }

    /// The starts of the periods that overlap `[from, to]`, in order.
    pub fn starts(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        let mut out = Vec::new();
        let mut s = self.start_of(from);
        while s <= to {
            out.push(s);
            match s.checked_add_months(Months::new(self.months())) {
                Some(next) => s = next,
                None => break,
            }
        }
        out
    }
}

/// The number of calendar months `[from, to]` touches (both ends count).
pub fn months_spanned(from: NaiveDate, to: NaiveDate) -> i64 {
    let a = i64::from(from.year()) * 12 + i64::from(from.month0());
    let b = i64::from(to.year()) * 12 + i64::from(to.month0());
    b - a + 1
}

/// The sums behind one period (and group) of a forecast, before rounding: amounts are
/// exact, so a weighted figure is rounded once, at the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub closed_won: Decimal,
    pub won_count: i64,
    pub lost_count: i64,
    pub open_total: Decimal,
    pub open_count: i64,
    /// Σ amount × probability (percent points), unrounded.
    pub open_weighted_points: Decimal,
    /// Σ of open amounts in stages of at least [`COMMIT_PROBABILITY`].
    pub commit_open: Decimal,
}

/// Open deals at or above this probability count towards `commit`.
pub const COMMIT_PROBABILITY: i32 = 75;

impl Tally {
    /// Adds the deals of one stage kind and probability: `count` deals summing to `total`.
    pub fn add(
        &mut self,
        kind: crate::deals::StageKind,
        probability: i32,
        count: i64,
        total: Decimal,
    ) {
        use crate::deals::StageKind;
        match kind {
            StageKind::Won => {
                self.won_count += count;
                self.closed_won += total;
            }
            StageKind::Lost => self.lost_count += count,
            StageKind::Open => {
                self.open_count += count;
                self.open_total += total;
                self.open_weighted_points += total * Decimal::from(probability);
                if probability >= COMMIT_PROBABILITY {
                    self.commit_open += total;
                }
            }
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.closed_won += other.closed_won;
        self.won_count += other.won_count;
        self.lost_count += other.lost_count;
        self.open_total += other.open_total;
        self.open_count += other.open_count;
        self.open_weighted_points += other.open_weighted_points;
        self.commit_open += other.commit_open;
    }

    /// Closed-won, at the currency's minor unit.
    pub fn closed_won(&self, currency: &str) -> Decimal {
        round_money(self.closed_won, currency)
    }

    /// Σ amount × probability / 100 over the open deals, rounded once.
    pub fn weighted_open(&self, currency: &str) -> Decimal {
        weighted(self.open_weighted_points, 1, currency)
    }

    /// Closed-won plus every open amount.
    pub fn best_case(&self, currency: &str) -> Decimal {
        round_money(self.closed_won + self.open_total, currency)
    }

    /// Closed-won plus the open amounts in stages of at least [`COMMIT_PROBABILITY`].
    pub fn commit(&self, currency: &str) -> Decimal {
        round_money(self.closed_won + self.commit_open, currency)
    }
}

/// Attainment: closed-won as a percentage of the quota, with two decimals, rounded half
/// away from zero (`"62.50"`); `None` for a zero quota.
pub fn attainment_percent(closed_won: Decimal, quota: Decimal) -> Option<Decimal> {
    if quota.is_zero() {
        return None;
    }
    let p = closed_won
        .checked_mul(Decimal::ONE_HUNDRED)?
        .checked_div(quota)?;
    let mut r = p.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(2);
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deals::StageKind;
    use std::str::FromStr;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap_or_default()
    }

    #[test]
    fn periods_are_calendar_months_and_quarters() {
        assert_eq!(
            PeriodKind::Quarter.start_of(d("2027-05-17")),
            d("2027-04-01")
        );
        assert_eq!(PeriodKind::Month.start_of(d("2027-05-17")), d("2027-05-01"));
        assert!(PeriodKind::Quarter.is_start(d("2027-10-01")));
        assert!(!PeriodKind::Quarter.is_start(d("2027-11-01")));
        assert!(!PeriodKind::Month.is_start(d("2027-11-02")));
        assert_eq!(PeriodKind::Quarter.end_of(d("2027-10-01")), d("2027-12-31"));
        assert_eq!(PeriodKind::Month.end_of(d("2028-02-01")), d("2028-02-29"));
        assert_eq!(
            PeriodKind::Quarter.starts(d("2027-02-15"), d("2027-07-01")),
            vec![d("2027-01-01"), d("2027-04-01"), d("2027-07-01")]
        );
        assert_eq!(months_spanned(d("2027-01-31"), d("2028-12-01")), 24);
        assert_eq!(months_spanned(d("2027-01-31"), d("2029-01-01")), 25);
    }

    #[test]
    fn weighted_open_rounds_once() {
        let mut t = Tally::default();
        // Three deals of 0.01 at 50 %: 0.015 → 0.02 (rounding each first would give 0.03).
        t.add(StageKind::Open, 50, 3, dec("0.03"));
        t.add(StageKind::Open, 10, 1, dec("100.05"));
        t.add(StageKind::Won, 100, 2, dec("250.5"));
        t.add(StageKind::Lost, 0, 4, dec("999"));
        assert_eq!(t.weighted_open("EUR").to_string(), "10.02");
        assert_eq!(t.closed_won("EUR").to_string(), "250.50");
        assert_eq!(t.best_case("EUR").to_string(), "350.58");
        assert_eq!(t.commit("EUR").to_string(), "250.50");
        assert_eq!((t.open_count, t.won_count, t.lost_count), (4, 2, 4));
        assert_eq!(t.weighted_open("JPY").to_string(), "10");
    }

    #[test]
    fn attainment_is_a_percentage_with_two_decimals() {
        assert_eq!(
            attainment_percent(dec("250"), dec("400")).map(|a| a.to_string()),
            Some("62.50".into())
        );
        assert_eq!(
            attainment_percent(dec("1"), dec("3")).map(|a| a.to_string()),
            Some("33.33".into())
        );
        assert_eq!(attainment_percent(dec("1"), Decimal::ZERO), None);
    }
}
