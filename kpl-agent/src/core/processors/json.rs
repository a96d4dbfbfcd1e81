//! JSON text as the Kinesis Agent's Jackson writes it: objects in field order (a `LinkedHashMap`: a
//! repeated name keeps its first place and takes the last value), compact, or pretty with Jackson's
//! `DefaultPrettyPrinter` (`{`, two-space indent, `"name" : value`, arrays as `[ a, b ]`).

use std::collections::HashMap;

use serde_json::Value;

/// `jsonFormat`: how converters write JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JsonFormat {
    /// `COMPACT` (the default): `{"a":"b","c":null}`.
    #[default]
    Compact,
    /// `PRETTYPRINT`: Jackson's default pretty printer (the agent's undocumented option).
    Pretty,
}

/// Up to this many fields, repeated names are found by a linear scan; above, with a hash map.
const LINEAR_MERGE_MAX: usize = 16;

/// One value of a converter's output object.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'a> {
    /// A string, or null.
    Text(Option<&'a str>),
    /// A JSON value written as it is (ADDMETADATA's `metadata`).
    Json(&'a Value),
}

/// The object `{fields}` followed by `\n` (every JSON converter of the agent appends one).
pub(crate) fn object_line(fields: &[(&str, Field<'_>)], format: JsonFormat) -> String {
    // LinkedHashMap.put: a repeated name keeps its first place and takes the last value.
    let mut merged: Vec<(&str, Field<'_>)> = Vec::with_capacity(fields.len());
    if fields.len() <= LINEAR_MERGE_MAX {
        for (name, value) in fields {
            match merged.iter_mut().find(|(seen, _)| seen == name) {
                Some(slot) => slot.1 = *value,
                None => merged.push((name, *value)),
            }
        }
    } else {
        let mut places: HashMap<&str, usize> = HashMap::with_capacity(fields.len());
        for (name, value) in fields {
            match places.get(name) {
                Some(&place) => merged[place].1 = *value,
                None => {
                    places.insert(name, merged.len());
                    merged.push((name, *value));
                }
            }
        }
    }
    let mut out = String::with_capacity(64 * merged.len());
    let entries = merged.iter().map(|(name, value)| (*name, *value));
    write_object(&mut out, entries, merged.is_empty(), format, 0);
    out.push('\n');
    out
}

/// `value` followed by `\n`.
pub(crate) fn value_line(value: &Value, format: JsonFormat) -> String {
    let mut out = String::new();
    write_value(&mut out, value, format, 0);
    out.push('\n');
    out
}

fn write_string(out: &mut String, text: &str) {
    // serde_json escapes exactly what Jackson escapes: `"`, `\`, and control characters.
    out.push_str(&Value::String(text.to_owned()).to_string());
}

fn indent(out: &mut String, depth: usize) {
    out.push('\n');
    out.extend(std::iter::repeat_n("  ", depth));
}

fn write_object<'a>(
    out: &mut String,
    entries: impl Iterator<Item = (&'a str, Field<'a>)>,
    empty: bool,
    format: JsonFormat,
    depth: usize,
) {
    if empty {
        out.push_str(if format == JsonFormat::Pretty { "{ }" } else { "{}" });
        return;
    }
    out.push('{');
    for (index, (name, value)) in entries.enumerate() {
        if index > 0 {
            out.push(',');
        }
        if format == JsonFormat::Pretty {
            indent(out, depth + 1);
        }
        write_string(out, name);
        out.push_str(if format == JsonFormat::Pretty { " : " } else { ":" });
        match value {
            Field::Text(Some(text)) => write_string(out, text),
            Field::Text(None) => out.push_str("null"),
            Field::Json(value) => write_value(out, value, format, depth + 1),
        }
    }
    if format == JsonFormat::Pretty {
        indent(out, depth);
    }
    out.push('}');
}

fn write_value(out: &mut String, value: &Value, format: JsonFormat, depth: usize) {
    match value {
        Value::Object(map) => {
            let entries = map.iter().map(|(name, value)| (name.as_str(), Field::Json(value)));
            write_object(out, entries, map.is_empty(), format, depth);
        }
        Value::Array(items) if format == JsonFormat::Pretty => {
            // Jackson's FixedSpaceIndenter: arrays stay on one line.
            if items.is_empty() {
                out.push_str("[ ]");
                return;
            }
            out.push_str("[ ");
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_value(out, item, format, depth);
            }
            out.push_str(" ]");
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_field_order_and_a_repeated_name_keeps_its_place_with_the_last_value() {
        let fields = [("b", Field::Text(Some("1"))), ("a", Field::Text(None)), ("b", Field::Text(Some("2")))];
        assert_eq!(object_line(&fields, JsonFormat::Compact), "{\"b\":\"2\",\"a\":null}\n");
    }

    #[test]
    fn many_fields_merge_repeated_names_as_few_do() {
        let names: Vec<String> = (0..40).map(|n| format!("c{}", n % 30)).collect();
        let fields: Vec<(&str, Field<'_>)> =
            names.iter().map(|name| (name.as_str(), Field::Text(Some(name.as_str())))).collect();
        let line = object_line(&fields, JsonFormat::Compact);
        let expected: Vec<String> = (0..30).map(|n| format!("\"c{n}\":\"c{n}\"")).collect();
        assert_eq!(line, format!("{{{}}}\n", expected.join(",")));
        let last = [("a", Field::Text(Some("1"))); 20];
        let mut fields = last.to_vec();
        fields.push(("a", Field::Text(None)));
        assert_eq!(object_line(&fields, JsonFormat::Compact), "{\"a\":null}\n");
    }

    #[test]
    fn strings_are_escaped_as_jackson_escapes_them() {
        let fields = [("m", Field::Text(Some("a\"b\\c\td\u{1}é/")))];
        assert_eq!(object_line(&fields, JsonFormat::Compact), "{\"m\":\"a\\\"b\\\\c\\td\\u0001é/\"}\n");
    }

    #[test]
    fn pretty_is_jacksons_default_pretty_printer() {
        let metadata: Value =
            serde_json::from_str(r#"{"z":1,"a":[1,"x"],"e":{},"l":[]}"#).unwrap_or_default();
        let fields = [("metadata", Field::Json(&metadata)), ("data", Field::Text(Some("x")))];
        let expected = "{\n  \"metadata\" : {\n    \"z\" : 1,\n    \"a\" : [ 1, \"x\" ],\n    \"e\" : { },\n    \
                        \"l\" : [ ]\n  },\n  \"data\" : \"x\"\n}\n";
        assert_eq!(object_line(&fields, JsonFormat::Pretty), expected);
        assert_eq!(
            object_line(&fields, JsonFormat::Compact),
            "{\"metadata\":{\"z\":1,\"a\":[1,\"x\"],\"e\":{},\"l\":[]},\"data\":\"x\"}\n"
        );
    }
}
