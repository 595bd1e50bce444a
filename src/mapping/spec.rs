//! The mapping file as written: serde structs that mirror the YAML one to one. Every struct denies
//! unknown keys (the error names the key and its line), and every column name keeps its line
//! ([`Spanned`], serde-saphyr's location wrapper) so that a column missing from the file can be
//! reported at the mapping line that names it. A bare column name that YAML reads as a number or
//! a boolean (`N`, `2023`) is flagged, and the loader takes its text as written from the byte span.
//! Nothing here checks meaning: `load` turns these into checked definitions.
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::model::Field;

/// A string with the 1-based line it was written on.
pub type Str = Spanned<String>;

/// The top level of a mapping file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    /// The grammar version; only `1` exists.
    pub version: Spanned<u32>,
    #[serde(default)]
    pub source: Option<Spanned<SourceSpec>>,
    #[serde(default)]
    pub defaults: Option<DefaultsSpec>,
    #[serde(default, rename = "match")]
    pub matching: Option<Spanned<MatchSpec>>,
    #[serde(default)]
    pub fields: Option<Spanned<FieldsSpec>>,
    #[serde(default)]
    pub custom_attributes: Option<OrderedMap>,
    #[serde(default)]
    pub additional_attributes: Option<OrderedMap>,
    #[serde(default)]
    pub notes: Option<Vec<Spanned<ValueSpec>>>,
}

/// `source:` how to open the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// XLSX sheet: a name or a 1-based index (kept as written).
    pub sheet: Option<Str>,
    pub header_row: Option<Spanned<u64>>,
    pub delimiter: Option<Str>,
    pub encoding: Option<Str>,
    /// CSV cells lose the formula guard of doto-bulk's export.
    pub unguard: Option<bool>,
}

/// `defaults:` values used when a row does not say.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsSpec {
    pub phone_region: Option<Str>,
    /// `required:` for every value spec that does not say.
    pub required: Option<bool>,
}

/// `match:` how rows are matched to stored contacts, and what to do then.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    pub on: Option<Spanned<Vec<KeySpec>>>,
    pub existing: Option<super::ExistingPolicy>,
    pub missing: Option<super::MissingPolicy>,
    pub blank: Option<super::BlankPolicy>,
    pub identifier_change: Option<super::IdentifierChange>,
    pub on_phone_in_use: Option<super::PhoneInUse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySpec {
    Identifier,
    Email,
    PhoneNumber,
}

/// `fields:` the contact's own fields, keyed by the field table's scalar names (an unknown or
/// repeated key is an error, as for the other sections), in the table's order.
#[derive(Debug, Default)]
pub struct FieldsSpec(pub Vec<(Field, Spanned<ValueSpec>)>);

impl<'de> Deserialize<'de> for FieldsSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FieldsSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of contact fields to value specs")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<FieldsSpec, A::Error> {
                let mut out: Vec<(Field, Spanned<ValueSpec>)> = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    let f = Field::from_name(&k)
                        .filter(|f| f.kind().is_scalar())
                        .ok_or_else(|| de::Error::unknown_field(&k, &Field::SCALAR_NAMES))?;
                    if out.iter().any(|(g, _)| *g == f) {
                        return Err(de::Error::duplicate_field(f.as_str()));
                    }
                    out.push((f, m.next_value()?));
                }
                out.sort_by_key(|(f, _)| *f);
                Ok(FieldsSpec(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<FieldsSpec, E> {
                Ok(FieldsSpec::default())
            }
        }
        d.deserialize_map(V)
    }
}

/// A map of attribute key → value spec, in file order (the order errors are reported in), and
/// the reserved key `from_prefix` (every column whose header starts with it).
#[derive(Debug, Default)]
pub struct OrderedMap {
    pub entries: Vec<(Str, Spanned<ValueSpec>)>,
    pub from_prefix: Option<Str>,
}

impl<'de> Deserialize<'de> for OrderedMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of attribute names to value specs")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<OrderedMap, A::Error> {
                let mut out = OrderedMap::default();
                while let Some(k) = m.next_key::<Str>()? {
                    if k.value == "from_prefix" {
                        out.from_prefix = Some(m.next_value()?);
                    } else {
                        let v = m.next_value()?;
                        out.entries.push((k, v));
                    }
                }
                Ok(out)
            }
            fn visit_unit<E: de::Error>(self) -> Result<OrderedMap, E> {
                Ok(OrderedMap::default())
            }
        }
        d.deserialize_map(V)
    }
}

