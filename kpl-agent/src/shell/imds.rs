//! ADDEC2METADATA's read of the instance identity document through IMDSv2 (the AWS SDK's IMDS client:
//! a session token first, then the document with it).

use std::time::SystemTime;

use aws_config::imds;

use crate::core::processors::{Ec2Metadata, IDENTITY_DOCUMENT_PATH};

/// Attempts per read (the SDK's default is 4; this blocks the agent's loop, once per `metadataTTL`).
const ATTEMPTS: u32 = 2;

/// Reads the identity document from `endpoint` (None: the SDK's IMDS endpoint).
pub(crate) async fn read_identity(endpoint: Option<&str>) -> Result<Ec2Metadata, String> {
    let mut builder = imds::Client::builder().max_attempts(ATTEMPTS);
    if let Some(endpoint) = endpoint {
        builder =
            builder.endpoint(endpoint).map_err(|error| format!("imdsEndpoint {endpoint:?}: {error}"))?;
    }
    let document = builder.build().get(IDENTITY_DOCUMENT_PATH).await.map_err(|error| error.to_string())?;
    Ec2Metadata::from_identity_document(document.as_ref(), SystemTime::now())
}
