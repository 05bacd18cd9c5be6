//! The columnar part of the digest: one node's week of daily rollups goes into a polars frame and
//! comes out as one row per (entity, metric) with its means, peaks, first/last and least-squares
//! slope. Kept apart so the rest of the digest never touches polars.

use polars::prelude::*;

use super::rollup::DayRollup;
use crate::error::{Error, Result};

fn polars_err(e: PolarsError) -> Error {
    Error::Runtime(format!("digest aggregation failed: {e}"))
}

/// One row per (entity, metric) of a node's week.
pub(super) struct Aggregate {
    pub entity: String,
    pub metric: String,
    pub mean: Option<f64>,
    pub max: Option<f64>,
    pub min: Option<f64>,
    pub first: Option<f64>,
    pub last: Option<f64>,
    pub slope_per_s: Option<f64>,
}

/// The aggregate of `entity`'s `metric`, when the week had readings of it.
pub(super) fn find<'a>(aggs: &'a [Aggregate], entity: &str, metric: &str) -> Option<&'a Aggregate> {
    aggs.iter()
        .find(|a| a.entity == entity && a.metric == metric)
}

/// Adds up one node's daily rollups with polars: one row per (entity, metric) and day goes in,
/// its sums moved to the week's origin (the first capture), and a group-by gives the week's
/// mean, extremes, first and last, and least-squares slope, exactly as from the readings.
pub(super) fn aggregate(days: &[DayRollup]) -> Result<Vec<Aggregate>> {
    let Some(t0) = days
        .iter()
        .flat_map(|d| d.captures.first())
        .map(|c| c.at)
        .next()
    else {
        return Ok(Vec::new());
    };
    let mut cols = DayColumns::default();
    for day in days {
        let shift = (day.day_start - t0) as f64;
        for ((entity, metric), s) in &day.series {
            if s.n == 0 {
                continue;
            }
            let n = s.n as f64;
            cols.entity.push(entity.clone());
            cols.metric.push(metric.clone());
            cols.n.push(n);
            cols.sy.push(s.sum_y);
            cols.sx.push(s.sum_x + n * shift);
            cols.sxx
                .push(s.sum_xx + 2.0 * shift * s.sum_x + n * shift * shift);
            cols.sxy.push(s.sum_xy + shift * s.sum_y);
            cols.min.push(s.min);
            cols.max.push(s.max);
            cols.first.push(s.first.1);
            cols.last.push(s.last.1);
        }
    }
    if cols.entity.is_empty() {
        return Ok(Vec::new());
    }
    let df = df!(
        "entity" => cols.entity,
        "metric" => cols.metric,
        "n" => cols.n,
        "sx" => cols.sx,
        "sy" => cols.sy,
        "sxx" => cols.sxx,
        "sxy" => cols.sxy,
        "min" => cols.min,
        "max" => cols.max,
        "first" => cols.first,
        "last" => cols.last,
    )
    .map_err(polars_err)?;
    let (n, sx, sy) = (col("n").sum(), col("sx").sum(), col("sy").sum());
    let (sxx, sxy) = (col("sxx").sum(), col("sxy").sum());
    // Within a group polars keeps the rows' order, the days': first and last are the week's.
    let out = df
        .lazy()
        .group_by_stable([col("entity"), col("metric")])
        .agg([
            (sy.clone() / n.clone()).alias("mean"),
            col("max").max().alias("max"),
            col("min").min().alias("min"),
            col("first").first().alias("first"),
            col("last").last().alias("last"),
            ((n.clone() * sxy - sx.clone() * sy) / (n * sxx - sx.clone() * sx)).alias("slope"),
        ])
        .collect()
        .map_err(polars_err)?;
    rows(&out)
}

/// Each (entity, metric) and day of a node's week, as columns.
#[derive(Default)]
struct DayColumns {
    entity: Vec<String>,
    metric: Vec<String>,
    n: Vec<f64>,
    sx: Vec<f64>,
    sy: Vec<f64>,
    sxx: Vec<f64>,
    sxy: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
    first: Vec<f64>,
    last: Vec<f64>,
}

/// The aggregated frame back as rows.
fn rows(out: &DataFrame) -> Result<Vec<Aggregate>> {
    let strs = |name: &str| -> Result<Vec<String>> {
        Ok(out
            .column(name)
            .map_err(polars_err)?
            .as_materialized_series()
            .str()
            .map_err(polars_err)?
            .iter()
            .map(|s| s.unwrap_or_default().to_string())
            .collect())
    };
    let nums = |name: &str| -> Result<Vec<Option<f64>>> {
        let s = out
            .column(name)
            .map_err(polars_err)?
            .as_materialized_series()
            .cast(&DataType::Float64)
            .map_err(polars_err)?;
        Ok(s.f64()
            .map_err(polars_err)?
            .iter()
            .map(|v| v.filter(|x| x.is_finite()))
            .collect())
    };
    let (entities, metrics) = (strs("entity")?, strs("metric")?);
    let (mean, max, min, first, last, slope) = (
        nums("mean")?,
        nums("max")?,
        nums("min")?,
        nums("first")?,
        nums("last")?,
        nums("slope")?,
    );
    Ok((0..entities.len())
        .map(|i| Aggregate {
            entity: entities[i].clone(),
            metric: metrics[i].clone(),
            mean: mean[i],
            max: max[i],
            min: min[i],
            first: first[i],
            last: last[i],
            slope_per_s: slope[i],
        })
        .collect())
}
