//! A simulated, deterministic Kinesis for tests (not yet implemented).
