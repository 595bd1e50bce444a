//! The contact's fields, listed once: each one's API name and kind. Everything that handles the
//! contact field by field (the mapping's `fields:`, the plan's diff and patch, revert's restore,
//! export's core columns) walks [`Field::ALL`] and dispatches on [`FieldKind`], and every accessor
//! by field (`ContactDraft`, `Contact`, `NewContact`, `ContactPatch`) is an exhaustive `match`, so
//! a new field is one line of the table below plus the struct fields that hold it, and a case
//! left out does not compile.
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What kind of value a field holds, which decides how it is parsed, compared and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// Free text (at most 255 characters).
    Text,
    /// An email address: compared case-insensitively.
    Email,
    /// A phone number in E.164.
    Phone,
    /// An external id: compared exactly; never sent empty.
    Identifier,
    /// A boolean; a cleared one is `false`.
    Bool,
    /// A JSON object the server shallow-merges: each key is its own value.
    Attributes,
}

impl FieldKind {
    /// Whether the field holds one value (not an attribute object).
    pub const fn is_scalar(self) -> bool {
        !matches!(self, FieldKind::Attributes)
    }
}

/// The table: variant, API name, kind. The name is the JSON key the API uses, the mapping's key
/// under `fields:` (scalar fields) or at the top level (attributes), the export column and the
/// journal's field name.
macro_rules! field_table {
    ($($variant:ident => $name:literal, $kind:ident;)+) => {
        /// A field of the contact.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Field {
            $(#[serde(rename = $name)] $variant,)+
        }

        impl Field {
            /// Every field, in the table's order (the order of diffs and export columns).
            pub const ALL: [Field; [$(Field::$variant),+].len()] = [$(Field::$variant),+];

            /// The API name (`phone_number`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Field::$variant => $name,)+
                }
            }

            pub const fn kind(self) -> FieldKind {
                match self {
                    $(Field::$variant => FieldKind::$kind,)+
                }
            }
        }
    };
}

field_table! {
    Name => "name", Text;
    Email => "email", Email;
    PhoneNumber => "phone_number", Phone;
    Identifier => "identifier", Identifier;
    Blocked => "blocked", Bool;
    CustomAttributes => "custom_attributes", Attributes;
    AdditionalAttributes => "additional_attributes", Attributes;
}

impl Field {
    /// The fields that hold one value, in table order.
    pub fn scalars() -> impl Iterator<Item = Field> {
        Field::SCALARS.into_iter()
    }

    /// The attribute objects, in table order.
    pub fn attribute_maps() -> impl Iterator<Item = Field> {
        Field::ALL.into_iter().filter(|f| !f.kind().is_scalar())
    }

    /// Of a struct's two attribute objects (custom, additional), the one `self` names; `None`
    /// for a scalar field. The one place the attribute objects are told apart by field.
    pub fn pick_attributes<T>(self, custom: T, additional: T) -> Option<T> {
        match self {
            Field::CustomAttributes => Some(custom),
            Field::AdditionalAttributes => Some(additional),
            Field::Name
            | Field::Email
            | Field::PhoneNumber
            | Field::Identifier
            | Field::Blocked => None,
        }
    }

    /// The field named `name` (`phone_number`), if there is one.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// How many fields hold one value.
    pub const SCALAR_COUNT: usize = {
        let mut n = 0;
        let mut i = 0;
        while i < Field::ALL.len() {
            if Field::ALL[i].kind().is_scalar() {
                n += 1;
            }
            i += 1;
        }
        n
    };

    /// The fields that hold one value, in table order.
    const SCALARS: [Field; Field::SCALAR_COUNT] = {
        let mut out = [Field::ALL[0]; Field::SCALAR_COUNT];
        let (mut n, mut i) = (0, 0);
        while i < Field::ALL.len() {
            if Field::ALL[i].kind().is_scalar() {
                out[n] = Field::ALL[i];
                n += 1;
            }
            i += 1;
        }
        out
    };

    /// Their names (the keys of the mapping's `fields:`, the export's field columns).
    pub const SCALAR_NAMES: [&'static str; Field::SCALAR_COUNT] = {
        let mut out = [""; Field::SCALAR_COUNT];
        let mut i = 0;
        while i < Field::SCALAR_COUNT {
            out[i] = Field::SCALARS[i].as_str();
            i += 1;
        }
        out
    };
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One scalar field's value, borrowed: what diffs compare and patches carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar<'a> {
    /// No value (a text field that is null or absent).
    Null,
    Text(&'a str),
    Bool(bool),
}

impl<'a> Scalar<'a> {
    /// A journal value read back: a string is text, a boolean a boolean, anything else null.
    pub fn from_json(v: &'a Value) -> Scalar<'a> {
        match v {
            Value::String(s) => Scalar::Text(s),
            Value::Bool(b) => Scalar::Bool(*b),
            _ => Scalar::Null,
        }
    }

    pub fn to_json(self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Text(s) => json!(s),
            Scalar::Bool(b) => json!(b),
        }
    }

    /// The value of a text field: `None` for null (or a value of another kind).
    pub fn text(self) -> Option<String> {
        match self {
            Scalar::Text(s) => Some(s.to_owned()),
            Scalar::Null | Scalar::Bool(_) => None,
        }
    }

    /// The value of a boolean field: null (or a value of another kind) is `false`.
    pub fn flag(self) -> bool {
        matches!(self, Scalar::Bool(true))
    }

    /// Whether the field holds something a clear would remove (`blank: clear`): non-empty text
    /// or `true`.
    pub fn is_set(self) -> bool {
        match self {
            Scalar::Null => false,
            Scalar::Text(s) => !s.is_empty(),
            Scalar::Bool(b) => b,
        }
    }

    /// The value as a diff compares it and the journal writes it: an email in lower case.
    pub fn compared(self, field: Field) -> Value {
        match (field.kind(), self) {
            (FieldKind::Email, Scalar::Text(s)) => json!(s.to_lowercase()),
            _ => self.to_json(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip_through_serde() {
        for (i, f) in Field::ALL.into_iter().enumerate() {
            assert_eq!(f as usize, i, "ALL is in declaration order: {f}");
            assert_eq!(Field::from_name(f.as_str()), Some(f));
            assert_eq!(serde_json::to_value(f).unwrap(), json!(f.as_str()));
        }
        let n = Field::scalars().count() + Field::attribute_maps().count();
        assert_eq!(n, Field::ALL.len());
        assert!(Field::SCALARS.iter().all(|f| f.kind().is_scalar()));
        assert_eq!(Field::SCALAR_NAMES[2], "phone_number");
        assert_eq!(Field::from_name("phone"), None);
    }

    #[test]
    fn scalars_convert_by_kind() {
        let a = Scalar::Text("Ann@X.com");
        assert_eq!(a.compared(Field::Email), json!("ann@x.com"));
        assert_eq!(a.compared(Field::Identifier), json!("Ann@X.com"));
        assert_eq!(Scalar::from_json(&json!(1)), Scalar::Null);
        assert!(!Scalar::from_json(&Value::Null).flag());
        assert!(!Scalar::Text("").is_set());
        assert!(Scalar::Bool(true).is_set());
    }
}
