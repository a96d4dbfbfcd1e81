//! Encoding: an incremental builder of one Kinesis record from many user records.
//!
//! The protobuf is written by hand rather than through prost so that the builder knows its exact encoded
//! size after every add (the KPL only estimates, then trims), and so that the decoder, which does use prost,
//! is an independent reading of the format: a round trip through both proves something.

use std::hash::BuildHasher;

use bytes::{BufMut, Bytes};
use hashbrown::HashTable;
use md5::{Digest, Md5};

use crate::hash::partition_key_hash;
use crate::{DIGEST_LEN, MAGIC};

/// Outer partition key of an aggregate of two or more user records. The KPL uses one byte because the
/// explicit hash key, which is always set, is what routes the record.
pub const AGGREGATE_PARTITION_KEY: &str = "a";

/// Bytes an aggregate adds around its protobuf: the magic and the MD5 digest.
pub const AGGREGATE_OVERHEAD: usize = MAGIC.len() + DIGEST_LEN;

// Protobuf tags (field number << 3 | wire type). Every field number here is below 16, so a tag is one byte.
const TAG_PARTITION_KEY_TABLE: u8 = 1 << 3 | 2;
const TAG_EXPLICIT_HASH_KEY_TABLE: u8 = 2 << 3 | 2;
const TAG_RECORDS: u8 = 3 << 3 | 2;
const TAG_PARTITION_KEY_INDEX: u8 = 1 << 3;
const TAG_EXPLICIT_HASH_KEY_INDEX: u8 = 2 << 3;
const TAG_DATA: u8 = 3 << 3 | 2;

/// Hashing for key deduplication. The tables are only looked up, never iterated, so the hasher's seed
/// cannot reach the output; a fixed one keeps runs identical anyway.
type KeyHasher = foldhash::fast::FixedState;

/// Limits an aggregate must stay within, as the KPL's `AggregationMaxSize` and `AggregationMaxCount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregateLimits {
    /// Largest Kinesis record in bytes, counted as Kinesis counts a record against its size limit: the
    /// aggregate (magic, protobuf and digest) plus its one-byte outer partition key
    /// ([`AGGREGATE_PARTITION_KEY`]). So `AggregationMaxSize = 1048576` yields records that fit a 1 MiB
    /// stream whether or not the service counts the key (the KPL compares the aggregate alone, and builds
    /// records one byte over).
    pub max_size: usize,
    /// Largest number of user records.
    pub max_count: usize,
}

/// A user record did not fit into the aggregate; nothing was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the record would make the aggregate {size_after} bytes and {count_after} records")]
pub struct AggregateFull {
    /// Size the Kinesis record would have had with the record: encoded aggregate plus outer partition key.
    pub size_after: usize,
    /// Record count the aggregate would have had with the record.
    pub count_after: usize,
}

/// A finished Kinesis record, ready to be one entry of a PutRecords request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisRecord {
    /// Partition key of the entry: the user record's own for a single record, `"a"` for an aggregate.
    pub partition_key: String,
    /// Explicit hash key of the entry: the hash key of the first user record. The KPL always sets it.
    pub explicit_hash_key: u128,
    /// The entry's data: the user data itself for a single record, the aggregate otherwise.
    pub data: Bytes,
    /// Number of user records inside.
    pub user_records: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    partition_key_index: u64,
    explicit_hash_key_index: Option<u64>,
    data: Bytes,
}

/// Builds one Kinesis record from user records, deduplicating keys, with an exact size at every step.
///
/// The builder keeps the user data as `Bytes` handles; [`finish`](Self::finish) copies each one once into the
/// output buffer. A builder holding one record finishes to that record unwrapped, as the KPL does.
#[derive(Debug, Default)]
pub struct AggregateBuilder {
    partition_keys: KeyArena,
    partition_key_lookup: HashTable<u32>,
    explicit_hash_keys: Vec<u128>,
    explicit_hash_key_lookup: HashTable<u32>,
    entries: Vec<Entry>,
    hasher: KeyHasher,
    /// Exact length of the protobuf `AggregatedRecord` holding everything added so far.
    protobuf_len: usize,
}

