//! Arbitrary bytes as a received Kinesis record, and as the protobuf of an aggregate with a correct MD5: deaggregated in both modes, with and without a hash-range
//! filter, must never panic, never produce more data or records than the input can hold, and the modes and
//! filters must agree. The check is shared with `kpl-deagg/tests/fuzz_corpus.rs`, which replays this
//! target's corpus (`fuzz/corpus/deaggregate/`) on stable Rust as an ordinary test.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run deaggregate` (from the workspace root).

#![no_main]

#[path = "../../kpl-deagg/tests/support/deagg_check.rs"]
mod deagg_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    deagg_check::check_input(data);
});
