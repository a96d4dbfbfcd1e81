//! A program that depends only on kpl-tokio (the SDK types come from its re-exports) builds producers from
//! an `SdkConfig` and from a KPL `.properties` file naming an endpoint and an authenticating proxy, against
//! kinesalite. kinesalite itself and the reading back are test harness (`kpl_tests`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kpl_tests::kinesalite::{Kinesalite, client, create_stream, read_stream};
use kpl_tokio::aws_config::{BehaviorVersion, Region};
use kpl_tokio::aws_sdk_kinesis::config::Credentials;
use kpl_tokio::{
    AwsBackend, DeliveryError, KinesisProducer, ProducerConfig, StreamTarget, UnappliedSetting,
    from_properties_file, kinesis_config_loader, unapplied_settings,
};
use support::forward_proxy::ForwardProxy;

/// A loader with test credentials: the application's choice, which the properties file does not make.
fn base_loader() -> kpl_tokio::aws_config::ConfigLoader {
    kpl_tokio::aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "static"))
}

/// Puts `count` records keyed `key-N`, waits for every receipt (failing on a failure) and shuts down.
async fn put_all(producer: &KinesisProducer, stream: &StreamTarget, count: u32) {
    let mut futures = Vec::new();
    for index in 0..count {
        futures.push(
            producer.put_data(stream, format!("key-{index}"), index.to_be_bytes().to_vec()).await.unwrap(),
        );
    }
    for future in futures {
        future.await.unwrap();
    }
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
}

async fn stored_records(endpoint: &str, stream: &str) -> usize {
    read_stream(&client(endpoint), stream).await.iter().map(|shard| shard.users.records.len()).sum()
}

fn properties_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("kpl-tokio-{name}-{}.properties", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_from_the_applications_sdk_config() {
    let server = Kinesalite::start();
    create_stream(&client(server.endpoint()), "from-sdk-config", 2).await;
    let sdk_config =
        base_loader().region(Region::new("us-east-1")).endpoint_url(server.endpoint()).load().await;
    let backend = AwsBackend::from_sdk_config(&sdk_config);
    let producer = KinesisProducer::builder(ProducerConfig::default(), backend).spawn().unwrap();
    put_all(&producer, &StreamTarget::name("from-sdk-config"), 50).await;
    assert_eq!(stored_records(server.endpoint(), "from-sdk-config").await, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_properties_files_endpoint_and_proxy_are_used() {
    let server = Kinesalite::start();
    create_stream(&client(server.endpoint()), "through-proxy", 2).await;
    let proxy = ForwardProxy::start("kpl-user", "proxy-secret").await;
    let kinesalite_port = server.endpoint().rsplit(':').next().unwrap();
    let path = properties_file(
        "proxy",
        &format!(
            "# A KPL file, with our URL form of KinesisEndpoint for a plain-http local server.\n\
             Region = us-east-1\nKinesisEndpoint = http://127.0.0.1\nKinesisPort = {kinesalite_port}\n\
             ProxyHost = 127.0.0.1\nProxyPort = {}\nProxyUserName = kpl-user\nProxyPassword = proxy-secret\n\
             ConnectTimeout = 2000\nVerifyCertificate = true\nRecordMaxBufferedTime = 20\nThreadPoolSize = 8\n",
            proxy.port()
        ),
    );
    let loaded = from_properties_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let unapplied: Vec<UnappliedSetting> = unapplied_settings(&loaded);
    assert_eq!(unapplied.iter().map(|setting| setting.key.as_str()).collect::<Vec<_>>(), ["ThreadPoolSize"]);
    let sdk_config = kinesis_config_loader(base_loader(), &loaded).unwrap().load().await;
    assert_eq!(sdk_config.region().map(|region| region.as_ref()), Some("us-east-1"));
    let backend = AwsBackend::from_sdk_config(&sdk_config);
    let producer = KinesisProducer::builder(loaded.config.clone(), backend).spawn().unwrap();
    put_all(&producer, &StreamTarget::name("through-proxy"), 50).await;
    assert_eq!(stored_records(server.endpoint(), "through-proxy").await, 50);
    // ListShards and PutRecords went through the proxy, with its credentials.
    assert!(proxy.forwarded.requests.load(Ordering::SeqCst) >= 2);
    assert_eq!(proxy.forwarded.refused.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_proxy_password_fails_the_records_instead_of_bypassing_the_proxy() {
    let server = Kinesalite::start();
    create_stream(&client(server.endpoint()), "refused", 1).await;
    let proxy = ForwardProxy::start("kpl-user", "proxy-secret").await;
    let path = properties_file(
        "refused",
        &format!(
            "Region = us-east-1\nKinesisEndpoint = {}\nProxyHost = http://127.0.0.1:{}\n\
             ProxyUserName = kpl-user\nProxyPassword = wrong\nRecordTtl = 300\n",
            server.endpoint(),
            proxy.port()
        ),
    );
    let loaded = from_properties_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let sdk_config = kinesis_config_loader(base_loader(), &loaded).unwrap().load().await;
    let producer = KinesisProducer::builder(loaded.config.clone(), AwsBackend::from_sdk_config(&sdk_config))
        .spawn()
        .unwrap();
    let result = producer.put_data(&StreamTarget::name("refused"), "key", &b"data"[..]).await.unwrap().await;
    assert!(matches!(result, Err(DeliveryError::Failed(_))), "{result:?}");
    assert!(proxy.forwarded.refused.load(Ordering::SeqCst) >= 1);
    assert_eq!(proxy.forwarded.requests.load(Ordering::SeqCst), 0);
    assert_eq!(stored_records(server.endpoint(), "refused").await, 0);
}
