//! Migration discovery: the directory rules, versions and checksums.
//!
//! A migrations directory holds regular files named `<digits>_<name>.sql`, `<name>` in
//! `[a-z0-9_]`, all prefixes of one width and unique, so that lexicographic order (the order
//! of execution) is numeric order. Names starting with `.` are ignored (`.gitkeep`); anything
//! else is an error. Every violation is collected, so that an operator fixes a directory in
//! one pass rather than one error per run.
//!
//! The content is normalised before it is hashed and before it is run: a leading UTF-8
//! byte-order mark is dropped and CRLF becomes LF, so that a checkout with other line endings
//! (`core.autocrlf`) is not mistaken for an edit, and the same bytes reach the server whatever
//! the checkout did.
//!
//! The lexer ([`crate::sql`]) checks each file here, before anything runs: unterminated
//! quotes or comments, psql meta-commands, and transaction control (a file runs inside the
//! runner's transaction, so its own `COMMIT` would split it from its tracking row), and
//! statements PostgreSQL refuses inside a transaction block ([`crate::transaction_context`]).

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use crate::rules::Rule;
use crate::sql;
use crate::transaction_context;

/// The first line that makes a file run outside a transaction, statement by statement (for
/// `CREATE INDEX CONCURRENTLY` and the like, which PostgreSQL refuses inside a transaction).
pub const NO_TRANSACTION_MARKER: &str = "-- dreichor:no-transaction";

/// One migration file, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The file name without `.sql`, e.g. `002_add_shadow_ledger`: the tracking table's key.
    pub version: String,
    /// The file name, e.g. `002_add_shadow_ledger.sql`.
    pub file_name: String,
    /// Where the file is.
    pub path: PathBuf,
    /// The normalised content (no BOM, LF line endings): what is hashed and what is run.
    pub sql: String,
    /// Lowercase hex SHA-256 of [`Migration::sql`].
    pub checksum: String,
    /// False when the first line is [`NO_TRANSACTION_MARKER`].
    pub transactional: bool,
    /// True when the file holds nothing but whitespace and comments.
    pub blank: bool,
}

/// A violation of a directory rule. `file` and `location` say where; `rule` says which rule
/// is broken (its message says what to do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryError {
    /// The file name (or the directory, for errors about the directory itself).
    pub file: String,
    /// 1-based line and column within the file, when the problem is inside it.
    pub location: Option<(usize, usize)>,
    /// The rule that is broken.
    pub rule: Rule,
}

impl DirectoryError {
    /// A violation by `file` as a whole.
    pub fn new(file: impl Into<String>, rule: Rule) -> Self {
        DirectoryError {
            file: file.into(),
            location: None,
            rule,
        }
    }

    /// A violation at a 1-based line and column of `file`.
    pub fn at(file: &str, location: (usize, usize), rule: Rule) -> Self {
        DirectoryError {
            file: file.to_string(),
            location: Some(location),
            rule,
        }
    }
}

impl fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, col)) => write!(f, "{}:{line}:{col}: {}", self.file, self.rule),
            None => write!(f, "{}: {}", self.file, self.rule),
        }
    }
}

impl std::error::Error for DirectoryError {}

/// A legal but suspicious file: reported by `lint`, never fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file name.
    pub file: String,
    /// What is suspicious.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// The migrations of a directory, in execution order, and the warnings about them.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// Sorted by file name.
    pub migrations: Vec<Migration>,
    /// Empty files, near-miss markers, ...
    pub warnings: Vec<Warning>,
}

/// Reads and checks every migration in `dir`. Either every file is valid and the migrations
/// come back in execution order, or every violation found is returned.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("001_init.sql"), "CREATE TABLE t (id int);\n").unwrap();
/// let found = common::migrations::discover(dir.path()).unwrap();
/// assert_eq!(found.migrations[0].version, "001_init");
/// ```
pub fn discover(dir: &Path) -> Result<Discovered, Vec<DirectoryError>> {
    let (files, mut errors) = list(dir)?;
    let mut found = Discovered::default();
    for result in in_parallel(&files, parse_file) {
        match result {
            Ok((migration, warnings)) => {
                found.migrations.push(migration);
                found.warnings.extend(warnings);
            }
            Err(file_errors) => errors.extend(file_errors),
        }
    }
    finish(found, errors)
}

