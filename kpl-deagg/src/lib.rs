//! The KPL's aggregated-record wire format, both directions.
//!
//! A Kinesis record holding two or more user records is
//! `F3 89 9A C2` ‖ protobuf `AggregatedRecord` ‖ MD5(protobuf); one holding a single user record is that
//! record's data, unwrapped. [`AggregateBuilder`] produces it (used by `kpl-core`); [`Deaggregator`] reads it
//! back with the KCL's semantics, for consumers and for checking a producer end to end.
//!
//! ```
//! use bytes::Bytes;
//! use kpl_deagg::{AggregateBuilder, Deaggregator, Mode, ReceivedRecord};
//!
//! let mut builder = AggregateBuilder::new();
//! builder.add("user-1", None, &Bytes::from_static(b"first"));
//! builder.add("user-2", None, &Bytes::from_static(b"second"));
//! let record = builder.finish().unwrap();
//! assert_eq!(record.partition_key, "a");
//!
//! let received = ReceivedRecord {
//!     data: record.data,
//!     partition_key: record.partition_key,
//!     explicit_hash_key: None,
//!     sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
//! };
//! let users: Vec<_> = Deaggregator::new(Mode::Strict).deaggregate(received).unwrap().collect();
//! assert_eq!(&*users[1].partition_key, "user-2");
//! assert_eq!(users[1].sub_sequence_number, 1);
//! ```
//!
//! With the feature `lambda`, [`lambda`] deaggregates AWS Lambda Kinesis events (`aws_lambda_events`).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod deagg;
mod hash;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod limits;
mod proto;

pub use builder::{
    AGGREGATE_OVERHEAD, AGGREGATE_PARTITION_KEY, AggregateBuilder, AggregateFull, AggregateLimits,
    KinesisRecord,
};
pub use deagg::{Batch, DeaggError, Deaggregator, Mode, ReceivedRecord, UserRecord, UserRecords};
pub use hash::{HashKeyError, parse_explicit_hash_key, partition_key_hash};

/// The four bytes that open an aggregated record.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// Length of the MD5 digest that closes an aggregated record.
pub const DIGEST_LEN: usize = 16;
