//! `lint --since REV`: only the files new since REV are linted for safety.
//!
//! A file that exists at REV is immutable (the append-only check of `lint --since` sees to
//! that) and has run in production already: a finding in it could only be silenced by
//! editing it, which is not allowed. So the safety lint looks at the new files only.

use std::path::Path;
use std::process::Command;

/// The names of the `.sql` files directly in `dir` at git revision `rev`; `None` when git
/// cannot say (not a work tree, unknown revision): the append-only check reports that, and
/// the safety lint then looks at every file.
pub fn files_at(dir: &Path, rev: &str) -> Option<Vec<String>> {
    if rev.starts_with('-') {
        return None;
    }
    // Run in the directory, `ls-tree` takes the path `.` relative to it and prints names
    // relative to it too. A directory that did not exist at `rev` lists nothing.
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["ls-tree", "-z", "--name-only", rev, "--", "."])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(
        output
            .stdout
            .split(|&b| b == 0)
            .filter_map(|name| std::str::from_utf8(name).ok())
            .filter(|name| name.ends_with(".sql") && !name.contains('/'))
            .map(str::to_string)
            .collect(),
    )
}