/// The versions and checksums of every migration in `dir`, in execution order, under the
/// same directory rules as [`discover`] (names, prefixes, regular files), for the read-only
/// gate: it only compares checksums, so each file is hashed as it is read, through a fixed
/// buffer, and never held whole. The gate's memory does not grow with the size of a file.
/// The content is not lexed (a file that cannot run was refused by `migrate` and is pending).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("001_init.sql"), "\u{feff}SELECT 1;\r\n").unwrap();
/// let sums = common::migrations::discover_checksums(dir.path()).unwrap();
/// assert_eq!(sums, [("001_init".to_string(), common::migrations::checksum_of("SELECT 1;\n"))]);
/// ```
pub fn discover_checksums(dir: &Path) -> Result<Vec<(String, String)>, Vec<DirectoryError>> {
    let (files, mut errors) = list(dir)?;
    let mut sums = Vec::with_capacity(files.len());
    let hash = |(name, path): &(String, PathBuf)| {
        crate::file_checksum::of_file(path)
            .map(|sum| (version_of(name).to_string(), sum))
            .map_err(|e| {
                vec![DirectoryError::new(
                    name,
                    Rule::FileUnreadable {
                        reason: e.to_string(),
                    },
                )]
            })
    };
    for result in in_parallel(&files, hash) {
        match result {
            Ok(sum) => sums.push(sum),
            Err(file_errors) => errors.extend(file_errors),
        }
    }
    finish(sums, errors)
}

/// The version of a well-named file: its name without `.sql`.
fn version_of(name: &str) -> &str {
    name.strip_suffix(".sql").unwrap_or(name)
}

/// Every violation in file order, or what was found when there is none.
fn finish<T>(found: T, mut errors: Vec<DirectoryError>) -> Result<T, Vec<DirectoryError>> {
    // In file order, whichever rule found them.
    errors.sort_by(|a, b| a.file.cmp(&b.file));
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(errors)
    }
}

/// The well-named regular files of `dir` in name order, with the violations of the directory
/// rules found on the way (prefixes included). Fails alone when `dir` cannot be read at all.
#[allow(clippy::type_complexity)]
fn list(dir: &Path) -> Result<(Vec<(String, PathBuf)>, Vec<DirectoryError>), Vec<DirectoryError>> {
    let shown = dir.display().to_string();
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(vec![DirectoryError::new(shown, Rule::NotADirectory)]),
        Err(e) => {
            return Err(vec![DirectoryError::new(
                shown,
                Rule::DirectoryUnreadable {
                    reason: e.to_string(),
                },
            )])
        }
    }

    let mut errors = Vec::new();
    let mut names = Vec::new();
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .max_depth(1)
        .follow_links(false)
        .sort_by_file_name();
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                errors.push(DirectoryError::new(
                    shown.clone(),
                    Rule::CannotList {
                        reason: e.to_string(),
                    },
                ));
                continue;
            }
        };
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            errors.push(DirectoryError::new(
                entry.file_name().to_string_lossy(),
                Rule::NameNotUtf8,
            ));
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let kind = entry.file_type();
        if kind.is_dir() {
            errors.push(DirectoryError::new(&name, Rule::Subdirectory));
            continue;
        }
        if kind.is_symlink() {
            // A link can point at a file outside version control, where "never edited" holds
            // no more.
            errors.push(DirectoryError::new(&name, Rule::SymbolicLink));
            continue;
        }
        if !kind.is_file() {
            errors.push(DirectoryError::new(&name, Rule::NotARegularFile));
            continue;
        }
        if let Err(rule) = check_name(&name) {
            errors.push(DirectoryError::new(&name, rule));
            continue;
        }
        names.push(name.clone());
        files.push((name, entry.into_path()));
    }
    errors.extend(check_prefixes(&names));
    Ok((files, errors))
}

/// What reading and checking one file gives.
type Parsed = Result<(Migration, Vec<Warning>), Vec<DirectoryError>>;

/// Reads and checks one well-named file.
fn parse_file((name, path): &(String, PathBuf)) -> Parsed {
    match read_file(path) {
        Ok(bytes) => parse(name, path, bytes),
        Err(e) => Err(vec![DirectoryError::new(
            name,
            Rule::FileUnreadable {
                reason: e.to_string(),
            },
        )]),
    }
}

