//! Reading one JSON object of `agent.json` with the Kinesis Agent's leniency: numbers may be strings,
//! booleans may be `yes`/`no`/`t`/`f`/`1`/`0`..., and every key is accounted for (unknown ones reported).

use serde_json::{Map, Value};

use super::ConfigError;

/// One JSON object being read; keys are removed as they are read, so what is left is unknown.
pub(super) struct Fields {
    map: Map<String, Value>,
    /// Where it is, for messages: `agent.json`, `agent.json flows[1]`.
    pub(super) context: String,
}

impl Fields {
    pub(super) fn new(value: Value, context: String) -> Result<Fields, ConfigError> {
        match value {
            Value::Object(map) => Ok(Fields { map, context }),
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

    /// The raw value of `key`, removed.
    pub(super) fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    /// A string (a number is taken as its text).
    pub(super) fn string(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(Value::Number(number)) => Ok(Some(number.to_string())),
            Some(other) => Err(self.invalid(key, &other, "a string")),
        }
    }

    /// A required string.
    pub(super) fn required(&mut self, key: &str) -> Result<String, ConfigError> {
        self.string(key)?
            .ok_or_else(|| ConfigError::Missing { context: self.context.clone(), key: key.into() })
    }

    /// A whole number in `min..=max` (a JSON number or a string of one, as the agent accepts).
    pub(super) fn number(&mut self, key: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let Some(value) = self.take(key) else { return Ok(default) };
        let parsed = match &value {
            Value::Number(number) => number.as_u64(),
            Value::String(text) => text.trim().parse::<u64>().ok(),
            _ => None,
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.invalid(key, &value, format!("a whole number in {min}..={max}"))),
        }
    }

    /// A boolean: `true`/`false`, or (as the agent's `BooleanConverter`) the strings true/yes/t/y/1 and
    /// false/no/f/n/0 in any case.
    pub(super) fn boolean(&mut self, key: &str, default: bool) -> Result<bool, ConfigError> {
        let Some(value) = self.take(key) else { return Ok(default) };
        let text = match &value {
            Value::Bool(b) => return Ok(*b),
            Value::String(text) => text.to_ascii_lowercase(),
            Value::Number(number) => number.to_string(),
            _ => String::new(),
        };
        match text.as_str() {
            "true" | "yes" | "t" | "y" | "1" => Ok(true),
            "false" | "no" | "f" | "n" | "0" => Ok(false),
            _ => Err(self.invalid(key, &value, "a boolean (true/false, yes/no, 1/0)")),
        }
    }

    /// One of `choices` (name, value). The agent's enums are case-sensitive; we accept any case and warn.
    pub(super) fn choice<T: Copy>(
        &mut self,
        key: &str,
        default: T,
        choices: &[(&str, T)],
        warnings: &mut Vec<String>,
    ) -> Result<T, ConfigError> {
        let Some(text) = self.string(key)? else { return Ok(default) };
        if let Some((_, value)) = choices.iter().find(|(name, _)| *name == text) {
            return Ok(*value);
        }
        if let Some((name, value)) = choices.iter().find(|(name, _)| name.eq_ignore_ascii_case(&text)) {
            warnings.push(format!(
                "{}: {key} = {text:?} read as {name:?} (the Kinesis Agent is case-sensitive)",
                self.context
            ));
            return Ok(*value);
        }
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        Err(self.invalid(key, &Value::String(text), format!("one of {}", names.join(", "))))
    }

    /// Keys the agent knows that we accept and do not use: warned with `why`.
    pub(super) fn no_effect(&mut self, keys: &[&str], why: &str, warnings: &mut Vec<String>) {
        for key in keys {
            if self.take(key).is_some() {
                warnings.push(format!("{}: {key} has no effect in kpl agent ({why})", self.context));
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
    pub(super) fn no_effect_all(self, why: &str, warnings: &mut Vec<String>) {
        for key in self.map.keys() {
            warnings.push(format!("{}: {key} has no effect in kpl agent ({why})", self.context));
        }
    }

    /// The keys left: unknown. Warned about, or an error with `strict`.
    pub(super) fn finish(self, strict: bool, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
        if self.map.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = self.map.keys().cloned().collect();
        if strict {
            return Err(ConfigError::Unknown { context: self.context, keys });
        }
        warnings.push(format!("{}: unknown keys ignored: {}", self.context, keys.join(", ")));
        Ok(())
    }
}
