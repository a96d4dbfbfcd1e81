//! MD5 implementations side by side, on the two inputs the KPL format hashes: 36-byte partition keys (one
//! MD5 block each: the hash key of every user record) and 100 KiB aggregates (the checksum of every
//! aggregated Kinesis record).
//!
//! ```sh
//! cargo bench -p kpl-deagg --bench md5                 # 15 rounds
//! cargo bench -p kpl-deagg --bench md5 -- rounds=41    # more rounds
//! ```
//!
//! Time is the thread's time on a CPU (Linux's `/proc/thread-self/schedstat`; elsewhere wall time), so that
//! time spent descheduled while neighbours build on the shared cores does not count. Each round times every
//! implementation once, in a rotating order, so that what remains of the neighbours' load (caches, the
//! sibling hyperthread) weighs on all of them alike; the figures are medians over the rounds, and each ratio
//! is the median of the per-round ratios against the first implementation listed. Every implementation is first
//! checked against RFC 1321's test suite and against the first on the benchmark's own inputs. Measures only:
//! asserts nothing about speed.
//!
//! What it found (issue 12, five runs of 21–41 rounds on the project's 2-vCPU Xeon, with neighbours
//! building): per 100-byte user record (its key, plus its 145 B of aggregate), md-5 0.10 with `asm` came to
//! 0.95 of md-5 0.11's rate, `md5` 0.8 to 1.00 and `chksum-md5` 0.1 to 0.86. md-5 0.10's assembly is
//! 0.87–1.04 x on keys and 0.93–1.00 x on aggregates: not the +12–18 % measured earlier on a quiet machine.
//! `md5` 0.8 is 1.08–1.27 x on keys (less set-up per one-block digest) and 0.93–0.96 x on aggregates. So the
//! workspace keeps md-5 0.11. (md-5 0.10's `asm` builds here: the `cc` crate assembles its `.S` file with the
//! system's C compiler, gcc 12.)

mod support;

use std::hint::black_box;
use std::time::Instant;

use support::uuid_like;

/// An MD5 implementation under test.
struct Implementation {
    name: &'static str,
    digest: fn(&[u8]) -> [u8; 16],
}

const IMPLEMENTATIONS: &[Implementation] = &[
    Implementation { name: "md-5 0.11", digest: |bytes| md5::Md5::digest_of(bytes) },
    Implementation { name: "md-5 0.10 asm", digest: |bytes| md5_010::Md5::digest_of(bytes) },
    Implementation { name: "md5 0.8", digest: |bytes| md5_stainless::compute(bytes).0 },
    Implementation { name: "chksum-md5 0.1", digest: |bytes| chksum_md5::hash(bytes).into_inner() },
];

/// The two RustCrypto versions implement different `digest` traits; one call shape for both.
trait DigestOf {
    fn digest_of(bytes: &[u8]) -> [u8; 16];
}

impl DigestOf for md5::Md5 {
    fn digest_of(bytes: &[u8]) -> [u8; 16] {
        <md5::Md5 as md5::Digest>::digest(bytes).into()
    }
}

impl DigestOf for md5_010::Md5 {
    fn digest_of(bytes: &[u8]) -> [u8; 16] {
        <md5_010::Md5 as md5_010::Digest>::digest(bytes).into()
    }
}

/// RFC 1321, appendix A.5.
const RFC_1321: &[(&str, &str)] = &[
    ("", "d41d8cd98f00b204e9800998ecf8427e"),
    ("a", "0cc175b9c0f1b6a831c399e269772661"),
    ("abc", "900150983cd24fb0d6963f7d28e17f72"),
    ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
    ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
    ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
    (
        "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
        "57edf4a22be3c955ac49da2e2107b67a",
    ),
];

/// Distinct partition keys hashed per timing.
const KEYS: usize = 100_000;
/// Bytes of one aggregate.
const AGGREGATE_SIZE: usize = 100 * 1024;
/// Aggregates hashed per timing.
const AGGREGATES: usize = 200;
/// Bytes a 100-byte user record with a 36-byte key adds to an aggregate (its data, its key in the key
/// table, the protobuf framing; `kpl bench` and performance.md: 144.7 B).
const AGGREGATE_BYTES_PER_RECORD: f64 = 145.0;