/// Runs `one` over `files` (well-named, in order), on two threads when there are many: the
/// gate does this on every deployment, mostly waiting on one system call after another, while
/// its connection to the server is made on a third thread.
fn in_parallel<T: Send>(
    files: &[(String, PathBuf)],
    one: impl Fn(&(String, PathBuf)) -> T + Sync,
) -> Vec<T> {
    const PARALLEL_ABOVE: usize = 64;
    let one = &one;
    if files.len() <= PARALLEL_ABOVE {
        return files.iter().map(one).collect();
    }
    let (first, second) = files.split_at(files.len() / 2);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| second.iter().map(one).collect::<Vec<_>>());
        let mut results: Vec<T> = first.iter().map(one).collect();
        match other.join() {
            Ok(rest) => results.extend(rest),
            // A panic on the helper thread is a bug; read that half again here.
            Err(_) => results.extend(second.iter().map(one)),
        }
        results
    })
}

/// Reads a whole file. `std::fs::read` asks for the file's size first (one `statx` per file)
/// to size its buffer; migrations are small, and the gate reads every one of them on every
/// deployment, so the plain read loop is cheaper.
fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(4096);
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Whether `version` is a migration version: the name of a file that [`discover`] accepts,
/// without `.sql` (`<digits>_<name>`, `<name>` in `[a-z0-9_]`).
///
/// ```
/// use common::migrations::is_version;
/// assert!(is_version("002_add_shadow_ledger"));
/// assert!(!is_version("zz-not a version"));
/// ```
pub fn is_version(version: &str) -> bool {
    check_name(&format!("{version}.sql")).is_ok()
}

/// Checks a file name against [`NAME_RULE`](crate::rules::NAME_RULE).
fn check_name(name: &str) -> Result<(), Rule> {
    let Some(stem) = name.strip_suffix(".sql") else {
        return Err(Rule::NotSql);
    };
    let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &stem[digits..];
    let valid = digits > 0
        && rest.len() > 1
        && rest.starts_with('_')
        && rest[1..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(Rule::BadName)
    }
}

/// The digits before the first `_` of a valid name.
fn prefix(version: &str) -> &str {
    let end = version.bytes().take_while(u8::is_ascii_digit).count();
    &version[..end]
}

/// All prefixes of one width (so that lexicographic order is numeric order) and unique.
/// `names` are the well-formed names, sorted. The expected width is the most common one, so
/// that a single odd file is the one reported rather than all the others.
fn check_prefixes(names: &[String]) -> Vec<DirectoryError> {
    let mut errors = Vec::new();
    let mut widths: Vec<(usize, usize)> = Vec::new(); // (width, count)
    for name in names {
        let w = prefix(name).len();
        match widths.iter_mut().find(|(width, _)| *width == w) {
            Some((_, count)) => *count += 1,
            None => widths.push((w, 1)),
        }
    }
    // The most common width; on a tie, the one seen first (the earliest file).
    let expected = widths
        .iter()
        .fold(None, |best: Option<(usize, usize)>, &(w, c)| match best {
            Some((_, best_count)) if best_count >= c => best,
            _ => Some((w, c)),
        })
        .map(|(w, _)| w);
    if let Some(width) = expected {
        for name in names {
            let w = prefix(name).len();
            if w != width {
                errors.push(DirectoryError::new(
                    name,
                    Rule::PrefixWidth {
                        width: w,
                        expected: width,
                    },
                ));
            }
        }
    }
    for pair in names.windows(2) {
        if prefix(&pair[0]) == prefix(&pair[1]) {
            errors.push(DirectoryError::new(
                &pair[1],
                Rule::DuplicatePrefix {
                    prefix: prefix(&pair[1]).to_string(),
                    earlier: pair[0].clone(),
                },
            ));
        }
    }
    errors
}

/// Drops a leading UTF-8 BOM and turns every CRLF into LF. Both are artefacts of an editor or
/// a checkout, not edits; hashing and running the normalised text makes them invisible.
pub fn normalise(text: &str) -> String {
    text.strip_prefix('\u{feff}')
        .unwrap_or(text)
        .replace("\r\n", "\n")
}

