//! Support for the workspace-level tests in `tests/tests/`: locating the workspace, and setting up the Python
//! environments that hold the reference implementations the tests compare against ([`python`]).
//!
//! The README's test command is plain `cargo test --workspace`, so a test that needs an outside tool installs
//! it itself, idempotently and safely when several test processes start at once, and fails loudly (never
//! skips) when it cannot.

use std::path::PathBuf;

pub mod install;
#[cfg(feature = "kinesalite")]
pub mod kinesalite;
pub mod python;
pub mod sim;

/// The workspace root (the directory holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let tests_crate = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    tests_crate.parent().map_or(tests_crate.clone(), PathBuf::from)
}

/// Lowercase hexadecimal of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

/// Bytes from hexadecimal (either case; surrounding whitespace ignored).
pub fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim().as_bytes();
    if !text.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", text.len()));
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(format!("not a hex digit: {:?}", char::from(c))),
    };
    text.chunks_exact(2).map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&bytes)), Ok(bytes));
        assert_eq!(from_hex("  0aFf\n"), Ok(vec![0x0a, 0xff]));
        assert!(from_hex("abc").is_err());
        assert!(from_hex("zz").is_err());
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("kpl-deagg").is_dir());
    }
}
