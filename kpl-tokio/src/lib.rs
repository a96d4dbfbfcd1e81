//! The async producer on tokio and aws-sdk-kinesis (not yet implemented).
