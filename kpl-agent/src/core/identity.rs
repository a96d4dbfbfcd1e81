//! File identity: (device, inode) plus a fingerprint of the file's first bytes.
//!
//! (device, inode) alone is what the Kinesis Agent uses, and it is fooled twice: a copytruncate keeps the
//! inode while the content changes, and a deleted file's inode is soon given to a new file. The fingerprint
//! (an MD5 of the first `min(size, 1 KiB)` bytes, stored with that length, as Filebeat's `fingerprint`
//! identity does) tells those cases apart.

use md5::{Digest, Md5};

/// How many leading bytes the fingerprint covers at most (1 KiB, Filebeat's default).
pub const FINGERPRINT_MAX_LEN: usize = 1024;

/// A file's (device, inode): what `stat` gives as `st_dev` and `st_ino`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    /// The device (`st_dev`).
    pub dev: u64,
    /// The inode (`st_ino`).
    pub ino: u64,
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

/// An MD5 of a file's first `len` bytes (`len` ≤ [`FINGERPRINT_MAX_LEN`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// How many leading bytes were hashed.
    pub len: u32,
    /// Their MD5.
    pub digest: [u8; 16],
}

impl Fingerprint {
    /// The fingerprint of `head`, a file's first bytes (only the first [`FINGERPRINT_MAX_LEN`] count).
    pub fn of(head: &[u8]) -> Fingerprint {
        let head = &head[..head.len().min(FINGERPRINT_MAX_LEN)];
        // `head` is at most 1 KiB, so its length fits.
        Fingerprint { len: head.len() as u32, digest: Md5::digest(head).into() }
    }

    /// Whether a file whose first bytes are `head` starts with the bytes this fingerprint was taken of (it
    /// has at least `len` bytes, and their MD5 is `digest`). A file that grew still matches.
    pub fn matches(&self, head: &[u8]) -> bool {
        let len = self.len as usize;
        head.len() >= len && Md5::digest(&head[..len]).as_slice() == self.digest
    }

    /// Whether it covers the full [`FINGERPRINT_MAX_LEN`] bytes: only then is a match between two different
    /// files taken as "same content" (short heads, such as one identical first line, are too common).
    pub fn is_full(&self) -> bool {
        self.len as usize == FINGERPRINT_MAX_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_matches_the_same_head_and_a_grown_file_but_not_other_content() {
        let print = Fingerprint::of(b"first line\n");
        assert!(print.matches(b"first line\n"));
        assert!(print.matches(b"first line\nsecond line\n"));
        assert!(!print.matches(b"first line"));
        assert!(!print.matches(b"other line\n"));
        assert!(!print.is_full());
    }

    #[test]
    fn only_the_first_kibibyte_counts() {
        let mut long = vec![b'a'; 3000];
        let print = Fingerprint::of(&long);
        assert_eq!(print.len, 1024);
        assert!(print.is_full());
        long[2000] = b'b';
        assert!(print.matches(&long));
        long[10] = b'b';
        assert!(!print.matches(&long));
    }
}
