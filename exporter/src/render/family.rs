//! A metric family built from a snapshot: name, help, unit, type and its series. Families
//! with no series are not written (an empty family says nothing).

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Unit;

pub type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone, Copy)]
pub enum Value {
    Float(f64),
    Int(u64),
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Gauge,
    Counter,
    /// An OpenMetrics info family: each series is `<name>_info{...} 1`.
    Info,
}

/// One family being assembled.
#[derive(Debug)]
pub struct Family {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    ty: Type,
    series: Vec<(Labels, Value)>,
}

impl Family {
    pub fn gauge(name: &'static str, help: &'static str, unit: Option<Unit>) -> Self {
        Self {
            name,
            help,
            unit,
            ty: Type::Gauge,
            series: Vec::new(),
        }
    }

    pub fn counter(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            unit: None,
            ty: Type::Counter,
            series: Vec::new(),
        }
    }

    pub fn info(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            unit: None,
            ty: Type::Info,
            series: Vec::new(),
        }
    }

    /// Adds a series; `None` (unknown) adds nothing.
    pub fn push(&mut self, labels: Labels, value: Option<impl Into<Value>>) {
        if let Some(v) = value {
            self.series.push((labels, v.into()));
        }
    }

    pub fn encode(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        if self.series.is_empty() {
            return Ok(());
        }
        let metric_type = match self.ty {
            Type::Gauge => MetricType::Gauge,
            Type::Counter => MetricType::Counter,
            Type::Info => MetricType::Info,
        };
        let mut family =
            encoder.encode_descriptor(self.name, self.help, self.unit.as_ref(), metric_type)?;
        // A single series without labels is written bare (`name value`, not `name{} value`).
        if let [(labels, value)] = self.series.as_slice()
            && labels.is_empty()
            && self.ty != Type::Info
        {
            return match (self.ty, value) {
                (Type::Counter, Value::Int(v)) => ConstCounter::new(*v).encode(family),
                (Type::Counter, Value::Float(v)) => ConstCounter::new(*v).encode(family),
                (_, Value::Int(v)) => ConstGauge::new(*v).encode(family),
                (_, Value::Float(v)) => ConstGauge::new(*v).encode(family),
            };
        }
        for (labels, value) in &self.series {
            match (self.ty, value) {
                (Type::Info, _) => {
                    // Info labels are written first; an empty family set then adds no comma.
                    let none = Labels::new();
                    Info::new(labels.clone()).encode(family.encode_family(&none)?)?
                }
                (Type::Counter, Value::Int(v)) => {
                    ConstCounter::new(*v).encode(family.encode_family(labels)?)?
                }
                (Type::Counter, Value::Float(v)) => {
                    ConstCounter::new(*v).encode(family.encode_family(labels)?)?
                }
                (Type::Gauge, Value::Int(v)) => {
                    ConstGauge::new(*v).encode(family.encode_family(labels)?)?
                }
                (Type::Gauge, Value::Float(v)) => {
                    ConstGauge::new(*v).encode(family.encode_family(labels)?)?
                }
            }
        }
        Ok(())
    }
}

/// The OpenMetrics ratio unit (prometheus-client's `Unit::Ratios` would append `_ratios`).
pub fn ratio() -> Option<Unit> {
    Some(Unit::Other("ratio".into()))
}
