//! Golden vectors for the aggregation wire format, checked against an independent implementation: the
//! `aws-kinesis-agg` package from PyPI, run through `tests/py/agg_oracle.py` in a virtualenv the test creates
//! itself (see `kpl_tests::python`).
//!
//! - Our encoder's output equals the checked-in `tests/golden/<case>.hex`, with or without Python.
//! - aws-kinesis-agg builds the very same bytes for every case, and the golden files are its output.
//! - We decode its blobs, and it decodes ours, back into the inputs.
//!
//! aws-kinesis-agg always wraps, even a single record, so the byte comparison uses
//! [`AggregateBuilder::to_aggregated_bytes`]; `finish()` emits one record raw (as the KPL does), checked
//! separately. Outer partition and explicit hash keys differ by design (the KPL's "a" and the first record's
//! hash key, against the first record's own keys), so only blobs are compared.
//!
//! Run with `KPL_UPDATE_GOLDEN=1` to rewrite the golden files from aws-kinesis-agg's output.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on what they do not expect.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use kpl_deagg::{AggregateBuilder, Deaggregator, Mode, ReceivedRecord, partition_key_hash};
use kpl_tests::python::{AWS_KINESIS_AGG, PythonEnv};
use kpl_tests::{from_hex, to_hex, workspace_root};

#[derive(Debug, Clone)]
struct Input {
    partition_key: String,
    explicit_hash_key: Option<u128>,
    data: Vec<u8>,
}

struct Case {
    name: &'static str,
    records: Vec<Input>,
}

fn rec(partition_key: &str, explicit_hash_key: Option<u128>, data: impl Into<Vec<u8>>) -> Input {
    Input { partition_key: partition_key.to_owned(), explicit_hash_key, data: data.into() }
}