fn hex(digest: &[u8; 16]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Nanoseconds this thread has run on a CPU, where Linux tells it.
fn on_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

/// Seconds to hash every input once: on a CPU where known, else wall time.
fn time(digest: fn(&[u8]) -> [u8; 16], inputs: &[&[u8]]) -> f64 {
    let (started, cpu_started) = (Instant::now(), on_cpu_ns());
    let mut acc = 0u8;
    for input in inputs {
        acc ^= digest(black_box(input))[0];
    }
    black_box(acc);
    match (cpu_started, on_cpu_ns()) {
        (Some(before), Some(after)) => (after - before) as f64 / 1e9,
        _ => started.elapsed().as_secs_f64(),
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `rounds=N`; other arguments (cargo's `--bench`, criterion's options for the other benchmark) are not ours.
    let rounds: usize =
        std::env::args().find_map(|a| a.strip_prefix("rounds=")?.parse().ok()).unwrap_or(15).max(1);
    let keys: Vec<String> = (0..KEYS as u64).map(uuid_like).collect();
    assert!(keys.iter().all(|key| key.len() == 36));
    let aggregate: Vec<u8> = (0..AGGREGATE_SIZE).map(|i| (i * 7 + i / 251) as u8).collect();
    let workloads: [(&str, Vec<&[u8]>, usize); 2] = [
        ("36 B partition keys", keys.iter().map(|key| key.as_bytes()).collect(), 36),
        ("100 KiB aggregates", vec![&aggregate[..]; AGGREGATES], AGGREGATE_SIZE),
    ];

    for implementation in IMPLEMENTATIONS {
        for (input, expected) in RFC_1321 {
            assert_eq!(hex(&(implementation.digest)(input.as_bytes())), *expected, "{}", implementation.name);
        }
        for (_, inputs, _) in &workloads {
            for input in inputs.iter().step_by(997) {
                assert_eq!((implementation.digest)(input), (IMPLEMENTATIONS[0].digest)(input));
            }
        }
    }

    // Median seconds per hash, [workload][implementation].
    let mut per_hash = Vec::new();
    for (workload, inputs, size) in &workloads {
        // seconds[implementation][round]
        let mut seconds = vec![Vec::with_capacity(rounds); IMPLEMENTATIONS.len()];
        for round in 0..rounds {
            for k in 0..IMPLEMENTATIONS.len() {
                let which = (round + k) % IMPLEMENTATIONS.len();
                seconds[which].push(time(IMPLEMENTATIONS[which].digest, inputs));
            }
        }
        println!("{workload}: {} hashes per timing, {rounds} rounds", inputs.len());
        for (implementation, times) in IMPLEMENTATIONS.iter().zip(&seconds) {
            let mut ratios: Vec<f64> = seconds[0].iter().zip(times).map(|(base, t)| base / t).collect();
            let per_second = inputs.len() as f64 / median(&mut times.clone());
            println!(
                "  {:<15} {:>10.0} hashes/s {:>8.1} MB/s   {:.3} x {}",
                implementation.name,
                per_second,
                per_second * *size as f64 / 1e6,
                median(&mut ratios),
                IMPLEMENTATIONS[0].name,
            );
        }
        per_hash.push(seconds.iter().map(|times| median(&mut times.clone()) / inputs.len() as f64).collect());
    }

    let per_hash: &[Vec<f64>] = &per_hash;
    println!(
        "MD5 floor of a 100 B user record: its key's digest plus {AGGREGATE_BYTES_PER_RECORD} B of aggregate"
    );
    let floor =
        |k: usize| per_hash[0][k] + per_hash[1][k] / AGGREGATE_SIZE as f64 * AGGREGATE_BYTES_PER_RECORD;
    for (k, implementation) in IMPLEMENTATIONS.iter().enumerate() {
        println!(
            "  {:<15} {:>6.1} ns   {:.3} x {}",
            implementation.name,
            floor(k) * 1e9,
            floor(0) / floor(k),
            IMPLEMENTATIONS[0].name
        );
    }
}
