//! Running totals kept as append-only delta rows (`deal_board_deltas`,
//! `deal_forecast_deltas`): folding the rows a `DELETE … RETURNING` took into one per cell.

use crate::conn::DbConnection;
use crate::query::{Bind, SqlBuf};
use std::collections::BTreeMap;

/// One cell's sums: the count and the amount in millionths.
pub type Sums = (i64, i128);

/// Sums deleted delta rows per cell (`(key, count, micros as decimal text)`), leaving out
/// the cells that came to nothing.
pub fn fold<K: Ord>(
    rows: impl IntoIterator<Item = (K, i64, String)>,
) -> diesel::QueryResult<Vec<(K, Sums)>> {
    let mut folded: BTreeMap<K, Sums> = BTreeMap::new();
    for (key, count, micros) in rows {
        let micros: i128 = micros
            .parse()
            .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
        let cell = folded.entry(key).or_default();
        cell.0 += count;
        cell.1 += micros;
    }
    Ok(folded
        .into_iter()
        .filter(|(_, (n, m))| *n != 0 || *m != 0)
        .collect())
}

/// Writes folded cells back, many per statement: `insert` is the statement up to `VALUES`;
/// each row is `before(key, count)`, the amount as a NUMERIC, then `after`.
pub fn insert<K>(
    conn: &mut DbConnection,
    insert: &str,
    cells: &[(K, Sums)],
    before: impl Fn(&K, i64) -> Vec<Bind>,
    after: &[Bind],
) -> diesel::QueryResult<()> {
    for chunk in cells.chunks(super::bulk::ROWS_PER_STATEMENT) {
        let mut b = SqlBuf::new(conn.dialect());
        b.push(insert);
        for (i, (key, (n, m))) in chunk.iter().enumerate() {
            b.push(if i == 0 { "(" } else { ", (" });
            b.bind_list(before(key, *n));
            b.push(", CAST(");
            b.bind(Bind::Text(m.to_string()));
            b.push(" AS NUMERIC)");
            for v in after {
                b.push(", ");
                b.bind(v.clone());
            }
            b.push(")");
        }
        b.execute(conn)?;
    }
    Ok(())
}
