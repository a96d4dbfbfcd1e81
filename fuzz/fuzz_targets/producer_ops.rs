//! The producer driven by operations decoded from the fuzzer's bytes (puts, time passing, flushes, reshards,
//! then a close) against the simulated Kinesis, with every invariant of the deterministic simulation checked
//! after every step. `tests/tests/fuzz_corpus.rs` replays this target's corpus (`fuzz/corpus/producer_ops/`)
//! on stable Rust as an ordinary test.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run producer_ops` (from the workspace root).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(violation) = kpl_tests::sim::run_bytes(data) {
        panic!("invariant violated: {violation}");
    }
});
