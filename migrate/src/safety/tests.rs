//! One test per rule: a file that triggers it and one that does not.