/// Partition keys stored end to end in one string: no allocation per key, and clearing keeps the capacity.
#[derive(Debug, Default)]
struct KeyArena {
    text: String,
    /// End offset in `text` of each key; a key starts where the previous one ends.
    ends: Vec<usize>,
}

impl KeyArena {
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// The key at `index`, which must be below [`len`](Self::len) (indices come from the builder's tables).
    fn get(&self, index: usize) -> &str {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        &self.text[start..self.ends[index]]
    }

    fn push(&mut self, key: &str) {
        self.text.push_str(key);
        self.ends.push(self.text.len());
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|index| self.get(index))
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }
}

/// Number of bytes of `value` as a protobuf varint.
fn varint_len(value: u64) -> usize {
    // 7 payload bits per byte; `| 1` makes zero take one byte.
    (70 - (value | 1).leading_zeros() as usize) / 7
}

/// Encoded length of a length-delimited field (one-byte tag) whose payload is `len` bytes.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// Number of decimal digits of `value`.
fn decimal_len(value: u128) -> usize {
    value.checked_ilog10().map_or(1, |digits| digits as usize + 1)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// Where a key is, or would be, in its table.
struct KeySlot {
    index: u64,
    is_new: bool,
    hash: u64,
}

impl AggregateBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of user records added.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no user record has been added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Exact length of the data [`finish`](Self::finish) would produce now: 0 when empty, the user data's
    /// length for a single record, magic + protobuf + digest otherwise.
    pub fn encoded_len(&self) -> usize {
        match self.entries.as_slice() {
            [] => 0,
            [only] => only.data.len(),
            _ => AGGREGATE_OVERHEAD + self.protobuf_len,
        }
    }

    /// Exact length of the aggregated form (magic + protobuf + digest) of what was added, whatever the count.
    pub fn aggregated_len(&self) -> usize {
        AGGREGATE_OVERHEAD + self.protobuf_len
    }

    fn partition_key_slot(&self, partition_key: &str) -> KeySlot {
        let hash = self.hasher.hash_one(partition_key);
        let found =
            self.partition_key_lookup.find(hash, |&i| self.partition_keys.get(i as usize) == partition_key);
        match found {
            Some(&i) => KeySlot { index: u64::from(i), is_new: false, hash },
            None => KeySlot { index: self.partition_keys.len() as u64, is_new: true, hash },
        }
    }

    fn explicit_hash_key_slot(&self, key: u128) -> KeySlot {
        let hash = self.hasher.hash_one(key);
        let found = self.explicit_hash_key_lookup.find(hash, |&i| self.explicit_hash_keys[i as usize] == key);
        match found {
            Some(&i) => KeySlot { index: u64::from(i), is_new: false, hash },
            None => KeySlot { index: self.explicit_hash_keys.len() as u64, is_new: true, hash },
        }
    }

    /// Protobuf bytes one record adds, given where its keys land.
    fn added_len(
        partition_key: &str,
        pk: &KeySlot,
        explicit_hash_key: Option<(u128, &KeySlot)>,
        data_len: usize,
    ) -> usize {
        let mut record_len = 1 + varint_len(pk.index) + field_len(data_len);
        let mut tables_len = if pk.is_new { field_len(partition_key.len()) } else { 0 };
        if let Some((key, slot)) = explicit_hash_key {
            record_len += 1 + varint_len(slot.index);
            if slot.is_new {
                tables_len += field_len(decimal_len(key));
            }
        }
        tables_len + field_len(record_len)
    }

    /// Exact [`encoded_len`](Self::encoded_len) after adding this record (it would be aggregated unless the
    /// builder is empty).
    pub fn encoded_len_with(
        &self,
        partition_key: &str,
        explicit_hash_key: Option<u128>,
        data_len: usize,
    ) -> usize {
        if self.is_empty() {
            return data_len;
        }
        let pk = self.partition_key_slot(partition_key);
        let ehk = explicit_hash_key.map(|key| (key, self.explicit_hash_key_slot(key)));
        let added = Self::added_len(partition_key, &pk, ehk.as_ref().map(|(k, s)| (*k, s)), data_len);
        AGGREGATE_OVERHEAD + self.protobuf_len + added
    }

    /// Adds a user record unless that would break `limits`. An empty builder takes any record, however large:
    /// a record over the size limit goes alone, as in the KPL.
    pub fn try_add(
        &mut self,
        partition_key: &str,
        explicit_hash_key: Option<u128>,
        data: &Bytes,
        limits: AggregateLimits,
    ) -> Result<(), AggregateFull> {
        let pk = self.partition_key_slot(partition_key);
        let ehk = explicit_hash_key.map(|key| (key, self.explicit_hash_key_slot(key)));
        let added = Self::added_len(partition_key, &pk, ehk.as_ref().map(|(k, s)| (*k, s)), data.len());
        if !self.is_empty() {
            let size_after = AGGREGATE_PARTITION_KEY.len() + AGGREGATE_OVERHEAD + self.protobuf_len + added;
            let count_after = self.entries.len() + 1;
            if size_after > limits.max_size || count_after > limits.max_count {
                return Err(AggregateFull { size_after, count_after });
            }
        }
        self.protobuf_len += added;
        if pk.is_new {
            let index = self.partition_keys.len() as u32;
            self.partition_keys.push(partition_key);
            let keys = &self.partition_keys;
            let hasher = &self.hasher;
            self.partition_key_lookup
                .insert_unique(pk.hash, index, |&i| hasher.hash_one(keys.get(i as usize)));
        }
        let explicit_hash_key_index = ehk.map(|(key, slot)| {
            if slot.is_new {
                let index = self.explicit_hash_keys.len() as u32;
                self.explicit_hash_keys.push(key);
                let keys = &self.explicit_hash_keys;
                let hasher = &self.hasher;
                self.explicit_hash_key_lookup
                    .insert_unique(slot.hash, index, |&i| hasher.hash_one(keys[i as usize]));
            }
            slot.index
        });
        self.entries.push(Entry {
            partition_key_index: pk.index,
            explicit_hash_key_index,
            data: data.clone(),
        });
        Ok(())
    }

    /// Adds a user record with no limit.
    pub fn add(&mut self, partition_key: &str, explicit_hash_key: Option<u128>, data: &Bytes) {
        let unlimited = AggregateLimits { max_size: usize::MAX, max_count: usize::MAX };
        // Cannot fail: nothing exceeds unlimited limits.
        let _ = self.try_add(partition_key, explicit_hash_key, data, unlimited);
    }

    /// The aggregated form of what was added (magic + protobuf + MD5 of the protobuf), whatever the count.
    /// [`finish`](Self::finish) uses it for two or more records; tools that always wrap can call it directly.
    pub fn to_aggregated_bytes(&self) -> Bytes {
        Bytes::from(self.encode(|_| {}))
    }

    /// Writes the aggregated form; `data_at` is told where each record's data starts, in the order added.
    fn encode(&self, mut data_at: impl FnMut(usize)) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.aggregated_len());
        out.put_slice(&MAGIC);
        for key in self.partition_keys.iter() {
            out.put_u8(TAG_PARTITION_KEY_TABLE);
            put_varint(&mut out, key.len() as u64);
            out.put_slice(key.as_bytes());
        }
        let mut digits = [0u8; 39];
        for &key in &self.explicit_hash_keys {
            let text = write_decimal(key, &mut digits);
            out.put_u8(TAG_EXPLICIT_HASH_KEY_TABLE);
            put_varint(&mut out, text.len() as u64);
            out.put_slice(text);
        }
        for entry in &self.entries {
            let mut record_len = 1 + varint_len(entry.partition_key_index) + field_len(entry.data.len());
            if let Some(index) = entry.explicit_hash_key_index {
                record_len += 1 + varint_len(index);
            }
            out.put_u8(TAG_RECORDS);
            put_varint(&mut out, record_len as u64);
            out.put_u8(TAG_PARTITION_KEY_INDEX);
            put_varint(&mut out, entry.partition_key_index);
            if let Some(index) = entry.explicit_hash_key_index {
                out.put_u8(TAG_EXPLICIT_HASH_KEY_INDEX);
                put_varint(&mut out, index);
            }
            out.put_u8(TAG_DATA);
            put_varint(&mut out, entry.data.len() as u64);
            data_at(out.len());
            out.put_slice(&entry.data);
        }
        let digest = Md5::digest(&out[MAGIC.len()..]);
        out.put_slice(&digest);
        debug_assert_eq!(out.len(), self.aggregated_len());
        out
    }

    /// Hash key of the first user record: its explicit hash key, else the MD5 of its partition key.
    fn first_hash_key(&self) -> Option<u128> {
        let first = self.entries.first()?;
        Some(match first.explicit_hash_key_index {
            Some(i) => self.explicit_hash_keys[i as usize],
            None => partition_key_hash(self.partition_keys.get(first.partition_key_index as usize)),
        })
    }

    /// Finishes the Kinesis record and empties the builder (keeping its allocations for reuse).
    /// Returns `None` if nothing was added.
    pub fn finish(&mut self) -> Option<KinesisRecord> {
        self.finish_with(None::<fn(usize, Bytes)>)
    }

    /// As [`finish`](Self::finish), and hands each record's data back, as `shared(index, data)` with the
    /// index in the order added, as a slice of the finished record's data (for a single record, its own
    /// data): a caller that keeps the user records until they are written can swap its copies for these, so
    /// that each record's data is held once, inside the aggregate, rather than twice. A slice keeps the
    /// whole aggregate (at most `AggregationMaxSize`) alive.
    pub fn finish_sharing(&mut self, shared: impl FnMut(usize, Bytes)) -> Option<KinesisRecord> {
        self.finish_with(Some(shared))
    }

    fn finish_with(&mut self, mut shared: Option<impl FnMut(usize, Bytes)>) -> Option<KinesisRecord> {
        let explicit_hash_key = self.first_hash_key()?;
        let record = if self.entries.len() == 1 {
            let entry = self.entries.swap_remove(0);
            if let Some(shared) = shared.as_mut() {
                shared(0, entry.data.clone());
            }
            KinesisRecord {
                partition_key: self.partition_keys.get(entry.partition_key_index as usize).to_owned(),
                explicit_hash_key,
                data: entry.data,
                user_records: 1,
            }
        } else {
            let data = match shared.as_mut() {
                Some(shared) => {
                    let mut data_starts = Vec::with_capacity(self.entries.len());
                    let data = Bytes::from(self.encode(|at| data_starts.push(at)));
                    for (index, (entry, start)) in self.entries.iter().zip(data_starts).enumerate() {
                        shared(index, data.slice(start..start + entry.data.len()));
                    }
                    data
                }
                None => self.to_aggregated_bytes(),
            };
            KinesisRecord {
                partition_key: AGGREGATE_PARTITION_KEY.to_owned(),
                explicit_hash_key,
                data,
                user_records: self.entries.len(),
            }
        };
        self.clear();
        Some(record)
    }

    /// Removes everything added.
    pub fn clear(&mut self) {
        self.partition_keys.clear();
        self.partition_key_lookup.clear();
        self.explicit_hash_keys.clear();
        self.explicit_hash_key_lookup.clear();
        self.entries.clear();
        self.protobuf_len = 0;
    }
}

