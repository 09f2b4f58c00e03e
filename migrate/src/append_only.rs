//! Append-only against git: `migrate lint --since REV`.
//!
//! The rules "existing migration files must never be edited" and "filenames must be monotonic
//! and append-only" can be checked before anything reaches a database, by comparing the
//! directory with a revision of it (CI compares against the base branch). Every file that
//! exists at REV must still be there with the same checksum; every file added since must sort
//! after the last file at REV.
//!
//! git runs as a subprocess: two `rev-parse` calls, one `ls-tree` and one `cat-file --batch`
//! for every blob at once, so the cost does not grow with one process per file.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::migrations::{checksum_of_bytes, DirectoryError, Rule};

/// Compares `dir` as it is now with `dir` at git revision `rev`. Returns every violation
/// (empty when the directory only grew at its end); an `Err` when the comparison cannot be
/// made (not a git work tree, unknown revision, git missing), which is invalid input too.
pub fn check_since(dir: &Path, rev: &str) -> Result<Vec<DirectoryError>, DirectoryError> {
    let shown = dir.display().to_string();
    let setup = |rule: Rule| DirectoryError::new(shown.clone(), rule);
    if rev.starts_with('-') {
        return Err(setup(Rule::NotARevision {
            rev: rev.to_string(),
        }));
    }
    let prefix = git(dir, &["rev-parse", "--show-prefix"], None)
        .map_err(|reason| setup(Rule::NotAGitWorkTree { reason }))?;
    let prefix = String::from_utf8_lossy(&prefix)
        .trim_end_matches('\n')
        .to_string();
    git(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
        None,
    )
    .map_err(|_| {
        setup(Rule::NoSuchCommit {
            rev: rev.to_string(),
        })
    })?;

    let then = files_at(dir, rev, &prefix).map_err(|reason| {
        setup(Rule::GitFailed {
            rev: rev.to_string(),
            reason,
        })
    })?;
    let now = current_files(dir).map_err(|e| {
        setup(Rule::CannotListForHistory {
            reason: e.to_string(),
        })
    })?;

    let mut errors = Vec::new();
    for (name, old_checksum) in &then {
        match std::fs::read(dir.join(name)) {
            Err(_) => errors.push(DirectoryError::new(
                name,
                Rule::Removed {
                    rev: rev.to_string(),
                },
            )),
            Ok(bytes) => {
                if checksum_of_bytes(&bytes).as_deref() != Some(old_checksum.as_str()) {
                    errors.push(DirectoryError::new(
                        name,
                        Rule::Edited {
                            rev: rev.to_string(),
                            path: format!("{prefix}{name}"),
                        },
                    ));
                }
            }
        }
    }
    if let Some(last) = then.iter().map(|(name, _)| name).max() {
        for name in &now {
            if !then.iter().any(|(old, _)| old == name) && name < last {
                errors.push(DirectoryError::new(
                    name,
                    Rule::NotAppended {
                        rev: rev.to_string(),
                        last: last.clone(),
                    },
                ));
            }
        }
    }
    Ok(errors)
}

/// The `.sql` files directly in the directory now (dotfiles and other names are the
/// business of discovery).
fn current_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && name.ends_with(".sql") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Name and checksum of every `.sql` blob directly in the directory at `rev`. A directory
/// that did not exist at `rev` has no files there.
fn files_at(dir: &Path, rev: &str, prefix: &str) -> Result<Vec<(String, String)>, String> {
    let tree = format!("{rev}:{prefix}");
    if git(dir, &["rev-parse", "--verify", "--quiet", &tree], None).is_err() {
        return Ok(Vec::new());
    }
    let listing = git(dir, &["ls-tree", "-z", "--full-tree", &tree], None)?;
    let mut blobs = Vec::new();
    for record in listing.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        // "<mode> SP <type> SP <object> TAB <name>"
        let record = String::from_utf8_lossy(record);
        let Some((meta, name)) = record.split_once('\t') else {
            continue;
        };
        let mut fields = meta.split(' ');
        let (_mode, kind, oid) = (fields.next(), fields.next(), fields.next());
        if kind == Some("blob") && !name.starts_with('.') && name.ends_with(".sql") {
            blobs.push((name.to_string(), oid.unwrap_or_default().to_string()));
        }
    }
    if blobs.is_empty() {
        return Ok(Vec::new());
    }
    let input: String = blobs.iter().map(|(_, oid)| format!("{oid}\n")).collect();
    let output = git(dir, &["cat-file", "--batch"], Some(input.as_bytes()))?;
    let contents = parse_batch(&output, blobs.len())?;
    Ok(blobs
        .into_iter()
        .zip(contents)
        .map(|((name, _), bytes)| {
            // A file that was not UTF-8 at REV can only compare unequal; hash the raw bytes.
            let checksum =
                checksum_of_bytes(bytes).unwrap_or_else(|| format!("not-utf8:{}", bytes.len()));
            (name, checksum)
        })
        .collect())
}