/// Deterministic bytes of length `len`.
fn filler(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn cases() -> Vec<Case> {
    let key_256_chars: String = "ключ🔑".chars().cycle().take(256).collect();
    vec![
        Case {
            name: "distinct_keys",
            records: (0..5).map(|i| rec(&format!("key-{i}"), None, format!("value-{i}"))).collect(),
        },
        Case {
            name: "repeated_keys",
            records: ["a", "b", "a", "c", "b", "a"]
                .iter()
                .enumerate()
                .map(|(i, k)| rec(k, None, format!("d{i}")))
                .collect(),
        },
        Case {
            name: "explicit_hash_keys",
            records: vec![
                rec("e1", Some(0), "zero"),
                rec("e2", Some(u128::MAX), "max"),
                rec("e3", Some(1 << 127), "half"),
                rec("e4", Some(0), "zero again"),
                rec("e5", None, "none"),
                rec("e6", Some(u128::MAX), "max again"),
            ],
        },
        Case {
            name: "key_with_and_without_explicit_hash_key",
            records: vec![
                rec("shared", Some(5), "with 5"),
                rec("shared", None, "without"),
                rec("shared", Some(5), "with 5 again"),
                rec("shared", Some(6), "with 6"),
                rec("other", None, "other without"),
            ],
        },
        Case {
            name: "empty_data",
            records: vec![rec("x", None, ""), rec("y", Some(1), ""), rec("x", None, "")],
        },
        Case {
            name: "long_data",
            records: vec![
                rec("l127", None, filler(127, 1)),
                rec("l128", None, filler(128, 2)),
                rec("l300", Some(300), filler(300, 3)),
                rec("l16384", None, filler(16_384, 4)),
                rec("l0", None, ""),
            ],
        },
        Case {
            name: "non_ascii_keys",
            records: vec![
                rec("ключ-🔑", None, "cyrillic and emoji"),
                rec("日本語のキー", Some(12_345), "cjk"),
                rec("\u{e9}", None, "precomposed e acute"),
                rec("e\u{301}", None, "decomposed e acute"),
                rec("🔑", None, "emoji only"),
                rec("ключ-🔑", None, "cyrillic and emoji again"),
            ],
        },
        Case { name: "max_length_key", records: vec![rec(&key_256_chars, None, "a"), rec("b", None, "b")] },
        Case { name: "one_record", records: vec![rec("only", None, "the only record")] },
        Case { name: "one_record_with_explicit_hash_key", records: vec![rec("only", Some(42), "")] },
        Case {
            name: "hundreds_of_records",
            // 300 records, 150 distinct partition keys and 200 distinct explicit hash keys: table indices
            // reach two varint bytes in both tables.
            records: (0..300u32)
                .map(|i| {
                    let key = format!("pk-{:04}", i % 150);
                    let explicit_hash_key = (i % 3 != 0).then(|| u128::from(i) * 1_000_003 + (1 << 100));
                    rec(&key, explicit_hash_key, filler((i % 50) as usize, i as u8))
                })
                .collect(),
        },
    ]
}

fn build(case: &Case) -> AggregateBuilder {
    let mut builder = AggregateBuilder::new();
    for input in &case.records {
        builder.add(&input.partition_key, input.explicit_hash_key, &Bytes::from(input.data.clone()));
    }
    builder
}

fn golden_path(name: &str) -> PathBuf {
    workspace_root().join("tests/golden").join(format!("{name}.hex"))
}

fn oracle_script() -> PathBuf {
    workspace_root().join("tests/py/agg_oracle.py")
}

fn python() -> PythonEnv {
    PythonEnv::ensure(&AWS_KINESIS_AGG).unwrap_or_else(|error| {
        panic!("cannot set up the aws-kinesis-agg reference environment (this test never skips):\n{error}")
    })
}

/// A JSON string of ASCII text that needs no escaping.
fn json_str(text: &str) -> String {
    assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{text}");
    format!("\"{text}\"")
}

/// aws-kinesis-agg's aggregated record for each case, by name.
fn python_blobs(env: &PythonEnv) -> BTreeMap<String, Vec<u8>> {
    let cases: Vec<String> = cases()
        .iter()
        .map(|case| {
            let records: Vec<String> = case
                .records
                .iter()
                .map(|r| {
                    let ehk = r.explicit_hash_key.map_or("null".to_owned(), |k| json_str(&k.to_string()));
                    format!(
                        "{{\"pk_hex\":{},\"ehk\":{ehk},\"data_hex\":{}}}",
                        json_str(&to_hex(r.partition_key.as_bytes())),
                        json_str(&to_hex(&r.data))
                    )
                })
                .collect();
            format!("{{\"name\":{},\"records\":[{}]}}", json_str(case.name), records.join(","))
        })
        .collect();
    let request = format!("{{\"op\":\"aggregate\",\"cases\":[{}]}}", cases.join(","));
    let output = env.run_script(&oracle_script(), &request).unwrap_or_else(|e| panic!("{e}"));
    let blobs: BTreeMap<String, Vec<u8>> = output
        .lines()
        .map(|line| {
            let (name, hex) = line.split_once('\t').unwrap_or_else(|| panic!("bad oracle line {line:?}"));
            (name.to_owned(), from_hex(hex).unwrap())
        })
        .collect();
    assert_eq!(blobs.len(), cases.len(), "oracle output:\n{output}");
    blobs
}

/// One user record as aws-kinesis-agg's deaggregator reports it.
#[derive(Debug, PartialEq, Eq)]
struct PyRecord {
    sub_sequence_number: u64,
    aggregated: bool,
    partition_key: String,
    /// From the sub-record's own `explicit_hash_key_index`.
    explicit_hash_key: Option<String>,
    /// As the deaggregator reports it (wrong for sub-records without one, see the oracle's notes).
    reported_explicit_hash_key: Option<String>,
    data: Vec<u8>,
}

/// aws-kinesis-agg's deaggregation of each blob, by name.
fn python_deaggregate(env: &PythonEnv, blobs: &[(String, Vec<u8>)]) -> BTreeMap<String, Vec<PyRecord>> {
    let items: Vec<String> = blobs
        .iter()
        .map(|(name, blob)| format!("{{\"name\":{},\"hex\":{}}}", json_str(name), json_str(&to_hex(blob))))
        .collect();
    let request = format!("{{\"op\":\"deaggregate\",\"blobs\":[{}]}}", items.join(","));
    let output = env.run_script(&oracle_script(), &request).unwrap_or_else(|e| panic!("{e}"));
    let mut out: BTreeMap<String, Vec<PyRecord>> = BTreeMap::new();
    let optional = |text: &str| (text != "-").then(|| text.to_owned());
    for line in output.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 7, "bad oracle line {line:?}");
        out.entry(fields[0].to_owned()).or_default().push(PyRecord {
            sub_sequence_number: fields[1].parse().unwrap(),
            aggregated: fields[2] == "1",
            partition_key: String::from_utf8(from_hex(fields[3]).unwrap()).unwrap(),
            explicit_hash_key: optional(fields[4]),
            reported_explicit_hash_key: optional(fields[5]),
            data: from_hex(fields[6]).unwrap(),
        });
    }
    out
}

