//! The sans-IO producer core (in progress).