/// Writes `value` in decimal into the end of `buf` and returns the digits.
fn write_decimal(mut value: u128, buf: &mut [u8; 39]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buf[start..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths() {
        for (value, len) in [(0, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3), (u64::MAX, 10)] {
            assert_eq!(varint_len(value), len, "{value}");
        }
    }

    #[test]
    fn decimal_digits() {
        let mut buf = [0u8; 39];
        for value in [0u128, 9, 10, 12345, u128::MAX] {
            let text = value.to_string();
            assert_eq!(write_decimal(value, &mut buf), text.as_bytes());
            assert_eq!(decimal_len(value), text.len());
        }
    }

    #[test]
    fn single_record_is_emitted_raw_with_its_own_key() {
        let mut builder = AggregateBuilder::new();
        let data = Bytes::from_static(b"hello");
        builder.add("key", None, &data);
        assert_eq!(builder.encoded_len(), 5);
        let record = builder.finish().expect("one record");
        assert_eq!(record.partition_key, "key");
        assert_eq!(record.explicit_hash_key, partition_key_hash("key"));
        assert_eq!(record.data, data);
        assert!(builder.is_empty());
        assert_eq!(builder.finish(), None);
    }

    #[test]
    fn aggregate_uses_outer_key_a_and_first_records_hash() {
        let mut builder = AggregateBuilder::new();
        builder.add("k1", Some(42), &Bytes::from_static(b"x"));
        builder.add("k2", None, &Bytes::from_static(b"y"));
        let predicted = builder.encoded_len();
        let record = builder.finish().expect("two records");
        assert_eq!(record.partition_key, "a");
        assert_eq!(record.explicit_hash_key, 42);
        assert_eq!(record.data.len(), predicted);
        assert_eq!(&record.data[..4], &MAGIC);
    }

    #[test]
    fn try_add_respects_size_and_count_exactly() {
        let data = Bytes::from(vec![7u8; 100]);
        let mut builder = AggregateBuilder::new();
        builder.add("a-key", None, &data);
        let encoded = builder.encoded_len_with("b-key", None, data.len());
        // The limit is on the Kinesis record: the aggregate plus its outer partition key "a".
        let exact = encoded + AGGREGATE_PARTITION_KEY.len();
        let too_small = AggregateLimits { max_size: exact - 1, max_count: 10 };
        assert_eq!(
            builder.try_add("b-key", None, &data, too_small),
            Err(AggregateFull { size_after: exact, count_after: 2 })
        );
        assert_eq!(builder.len(), 1);
        let by_count = AggregateLimits { max_size: exact, max_count: 1 };
        assert!(builder.try_add("b-key", None, &data, by_count).is_err());
        let fits = AggregateLimits { max_size: exact, max_count: 2 };
        assert_eq!(builder.try_add("b-key", None, &data, fits), Ok(()));
        assert_eq!(builder.encoded_len(), encoded);
        let record = builder.finish().expect("two records");
        assert_eq!(record.partition_key.len() + record.data.len(), exact);
    }

    #[test]
    fn oversized_record_is_accepted_alone() {
        let mut builder = AggregateBuilder::new();
        let limits = AggregateLimits { max_size: 64, max_count: 10 };
        let big = Bytes::from(vec![0u8; 1000]);
        assert_eq!(builder.try_add("k", None, &big, limits), Ok(()));
        assert!(builder.try_add("k", None, &Bytes::from_static(b"x"), limits).is_err());
    }

    #[test]
    fn repeated_keys_are_stored_once() {
        let mut builder = AggregateBuilder::new();
        let data = Bytes::from_static(b"d");
        builder.add("same", Some(7), &data);
        let before = builder.aggregated_len();
        builder.add("same", Some(7), &data);
        // A repeat costs only the record: tag + len + pk index + ehk index + data field = 1+1+2+2+3.
        assert_eq!(builder.aggregated_len() - before, 9);
    }

    #[test]
    fn finish_sharing_hands_back_each_records_data_as_a_slice_of_the_aggregate() {
        let mut builder = AggregateBuilder::new();
        let records: Vec<Bytes> =
            vec![Bytes::from_static(b"first"), Bytes::new(), Bytes::from_static(b"third!")];
        for (n, data) in records.iter().enumerate() {
            builder.add(&format!("key-{n}"), None, data);
        }
        let mut shared = Vec::new();
        let record = builder.finish_sharing(|index, data| shared.push((index, data))).expect("three records");
        assert_eq!(shared.iter().map(|(index, _)| *index).collect::<Vec<_>>(), vec![0, 1, 2]);
        let aggregate = record.data.as_ptr_range();
        for ((_, data), original) in shared.iter().zip(&records) {
            assert_eq!(data, original);
            assert!(aggregate.contains(&data.as_ptr()) || data.is_empty(), "a slice of the aggregate");
        }
        // Alone, a record is its own data.
        builder.add("alone", None, &records[0]);
        let mut alone = Vec::new();
        let record = builder.finish_sharing(|index, data| alone.push((index, data))).expect("one record");
        assert_eq!(alone, vec![(0, records[0].clone())]);
        assert_eq!(record.data, records[0]);
    }
}