/// [`normalise`] without a second copy of the text: the byte-order mark and the `\r` of
/// each CRLF are removed in place.
fn normalise_owned(mut text: String) -> String {
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    if !text.contains("\r\n") {
        return text;
    }
    let mut bytes = text.into_bytes();
    let mut kept = 0;
    for read in 0..bytes.len() {
        if bytes[read] == b'\r' && bytes.get(read + 1) == Some(&b'\n') {
            continue;
        }
        bytes[kept] = bytes[read];
        kept += 1;
    }
    bytes.truncate(kept);
    // Only ASCII `\r` bytes were removed, so the text is still UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Lowercase hex SHA-256 of the normalised content.
pub fn checksum_of(normalised: &str) -> String {
    hex(&Sha256::digest(normalised.as_bytes()))
}

/// Lowercase hex of a digest.
pub(crate) fn hex(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // The gate hashes every file on every deployment: no formatting machinery per byte.
    let mut hex = String::with_capacity(2 * digest.len());
    for &byte in digest {
        hex.push(HEX[usize::from(byte >> 4)] as char);
        hex.push(HEX[usize::from(byte & 0xf)] as char);
    }
    hex
}

/// The checksum of raw file bytes (normalised first), or `None` when they are not UTF-8.
pub fn checksum_of_bytes(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes)
        .ok()
        .map(|text| checksum_of(&normalise(text)))
}

/// Reads one file whose name is valid: UTF-8, lexes cleanly, no transaction control.
fn parse(
    name: &str,
    path: &Path,
    bytes: Vec<u8>,
) -> Result<(Migration, Vec<Warning>), Vec<DirectoryError>> {
    // Owned all the way: the file's bytes become the normalised text without a copy, so a
    // big file is held once, not twice.
    let text = decode(name, bytes).map_err(|e| vec![e])?;
    if let Some(error) = unsendable(name, &text) {
        return Err(vec![error]);
    }
    let sql = normalise_owned(text);
    let first_line = sql.lines().next().unwrap_or("");
    let transactional = first_line != NO_TRANSACTION_MARKER;
    let lexed = sql::split(&sql);
    let errors = content_errors(name, &sql, &lexed, transactional);
    let blank = lexed.is_blank(&sql);
    let warnings = content_warnings(name, &sql, blank, transactional);
    if !errors.is_empty() {
        return Err(errors);
    }
    let checksum = checksum_of(&sql);
    let migration = Migration {
        version: name.trim_end_matches(".sql").to_string(),
        file_name: name.to_string(),
        path: path.to_path_buf(),
        sql,
        checksum,
        transactional,
        blank,
    };
    Ok((migration, warnings))
}

/// The file's bytes as UTF-8, or the line and byte of the first invalid one.
fn decode(name: &str, bytes: Vec<u8>) -> Result<String, DirectoryError> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..valid]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        DirectoryError::new(name, Rule::NotUtf8 { line, byte: valid })
    })
}

/// What the lexer finds that cannot run: unterminated quotes and meta-commands, transaction
/// control, and `COPY` with the client.
fn content_errors(
    name: &str,
    sql: &str,
    lexed: &sql::Lexed,
    transactional: bool,
) -> Vec<DirectoryError> {
    let mut errors = Vec::new();
    // Built on the first problem only: a clean file (the usual case) needs no line numbers,
    // and a file with many needs one pass, not one per problem.
    let lines = std::cell::OnceCell::new();
    let line_col = |offset: usize| lines.get_or_init(|| sql::Lines::new(sql)).line_col(offset);
    // `SET standard_conforming_strings = off` followed by a string that means something else
    // under it (old pg_dump output writes 'it\'s'): the server parses a whole message with
    // the settings it starts with, so that string cannot mean what the file says. The lexer
    // reads it as the server will, so its problems after that point are consequences.
    let nonstandard = lexed
        .statements
        .iter()
        .find(|s| turns_off_standard_strings(s.text(sql)))
        .and_then(|set| {
            let string = sql::first_backslash_string(sql, set.end)?;
            Some((set.first_token_offset(sql).unwrap_or(set.start), string))
        });
    if let Some((at, string)) = nonstandard {
        errors.push(DirectoryError::at(
            name,
            line_col(at),
            Rule::NonstandardStrings {
                string_line: line_col(string).0,
            },
        ));
    }
    for problem in lexed
        .problems
        .iter()
        .filter(|p| nonstandard.is_none_or(|(at, _)| p.offset < at))
    {
        errors.push(DirectoryError::at(
            name,
            line_col(problem.offset),
            Rule::Unrunnable(problem.kind),
        ));
    }
    for control in lexed.transaction_control(sql) {
        errors.push(DirectoryError::at(
            name,
            line_col(control.offset),
            Rule::TransactionControl {
                keyword: control.keyword.clone(),
                transactional,
            },
        ));
    }
    for statement in &lexed.statements {
        if transactional {
            if let Some(command) =
                transaction_context::refused_in_transaction(&sql::words(statement.text(sql)))
            {
                errors.push(refused_in_transaction(name, sql, statement, command));
            }
        }
        if copies_with_client(statement.text(sql)) {
            let at = statement.first_token_offset(sql).unwrap_or(statement.start);
            errors.push(DirectoryError::at(name, line_col(at), Rule::CopyWithClient));
        }
    }
    errors
}