/// One value spec: a bare string (a column name) or a map of options.
#[derive(Debug)]
pub enum ValueSpec {
    /// `inferred`: YAML read the name as a number or a boolean (`2023`, `N`, `yes`); the loader
    /// takes the text as written from the source instead.
    Column {
        name: String,
        inferred: bool,
    },
    Full(Box<FullSpec>),
}

impl<'de> Deserialize<'de> for ValueSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ValueSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a column name or a map such as { from: Column } (several columns: { from: [A, B] })",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ValueSpec, E> {
                Ok(ValueSpec::Column {
                    name: v.to_owned(),
                    inferred: false,
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ValueSpec, E> {
                Ok(inferred(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ValueSpec, E> {
                Ok(inferred(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ValueSpec, E> {
                Ok(inferred(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ValueSpec, E> {
                Ok(inferred(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<ValueSpec, A::Error> {
                FullSpec::deserialize(de::value::MapAccessDeserializer::new(m))
                    .map(|f| ValueSpec::Full(Box::new(f)))
            }
        }
        d.deserialize_any(V)
    }
}

fn inferred(v: impl ToString) -> ValueSpec {
    ValueSpec::Column {
        name: v.to_string(),
        inferred: true,
    }
}

/// The long form of a value spec.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullSpec {
    pub from: Option<Spanned<Columns>>,
    pub template: Option<Str>,
    #[serde(rename = "const", alias = "value")]
    pub constant: Option<Str>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub lowercase: Option<bool>,
    pub uppercase: Option<bool>,
    pub trim: Option<bool>,
    pub map: Option<Spanned<MapTable>>,
    pub default: Option<Str>,
    #[serde(rename = "type")]
    pub ty: Option<Spanned<TypeSpec>>,
    /// One format or a list.
    pub formats: Option<Columns>,
    /// One column or a list (the first non-blank one gives the row's region).
    pub region_from: Option<Spanned<Columns>>,
    /// A separator: each cell holds several values (`a@x.com ::: b@y.com`), tried in order.
    pub split: Option<Str>,
    /// Phone only: a number written without `+` already starts with its country code
    /// (`33612345678`, as Brevo writes its SMS column): read as `+33612345678`, no region used.
    pub international: Option<bool>,
    /// A value that cannot be used fails the row (default: `defaults.required`, else false).
    pub required: Option<bool>,
    /// The columns may be absent from the file (blank on every row).
    pub optional: Option<bool>,
}

/// `from:` one column or a list (first non-blank wins); also `formats:` (one or a list). The flag says a single name was read by
/// YAML as a number or a boolean (see [`ValueSpec::Column`]).
#[derive(Debug)]
pub struct Columns(pub Vec<Str>, pub bool);

impl<'de> Deserialize<'de> for Columns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Columns;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a column name or a list of column names")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Columns, A::Error> {
                let mut out = Vec::new();
                while let Some(c) = s.next_element::<Str>()? {
                    out.push(c);
                }
                Ok(Columns(out, false))
            }
        }
        // A scalar gets its line from the enclosing `Spanned<Columns>`; list items carry their own.
        struct ScalarOrSeq;
        impl<'de> Visitor<'de> for ScalarOrSeq {
            type Value = Columns;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                V.expecting(f)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<Columns, A::Error> {
                V.visit_seq(s)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Columns, E> {
                Ok(one(v, false))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Columns, E> {
                Ok(one(v, true))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Columns, E> {
                Ok(one(v, true))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Columns, E> {
                Ok(one(v, true))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Columns, E> {
                Ok(one(v, true))
            }
        }
        d.deserialize_any(ScalarOrSeq)
    }
}

fn one(v: impl ToString, inferred: bool) -> Columns {
    let unknown = serde_saphyr::Location::UNKNOWN;
    Columns(
        vec![Spanned::new(v.to_string(), unknown, unknown)],
        inferred,
    )
}

/// `map:` a translation table, in file order.
#[derive(Debug, Default)]
pub struct MapTable(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for MapTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MapTable;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of values to replacements")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<MapTable, A::Error> {
                let mut out = Vec::new();
                // Keys and values are read as text exactly as written (`yes`, `01`, `true`).
                while let Some(k) = m.next_key::<String>()? {
                    let v = m.next_value::<Option<String>>()?.unwrap_or_default();
                    out.push((k, v));
                }
                Ok(MapTable(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `type:` what an attribute value becomes in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeSpec {
    String,
    Integer,
    Number,
    Bool,
    Date,
    Datetime,
    RubyHash,
}
