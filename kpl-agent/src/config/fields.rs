//! Reading one JSON object of `agent.json` with the Kinesis Agent's leniency: numbers may be strings,
//! booleans may be `yes`/`no`/`t`/`f`/`1`/`0`..., and every key is accounted for (unknown ones reported).
//! Every key read is recorded as a [`Setting`] with its effective value and where it came from, for
//! `kpl agent check`.

use serde_json::{Map, Value};

use super::{ConfigError, Origin, Setting};

/// One JSON object being read; keys are removed as they are read, so what is left is unknown.
pub(super) struct Fields {
    map: Map<String, Value>,
    /// The file it is in.
    pub(super) file: String,
    /// Where in the file: empty for the top level, `flows[1]`, `flows[1] dataProcessingOptions[0]`.
    pub(super) scope: String,
    /// Where it is, for messages: `agent.json`, `agent.json flows[1]`.
    pub(super) context: String,
    /// The keys read so far, with their effective values.
    pub(super) settings: Vec<Setting>,
}

impl Fields {
    pub(super) fn new(value: Value, file: &str, scope: String) -> Result<Fields, ConfigError> {
        let context = if scope.is_empty() { file.to_owned() } else { format!("{file} {scope}") };
        match value {
            Value::Object(map) => {
                Ok(Fields { map, file: file.to_owned(), scope, context, settings: Vec::new() })
            }
            other => Err(ConfigError::Invalid {
                context,
                key: String::new(),
                value: other.to_string(),
                expected: "a JSON object".into(),
            }),
        }
    }

    fn invalid(&self, key: &str, value: &Value, expected: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            context: self.context.clone(),
            key: key.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// Records `key`'s effective value: from this file when `given`, else the default. A secret's value
    /// is recorded redacted (see [`redacted`]).
    pub(super) fn record(&mut self, key: &str, value: impl Into<String>, given: bool) {
        let origin = if given { Origin::File(self.file.clone()) } else { Origin::Default };
        let value = value.into();
        let value = if is_secret(key) { redacted(&value) } else { value };
        self.settings.push(Setting {
            scope: self.scope.clone(),
            key: key.to_owned(),
            value,
            origin,
            note: None,
        });
    }

    /// Adds a note to the setting recorded last (its key must be `key`).
    /// Notes something about the key read last under `key` (shown by `kpl agent check`).
    pub(super) fn note(&mut self, key: &str, note: String) {
        if let Some(setting) = self.settings.iter_mut().rev().find(|setting| setting.key == key) {
            setting.note = Some(note);
        }
    }

    /// Sets the value recorded last (its key must be `key`) to a choice's canonical name.
    fn canonical(&mut self, key: &str, name: &str) {
        if let Some(setting) = self.settings.last_mut().filter(|setting| setting.key == key) {
            setting.value = name.to_owned();
        }
    }

    /// Shows `value` as the default of the optional `key` just read without a value.
    pub(super) fn show_default(&mut self, key: &str, value: &str) {
        let last = self.settings.last_mut().filter(|s| s.key == key && s.origin == Origin::Default);
        if let Some(setting) = last {
            setting.value = value.to_owned();
        }
    }

    /// The raw value of `key`, removed (the caller records what it makes of it).
    pub(super) fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    /// A string (a number is taken as its text).
    pub(super) fn string(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        let text = match self.take(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text),
            Some(Value::Number(number)) => Some(number.to_string()),
            Some(other) => return Err(self.invalid(key, &other, "a string")),
        };
        match &text {
            Some(text) => self.record(key, format!("{text:?}"), true),
            None => self.record(key, "(unset)", false),
        }
        Ok(text)
    }

    /// A required string.
    pub(super) fn required(&mut self, key: &str) -> Result<String, ConfigError> {
        self.string(key)?
            .ok_or_else(|| ConfigError::Missing { context: self.context.clone(), key: key.into() })
    }

    /// A whole number in `min..=max` (a JSON number or a string of one, as the agent accepts).
    pub(super) fn number(&mut self, key: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let Some(value) = self.take(key) else {
            self.record(key, default.to_string(), false);
            return Ok(default);
        };
        let parsed = match &value {
            Value::Number(number) => number.as_u64(),
            Value::String(text) => text.trim().parse::<u64>().ok(),
            _ => None,
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => {
                self.record(key, n.to_string(), true);
                Ok(n)
            }
            _ => Err(self.invalid(key, &value, format!("a whole number in {min}..={max}"))),
        }
    }