/// Legal but suspicious: an empty file, a near-miss marker, a marker with nothing after it.
fn content_warnings(name: &str, sql: &str, blank: bool, transactional: bool) -> Vec<Warning> {
    let first_line = sql.lines().next().unwrap_or("");
    let warning = |message: String| Warning {
        file: name.to_string(),
        message,
    };
    let mut warnings = Vec::new();
    if blank {
        warnings.push(warning(
            "holds no statement; it will be applied as a no-op and recorded".into(),
        ));
    }
    if transactional && looks_like_marker(first_line) {
        warnings.push(warning(format!(
            "the first line looks like the no-transaction marker but is not exactly `{NO_TRANSACTION_MARKER}`: the file runs in a transaction"
        )));
    }
    if !transactional && !sql.lines().skip(1).any(|l| !l.trim().is_empty()) {
        // Nothing after the marker: harmless, but worth a look.
        warnings.push(warning(
            "is marked no-transaction but holds nothing after the marker".into(),
        ));
    }
    warnings
}

/// The largest file the runner sends: PostgreSQL refuses a protocol message longer than
/// `PQ_LARGE_MESSAGE_LIMIT` (1 GiB less 2 bytes, `src/include/libpq/libpq.h`), and a
/// transactional file travels in one message with about 1 KiB of the runner's own SQL.
pub const MAX_FILE_BYTES: usize = (1 << 30) - (64 << 10);

/// What the protocol cannot carry, refused before anything runs (issue 10): a NUL byte (a
/// query string is NUL-terminated on the wire, and `text` cannot hold one either), and a
/// file too long for one message ([`MAX_FILE_BYTES`]).
fn unsendable(name: &str, text: &str) -> Option<DirectoryError> {
    if let Some(at) = text.find('\0') {
        return Some(DirectoryError::at(
            name,
            sql::line_col(text, at),
            Rule::NulByte,
        ));
    }
    if text.len() > MAX_FILE_BYTES {
        return Some(DirectoryError::new(
            name,
            Rule::TooLong {
                bytes: text.len(),
                max: MAX_FILE_BYTES,
            },
        ));
    }
    None
}

/// The error for a statement PostgreSQL would refuse in the file's transaction.
fn refused_in_transaction(
    name: &str,
    sql: &str,
    statement: &sql::Statement,
    command: &str,
) -> DirectoryError {
    let at = statement.first_token_offset(sql).unwrap_or(statement.start);
    DirectoryError::at(
        name,
        sql::line_col(sql, at),
        Rule::RefusedInTransaction {
            command: command.to_string(),
        },
    )
}

/// `SET [SESSION | LOCAL] standard_conforming_strings {= | TO} off` (or another spelling of
/// false): backslashes in plain `'...'` strings become escapes for the statements after it.
fn turns_off_standard_strings(statement: &str) -> bool {
    const NAME: &str = "standard_conforming_strings";
    let words = sql::words(statement);
    let is = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    let named = match words.as_slice() {
        [set, scope, name, ..]
            if is(set, "set") && (is(scope, "session") || is(scope, "local")) =>
        {
            is(name, NAME)
        }
        [set, name, ..] if is(set, "set") => is(name, NAME),
        _ => false,
    };
    if !named {
        return false;
    }
    let lower = statement.to_ascii_lowercase();
    let Some(at) = lower.find(NAME) else {
        return false;
    };
    let rest = lower[at + NAME.len()..].trim_start();
    let rest = rest
        .strip_prefix('=')
        .or_else(|| rest.strip_prefix("to"))
        .unwrap_or(rest);
    let value = rest
        .trim()
        .trim_end_matches(';')
        .trim()
        .trim_matches(|c| c == '\'' || c == '"');
    // PostgreSQL's boolean spellings of false (parse_bool: any unique prefix).
    matches!(
        value,
        "off" | "of" | "0" | "f" | "fa" | "fal" | "fals" | "false" | "n" | "no"
    )
}

/// `COPY ... FROM STDIN` / `TO STDOUT`: the data would stream between the server and psql,
/// which a runner of plain SQL is not (the protocol would wait for data that never comes).
fn copies_with_client(statement: &str) -> bool {
    let words = sql::words(statement);
    let is = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    matches!(words.first(), Some(w) if is(w, "copy"))
        && words.windows(2).any(|p| {
            (is(p[0], "from") && is(p[1], "stdin")) || (is(p[0], "to") && is(p[1], "stdout"))
        })
}

