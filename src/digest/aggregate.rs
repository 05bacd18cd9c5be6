//! The columnar part of the digest: one node's week of readings goes into a polars frame and
//! comes out as one row per (entity, metric) with its means, peaks, first/last and least-squares
//! slope. Kept apart so the rest of the digest never touches polars.

use polars::prelude::*;

use crate::error::{Error, Result};

fn polars_err(e: PolarsError) -> Error {
    Error::Runtime(format!("digest aggregation failed: {e}"))
}

/// A node's readings of the week as columns, one row per reading.
#[derive(Default)]
pub(super) struct Columns {
    pub at: Vec<i64>,
    pub entity: Vec<String>,
    pub metric: Vec<String>,
    pub value: Vec<f64>,
}

impl Columns {
    pub fn push(&mut self, at: i64, entity: String, metric: String, value: f64) {
        self.at.push(at);
        self.entity.push(entity);
        self.metric.push(metric);
        self.value.push(value);
    }
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

/// Aggregates one node's readings with polars.
pub(super) fn aggregate(columns: Columns) -> Result<Vec<Aggregate>> {
    let Columns {
        at,
        entity,
        metric,
        value,
    } = columns;
    if at.is_empty() {
        return Ok(Vec::new());
    }
    let t0 = at[0];
    let x: Vec<f64> = at.iter().map(|t| (t - t0) as f64).collect();
    let df = df!(
        "entity" => entity,
        "metric" => metric,
        "x" => x,
        "y" => value,
    )
    .map_err(polars_err)?;
    let n = col("y").count().cast(DataType::Float64);
    let sx = col("x").sum();
    let sy = col("y").sum();
    let sxx = (col("x") * col("x")).sum();
    let sxy = (col("x") * col("y")).sum();
    let out = df
        .lazy()
        .group_by([col("entity"), col("metric")])
        .agg([
            col("y").mean().alias("mean"),
            col("y").max().alias("max"),
            col("y").min().alias("min"),
            col("y").first().alias("first"),
            col("y").last().alias("last"),
            ((n.clone() * sxy - sx.clone() * sy) / (n * sxx - sx.clone() * sx)).alias("slope"),
        ])
        .collect()
        .map_err(polars_err)?;
    rows(&out)
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
