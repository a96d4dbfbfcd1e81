//! `LOGTOJSON` (`LogToJSONDataConverter.java`, `parsers/*.java`): a log line to a JSON object of its
//! fields, by a built-in format or a `matchPattern`.
//!
//! The built-in patterns are the agent's (`PatternConstants.java` L21–84), written with the Java
//! meanings of their classes: `\d`, `\w` and `\b` are ASCII, `\s` is `[ \t\n\x0B\f\r]`, and `.` matches
//! anything but a line terminator (`\n`, `\r`, U+0085, U+2028, U+2029), so a line that keeps a `\r`
//! (a CRLF file without `stripCarriageReturn`) does not match, as in the agent. A pattern must match the
//! whole record (Java's `matches()`).

use regex::Regex;

use super::json::{Field, JsonFormat, object_line};
use super::{Converted, strip_newline};

/// Java's `.`: anything but a line terminator.
const LINE_CHAR: &str = r"[^\n\r\x{85}\x{2028}\x{2029}]";
/// Java's `\s`.
const SPACE: &str = r"[ \t\n\x0B\x0C\r]";
const INT: &str = r"(?:[+-]?(?:[0-9]+))";
const POSINT: &str = r"(?:[1-9][0-9]*)";
const NONNEGINT: &str = r"(?:[0-9]+)";
const WORD: &str = r"[0-9A-Za-z_]+";
const IP: &str = r"(?:[0-9.]+)";
const HOSTNAME: &str = r"(?:[0-9A-Za-z_\-]+)(?:\.(?:[0-9A-Za-z_\-]+))*(?:\.?|(?-u:\b))";
/// Ours (`allowIPv6`): an IPv6 address (hex digits and colons, a dotted IPv4 tail, a zone).
const IPV6: &str = r"(?:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*(?:%[0-9A-Za-z_.\-]+)?)";
const USER: &str = r"(?:[a-zA-Z0-9._-]+)";
const MONTHDAY: &str = r"(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])";
const DAY: &str =
    r"(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)";
const MONTH: &str = r"(?-u:\b)(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)(?-u:\b)";
const YEAR: &str = r"(?:[1-9][0-9]*)";
const TIME: &str = r"(?:(?:2[0123]|[01]?[0-9]):(?:[0-5][0-9]):(?:(?:[0-5]?[0-9]|60)(?:[:.,][0-9]+)?))";
const RFC3339: &str =
    r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?)(?:Z|(?:[-+][0-9]{2}:[0-9]{2}))";
/// RFC 5424 §6.3: `[id param="value" ...]`, quotes and backslashes escaped inside values.
const STRUCTURED_DATA: &str = r#"(?:\[[^ \]="]+(?: [^ \]="]+="(?:[^"\\]|\\.)*")*\])+"#;

/// `logFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `COMMONAPACHELOG`: host, ident, authuser, datetime, request, response, bytes.
    CommonApache,
    /// `COMBINEDAPACHELOG`: the common fields, referer, agent.
    CombinedApache,
    /// `APACHEERRORLOG`: timestamp, module, severity, processid, threadid, client, message.
    ApacheError,
    /// `SYSLOG` (RFC 3164 as written to files): timestamp, hostname, program, processid, message.
    Syslog,
    /// `RFC3339SYSLOG`: the same fields, with an RFC 3339 timestamp.
    Rfc3339Syslog,
    /// Ours, `RFC5424SYSLOG`: priority, version, timestamp, hostname, appname, procid, msgid,
    /// structureddata, message (`-` is null in the header fields; no message is null).
    Rfc5424Syslog,
}

impl LogFormat {
    fn is_apache(self) -> bool {
        matches!(self, LogFormat::CommonApache | LogFormat::CombinedApache | LogFormat::ApacheError)
    }

