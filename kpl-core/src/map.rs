//! Hash maps with a fixed hasher seed, so that even iteration order is the same on every run.

/// A `hashbrown` map whose hasher has a fixed seed: lookups are fast, and no order can depend on a random
/// seed. Prefer `BTreeMap` where the iteration order reaches an output.
pub(crate) type DetMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::FixedState>;
