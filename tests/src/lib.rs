//! Workspace-level tests that cross crates; the tests live in `tests/tests/`.
