//! A flow's `dataProcessingOptions`: the Kinesis Agent's converters, with its option names and values
//! (`ProcessingUtilsFactory.java` L43–60), plus our opt-in fixes. Unlike the agent, which ignores unknown
//! keys, an option with a key we do not know is refused: it could change what is sent.

use std::time::Duration;

use serde_json::Value;

use super::{ConfigError, Fields};
use crate::core::processors::{
    AddEc2Metadata, AddMetadata, Converter, CsvMode, CsvToJson, JsonFormat, LogFormat, LogToJson,
    LogToJsonOptions, Rfc4180, SingleLine,
};

/// The converters of `dataProcessingOptions` (absent or null: none).
pub(super) fn converters(
    flow: &mut Fields,
    warnings: &mut Vec<String>,
) -> Result<Vec<Converter>, ConfigError> {
    let context = flow.context.clone();
    let items = match flow.take("dataProcessingOptions") {
        None | Some(Value::Null) => {
            flow.record("dataProcessingOptions", "[]", false);
            return Ok(Vec::new());
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ConfigError::Invalid {
                context,
                key: "dataProcessingOptions".into(),
                value: other.to_string(),
                expected: "a list of processing options".into(),
            });
        }
    };
    let mut converters = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let scope = format!("{} dataProcessingOptions[{index}]", flow.scope);
        let mut fields = Fields::new(item, &flow.file, scope)?;
        converters.push(converter(&mut fields, warnings)?);
        // Unknown keys are refused whatever `strict` says.
        flow.settings.extend(fields.finish(true, warnings)?);
    }
    Ok(converters)
}

fn invalid(fields: &Fields, why: impl Into<String>) -> ConfigError {
    ConfigError::Processing { context: fields.context.clone(), why: why.into() }
}

/// A list of strings.
fn names(fields: &mut Fields, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(value) = fields.take(key) else {
        fields.record(key, "(unset)", false);
        return Ok(None);
    };
    fields.record(key, value.to_string(), true);
    let names: Option<Vec<String>> = value
        .as_array()
        .and_then(|items| items.iter().map(|item| item.as_str().map(str::to_owned)).collect());
    match names {
        Some(names) => Ok(Some(names)),
        None => Err(ConfigError::Invalid {
            context: fields.context.clone(),
            key: key.into(),
            value: value.to_string(),
            expected: "a list of strings".into(),
        }),
    }
}

fn json_format(fields: &mut Fields, warnings: &mut Vec<String>) -> Result<JsonFormat, ConfigError> {
    fields.choice(
        "jsonFormat",
        JsonFormat::Compact,
        &[("COMPACT", JsonFormat::Compact), ("PRETTYPRINT", JsonFormat::Pretty)],
        warnings,
    )
}

fn converter(fields: &mut Fields, warnings: &mut Vec<String>) -> Result<Converter, ConfigError> {
    let name = fields.required("optionName")?;
    match name.as_str() {
        "SINGLELINE" => single_line(fields),
        "CSVTOJSON" => csv_to_json(fields, warnings),
        "LOGTOJSON" => log_to_json(fields, warnings),
        "ADDMETADATA" => add_metadata(fields, warnings),
        "ADDEC2METADATA" => add_ec2_metadata(fields, warnings),
        "ADDBRACKETS" => Ok(Converter::AddBrackets),
        "USINGPLUGGIN" => Err(ConfigError::Unsupported {
            context: fields.context.clone(),
            key: format!("optionName {name}"),
            why: "Java plug-ins (className) cannot run in kpl agent".into(),
        }),
        _ => Err(invalid(
            fields,
            format!(
                "optionName {name:?}: expected one of SINGLELINE, CSVTOJSON, LOGTOJSON, ADDMETADATA, ADDEC2METADATA, ADDBRACKETS"
            ),
        )),
    }
}

fn single_line(fields: &mut Fields) -> Result<Converter, ConfigError> {
    let mut converter = SingleLine::default();
    for option in names(fields, "parseOptions")?.unwrap_or_default() {
        match option.as_str() {
            "NO_TRIM" => converter.no_trim = true,
            "ESCAPE_NEW_LINE" => converter.escape_new_line = true,
            // The agent ignores other entries; a typo would silently change the output.
            other => {
                return Err(invalid(
                    fields,
                    format!("parseOptions {other:?}: expected NO_TRIM or ESCAPE_NEW_LINE"),
                ));
            }
        }
    }
    Ok(Converter::SingleLine(converter))
}

/// The one-byte delimiter of RFC 4180 mode: a character, or the agent's regex spelling of one (`\t`,
/// `\|`).
fn rfc4180_delimiter(delimiter: &str) -> Option<u8> {
    match delimiter.as_bytes() {
        [byte] if byte.is_ascii() => Some(*byte),
        [b'\\', b't'] => Some(b'\t'),
        [b'\\', byte] if byte.is_ascii_punctuation() => Some(*byte),
        _ => None,
    }
}

