//! `ADDEC2METADATA` (`AddEC2MetadataConverter.java` L64–140): the EC2 instance's identity added to a
//! JSON record. The metadata comes in from the shell (IMDSv2); this is the pure part: when a refresh
//! is due, what the identity document gives, and how a record is extended.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};

use super::Converted;
use super::json::{JsonFormat, value_line};
use super::metadata::utc_with_offset;

/// The instance identity document's path (the one `EC2MetadataUtils.getInstanceInfo` reads).
pub const IDENTITY_DOCUMENT_PATH: &str = "/latest/dynamic/instance-identity/document";
/// The instance's tag keys, one per line, when tags are allowed in instance metadata; a key's value is
/// at this path, `/`, the key.
pub const TAGS_PATH: &str = "/latest/meta-data/tags/instance";

/// The fields added, in the agent's order, from the identity document's keys.
const FIELDS: [(&str, &str); 7] = [
    ("privateIp", "privateIp"),
    ("availabilityZone", "availabilityZone"),
    ("instanceId", "instanceId"),
    ("instanceType", "instanceType"),
    ("accountId", "accountId"),
    ("amiId", "imageId"),
    ("region", "region"),
];

/// What is added to each record: `privateIp`, `availabilityZone`, `instanceId`, `instanceType`,
/// `accountId`, `amiId`, `region` (null when the document lacks them) and `metadataTimestamp` (when it
/// was read, `yyyy-MM-ddTHH:mm:ss+0000`: UTC, where the agent uses the host's time zone), then `tags`
/// (keys lowercased) when `tagsFromInstanceMetadata` is set and the instance allows tags in its
/// metadata. The agent reads tags with EC2 `DescribeTags` (needing `ec2:DescribeTags`); we read them
/// from the instance metadata, so without that option (or that instance setting) there is no `tags`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ec2Metadata {
    fields: Map<String, Value>,
}

impl Ec2Metadata {
    /// From the instance identity document (JSON) read at `fetched_at`.
    pub fn from_identity_document(document: &str, fetched_at: SystemTime) -> Result<Ec2Metadata, String> {
        let document: Value =
            serde_json::from_str(document).map_err(|error| format!("not an identity document: {error}"))?;
        let Value::Object(document) = document else {
            return Err("the identity document is not a JSON object".into());
        };
        let mut fields: Map<String, Value> = FIELDS
            .iter()
            .map(|(name, key)| ((*name).to_owned(), document.get(*key).cloned().unwrap_or(Value::Null)))
            .collect();
        fields.insert("metadataTimestamp".into(), Value::String(utc_with_offset(fetched_at)));
        Ok(Ec2Metadata { fields })
    }

    /// Adds `tags`: an object of the instance's tags, keys lowercased (as the agent writes them), in the
    /// given order.
    pub fn with_tags(mut self, tags: Vec<(String, String)>) -> Ec2Metadata {
        let tags: Map<String, Value> =
            tags.into_iter().map(|(key, value)| (key.to_lowercase(), Value::String(value))).collect();
        self.fields.insert("tags".into(), Value::Object(tags));
        self
    }
}

/// `ADDEC2METADATA`: `metadataTTL` (seconds, default 3600), `jsonFormat`, and ours, `imdsEndpoint`.
///
/// The record must be a JSON object; the metadata fields are put into it (a field it already has keeps
/// its place and takes the metadata's value, as Java's `LinkedHashMap.putAll`), and it is written again
/// followed by `\n`. A record that is not a JSON object cannot be converted (the agent sends it raw).
/// Until metadata could be read (not on EC2, IMDS unreachable), records pass unchanged, as in the agent;
/// a failed refresh keeps the previous metadata.
#[derive(Debug, Clone)]
pub struct AddEc2Metadata {
    ttl: Duration,
    endpoint: Option<String>,
    tags: bool,
    json: JsonFormat,
    metadata: Option<Ec2Metadata>,
    next_refresh: Option<Instant>,
}

impl AddEc2Metadata {
    /// A converter refreshing its metadata every `ttl` from `endpoint` (None: the AWS SDK's IMDS
    /// endpoint, `http://169.254.169.254` unless `AWS_EC2_METADATA_SERVICE_ENDPOINT` says otherwise),
    /// with the instance's tags if `tags`.
    pub fn new(ttl: Duration, endpoint: Option<String>, tags: bool, json: JsonFormat) -> AddEc2Metadata {
        AddEc2Metadata { ttl, endpoint, tags, json, metadata: None, next_refresh: None }
    }

    /// Whether the instance's tags are read too (`tagsFromInstanceMetadata`).
    pub fn tags(&self) -> bool {
        self.tags
    }

    /// The IMDS endpoint to read from (None: the SDK's default).
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// Whether the metadata should be read again at `now` (never read, or older than the TTL).
    pub fn refresh_due(&self, now: Instant) -> bool {
        self.next_refresh.is_none_or(|at| now >= at)
    }

