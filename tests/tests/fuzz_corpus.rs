//! Replays the `producer_ops` fuzz target's corpus (`fuzz/corpus/producer_ops/`) on stable Rust: the same
//! simulation, invariants and determinism check the fuzzer runs.

use kpl_tests::sim::run_bytes;
use kpl_tests::workspace_root;

#[test]
fn producer_ops_corpus_holds_every_invariant() {
    let dir = workspace_root().join("fuzz/corpus/producer_ops");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    entries.sort();
    assert!(entries.len() >= 5, "the seed corpus is missing");
    let mut records = 0;
    for path in entries {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        match run_bytes(&bytes) {
            Ok(report) => records += report.records,
            Err(violation) => panic!("{}: {violation}", path.display()),
        }
    }
    assert!(records > 100, "the corpus puts records ({records})");
}