    fn fields(self) -> &'static [&'static str] {
        const SYSLOG: &[&str] = &["timestamp", "hostname", "program", "processid", "message"];
        match self {
            LogFormat::CommonApache => {
                &["host", "ident", "authuser", "datetime", "request", "response", "bytes"]
            }
            LogFormat::CombinedApache => {
                &["host", "ident", "authuser", "datetime", "request", "response", "bytes", "referer", "agent"]
            }
            LogFormat::ApacheError => {
                &["timestamp", "module", "severity", "processid", "threadid", "client", "message"]
            }
            LogFormat::Syslog | LogFormat::Rfc3339Syslog => SYSLOG,
            LogFormat::Rfc5424Syslog => &[
                "priority",
                "version",
                "timestamp",
                "hostname",
                "appname",
                "procid",
                "msgid",
                "structureddata",
                "message",
            ],
        }
    }

    /// The built-in pattern, with the opt-ins.
    fn pattern(self, options: &LogToJsonOptions) -> String {
        let host = if options.allow_ipv6 {
            format!("(?:{HOSTNAME}|{IP}|{IPV6})")
        } else {
            format!("(?:{HOSTNAME}|{IP})")
        };
        let quoted = if options.allow_empty_fields { r#"[^"]*"# } else { r#"[^"]+"# };
        let http_date = format!("(?:{MONTHDAY}/{MONTH}/{YEAR}:{TIME}{SPACE}{INT})");
        let common =
            format!(r#"^({host}) ({USER}) ({USER}) \[({http_date})\] "({quoted})" ({INT}|\-) ({INT}|\-)"#);
        let priority = if options.allow_priority { "(?:<[0-9]{1,3}>)?" } else { "" };
        // The agent's facility: `<N.N>` after the timestamp, its dot an unescaped regex dot.
        let syslog_tail = format!(
            r"(?:<{NONNEGINT}{LINE_CHAR}{NONNEGINT}> )?({USER}) ([0-9A-Za-z_._/%-]+)(?:\[({POSINT})\])?: ({LINE_CHAR}*)"
        );
        match self {
            LogFormat::CommonApache => format!("{common}{LINE_CHAR}*"),
            LogFormat::CombinedApache => format!(r#"{common} "({quoted})" "({quoted})"{LINE_CHAR}*"#),
            LogFormat::ApacheError => {
                let timestamp =
                    format!("(?:{DAY}{SPACE}+{MONTH}{SPACE}+{MONTHDAY}{SPACE}+{TIME}{SPACE}+{YEAR})");
                let client = if options.allow_ipv6 {
                    format!(r"(?:{host}(?::{POSINT})?|\[{IPV6}\](?::{POSINT})?)")
                } else {
                    format!("(?:{host}(?::{POSINT})?)")
                };
                format!(
                    r"^\[({timestamp})\] \[(?:({WORD}):)?({WORD})\] \[pid ({NONNEGINT})(?::tid ({NONNEGINT}))?\] \[client ({client})\] ({LINE_CHAR}*)"
                )
            }
            LogFormat::Syslog => {
                let timestamp = format!("(?:{MONTH}{SPACE}+{MONTHDAY}{SPACE}+{TIME})");
                format!("^{priority}({timestamp}) {syslog_tail}")
            }
            LogFormat::Rfc3339Syslog => format!("^{priority}({RFC3339}) {syslog_tail}"),
            LogFormat::Rfc5424Syslog => format!(
                r"^<([0-9]{{1,3}})>([1-9][0-9]{{0,2}}) (-|{RFC3339}) ([!-~]{{1,255}}) ([!-~]{{1,48}}) ([!-~]{{1,128}}) ([!-~]{{1,32}}) (-|{STRUCTURED_DATA})(?: ({LINE_CHAR}*))?"
            ),
        }
    }
}

/// The settings of a `LOGTOJSON` converter.
#[derive(Debug, Clone)]
pub struct LogToJsonOptions {
    /// `logFormat` (required, also with `matchPattern`: it decides whether `-` means null).
    pub format: LogFormat,
    /// `matchPattern`: a regex whose groups are the fields (requires `customFieldNames`, with as many
    /// names as groups).
    pub match_pattern: Option<String>,
    /// `customFieldNames`: the field names (with a built-in format: exactly as many as it has).
    pub custom_field_names: Option<Vec<String>>,
    /// Ours, `allowIPv6` (Apache formats): IPv6 hosts and clients match (the agent drops those lines).
    pub allow_ipv6: bool,
    /// Ours, `allowEmptyFields` (Apache formats): `""` request, referer or agent match, as empty strings.
    pub allow_empty_fields: bool,
    /// Ours, `allowPriority` (`SYSLOG`, `RFC3339SYSLOG`): a leading `<PRI>` (RFC 3164 on the wire) is
    /// accepted and left out of the fields.
    pub allow_priority: bool,
    /// `jsonFormat`.
    pub json: JsonFormat,
}

/// Which values become null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nulls {
    /// Apache formats: any value of exactly `-` (`ApacheLogParser.java`).
    Dash,
    /// Syslog formats: none (only groups that did not take part).
    None,
    /// RFC 5424: `-` (NILVALUE) in the header fields, before the message.
    NilValue,
}

/// `LOGTOJSON`. A record the pattern does not match entirely is not converted: the agent drops it
/// ([`Converted::Skipped`]).
#[derive(Debug, Clone)]
pub struct LogToJson {
    pattern: Regex,
    fields: Vec<String>,
    nulls: Nulls,
    json: JsonFormat,
}

impl LogToJson {
    /// A converter, or why the options cannot work.
    pub fn new(options: LogToJsonOptions) -> Result<LogToJson, String> {
        let format = options.format;
        if (options.allow_ipv6 || options.allow_empty_fields) && !format.is_apache() {
            return Err("allowIPv6 and allowEmptyFields apply to the Apache formats only".into());
        }
        if options.allow_priority && !matches!(format, LogFormat::Syslog | LogFormat::Rfc3339Syslog) {
            return Err("allowPriority applies to SYSLOG and RFC3339SYSLOG only".into());
        }
        let custom = options.custom_field_names.clone();
        let (source, fields) = match (&options.match_pattern, custom) {
            (Some(_), None) => return Err("matchPattern requires customFieldNames".into()),
            (Some(pattern), Some(names)) => {
                if options.allow_ipv6 || options.allow_empty_fields || options.allow_priority {
                    return Err("allowIPv6, allowEmptyFields and allowPriority apply to built-in formats, \
                                not to a matchPattern"
                        .into());
                }
                (pattern.clone(), names)
            }
            (None, names) => {
                let builtin = format.fields();
                let names = names.unwrap_or_else(|| builtin.iter().map(|name| (*name).to_owned()).collect());
                if names.len() != builtin.len() {
                    return Err(format!(
                        "customFieldNames has {} names; this logFormat has {} fields (or give a matchPattern)",
                        names.len(),
                        builtin.len()
                    ));
                }
                (format.pattern(&options), names)
            }
        };
        let pattern = Regex::new(&format!(r"\A(?:{source})\z"))
            .map_err(|error| format!("matchPattern is not a regular expression we support: {error}"))?;
        // The agent drops every record when the counts differ; we refuse the configuration.
        let groups = pattern.captures_len() - 1;
        if groups != fields.len() {
            return Err(format!(
                "matchPattern has {groups} groups and customFieldNames {} names: they must be as many",
                fields.len()
            ));
        }
        let nulls = match format {
            _ if format.is_apache() => Nulls::Dash,
            LogFormat::Rfc5424Syslog if options.match_pattern.is_none() => Nulls::NilValue,
            _ => Nulls::None,
        };
        Ok(LogToJson { pattern, fields, nulls, json: options.json })
    }

    /// Converts one record.
    pub fn convert(&self, text: &str) -> Converted {
        let line = strip_newline(text);
        let Some(captures) = self.pattern.captures(line) else {
            return Converted::Skipped("the line does not match the LOGTOJSON pattern".into());
        };
        let last = self.fields.len().saturating_sub(1);
        let fields: Vec<(&str, Field<'_>)> = (self.fields.iter().enumerate())
            .map(|(index, name)| {
                let value = captures.get(index + 1).map(|group| group.as_str());
                let null = match self.nulls {
                    Nulls::Dash => value == Some("-"),
                    Nulls::NilValue => value == Some("-") && index != last,
                    Nulls::None => false,
                };
                (name.as_str(), Field::Text(if null { None } else { value }))
            })
            .collect();
        Converted::Text(object_line(&fields, self.json))
    }
}