    /// The outcome of a refresh at `now` (None: it failed; the previous metadata stays).
    pub fn refreshed(&mut self, metadata: Option<Ec2Metadata>, now: Instant) {
        if metadata.is_some() {
            self.metadata = metadata;
        }
        self.next_refresh = Some(now + self.ttl);
    }

    /// Converts one record.
    pub fn convert(&self, text: &str) -> Converted {
        let Some(metadata) = &self.metadata else { return Converted::Text(text.to_owned()) };
        // Jackson's `readValue` reads the first value and ignores what follows.
        let first = serde_json::Deserializer::from_str(text).into_iter::<Value>().next();
        let mut object = match first {
            Some(Ok(Value::Object(object))) => object,
            Some(Ok(_)) | None => return Converted::Failed("the record is not a JSON object".into()),
            Some(Err(error)) => return Converted::Failed(format!("the record is not JSON: {error}")),
        };
        for (name, value) in &metadata.fields {
            object.insert(name.clone(), value.clone());
        }
        Converted::Text(value_line(&Value::Object(object), self.json))
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    const DOCUMENT: &str = r#"{"accountId": "123456789012", "architecture": "x86_64", "availabilityZone": "eu-west-1b",
        "imageId": "ami-0abc", "instanceId": "i-0123", "instanceType": "m7g.large", "privateIp": "10.0.0.7",
        "region": "eu-west-1"}"#;

    fn converter() -> AddEc2Metadata {
        let mut converter = AddEc2Metadata::new(Duration::from_secs(3600), None, false, JsonFormat::Compact);
        let at = UNIX_EPOCH + Duration::from_secs(1_796_058_648);
        converter.refreshed(
            Some(Ec2Metadata::from_identity_document(DOCUMENT, at).unwrap_or_else(|e| panic!("{e}"))),
            Instant::now(),
        );
        converter
    }

    #[test]
    fn metadata_is_put_into_the_record_in_the_agents_order() {
        let converted = converter().convert("{\"region\":\"mine\",\"msg\":\"x\"}\n");
        let expected = "{\"region\":\"eu-west-1\",\"msg\":\"x\",\"privateIp\":\"10.0.0.7\",\"availabilityZone\":\"eu-west-1b\",\
                        \"instanceId\":\"i-0123\",\"instanceType\":\"m7g.large\",\"accountId\":\"123456789012\",\
                        \"amiId\":\"ami-0abc\",\"metadataTimestamp\":\"2026-11-30T17:10:48+0000\"}\n";
        assert_eq!(converted, Converted::Text(expected.into()));
    }

    #[test]
    fn a_record_that_is_not_a_json_object_fails_and_without_metadata_records_pass_unchanged() {
        assert!(matches!(converter().convert("[1, 2]\n"), Converted::Failed(_)));
        assert!(matches!(converter().convert("plain text\n"), Converted::Failed(_)));
        let empty = AddEc2Metadata::new(Duration::from_secs(60), None, false, JsonFormat::Compact);
        assert_eq!(empty.convert("plain text\n"), Converted::Text("plain text\n".into()));
    }

    #[test]
    fn refreshes_are_due_at_start_and_after_the_ttl_and_a_failure_keeps_the_metadata() {
        let start = Instant::now();
        let mut converter = AddEc2Metadata::new(Duration::from_secs(60), None, false, JsonFormat::Compact);
        assert!(converter.refresh_due(start));
        let metadata = Ec2Metadata::from_identity_document(DOCUMENT, UNIX_EPOCH).ok();
        converter.refreshed(metadata, start);
        assert!(!converter.refresh_due(start + Duration::from_secs(59)));
        assert!(converter.refresh_due(start + Duration::from_secs(60)));
        converter.refreshed(None, start + Duration::from_secs(60));
        assert!(!converter.refresh_due(start + Duration::from_secs(61)));
        assert!(matches!(converter.convert("{}"), Converted::Text(text) if text.contains("i-0123")));
        assert!(Ec2Metadata::from_identity_document("<html>", UNIX_EPOCH).is_err());
    }

    #[test]
    fn tags_come_last_with_lowercased_keys() {
        let metadata = Ec2Metadata::from_identity_document(DOCUMENT, UNIX_EPOCH).ok().map(|metadata| {
            metadata.with_tags(vec![("Name".into(), "web-7".into()), ("Team".into(), "Shop".into())])
        });
        let mut converter = AddEc2Metadata::new(Duration::from_secs(60), None, true, JsonFormat::Compact);
        converter.refreshed(metadata, Instant::now());
        let Converted::Text(text) = converter.convert("{}") else { panic!("not converted") };
        assert!(text.ends_with(",\"tags\":{\"name\":\"web-7\",\"team\":\"Shop\"}}\n"), "{text}");
    }
}
