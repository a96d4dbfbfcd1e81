//! Partition keys (and explicit hash keys) of `kpl produce`'s records: fixed, random, or taken from a field
//! of each record, a JSON object.
//!
//! A field's key is its text as written: a string's key is the string unescaped (`"a\u0031"` gives `a1`); a
//! number's key is its literal text, digit for digit (`12345678901234567890123`, `1.50` and `1e3` stay as
//! they are, never rounded through a float); `true` and `false` give the keys `true` and `false`. `null`,
//! objects and arrays cannot be keys: the record is refused, and the others go on.

use std::collections::HashMap;

use serde_json::value::RawValue;

use crate::rng::Rng;

/// Where partition keys come from.
#[derive(Debug)]
pub enum PartitionKeys {
    /// The same key for every record.
    Fixed(String),
    /// A field of the record's JSON.
    Field(String),
    /// 128 random bits per record, as 32 hex digits.
    Random(Rng),
}

/// How each record gets its partition key and, optionally, its explicit hash key.
#[derive(Debug)]
pub struct KeySource {
    /// The partition key.
    pub partition: PartitionKeys,
    /// The field holding the explicit hash key (a decimal number, as a JSON number or string).
    pub explicit_hash_key_field: Option<String>,
}

/// A record's keys.
#[derive(Debug, PartialEq, Eq)]
pub struct Keys {
    /// `PartitionKey`.
    pub partition_key: String,
    /// `ExplicitHashKey`, when taken from a field.
    pub explicit_hash_key: Option<String>,
}

impl KeySource {
    /// The keys of a record, or why it has none. The record is parsed (once) only when a key comes from
    /// one of its fields.
    pub fn keys(&mut self, data: &[u8]) -> Result<Keys, String> {
        let wanted: Vec<&str> = match &self.partition {
            PartitionKeys::Field(field) => Some(field.as_str()),
            _ => None,
        }
        .into_iter()
        .chain(self.explicit_hash_key_field.as_deref())
        .collect();
        let fields = if wanted.is_empty() { HashMap::new() } else { fields(data, &wanted)? };
        let field = |name: &str, what: &str| match fields.get(name) {
            Some(raw) => field_text(raw, name, what),
            None => Err(format!("no field {name:?} for the {what}")),
        };
        let partition_key = match &mut self.partition {
            PartitionKeys::Fixed(key) => key.clone(),
            PartitionKeys::Random(rng) => format!("{:032x}", rng.next_u128()),
            PartitionKeys::Field(name) => field(name, "partition key")?,
        };
        let explicit_hash_key = match &self.explicit_hash_key_field {
            Some(name) => Some(field(name, "explicit hash key")?),
            None => None,
        };
        Ok(Keys { partition_key, explicit_hash_key })
    }
}

/// The top-level fields of a JSON object, unparsed. Only the `wanted` fields' values are kept.
fn fields<'a>(data: &'a [u8], wanted: &[&str]) -> Result<HashMap<String, &'a RawValue>, String> {
    let mut fields: HashMap<String, &RawValue> = serde_json::from_slice(data).map_err(|e| {
        format!("not a JSON object ({e}), so it has no {:?} field for its key", wanted.join("\", \""))
    })?;
    fields.retain(|name, _| wanted.contains(&name.as_str()));
    Ok(fields)
}

