//! The data a template walks over: JSON with its object order kept (so `{{json .Config}}`
//! prints fields in the daemon's order, as Docker does), plus methods with arguments
//! (`{{.Label "com.example"}}`).

use std::fmt::{self, Write as _};
use std::rc::Rc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A method callable from a template with arguments.
pub type Method = Rc<dyn Fn(&[Value]) -> Result<Value, String>>;

/// A template value.
#[derive(Clone)]
pub enum Value {
    /// JSON `null`, Go's nil (prints `<nil>`).
    Nil,
    /// A missing map key in lenient mode (prints `<no value>`).
    NoValue,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A non-integral number.
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    List(Vec<Value>),
    /// An object, in its original key order.
    Map(Vec<(String, Value)>),
    /// A method (only reachable as a map field).
    Func(Method),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Func(_) => f.write_str("Func"),
            other => write!(f, "{}", other.to_display()),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) | (Value::NoValue, Value::NoValue) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Int(a), Value::Float(b)) | (Value::Float(b), Value::Int(a)) => {
                (*a as f64) == *b
            }
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            _ => false,
        }
    }
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// A method value.
    pub fn func(f: impl Fn(&[Value]) -> Result<Value, String> + 'static) -> Value {
        Value::Func(Rc::new(f))
    }

    /// Parses JSON, keeping object key order.
    pub fn from_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Converts any serializable value (via JSON).
    pub fn from_serialize<T: Serialize>(v: &T) -> Value {
        match serde_json::to_vec(v) {
            Ok(bytes) => Value::from_json(&bytes).unwrap_or(Value::Nil),
            Err(_) => Value::Nil,
        }
    }

    /// Go's truthiness: false, 0, nil, and empty strings, lists and maps are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil | Value::NoValue => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Func(_) => true,
        }
    }

    /// Go's type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::NoValue => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Func(_) => "func",
        }
    }

    /// A field of a map: exact name first, then ASCII case-insensitive (`.ID` finds `Id`).
    pub fn field(&self, name: &str) -> Option<&Value> {
        let Value::Map(entries) = self else {
            return None;
        };
        entries
            .iter()
            .find(|(k, _)| k == name)
            .or_else(|| entries.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v)
    }

    /// Go's `%v` rendering: `[a b]`, `map[k:v]` (keys sorted), `<nil>`.
    pub fn to_display(&self) -> String {
        let mut s = String::new();
        self.write_display(&mut s);
        s
    }

    fn write_display(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("<nil>"),
            Value::NoValue => out.push_str("<no value>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => out.push_str(&go_float(*f)),
            Value::Str(s) => out.push_str(s),
            Value::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_display(out);
                }
                out.push(']');
            }
            Value::Map(entries) => {
                let mut sorted: Vec<&(String, Value)> = entries
                    .iter()
                    .filter(|(_, v)| !matches!(v, Value::Func(_)))
                    .collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                out.push_str("map[");
                for (i, (k, v)) in sorted.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_display(out);
                }
                out.push(']');
            }
            Value::Func(_) => out.push_str("<func>"),
        }
    }

    /// JSON text without HTML escaping (Docker's `json` template function).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "null".into())
    }
}

/// Go's `%v` of a float64: shortest representation, exponent form below 1e-4 or from 1e21.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return "0".into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..21).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Nil | Value::NoValue | Value::Func(_) => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(v) => s.serialize_str(v),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let fields: Vec<_> = entries
                    .iter()
                    .filter(|(_, v)| !matches!(v, Value::Func(_)))
                    .collect();
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Nil)
            }
            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Nil)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
                Ok(Value::Bool(b))
            }
            fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
                Ok(Value::Int(i))
            }
            fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
                Ok(i64::try_from(u)
                    .map(Value::Int)
                    .unwrap_or(Value::Float(u as f64)))
            }
            fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
                Ok(Value::Float(f))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
                Ok(Value::Str(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
                Ok(Value::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = a.next_element()? {
                    items.push(v);
                }
                Ok(Value::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
                let mut entries: Vec<(String, Value)> = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Value>()? {
                    match entries.iter_mut().find(|(key, _)| *key == k) {
                        Some(slot) => slot.1 = v,
                        None => entries.push((k, v)),
                    }
                }
                Ok(Value::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_order() {
        let text = r#"{"Zeta":1,"Alpha":{"b":[1,2.5,"x",null,true],"a":{}}}"#;
        let v = Value::from_json(text.as_bytes()).unwrap();
        assert_eq!(v.to_json(), text);
        assert_eq!(
            v.to_display(),
            "map[Alpha:map[a:map[] b:[1 2.5 x <nil> true]] Zeta:1]"
        );
    }

    #[test]
    fn fields_fall_back_to_case_insensitive() {
        let v = Value::from_json(br#"{"Id":"abc","id":"lower"}"#).unwrap();
        assert_eq!(v.field("id"), Some(&Value::str("lower")));
        assert_eq!(v.field("ID"), Some(&Value::str("abc")));
        assert_eq!(v.field("nope"), None);
    }

    #[test]
    fn go_float_formatting() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1e20), "100000000000000000000");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(0.0001), "0.0001");
    }

    #[test]
    fn no_html_escaping_in_json() {
        assert_eq!(Value::str("<a&b>").to_json(), "\"<a&b>\"");
    }
}