/// A first line that an author probably meant as the marker (`--dreichor:no-transaction`,
/// `-- dreichor: no-transaction`, other case, trailing text).
fn looks_like_marker(line: &str) -> bool {
    let squeezed: String = line
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    squeezed.starts_with("--") && squeezed.contains("no-transaction")
        || squeezed.contains("notransaction")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        dir
    }

    fn errors_of(dir: &tempfile::TempDir) -> Vec<DirectoryError> {
        discover(dir.path()).expect_err("the directory should be refused")
    }

    #[test]
    fn discovers_files_in_name_order_with_versions() {
        let dir = dir_with(&[
            ("002_add_shadow_ledger.sql", "CREATE TABLE b (id int);"),
            ("001_init.sql", "CREATE TABLE a (id int);"),
            ("003_add_decision_memory.sql", "CREATE TABLE c (id int);"),
        ]);
        let found = discover(dir.path()).unwrap();
        let versions: Vec<_> = found
            .migrations
            .iter()
            .map(|m| m.version.as_str())
            .collect();
        assert_eq!(
            versions,
            [
                "001_init",
                "002_add_shadow_ledger",
                "003_add_decision_memory"
            ]
        );
        assert!(found.migrations.iter().all(|m| m.transactional));
    }

    #[test]
    fn checksum_is_lowercase_hex_sha256_of_the_content() {
        let dir = dir_with(&[("001_init.sql", "abc")]);
        let found = discover(dir.path()).unwrap();
        // SHA-256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            found.migrations[0].checksum,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn crlf_and_bom_do_not_change_the_checksum() {
        let lf = dir_with(&[("001_init.sql", "CREATE TABLE a (id int);\nSELECT 1;\n")]);
        let crlf = dir_with(&[(
            "001_init.sql",
            "\u{feff}CREATE TABLE a (id int);\r\nSELECT 1;\r\n",
        )]);
        let a = discover(lf.path()).unwrap();
        let b = discover(crlf.path()).unwrap();
        assert_eq!(a.migrations[0].checksum, b.migrations[0].checksum);
        assert_eq!(a.migrations[0].sql, b.migrations[0].sql);
    }

    #[test]
    fn normalising_in_place_equals_normalising_a_copy() {
        for text in [
            "",
            "\u{feff}",
            "\u{feff}a\r\nb\r\n",
            "a\r\r\nb\r",
            "\r\n\r\n",
            "x\u{feff}é\r\n",
            "\u{feff}\u{feff}\r",
        ] {
            assert_eq!(
                normalise_owned(text.to_string()),
                normalise(text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_lone_carriage_return_is_an_edit() {
        let a = checksum_of(&normalise("a\nb"));
        let b = checksum_of(&normalise("a\rb"));
        assert_ne!(a, b);
    }

    #[test]
    fn dotfiles_are_ignored() {
        let dir = dir_with(&[
            ("001_init.sql", "SELECT 1;"),
            (".gitkeep", ""),
            (".x.swp", "?"),
        ]);
        assert_eq!(discover(dir.path()).unwrap().migrations.len(), 1);
    }

    #[test]
    fn refuses_other_extensions() {
        let dir = dir_with(&[("001_init.sql", "SELECT 1;"), ("002_notes.txt", "")]);
        let errors = errors_of(&dir);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, "002_notes.txt");
        assert!(matches!(errors[0].rule, Rule::NotSql), "{}", errors[0]);
    }

    #[test]
    fn refuses_subdirectories() {
        let dir = dir_with(&[("001_init.sql", "SELECT 1;")]);
        std::fs::create_dir(dir.path().join("002_more")).unwrap();
        let errors = errors_of(&dir);
        assert!(
            matches!(errors[0].rule, Rule::Subdirectory),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn refuses_symbolic_links() {
        let dir = dir_with(&[("001_init.sql", "SELECT 1;")]);
        std::os::unix::fs::symlink(
            dir.path().join("001_init.sql"),
            dir.path().join("002_link.sql"),
        )
        .unwrap();
        let errors = errors_of(&dir);
        assert!(
            matches!(errors[0].rule, Rule::SymbolicLink),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn refuses_bad_names() {
        for bad in [
            "init.sql",
            "001.sql",
            "001_.sql",
            "001_Init.sql",
            "001-init.sql",
            "001_init-x.sql",
            "a001_init.sql",
            "001_init.SQL",
            "001_inït.sql",
            "001 init.sql",
        ] {
            let dir = dir_with(&[(bad, "SELECT 1;")]);
            let errors = errors_of(&dir);
            assert_eq!(errors.len(), 1, "{bad}");
            assert!(
                matches!(errors[0].rule, Rule::NotSql | Rule::BadName),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_prefixes_of_different_widths() {
        let dir = dir_with(&[("001_a.sql", "SELECT 1;"), ("0002_b.sql", "SELECT 1;")]);
        let errors = errors_of(&dir);
        assert_eq!(errors.len(), 1);
        assert!(
            matches!(errors[0].rule, Rule::PrefixWidth { .. }),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn refuses_duplicate_prefixes() {
        let dir = dir_with(&[("001_a.sql", "SELECT 1;"), ("001_b.sql", "SELECT 1;")]);
        let errors = errors_of(&dir);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, "001_b.sql");
        assert!(
            matches!(errors[0].rule, Rule::DuplicatePrefix { .. }),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn refuses_content_that_is_not_utf8() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("001_a.sql"), b"SELECT 1;\nSELECT '\xff';\n").unwrap();
        let errors = discover(dir.path()).unwrap_err();
        assert!(
            matches!(errors[0].rule, Rule::NotUtf8 { .. }),
            "{}",
            errors[0]
        );
        assert!(
            matches!(errors[0].rule, Rule::NotUtf8 { line: 2, .. }),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn refuses_transaction_control_with_its_line() {
        let dir = dir_with(&[("001_a.sql", "CREATE TABLE a (id int);\nCOMMIT;\n")]);
        let errors = errors_of(&dir);
        assert_eq!(errors[0].location, Some((2, 1)));
        assert!(
            matches!(&errors[0].rule, Rule::TransactionControl { keyword, .. } if keyword == "COMMIT"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn refuses_transaction_control_in_no_transaction_files_too() {
        let dir = dir_with(&[(
            "001_a.sql",
            "-- dreichor:no-transaction\nBEGIN;\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
        )]);
        let errors = errors_of(&dir);
        assert_eq!(errors[0].location, Some((2, 1)));
    }

    #[test]
    fn refuses_unterminated_quotes_and_meta_commands() {
        let dir = dir_with(&[
            ("001_a.sql", "SELECT 'open;\n"),
            ("002_b.sql", "\\i other.sql\n"),
        ]);
        let errors = errors_of(&dir);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].location, Some((1, 8)));
        assert_eq!(errors[1].file, "002_b.sql");
    }

    #[test]
    fn refuses_copy_with_the_client_but_not_copy_with_a_file() {
        let dir = dir_with(&[(
            "001_a.sql",
            "CREATE TABLE t (a int);\nCOPY t (a) FROM stdin;\ncopy (SELECT 1) TO STDOUT;\n",
        )]);
        let errors = errors_of(&dir);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].location, Some((2, 1)));
        assert_eq!(errors[1].location, Some((3, 1)));
        assert!(matches!(errors[0].rule, Rule::CopyWithClient));
        let fine = dir_with(&[(
            "001_a.sql",
            "COPY t FROM '/srv/seed.csv';\nSELECT 'copy x from stdin';\n-- COPY t FROM stdin;\n",
        )]);
        assert!(discover(fine.path()).is_ok());
    }

    #[test]
    fn refuses_a_statement_that_cannot_run_in_the_files_transaction() {
        let dir = dir_with(&[(
            "001_a.sql",
            "CREATE TABLE t (a int);\n-- index it\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n",
        )]);
        let errors = errors_of(&dir);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].location, Some((3, 1)));
        assert!(matches!(
            &errors[0].rule,
            Rule::RefusedInTransaction { command } if command == "CREATE INDEX CONCURRENTLY"
        ));
        assert!(errors[0].to_string().contains(NO_TRANSACTION_MARKER));
        let fine = dir_with(&[(
            "001_a.sql",
            "-- dreichor:no-transaction\nCREATE INDEX CONCURRENTLY t_a ON t (a);\nVACUUM t;\n",
        )]);
        assert!(discover(fine.path()).is_ok());
    }

    #[test]
    fn refuses_turning_off_standard_strings_with_the_true_reason() {
        let legacy = "-- legacy dump\nSET standard_conforming_strings = off;\nCREATE TABLE notes (body text);\nINSERT INTO notes VALUES ('it\\'s; done');\nINSERT INTO notes VALUES ('x'), ('it\\'s; done');\n";
        let dir = dir_with(&[("001_legacy.sql", legacy)]);
        let errors = errors_of(&dir);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].location, Some((2, 1)));
        assert!(errors[0].to_string().contains("E'it\\'s'"), "{}", errors[0]);
        assert!(errors[0].to_string().contains("on line 4"), "{}", errors[0]);
        assert!(
            !errors[0].to_string().contains("meta-command"),
            "{}",
            errors[0]
        );
        // Without such a string after it the SET is harmless: the runner resets the session
        // after every file.
        let harmless = "CREATE TABLE p (p text);\nINSERT INTO p VALUES (E'a\\nb', 'plain');\nSET standard_conforming_strings = off;\n";
        assert!(discover(dir_with(&[("001_a.sql", harmless)]).path()).is_ok());
        for spelling in [
            "SET standard_conforming_strings TO 'off'",
            "set session STANDARD_CONFORMING_STRINGS = false",
            "SET LOCAL standard_conforming_strings=0",
        ] {
            assert!(turns_off_standard_strings(spelling), "{spelling}");
        }
        for other in [
            "SET standard_conforming_strings = on",
            "SET search_path = standard_conforming_strings_off",
            "SELECT 'SET standard_conforming_strings = off'",
        ] {
            assert!(!turns_off_standard_strings(other), "{other}");
        }
    }

    #[test]
    fn releasing_advisory_locks_is_the_files_own_business() {
        // The migration lock is held by another session (crate::lock): a file can release
        // only its own session's advisory locks.
        let dir = dir_with(&[(
            "001_a.sql",
            "SELECT pg_advisory_unlock_all();\nSELECT PG_ADVISORY_UNLOCK(1);\n",
        )]);
        assert!(discover(dir.path()).is_ok());
    }

    #[test]
    fn refuses_a_nul_byte_with_its_line() {
        let dir = dir_with(&[("001_a.sql", "SELECT 1;\nSELECT 'a\0b';\n")]);
        let errors = errors_of(&dir);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let text = errors[0].to_string();
        assert!(text.starts_with("001_a.sql:2:"), "{text}");
        assert!(text.contains("NUL byte"), "{text}");
    }

    #[test]
    fn collects_every_violation_not_only_the_first() {
        let dir = dir_with(&[
            ("001_a.sql", "SELECT 1;"),
            ("001_b.sql", "SELECT 1;"),
            ("0003_c.sql", "SELECT 1;"),
            ("004_D.sql", "SELECT 1;"),
            ("005_e.txt", ""),
            ("006_f.sql", "ROLLBACK;"),
        ]);
        let errors = errors_of(&dir);
        let files: Vec<_> = errors.iter().map(|e| e.file.as_str()).collect();
        for expected in [
            "001_b.sql",
            "0003_c.sql",
            "004_D.sql",
            "005_e.txt",
            "006_f.sql",
        ] {
            assert!(
                files.contains(&expected),
                "{expected} missing from {files:?}"
            );
        }
    }

    #[test]
    fn an_empty_file_is_legal_with_a_warning() {
        let dir = dir_with(&[("001_a.sql", "-- nothing yet\n\n/* later */\n")]);
        let found = discover(dir.path()).unwrap();
        assert!(found.migrations[0].blank);
        assert_eq!(found.warnings.len(), 1);
    }

    #[test]
    fn the_marker_must_be_the_exact_first_line() {
        let dir = dir_with(&[
            (
                "001_a.sql",
                "-- dreichor:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);",
            ),
            ("002_b.sql", "\n-- dreichor:no-transaction\nSELECT 1;"),
            ("003_c.sql", "--dreichor:no-transaction\nSELECT 1;"),
            ("004_d.sql", "-- dreichor:no-transaction\r\nSELECT 1;"),
        ]);
        let found = discover(dir.path()).unwrap();
        let tx: Vec<_> = found.migrations.iter().map(|m| m.transactional).collect();
        assert_eq!(tx, [false, true, true, false]);
        assert!(found.warnings.iter().any(|w| w.file == "003_c.sql"));
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let errors = discover(Path::new("/nonexistent/dreichor/migrations")).unwrap_err();
        assert!(errors[0].file.contains("/nonexistent/dreichor/migrations"));
        assert!(matches!(errors[0].rule, Rule::DirectoryUnreadable { .. }));
    }
}
