//! A migration's checksum computed while the file is read, in constant memory.
//!
//! The checksum is the SHA-256 of the normalised content ([`crate::migrations::normalise`]:
//! a leading UTF-8 byte-order mark dropped, every CRLF turned into LF). The read-only gate
//! needs nothing else from a file, so it hashes through one fixed buffer: its peak memory is
//! the same for a 1 KB file and a 50 MB one. A `\r` that ends one buffer is held back until
//! the next shows whether a `\n` follows.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Bytes read at a time.
const BUFFER: usize = 64 * 1024;

/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// The checksum of the file at `path`, equal to
/// `checksum_of(&normalise(content))` ([`crate::migrations::checksum_of`]).
///
/// Errors: the file cannot be opened or read.
pub fn of_file(path: &Path) -> std::io::Result<String> {
    of_reader(std::fs::File::open(path)?)
}

thread_local! {
    /// Each thread's buffer, made once: the gate hashes hundreds of small files on every
    /// deployment, and zeroing a fresh 64 KiB for each was the top symbol of its profile.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; BUFFER]);
}

/// [`of_file`] over any reader.
pub fn of_reader(reader: impl Read) -> std::io::Result<String> {
    READ_BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut buffer) => hash_through(reader, &mut buffer),
        // Not reached (nothing here calls itself); a buffer of its own all the same.
        Err(_) => hash_through(reader, &mut vec![0u8; BUFFER]),
    })
}

/// Hashes what `reader` gives, normalised, through `buffer`.
fn hash_through(mut reader: impl Read, buffer: &mut [u8]) -> std::io::Result<String> {
    let mut hasher = Normalising::default();
    let mut first = true;
    loop {
        let filled = fill(&mut reader, buffer)?;
        let mut chunk = &buffer[..filled];
        if first {
            // `fill` gives a full buffer unless the file ends first, so a BOM is whole here.
            chunk = chunk.strip_prefix(BOM).unwrap_or(chunk);
            first = false;
        }
        hasher.update(chunk);
        if filled < buffer.len() {
            return Ok(hasher.finish());
        }
    }
}

/// Reads until `buffer` is full or the input ends; returns the bytes read.
fn fill(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// SHA-256 of a byte stream with every CRLF turned into LF.
#[derive(Default)]
struct Normalising {
    sha: Sha256,
    /// The previous chunk ended with a `\r` that is not hashed yet.
    pending_cr: bool,
}

impl std::fmt::Debug for Normalising {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Normalising")
            .field("pending_cr", &self.pending_cr)
            .finish_non_exhaustive()
    }
}

impl Normalising {
    fn update(&mut self, mut rest: &[u8]) {
        if rest.is_empty() {
            return;
        }
        if std::mem::take(&mut self.pending_cr) && rest[0] != b'\n' {
            // A lone `\r` stays (it is an edit); before a `\n` it is dropped.
            self.sha.update(b"\r");
        }
        while let Some(at) = rest.iter().position(|&b| b == b'\r') {
            self.sha.update(&rest[..at]);
            match rest.get(at + 1) {
                Some(b'\n') => {}
                Some(_) => self.sha.update(b"\r"),
                None => {
                    self.pending_cr = true;
                    return;
                }
            }
            rest = &rest[at + 1..];
        }
        self.sha.update(rest);
    }

    fn finish(mut self) -> String {
        if self.pending_cr {
            self.sha.update(b"\r");
        }
        crate::migrations::hex(&self.sha.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::{checksum_of, normalise};
    use proptest::prelude::*;

    /// A reader that hands out at most `step` bytes per read, to cut `\r\n` and the BOM
    /// across reads.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn expected(text: &str) -> String {
        checksum_of(&normalise(text))
    }

    #[test]
    fn bom_and_crlf_are_normalised_as_for_running() {
        for text in [
            "",
            "\u{feff}",
            "\u{feff}SELECT 1;\r\n",
            "a\r",
            "a\r\r\nb",
            "\r\n\r\n",
            "x\u{feff}",
        ] {
            assert_eq!(
                of_reader(text.as_bytes()).unwrap(),
                expected(text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_crlf_across_two_buffers_is_one_line_break() {
        let mut text = "x".repeat(BUFFER - 1);
        text.push_str("\r\nSELECT 1;\r");
        assert_eq!(of_reader(text.as_bytes()).unwrap(), expected(&text));
        let mut lone = "x".repeat(BUFFER - 1);
        lone.push_str("\rSELECT 1;");
        assert_eq!(of_reader(lone.as_bytes()).unwrap(), expected(&lone));
    }

    proptest! {
        #[test]
        fn streaming_equals_hashing_the_whole_text(
            text in "(\u{feff})?[a\r\n\u{feff}é]{0,300}",
            step in 1usize..7,
        ) {
            let reader = Trickle { bytes: text.as_bytes(), step };
            prop_assert_eq!(of_reader(reader).unwrap(), expected(&text));
        }
    }
}
