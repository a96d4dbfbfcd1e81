//! What the wire-format and MD5 benchmarks share.

/// A UUID-looking 36-byte key, distinct for each `n`.
pub fn uuid_like(n: u64) -> String {
    let x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        x >> 32,
        (x >> 16) & 0xffff,
        x & 0xfff,
        n & 0xfff,
        n & 0xffff_ffff_ffff
    )
}
