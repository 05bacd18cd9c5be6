//! How a number in a scenario is written and how it moves: quantities with their unit
//! ("414MB", "15m", "+2.7MB/h") checked as they are read, and trajectories (start, rate, noise,
//! oscillation, steps) that the simulator samples at each capture.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::units::{self, Dimension, TimeSpec, bounded_secs};

/// Seconds, read from "15m", "74s", "2h".
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Secs(pub f64);

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        bounded_secs(&text).map(Secs).map_err(de::Error::custom)
    }
}

/// The dimension a quantity is read in.
pub trait Dim {
    const DIM: Dimension;
}
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BytesDim;
impl Dim for BytesDim {
    const DIM: Dimension = Dimension::Bytes;
}
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PlainDim;
impl Dim for PlainDim {
    const DIM: Dimension = Dimension::Plain;
}

/// A number in dimension `D`, written as a number or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Q<D>(pub f64, PhantomData<D>);

impl<D> Q<D> {
    pub fn new(v: f64) -> Self {
        Q(v, PhantomData)
    }
}

struct QVisitor<D>(PhantomData<D>);

impl<'de, D: Dim> de::Visitor<'de> for QVisitor<D> {
    type Value = Q<D>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match D::DIM {
            Dimension::Bytes => f.write_str("a size such as \"414MB\""),
            _ => f.write_str("a number"),
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Q<D>, E> {
        Ok(Q::new(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Q<D>, E> {
        Ok(Q::new(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Q<D>, E> {
        Ok(Q::new(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Q<D>, E> {
        units::parse(v, D::DIM).map(Q::new).map_err(E::custom)
    }
}

impl<'de, D: Dim> Deserialize<'de> for Q<D> {
    fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        d.deserialize_any(QVisitor(PhantomData))
    }
}

/// A rate "+2.7MB/h" in dimension `D`, stored per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate<D>(pub f64, PhantomData<D>);

impl<'de, D: Dim> Deserialize<'de> for Rate<D> {
    fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        let text = String::deserialize(d)?;
        units::parse_rate_per_sec(&text, D::DIM)
            .map(|v| Rate(v, PhantomData))
            .map_err(de::Error::custom)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "D: Dim"))]
pub struct Oscillation<D: Dim> {
    pub amplitude: Q<D>,
    pub period: Secs,
    #[serde(default = "sine")]
    pub shape: String,
}

fn sine() -> String {
    "sine".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "D: Dim"))]
pub struct Step<D: Dim> {
    pub at: TimeSpec,
    #[serde(default)]
    pub set: Option<Q<D>>,
    #[serde(default)]
    pub rate: Option<Rate<D>>,
    #[serde(default)]
    pub null: Option<bool>,
    #[serde(default)]
    pub noise: Option<Q<D>>,
}

/// How a number moves over time. A plain number or string is a constant.
#[derive(Debug, Clone)]
pub struct Traj<D: Dim> {
    pub start: f64,
    pub rate: f64,
    pub noise: f64,
    pub oscillate: Option<Oscillation<D>>,
    pub steps: Vec<Step<D>>,
    pub reboot_to: Option<f64>,
    pub null: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub decimals: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "D: Dim"))]
struct TrajTable<D: Dim> {
    start: Q<D>,
    #[serde(default)]
    rate: Option<Rate<D>>,
    #[serde(default)]
    noise: Option<Q<D>>,
    #[serde(default)]
    oscillate: Option<Oscillation<D>>,
    #[serde(default)]
    steps: Vec<Step<D>>,
    #[serde(default)]
    reboot_to: Option<Q<D>>,
    #[serde(default)]
    null: bool,
    #[serde(default)]
    min: Option<Q<D>>,
    #[serde(default)]
    max: Option<Q<D>>,
    #[serde(default)]
    decimals: Option<u32>,
}

enum TrajRepr<D: Dim> {
    Constant(Q<D>),
    Table(TrajTable<D>),
}

impl<D: Dim> Traj<D> {
    pub fn constant(v: f64) -> Self {
        Traj {
            start: v,
            rate: 0.0,
            noise: 0.0,
            oscillate: None,
            steps: Vec::new(),
            reboot_to: None,
            null: false,
            min: None,
            max: None,
            decimals: None,
        }
    }
}

impl<'de, D: Dim> Deserialize<'de> for Traj<D> {
    fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        // Untagged enums hide the inner error; read a generic value first and report precisely.
        let value = toml::Value::deserialize(d)?;
        let repr: TrajRepr<D> = match &value {
            toml::Value::Table(_) => TrajRepr::Table(
                TrajTable::deserialize(value.clone())
                    .map_err(|e| de::Error::custom(e.message().to_string()))?,
            ),
            _ => TrajRepr::Constant(
                Q::<D>::deserialize(value.clone())
                    .map_err(|e| de::Error::custom(e.message().to_string()))?,
            ),
        };
        Ok(match repr {
            TrajRepr::Constant(q) => Traj::constant(q.0),
            TrajRepr::Table(t) => Traj {
                start: t.start.0,
                rate: t.rate.map(|r| r.0).unwrap_or(0.0),
                noise: t.noise.map(|n| n.0).unwrap_or(0.0),
                oscillate: t.oscillate,
                steps: t.steps,
                reboot_to: t.reboot_to.map(|q| q.0),
                null: t.null,
                min: t.min.map(|q| q.0),
                max: t.max.map(|q| q.0),
                decimals: t.decimals,
            },
        })
    }
}

pub type Bytes = Traj<BytesDim>;
pub type Plain = Traj<PlainDim>;