#[test]
fn the_cases_cover_the_edge_cases() {
    let every_case = cases();
    let all: Vec<&Input> = every_case.iter().flat_map(|c| &c.records).collect();
    let has = |f: &dyn Fn(&Input) -> bool| all.iter().any(|r| f(r));
    assert!(has(&|r| r.explicit_hash_key == Some(0)));
    assert!(has(&|r| r.explicit_hash_key == Some(u128::MAX)));
    assert!(has(&|r| r.data.is_empty()));
    assert!(has(&|r| r.data.len() >= 128));
    assert!(has(&|r| r.data.len() >= 16_384));
    assert!(has(&|r| !r.partition_key.is_ascii()));
    assert!(has(&|r| r.partition_key.chars().count() == 256));
    let hundreds = cases().into_iter().find(|c| c.name == "hundreds_of_records").unwrap();
    let distinct = |f: fn(&Input) -> Option<String>| {
        hundreds.records.iter().filter_map(f).collect::<std::collections::BTreeSet<_>>().len()
    };
    assert!(distinct(|r| Some(r.partition_key.clone())) >= 128);
    assert!(distinct(|r| r.explicit_hash_key.map(|k| k.to_string())) >= 128);
    let shared = cases().into_iter().find(|c| c.name == "key_with_and_without_explicit_hash_key").unwrap();
    assert!(shared.records.iter().any(|r| r.partition_key == "shared" && r.explicit_hash_key.is_some()));
    assert!(shared.records.iter().any(|r| r.partition_key == "shared" && r.explicit_hash_key.is_none()));
}

#[test]
fn our_encoder_matches_the_golden_files() {
    for case in cases() {
        let ours = build(&case).to_aggregated_bytes();
        let path = golden_path(case.name);
        let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (generate with KPL_UPDATE_GOLDEN=1 cargo test -p kpl-tests)", path.display())
        });
        assert_eq!(
            to_hex(&ours),
            golden.trim(),
            "case {}: our encoder differs from the golden file",
            case.name
        );
    }
}

#[test]
fn aws_kinesis_agg_builds_the_same_bytes() {
    let env = python();
    let blobs = python_blobs(&env);
    if std::env::var_os("KPL_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(workspace_root().join("tests/golden")).unwrap();
        for (name, blob) in &blobs {
            std::fs::write(golden_path(name), format!("{}\n", to_hex(blob))).unwrap();
        }
    }
    for case in cases() {
        let theirs = &blobs[case.name];
        let builder = build(&case);
        let ours = builder.to_aggregated_bytes();
        assert_eq!(
            to_hex(&ours),
            to_hex(theirs),
            "case {}: our blob differs from aws-kinesis-agg's",
            case.name
        );
        assert_eq!(builder.aggregated_len(), theirs.len(), "case {}: predicted size", case.name);
        let golden = std::fs::read_to_string(golden_path(case.name)).unwrap();
        assert_eq!(
            golden.trim(),
            to_hex(theirs),
            "case {}: golden file is not aws-kinesis-agg's output",
            case.name
        );
    }
}