    /// A boolean: `true`/`false`, or (as the agent's `BooleanConverter`) the strings true/yes/t/y/1 and
    /// false/no/f/n/0 in any case.
    pub(super) fn boolean(&mut self, key: &str, default: bool) -> Result<bool, ConfigError> {
        let Some(value) = self.take(key) else {
            self.record(key, default.to_string(), false);
            return Ok(default);
        };
        let text = match &value {
            Value::Bool(b) => b.to_string(),
            Value::String(text) => text.to_ascii_lowercase(),
            Value::Number(number) => number.to_string(),
            _ => String::new(),
        };
        let parsed = match text.as_str() {
            "true" | "yes" | "t" | "y" | "1" => true,
            "false" | "no" | "f" | "n" | "0" => false,
            _ => return Err(self.invalid(key, &value, "a boolean (true/false, yes/no, 1/0)")),
        };
        self.record(key, parsed.to_string(), true);
        Ok(parsed)
    }

    /// One of `choices` (name, value). The agent's enums are case-sensitive; we accept any case and warn.
    pub(super) fn choice<T: Copy + PartialEq>(
        &mut self,
        key: &str,
        default: T,
        choices: &[(&str, T)],
        warnings: &mut Vec<String>,
    ) -> Result<T, ConfigError> {
        let Some(text) = self.string(key)? else {
            if let Some(setting) = self.settings.last_mut() {
                let name = choices.iter().find(|(_, value)| *value == default).map(|(name, _)| *name);
                setting.value = name.unwrap_or("(unset)").to_owned();
            }
            return Ok(default);
        };
        if let Some((name, value)) = choices.iter().find(|(name, _)| *name == text) {
            self.canonical(key, name);
            return Ok(*value);
        }
        if let Some((name, value)) = choices.iter().find(|(name, _)| name.eq_ignore_ascii_case(&text)) {
            warnings.push(format!(
                "{}: {key} = {text:?} read as {name:?} (the Kinesis Agent is case-sensitive)",
                self.context
            ));
            self.canonical(key, name);
            self.note(key, format!("written {text:?}"));
            return Ok(*value);
        }
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        Err(self.invalid(key, &Value::String(text), format!("one of {}", names.join(", "))))
    }

    /// Keys the agent knows that we accept and do not use: warned with `why`.
    pub(super) fn no_effect(&mut self, keys: &[&str], why: &str, warnings: &mut Vec<String>) {
        for key in keys {
            if let Some(value) = self.take(key) {
                warnings.push(format!("{}: {key} has no effect in kpl agent ({why})", self.context));
                self.record(key, value.to_string(), true);
                self.note(key, format!("no effect: {why}"));
            }
        }
    }

    /// Keys we refuse: their meaning cannot be honoured, and ignoring them would do something else.
    pub(super) fn unsupported(&mut self, keys: &[&str], why: &str) -> Result<(), ConfigError> {
        for key in keys {
            if self.map.contains_key(*key) {
                return Err(ConfigError::Unsupported {
                    context: self.context.clone(),
                    key: (*key).into(),
                    why: why.into(),
                });
            }
        }
        Ok(())
    }

    /// Every key left is read and has no effect, for `why`.
    pub(super) fn no_effect_all(mut self, why: &str, warnings: &mut Vec<String>) -> Vec<Setting> {
        let keys: Vec<String> = self.map.keys().cloned().collect();
        self.no_effect(&keys.iter().map(String::as_str).collect::<Vec<_>>(), why, warnings);
        self.settings
    }

    /// The keys left: unknown. Warned about, or an error with `strict`. Returns the settings read.
    pub(super) fn finish(
        mut self,
        strict: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<Setting>, ConfigError> {
        if self.map.is_empty() {
            return Ok(self.settings);
        }
        let keys: Vec<String> = self.map.keys().cloned().collect();
        if strict {
            return Err(ConfigError::Unknown { context: self.context, keys });
        }
        warnings.push(format!("{}: unknown keys ignored: {}", self.context, keys.join(", ")));
        for (key, value) in std::mem::take(&mut self.map) {
            self.record(&key, value.to_string(), true);
            self.note(&key, "unknown key, ignored".into());
        }
        Ok(self.settings)
    }
}

/// Whether `key` holds a secret (`awsSecretAccessKey`, a session token, the KPL's `ProxyPassword`): its
/// value never reaches `kpl agent check`, the status file or the reload log.
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["secretaccesskey", "sessiontoken", "password"].iter().any(|secret| key.ends_with(secret))
}

/// A secret's effective value as shown: `(unset)` when not given, else `(redacted, md5 <8 hex>)`, so
/// that a changed secret is still seen as changed (a reload compares effective values) without the value.
pub(super) fn redacted(value: &str) -> String {
    use md5::{Digest, Md5};
    if value == "(unset)" {
        return value.to_owned();
    }
    let digest = Md5::digest(value.as_bytes());
    let prefix: String = digest.iter().take(4).map(|byte| format!("{byte:02x}")).collect();
    format!("(redacted, md5 {prefix})")
}
