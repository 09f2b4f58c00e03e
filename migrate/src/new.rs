//! `migrate new NAME`: creates the next migration file, offline.
//!
//! The name follows the directory rules of `common::migrations` (`<digits>_<name>.sql`,
//! `<name>` in `[a-z0-9_]`, one prefix width): the prefix is the highest one in the directory
//! plus one, zero-padded to the directory's width, `001` in an empty directory (SPEC.md,
//! `migrate new`). A directory that `lint` does not pass is refused, so that a new file is
//! never numbered after a broken or ambiguous one.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{json, Value};

use cli::Report;
use common::migrations::discover;
use common::Error;

/// The prefix width of a new directory: `001_init.sql`.
const DEFAULT_WIDTH: usize = 3;

/// `migrate new NAME`.
#[derive(Args, Debug)]
pub struct NewArgs {
    /// What the migration does, in [a-z0-9_], e.g. add_positions: the file becomes
    /// <next prefix>_add_positions.sql.
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// The file `migrate new` created.
#[derive(Debug)]
pub struct Created {
    /// The new file's path (the directory as given, joined with the file name).
    pub path: PathBuf,
    /// Its version: the file name without `.sql`.
    pub version: String,
}

impl Report for Created {
    fn text(&self) -> String {
        self.path.display().to_string()
    }

    fn json(&self) -> Value {
        json!({"ok": true, "path": self.path.display().to_string(), "version": self.version})
    }
}

/// Creates `<next prefix>_<name>.sql` in `dir` with a comment header, never overwriting a
/// file. Exit 2 (nothing written) for a bad name, a directory that does not pass `lint`, or
/// a next number that does not fit the directory's prefix width.
pub fn create(dir: &Path, name: &str) -> Result<Created, Error> {
    check_name(name)?;
    let lint = crate::lint::lint(dir, None);
    if !lint.errors.is_empty() {
        let mut message = format!(
            "refusing to create a migration: {} does not pass `migrate lint` (nothing was written); fix these first:",
            dir.display()
        );
        for error in &lint.errors {
            message.push_str(&format!("\n  - {error}"));
        }
        return Err(Error::Refused(message));
    }
    let found = discover(dir).map_err(Error::Directory)?;
    let prefixes: Vec<&str> = found
        .migrations
        .iter()
        .map(|m| prefix(&m.version))
        .collect();
    let version = next_version(&prefixes, name)?;
    let path = dir.join(format!("{version}.sql"));
    write_new(&path, &template(&version))?;
    Ok(Created { path, version })
}

/// NAME is the `<name>` part of `<digits>_<name>.sql`: non-empty, `[a-z0-9_]` only.
fn check_name(name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "invalid migration name {name:?}: the name may contain only lowercase letters, digits and underscores ([a-z0-9_]), e.g. add_positions; nothing was written"
        )))
    }
}

/// The digits before the first `_` of a valid version.
fn prefix(version: &str) -> &str {
    let end = version.bytes().take_while(u8::is_ascii_digit).count();
    &version[..end]
}

/// `<highest prefix + 1, zero-padded to the common width>_<name>`. The prefixes come from
/// a directory that passed lint: all of one width and unique.
fn next_version(prefixes: &[&str], name: &str) -> Result<String, Error> {
    let width = prefixes.first().map_or(DEFAULT_WIDTH, |p| p.len());
    // Lint guarantees digits only; a prefix too long for u128 (39+ digits) is absurd but
    // must not panic.
    let highest = prefixes
        .iter()
        .map(|p| p.parse::<u128>())
        .try_fold(0u128, |max, n| n.map(|n| max.max(n)))
        .map_err(|_| {
            Error::Refused(format!(
                "the migration prefixes have {width} digits, too many to count on; nothing was written"
            ))
        })?;
    let next = highest + 1;
    let number = format!("{next:0width$}");
    if number.len() > width {
        return Err(Error::Refused(format!(
            "the next number, {next}, does not fit the directory's {width}-digit prefixes, and every prefix must have the same width so that name order is execution order (applied files cannot be renamed); nothing was written"
        )));
    }
    Ok(format!("{number}_{name}"))
}

/// The new file's content: comments only, so that `lint` flags it as empty until the
/// migration is written.
fn template(version: &str) -> String {
    format!(
        "-- {version}\n\
         -- Plain SQL. The runner wraps this file and its tracking row in one transaction: no\n\
         -- transaction control and no psql meta-commands. Never edit this file once it is applied\n\
         -- anywhere: add a new one (migrate new).\n"
    )
}

/// Writes `path`, refusing to replace anything (a concurrent `migrate new`, a stray file).
fn write_new(path: &Path, content: &str) -> Result<(), Error> {
    let failed = |e: std::io::Error| {
        Error::Refused(format!(
            "cannot create {}: {e}; nothing was written",
            path.display()
        ))
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(failed)?;
    file.write_all(content.as_bytes()).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_number_keeps_the_width() {
        assert_eq!(next_version(&[], "init").unwrap(), "001_init");
        assert_eq!(next_version(&["001", "002"], "x").unwrap(), "003_x");
        assert_eq!(next_version(&["0009"], "x").unwrap(), "0010_x");
        assert_eq!(
            next_version(&["20240101120000"], "x").unwrap(),
            "20240101120001_x"
        );
    }

    #[test]
    fn an_exhausted_width_is_refused() {
        let err = next_version(&["998", "999"], "x").unwrap_err().to_string();
        assert!(
            err.contains("does not fit the directory's 3-digit prefixes"),
            "{err}"
        );
    }

    #[test]
    fn names_follow_the_file_name_rule() {
        assert!(check_name("add_positions_2").is_ok());
        for bad in ["", "Add", "add-positions", "a b", "x.sql", "../x", "é"] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(err.contains("[a-z0-9_]"), "{bad}: {err}");
        }
    }
}