/// A field's value as a key: a string unescaped, a number or boolean as written.
fn field_text(raw: &RawValue, name: &str, what: &str) -> Result<String, String> {
    let text = raw.get();
    let kind = match text.as_bytes().first() {
        Some(b'"') => {
            return serde_json::from_str::<String>(text).map_err(|e| format!("field {name:?}: {e}"));
        }
        Some(b'-' | b'0'..=b'9' | b't' | b'f') => return Ok(text.to_owned()),
        Some(b'n') => "null",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        _ => "not a value",
    };
    Err(format!("field {name:?} is {kind}, which cannot be a {what} (a string, number or boolean can)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_field(field: &str) -> KeySource {
        KeySource { partition: PartitionKeys::Field(field.to_owned()), explicit_hash_key_field: None }
    }

    fn partition_key(source: &mut KeySource, data: &str) -> Result<String, String> {
        source.keys(data.as_bytes()).map(|keys| keys.partition_key)
    }

    #[test]
    fn numbers_keep_their_literal_text() {
        let mut keys = by_field("id");
        for (input, expected) in [
            (r#"{"id": 12345678901234567890123}"#, "12345678901234567890123"),
            (r#"{"id": 12345678901234567890124}"#, "12345678901234567890124"),
            (r#"{"id":1.50}"#, "1.50"),
            (r#"{"id":1e3}"#, "1e3"),
            (r#"{"id":-0.0}"#, "-0.0"),
            (r#"{"id":42,"x":[1,{"y":null}]}"#, "42"),
        ] {
            assert_eq!(partition_key(&mut keys, input).as_deref(), Ok(expected), "{input}");
        }
    }

    #[test]
    fn strings_are_unescaped_and_booleans_are_their_names() {
        let mut keys = by_field("id");
        assert_eq!(partition_key(&mut keys, r#"{"id":"a-1","x":2}"#).as_deref(), Ok("a-1"));
        assert_eq!(partition_key(&mut keys, r#"{"id":"a\u0031\"\n"}"#).as_deref(), Ok("a1\"\n"));
        assert_eq!(partition_key(&mut keys, r#"{"id":"\ud83d\udd11"}"#).as_deref(), Ok("\u{1F511}"));
        assert_eq!(partition_key(&mut keys, r#"{"id":true}"#).as_deref(), Ok("true"));
        assert_eq!(partition_key(&mut keys, r#"{"id":false}"#).as_deref(), Ok("false"));
    }

    #[test]
    fn values_that_cannot_be_keys_are_refused() {
        let mut keys = by_field("id");
        for (input, kind) in
            [(r#"{"id":null}"#, "null"), (r#"{"id":{"a":1}}"#, "an object"), (r#"{"id":[1]}"#, "an array")]
        {
            let error = partition_key(&mut keys, input).unwrap_err();
            assert!(error.starts_with(&format!("field \"id\" is {kind}, which cannot be")), "{error}");
        }
        assert!(partition_key(&mut keys, r#"{"other":1}"#).unwrap_err().contains("no field \"id\""));
        assert!(partition_key(&mut keys, "not json").unwrap_err().starts_with("not a JSON object"));
        assert!(partition_key(&mut keys, "[1,2]").unwrap_err().starts_with("not a JSON object"));
        // The next record is unaffected.
        assert_eq!(partition_key(&mut keys, r#"{"id":7}"#).as_deref(), Ok("7"));
    }

    #[test]
    fn explicit_hash_keys_come_from_their_own_field() {
        let mut keys = KeySource {
            partition: PartitionKeys::Fixed("k".to_owned()),
            explicit_hash_key_field: Some("h".to_owned()),
        };
        let big = u128::MAX.to_string();
        assert_eq!(
            keys.keys(format!(r#"{{"h":{big}}}"#).as_bytes()),
            Ok(Keys { partition_key: "k".to_owned(), explicit_hash_key: Some(big.clone()) })
        );
        assert_eq!(keys.keys(br#"{"h":"17"}"#).map(|k| k.explicit_hash_key), Ok(Some("17".to_owned())));
        assert!(
            keys.keys(br#"{"x":"17"}"#).unwrap_err().contains("no field \"h\" for the explicit hash key")
        );
        let mut both = KeySource {
            partition: PartitionKeys::Field("p".to_owned()),
            explicit_hash_key_field: Some("h".to_owned()),
        };
        assert_eq!(
            both.keys(br#"{"p":"a","h":5}"#),
            Ok(Keys { partition_key: "a".to_owned(), explicit_hash_key: Some("5".to_owned()) })
        );
    }

    #[test]
    fn random_keys_differ() {
        let mut random =
            KeySource { partition: PartitionKeys::Random(Rng::new(1)), explicit_hash_key_field: None };
        assert_ne!(random.keys(b""), random.keys(b""));
    }
}
