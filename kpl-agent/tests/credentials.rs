//! `assumeRoleARN` and `assumeRoleExternalId` against moto's STS (`sts.endpoint`): the credentials the
//! agent's clients use are the role's, for the session the agent names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../kpl-tokio/tests/support/moto.rs"]
#[allow(dead_code)]
mod moto;

use aws_config::Region;
use aws_sdk_kinesis::config::ProvideCredentials;
use kpl_agent::config::parse;
use kpl_agent::shell::sdk_config;
use moto::Moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assumed_role_signs_for_the_agent_session() {
    let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    let text = format!(
        r#"{{"kinesis.region": "us-east-1", "awsAccessKeyId": "AKIDBASE", "awsSecretAccessKey": "secret",
            "assumeRoleARN": "arn:aws:iam::123456789012:role/agent", "assumeRoleExternalId": "ext-1",
            "sts.endpoint": "{}", "flows": [{{"filePattern": "/a", "kinesisStream": "s"}}]}}"#,
        moto.endpoint()
    );
    let config = parse("agent.json", &text, &[], true).unwrap().config;
    let sdk = sdk_config(&config).await.unwrap();
    assert_eq!(sdk.region(), Some(&Region::new("us-east-1")));
    let credentials = sdk.credentials_provider().unwrap().provide_credentials().await.unwrap();
    assert_ne!(credentials.access_key_id(), "AKIDBASE", "the role's keys, not the base ones");
    assert!(credentials.session_token().is_some() && credentials.expiry().is_some());
    // Who those credentials are, as moto's STS sees them.
    let mut sts = aws_sdk_sts::config::Builder::from(&sdk);
    sts.set_endpoint_url(Some(moto.endpoint().to_owned()));
    let identity = aws_sdk_sts::Client::from_conf(sts.build()).get_caller_identity().send().await.unwrap();
    assert_eq!(identity.arn(), Some("arn:aws:sts::123456789012:assumed-role/agent/AWSKinesisAgent"));
}