/// Splits `git cat-file --batch` output: per object "<oid> <type> <size>\n<content>\n".
fn parse_batch(mut out: &[u8], count: usize) -> Result<Vec<&[u8]>, String> {
    let mut contents = Vec::with_capacity(count);
    for _ in 0..count {
        let newline = out
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("truncated git cat-file output")?;
        let header = String::from_utf8_lossy(&out[..newline]);
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("unexpected git cat-file output: {header}"))?;
        let start = newline + 1;
        let end = start + size;
        if out.len() < end + 1 {
            return Err("truncated git cat-file output".into());
        }
        contents.push(&out[start..end]);
        out = &out[end + 1..];
    }
    Ok(contents)
}

/// Runs git in `dir`, returning stdout, or stderr's first line as the error.
fn git(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run git: {e}"))?;
    // Feed stdin from a thread: git writes its output while it reads its input, and full
    // pipes on both sides would deadlock.
    let writer = match (stdin, child.stdin.take()) {
        (Some(input), Some(mut pipe)) => {
            let input = input.to_vec();
            Some(std::thread::spawn(move || pipe.write_all(&input)))
        }
        _ => None,
    };
    let mut err = child.stderr.take().ok_or("no stderr")?;
    let err_reader = std::thread::spawn(move || {
        let mut stderr = Vec::new();
        let _ = err.read_to_end(&mut stderr);
        stderr
    });
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .ok_or("no stdout")?
        .read_to_end(&mut stdout)
        .map_err(|e| format!("cannot read git output: {e}"))?;
    let stderr = err_reader.join().unwrap_or_default();
    if let Some(writer) = writer {
        writer
            .join()
            .map_err(|_| "git input writer panicked")?
            .map_err(|e| format!("cannot write to git: {e}"))?;
    }
    let status = child.wait().map_err(|e| format!("git: {e}"))?;
    if status.success() {
        Ok(stdout)
    } else {
        let text = String::from_utf8_lossy(&stderr);
        Err(text.lines().next().unwrap_or("git failed").to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    /// A repository with `db/001_a.sql` and `db/002_b.sql` committed; returns it and the
    /// migrations directory.
    fn repo() -> (tempfile::TempDir, std::path::PathBuf) {
        let repo = tempfile::tempdir().unwrap();
        sh(repo.path(), &["init", "-q", "-b", "main"]);
        let dir = repo.path().join("db");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("001_a.sql"), "SELECT 1;\n").unwrap();
        std::fs::write(dir.join("002_b.sql"), "SELECT 2;\n").unwrap();
        sh(repo.path(), &["add", "."]);
        sh(repo.path(), &["commit", "-qm", "base"]);
        (repo, dir)
    }

    #[test]
    fn an_appended_file_is_clean() {
        let (_repo, dir) = repo();
        std::fs::write(dir.join("003_c.sql"), "SELECT 3;\n").unwrap();
        assert_eq!(check_since(&dir, "HEAD").unwrap(), []);
    }

    #[test]
    fn an_edited_old_file_is_caught() {
        let (_repo, dir) = repo();
        std::fs::write(dir.join("001_a.sql"), "SELECT 11;\n").unwrap();
        let errors = check_since(&dir, "HEAD").unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, "001_a.sql");
        assert!(matches!(errors[0].rule, Rule::Edited { .. }));
    }

    #[test]
    fn line_endings_are_not_an_edit() {
        let (_repo, dir) = repo();
        std::fs::write(dir.join("001_a.sql"), "\u{feff}SELECT 1;\r\n").unwrap();
        assert_eq!(check_since(&dir, "HEAD").unwrap(), []);
    }

    #[test]
    fn a_deleted_old_file_is_caught() {
        let (_repo, dir) = repo();
        std::fs::remove_file(dir.join("002_b.sql")).unwrap();
        let errors = check_since(&dir, "HEAD").unwrap();
        assert!(matches!(errors[0].rule, Rule::Removed { .. }));
    }

    #[test]
    fn a_new_file_that_sorts_too_early_is_caught() {
        let (_repo, dir) = repo();
        std::fs::write(dir.join("001_aa.sql"), "SELECT 0;\n").unwrap();
        let errors = check_since(&dir, "HEAD").unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, "001_aa.sql");
        assert!(matches!(&errors[0].rule, Rule::NotAppended { last, .. } if last == "002_b.sql"));
    }

    #[test]
    fn an_unknown_revision_is_a_clear_error() {
        let (_repo, dir) = repo();
        let err = check_since(&dir, "no-such-branch").unwrap_err();
        assert!(matches!(err.rule, Rule::NoSuchCommit { .. }), "{err}");
    }

    #[test]
    fn a_directory_outside_git_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_since(dir.path(), "HEAD").unwrap_err();
        assert!(matches!(err.rule, Rule::NotAGitWorkTree { .. }), "{err}");
    }

    #[test]
    fn a_directory_new_since_the_revision_has_no_old_files() {
        let (repo, _dir) = repo();
        let fresh = repo.path().join("other");
        std::fs::create_dir(&fresh).unwrap();
        std::fs::write(fresh.join("001_x.sql"), "SELECT 1;\n").unwrap();
        assert_eq!(check_since(&fresh, "HEAD").unwrap(), []);
    }
}
