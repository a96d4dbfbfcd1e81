//! ADDEC2METADATA's read of the instance identity document through IMDSv2 (the AWS SDK's IMDS client:
//! a session token first, then the document with it).

use std::time::SystemTime;

use aws_config::imds;

use crate::core::processors::{Ec2Metadata, IDENTITY_DOCUMENT_PATH, TAGS_PATH};

/// Attempts per read (the SDK's default is 4; this blocks the agent's loop, once per `metadataTTL`).
const ATTEMPTS: u32 = 2;

/// Reads the identity document from `endpoint` (None: the SDK's IMDS endpoint), and the instance's tags
/// if `tags` (when they cannot be read, the metadata goes without them, as in the agent).
pub(crate) async fn read_identity(endpoint: Option<&str>, tags: bool) -> Result<Ec2Metadata, String> {
    let mut builder = imds::Client::builder().max_attempts(ATTEMPTS);
    if let Some(endpoint) = endpoint {
        builder =
            builder.endpoint(endpoint).map_err(|error| format!("imdsEndpoint {endpoint:?}: {error}"))?;
    }
    let client = builder.build();
    let document = client.get(IDENTITY_DOCUMENT_PATH).await.map_err(|error| error.to_string())?;
    let metadata = Ec2Metadata::from_identity_document(document.as_ref(), SystemTime::now())?;
    if !tags {
        return Ok(metadata);
    }
    match read_tags(&client).await {
        Ok(tags) => Ok(metadata.with_tags(tags)),
        Err(error) => {
            tracing::warn!(%error, "cannot read the instance's tags from its metadata (are tags allowed in instance metadata?); records go without them");
            Ok(metadata)
        }
    }
}

async fn read_tags(client: &imds::Client) -> Result<Vec<(String, String)>, imds::client::error::ImdsError> {
    let keys = client.get(TAGS_PATH).await?;
    let mut tags = Vec::new();
    for key in keys.as_ref().lines().filter(|key| !key.is_empty()) {
        let value = client.get(format!("{TAGS_PATH}/{key}")).await?;
        tags.push((key.to_owned(), String::from(value)));
    }
    Ok(tags)
}