#[test]
fn we_decode_aws_kinesis_agg_blobs() {
    let env = python();
    let blobs = python_blobs(&env);
    for case in cases() {
        let received = ReceivedRecord {
            data: Bytes::from(blobs[case.name].clone()),
            partition_key: case.records[0].partition_key.clone(),
            explicit_hash_key: None,
            sequence_number: "7".to_owned(),
        };
        let decoded: Vec<_> = Deaggregator::new(Mode::Strict)
            .deaggregate(received)
            .unwrap_or_else(|e| panic!("case {}: {e}", case.name))
            .collect();
        assert_eq!(decoded.len(), case.records.len(), "case {}", case.name);
        for (position, (out, input)) in decoded.iter().zip(&case.records).enumerate() {
            let context = format!("case {} record {position}", case.name);
            assert_eq!(&*out.partition_key, input.partition_key, "{context}");
            assert_eq!(
                out.explicit_hash_key,
                input.explicit_hash_key.map(|k| Arc::from(k.to_string())),
                "{context}"
            );
            let hash_key =
                input.explicit_hash_key.unwrap_or_else(|| partition_key_hash(&input.partition_key));
            assert_eq!(out.hash_key, hash_key, "{context}");
            assert_eq!(out.data[..], input.data[..], "{context}");
            assert_eq!(out.sub_sequence_number, position as u64, "{context}");
            assert!(out.aggregated, "{context}");
        }
    }
}

#[test]
fn aws_kinesis_agg_decodes_our_blobs() {
    let env = python();
    let mut blobs = Vec::new();
    for case in cases() {
        let mut builder = build(&case);
        blobs.push((format!("{}-wrapped", case.name), builder.to_aggregated_bytes().to_vec()));
        let finished = builder.finish().unwrap();
        blobs.push((format!("{}-finished", case.name), finished.data.to_vec()));
    }
    let decoded = python_deaggregate(&env, &blobs);
    for case in cases() {
        let wrapped = &decoded[&format!("{}-wrapped", case.name)];
        assert_eq!(wrapped.len(), case.records.len(), "case {}", case.name);
        for (position, (theirs, input)) in wrapped.iter().zip(&case.records).enumerate() {
            let context = format!("case {} record {position}", case.name);
            let explicit_hash_key = input.explicit_hash_key.map(|k| k.to_string());
            assert_eq!(theirs.sub_sequence_number, position as u64, "{context}");
            assert!(theirs.aggregated, "{context}");
            assert_eq!(theirs.partition_key, input.partition_key, "{context}");
            assert_eq!(theirs.explicit_hash_key, explicit_hash_key, "{context}");
            if explicit_hash_key.is_some() {
                assert_eq!(theirs.reported_explicit_hash_key, explicit_hash_key, "{context}");
            }
            assert_eq!(theirs.data, input.data, "{context}");
        }
        let finished = &decoded[&format!("{}-finished", case.name)];
        if let [only] = case.records.as_slice() {
            // Emitted raw, so it is a plain record to any consumer.
            assert_eq!(finished.len(), 1, "case {}", case.name);
            assert!(!finished[0].aggregated, "case {}", case.name);
            assert_eq!(finished[0].data, only.data, "case {}", case.name);
        } else {
            assert_eq!(finished, wrapped, "case {}", case.name);
        }
    }
}

#[test]
fn finish_emits_a_single_record_raw() {
    for case in cases().into_iter().filter(|c| c.records.len() == 1) {
        let only = &case.records[0];
        let mut builder = build(&case);
        let wrapped = builder.to_aggregated_bytes();
        let record = builder.finish().unwrap();
        assert_eq!(record.data[..], only.data[..], "case {}", case.name);
        assert_ne!(record.data, wrapped);
        assert_eq!(record.partition_key, only.partition_key);
        assert_eq!(
            record.explicit_hash_key,
            only.explicit_hash_key.unwrap_or_else(|| partition_key_hash(&only.partition_key))
        );
        assert_eq!(record.user_records, 1);
    }
    for case in cases().into_iter().filter(|c| c.records.len() > 1) {
        let mut builder = build(&case);
        let wrapped = builder.to_aggregated_bytes();
        let record = builder.finish().unwrap();
        assert_eq!(record.data, wrapped, "case {}", case.name);
        assert_eq!(record.partition_key, "a");
    }
}