fn csv_to_json(fields: &mut Fields, warnings: &mut Vec<String>) -> Result<Converter, ConfigError> {
    let field_names = names(fields, "customFieldNames")?;
    let delimiter = fields.string("delimiter")?.unwrap_or_else(|| ",".into());
    let rfc4180 = fields.boolean("rfc4180", false)?;
    let header_row = fields.boolean("headerRow", false)?;
    let format = json_format(fields, warnings)?;
    if field_names.is_none() && !header_row {
        return Err(ConfigError::Missing { context: fields.context.clone(), key: "customFieldNames".into() });
    }
    let mode = if rfc4180 {
        let byte = rfc4180_delimiter(&delimiter).ok_or_else(|| {
            invalid(fields, format!("delimiter {delimiter:?}: with rfc4180, one ASCII character (or \\t)"))
        })?;
        CsvMode::Rfc4180(Box::new(Rfc4180::new(byte)))
    } else {
        let regex = regex::Regex::new(&delimiter).map_err(|error| ConfigError::Invalid {
            context: fields.context.clone(),
            key: "delimiter".into(),
            value: format!("{delimiter:?}"),
            expected: format!("a regular expression, as the agent reads it ({error})"),
        })?;
        CsvMode::Agent(regex)
    };
    Ok(Converter::CsvToJson(CsvToJson::new(field_names.unwrap_or_default(), mode, header_row, format)))
}

fn log_format(fields: &mut Fields, warnings: &mut Vec<String>) -> Result<Option<LogFormat>, ConfigError> {
    fields.choice(
        "logFormat",
        None,
        &[
            ("COMMONAPACHELOG", Some(LogFormat::CommonApache)),
            ("COMBINEDAPACHELOG", Some(LogFormat::CombinedApache)),
            ("APACHEERRORLOG", Some(LogFormat::ApacheError)),
            ("SYSLOG", Some(LogFormat::Syslog)),
            ("RFC3339SYSLOG", Some(LogFormat::Rfc3339Syslog)),
            ("RFC5424SYSLOG", Some(LogFormat::Rfc5424Syslog)),
        ],
        warnings,
    )
}

fn log_to_json(fields: &mut Fields, warnings: &mut Vec<String>) -> Result<Converter, ConfigError> {
    let Some(format) = log_format(fields, warnings)? else {
        return Err(ConfigError::Missing { context: fields.context.clone(), key: "logFormat".into() });
    };
    let options = LogToJsonOptions {
        format,
        match_pattern: fields.string("matchPattern")?,
        custom_field_names: names(fields, "customFieldNames")?,
        allow_ipv6: fields.boolean("allowIPv6", false)?,
        allow_empty_fields: fields.boolean("allowEmptyFields", false)?,
        allow_priority: fields.boolean("allowPriority", false)?,
        json: json_format(fields, warnings)?,
    };
    LogToJson::new(options).map(Converter::LogToJson).map_err(|why| invalid(fields, why))
}

fn add_metadata(fields: &mut Fields, warnings: &mut Vec<String>) -> Result<Converter, ConfigError> {
    // The agent reads `timestamp` with `new Boolean((String) ...)`: only the string "true" (any case)
    // is true, and a JSON boolean fails at startup. We take a JSON boolean or "true"/"false".
    let given = fields.take("timestamp");
    let present = given.as_ref().is_some_and(|value| !value.is_null());
    let timestamp = match given {
        None | Some(Value::Null) => false,
        Some(Value::Bool(value)) => value,
        Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => true,
        Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => false,
        Some(other) => {
            return Err(ConfigError::Invalid {
                context: fields.context.clone(),
                key: "timestamp".into(),
                value: other.to_string(),
                expected: "\"true\" or \"false\"".into(),
            });
        }
    };
    fields.record("timestamp", timestamp.to_string(), present);
    let metadata = fields.take("metadata").unwrap_or(Value::Null);
    fields.record("metadata", metadata.to_string(), !metadata.is_null());
    let json = json_format(fields, warnings)?;
    Ok(Converter::AddMetadata(AddMetadata { metadata, timestamp, json }))
}

fn add_ec2_metadata(fields: &mut Fields, warnings: &mut Vec<String>) -> Result<Converter, ConfigError> {
    // The agent requires a logFormat here and never uses it: accepted (and checked), not required. It
    // builds a log parser from these too, and never uses it.
    log_format(fields, warnings)?;
    fields.no_effect(&["customFieldNames", "matchPattern"], "ADDEC2METADATA does not parse lines", warnings);
    let ttl = Duration::from_secs(fields.number("metadataTTL", 3600, 1, 31_536_000)?);
    let endpoint = fields.string("imdsEndpoint")?;
    if let Some(endpoint) = &endpoint
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        return Err(ConfigError::Invalid {
            context: fields.context.clone(),
            key: "imdsEndpoint".into(),
            value: format!("{endpoint:?}"),
            expected: "an http:// or https:// URL".into(),
        });
    }
    let tags = fields.boolean("tagsFromInstanceMetadata", false)?;
    let json = json_format(fields, warnings)?;
    Ok(Converter::AddEc2Metadata(AddEc2Metadata::new(ttl, endpoint, tags, json)))
}
