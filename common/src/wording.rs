//! Counted nouns in messages: "1 file", "2 files". An operator reading "1 files" at 3 a.m.
//! wonders what else was meant.

/// `n` and `noun`, with an `s` unless `n` is 1. Every noun the tools count takes a plain `s`.
///
/// ```
/// use common::wording::counted;
/// assert_eq!(counted(1, "migration"), "1 migration");
/// assert_eq!(counted(0, "file"), "0 files");
/// ```
pub fn counted(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}
