//! The profile's import form, read through serde's own value deserializers (this crate has
//! no format dependency): field names, defaults, validation, unknown fields.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use headroom_admission::*;
use serde::de::value::{Error, MapDeserializer, SeqDeserializer};
use serde::de::{Deserialize, Deserializer, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

/// A tiny document tree, like what a TOML or JSON parser would hand serde.
#[derive(Clone, Debug)]
enum V {
    S(&'static str),
    F(f64),
    U(u64),
    Seq(Vec<V>),
    Map(Vec<(&'static str, V)>),
}

impl<'de> Deserializer<'de> for V {
    type Error = Error;
    fn deserialize_any<W: Visitor<'de>>(self, v: W) -> Result<W::Value, Error> {
        match self {
            V::S(s) => v.visit_str(s),
            V::F(f) => v.visit_f64(f),
            V::U(u) => v.visit_u64(u),
            V::Seq(items) => v.visit_seq(SeqDeserializer::new(items.into_iter())),
            V::Map(entries) => v.visit_map(MapDeserializer::new(entries.into_iter())),
        }
    }
    fn deserialize_option<W: Visitor<'de>>(self, v: W) -> Result<W::Value, Error> {
        v.visit_some(self)
    }
    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

impl IntoDeserializer<'_, Error> for V {
    type Deserializer = V;
    fn into_deserializer(self) -> V {
        self
    }
}

fn ti2v_doc(extra: Vec<(&'static str, V)>) -> V {
    let mut m = vec![
        ("name", V::S("wan2.2-ti2v-5b")),
        ("duration_s", V::F(242.0)),
        ("runs", V::U(10)),
        (
            "points",
            V::Seq(vec![
                V::Seq(vec![V::F(0.0), V::U(23_300_197_581)]),
                V::Seq(vec![V::F(0.8719), V::U(35_648_228_557)]),
            ]),
        ),
    ];
    m.extend(extra);
    V::Map(m)
}

#[test]
fn operator_profile_is_read() {
    let p = Profile::deserialize(ti2v_doc(vec![(
        "stretch",
        V::Map(vec![
            ("per_corunner", V::F(0.69)),
            ("spread", V::F(0.1)),
            ("jitter", V::F(0.02)),
        ]),
    )]))
    .unwrap();
    assert_eq!(p.name(), "wan2.2-ti2v-5b");
    assert_eq!(p.duration_s(), 242.0);
    assert_eq!(p.runs(), 10);
    assert_eq!(p.peak(), 35_648_228_557);
    assert_eq!(p.steady(), 23_300_197_581);
    assert_eq!(p.stretch().spread, 0.1);
}

#[test]
fn stretch_defaults_to_the_prior() {
    let p = Profile::deserialize(ti2v_doc(vec![])).unwrap();
    assert_eq!(p.stretch(), Stretch::PRIOR);
}

#[test]
fn invalid_profiles_are_refused() {
    // Unknown field.
    assert!(Profile::deserialize(ti2v_doc(vec![("peak", V::U(1))])).is_err());
    // Points not starting at 0.
    let bad = V::Map(vec![
        ("name", V::S("x")),
        ("duration_s", V::F(10.0)),
        ("points", V::Seq(vec![V::Seq(vec![V::F(0.5), V::U(1)])])),
    ]);
    let e = Profile::deserialize(bad).unwrap_err().to_string();
    assert!(e.contains("progress 0.5"), "{e}");
    // Non-positive duration.
    let bad = V::Map(vec![
        ("name", V::S("x")),
        ("duration_s", V::F(0.0)),
        ("points", V::Seq(vec![V::Seq(vec![V::F(0.0), V::U(1)])])),
    ]);
    assert!(Profile::deserialize(bad).is_err());
    // Jitter out of range.
    let bad = ti2v_doc(vec![(
        "stretch",
        V::Map(vec![("per_corunner", V::F(0.69)), ("jitter", V::F(0.9))]),
    )]);
    assert!(Profile::deserialize(bad).is_err());
}

#[test]
fn config_fields_default() {
    let c = Config::deserialize(V::Map(vec![("margin", V::F(0.2))])).unwrap();
    assert_eq!(c.margin, 0.2);
    assert_eq!(c.horizon_step_s, Config::default().horizon_step_s);
}
