//! Partition keys of records (`partitionKeyOption` and ours: a JSON field, a regex capture).

use std::hash::{BuildHasher, Hasher};

use md5::{Digest, Md5};
use serde_json::Value;

use crate::config::{MAX_PARTITION_KEY_LEN, PartitionKeyOption};

/// Chooses partition keys for one flow.
#[derive(Debug)]
pub(crate) struct KeyChooser {
    option: PartitionKeyOption,
    /// xorshift64* state, seeded per process.
    state: u64,
    /// Records whose field or regex gave no key (they got a random one).
    pub(crate) fallbacks: u64,
}

impl KeyChooser {
    pub(crate) fn new(option: PartitionKeyOption) -> KeyChooser {
        let seed = std::collections::hash_map::RandomState::new().build_hasher().finish() | 1;
        KeyChooser { option, state: seed, fallbacks: 0 }
    }

    /// The agent's RANDOM key: the decimal text of a uniform random number in [0, 1e6).
    fn random(&mut self) -> String {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let bits = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        format!("{}", bits as f64 / (1u64 << 53) as f64 * 1e6)
    }

    /// The key of `data`.
    pub(crate) fn key(&mut self, data: &[u8]) -> String {
        let chosen = match &self.option {
            PartitionKeyOption::Random => return self.random(),
            PartitionKeyOption::Deterministic => {
                return Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect();
            }
            PartitionKeyOption::Field(field) => {
                serde_json::from_slice::<Value>(data).ok().and_then(|value| match value.get(field)? {
                    Value::String(text) => Some(text.clone()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                })
            }
            PartitionKeyOption::Regex(regex) => regex.captures(data).and_then(|captures| {
                let found = captures.get(1).or_else(|| captures.get(0))?;
                Some(String::from_utf8_lossy(found.as_bytes()).into_owned())
            }),
        };
        match chosen.filter(|key| !key.is_empty()) {
            Some(mut key) => {
                if key.len() > MAX_PARTITION_KEY_LEN {
                    let mut cut = MAX_PARTITION_KEY_LEN;
                    while !key.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    key.truncate(cut);
                }
                key
            }
            None => {
                self.fallbacks += 1;
                self.random()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use regex::bytes::Regex;

    use super::*;

    #[test]
    fn keys_follow_the_option() {
        let mut random = KeyChooser::new(PartitionKeyOption::Random);
        let key: f64 = random.key(b"x").parse().unwrap();
        assert!((0.0..1e6).contains(&key));
        let mut md5 = KeyChooser::new(PartitionKeyOption::Deterministic);
        assert_eq!(md5.key(b""), "d41d8cd98f00b204e9800998ecf8427e");
        let mut field = KeyChooser::new(PartitionKeyOption::Field("user".into()));
        assert_eq!(field.key(br#"{"user": "u-7", "n": 1}"#), "u-7");
        assert_eq!(field.key(br#"{"user": 42}"#), "42");
        field.key(b"not json");
        assert_eq!(field.fallbacks, 1);
        let mut regex = KeyChooser::new(PartitionKeyOption::Regex(Regex::new(r"host=(\S+)").unwrap()));
        assert_eq!(regex.key(b"a host=web-3 b"), "web-3");
        let long = format!("host={}", "é".repeat(200));
        assert!(regex.key(long.as_bytes()).len() <= MAX_PARTITION_KEY_LEN);
    }
}
