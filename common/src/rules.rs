//! The directory rules: one variant per rule a migrations directory can break, so that code
//! (and `migrate lint --format json`, through [`Rule::id`]) tells them apart by kind, never by
//! message text. The messages name the rule and what to do next; [`DirectoryError`] adds the
//! file and position.
//!
//! [`DirectoryError`]: crate::migrations::DirectoryError

use crate::migrations::NO_TRANSACTION_MARKER;
use crate::sql::ProblemKind;

/// How a migration file is named (the design document: `<digits>_<name>.sql`).
pub const NAME_RULE: &str = "migration files are named <digits>_<name>.sql with <name> in [a-z0-9_], e.g. 002_add_shadow_ledger.sql";

/// A broken directory rule. `Display` is the message shown after the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    /// `--dir` names something that is not a directory.
    #[error("is not a directory; pass the migrations directory with --dir")]
    NotADirectory,
    /// `--dir` cannot be read (missing, no permission).
    #[error("cannot read the migrations directory ({reason}); pass it with --dir or set DREICHOR_MIGRATIONS_DIR (an installed tool run outside a checkout needs one of them)")]
    DirectoryUnreadable {
        /// The operating system's reason.
        reason: String,
    },
    /// An entry of the directory cannot be listed.
    #[error("cannot list: {reason}")]
    CannotList {
        /// The operating system's reason.
        reason: String,
    },
    /// A file name that is not UTF-8.
    #[error("the file name is not UTF-8; migration names are <digits>_<name>.sql in [a-z0-9_]")]
    NameNotUtf8,
    /// A subdirectory.
    #[error("is a subdirectory; migrations are regular files directly in the directory")]
    Subdirectory,
    /// A symbolic link: it can point at a file outside version control.
    #[error("is a symbolic link; migrations must be regular files committed in the directory")]
    SymbolicLink,
    /// A socket, device or FIFO.
    #[error("is not a regular file")]
    NotARegularFile,
    /// Another extension than `.sql`.
    #[error("is not a .sql file; only plain SQL migrations are allowed ({NAME_RULE}); move other files out of the directory")]
    NotSql,
    /// A `.sql` file whose name breaks [`NAME_RULE`].
    #[error("bad file name: {NAME_RULE}")]
    BadName,
    /// A prefix of another width than most files have (name order would not be numeric).
    #[error("has a {width}-digit prefix where the other files have {expected} digits; all prefixes must have the same width so that name order is numeric order")]
    PrefixWidth {
        /// This file's prefix width.
        width: usize,
        /// The most common width.
        expected: usize,
    },
    /// The same prefix as the file before it.
    #[error("has the same prefix {prefix} as {earlier}; prefixes must be unique: give the newer file the next free number")]
    DuplicatePrefix {
        /// The shared prefix.
        prefix: String,
        /// The other file.
        earlier: String,
    },
    /// The file cannot be read.
    #[error("cannot read: {reason}")]
    FileUnreadable {
        /// The operating system's reason.
        reason: String,
    },
    /// Content that is not UTF-8.
    #[error("is not valid UTF-8 (line {line}, byte {byte}); save it as UTF-8")]
    NotUtf8 {
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 0-based offset of the first invalid byte.
        byte: usize,
    },
    /// The lexer's finding: an unterminated quote or comment, a psql meta-command.
    #[error("{0}; the file cannot be run as it is")]
    Unrunnable(ProblemKind),
    /// `BEGIN`, `COMMIT`, ... in a file: the runner owns the transaction.
    #[error("transaction control `{keyword}` is not allowed: {}", transaction_advice(*.transactional))]
    TransactionControl {
        /// The keyword as written.
        keyword: String,
        /// Whether the file runs in a transaction (the advice differs).
        transactional: bool,
    },
    /// A NUL byte: the protocol cannot carry it in a query, and no text value can hold one.
    #[error("contains a NUL byte (U+0000), which PostgreSQL's protocol cannot carry in a query and no text value can hold; remove it (for binary data write a bytea literal such as '\\x00')")]
    NulByte,
    /// A file too long for one protocol message.
    #[error("is {bytes} bytes long, more than PostgreSQL accepts in one query message ({max} bytes with the runner's own SQL); split it into several migrations")]
    TooLong {
        /// The file's length in bytes.
        bytes: usize,
        /// The longest file the runner sends.
        max: usize,
    },
    /// A statement PostgreSQL refuses inside a transaction block, in a transactional file.
    #[error("`{command}` cannot run inside a transaction block (PostgreSQL error 25001), and this file runs in one with its tracking row; nothing was run: move the statement to a file of its own whose first line is `{NO_TRANSACTION_MARKER}`")]
    RefusedInTransaction {
        /// The command, e.g. `CREATE INDEX CONCURRENTLY`.
        command: String,
    },
    /// `SET standard_conforming_strings = off` before a string whose meaning it changes (old
    /// pg_dump output): the server parses a whole message with the settings it starts with.
    #[error("SET standard_conforming_strings = off (as in old pg_dump output) cannot be honoured for the string with a backslash on line {string_line}: the runner sends a file as one message, and PostgreSQL parses a whole message with the settings it starts with, so that string would be read with standard_conforming_strings on and not mean what it says (psql sends statement by statement, which is why the dump works there); remove the SET and write each string that holds a backslash escape as an escape string, E'it\\'s' (or double the quote: 'it''s')")]
    NonstandardStrings {
        /// The line of the first string whose meaning the setting changes.
        string_line: usize,
    },
    /// `COPY ... FROM STDIN / TO STDOUT`: needs a client such as psql.
    #[error("COPY ... FROM STDIN / TO STDOUT streams data to a client such as psql; a migration is plain SQL: use INSERT ... VALUES, or COPY from a file on the server")]
    CopyWithClient,
    /// `lint --since` was given something that looks like a flag.
    #[error("--since {rev:?} is not a revision")]
    NotARevision {
        /// What was given.
        rev: String,
    },
    /// `lint --since` outside a git work tree.
    #[error("--since needs the migrations directory inside a git work tree: {reason}")]
    NotAGitWorkTree {
        /// git's reason.
        reason: String,
    },
    /// `lint --since` with an unknown revision.
    #[error("--since {rev}: no such commit in this repository (fetch it first, e.g. `git fetch origin main`)")]
    NoSuchCommit {
        /// The revision.
        rev: String,
    },
    /// git failed while reading the directory at the revision.
    #[error("--since {rev}: {reason}")]
    GitFailed {
        /// The revision.
        rev: String,
        /// What failed.
        reason: String,
    },
    /// The directory could not be listed for the append-only check.
    #[error("cannot list the directory: {reason}")]
    CannotListForHistory {
        /// The operating system's reason.
        reason: String,
    },
    /// A file of the revision is gone (append-only).
    #[error(
        "existed at {rev} and is gone; migrations are append-only: restore it from version control"
    )]
    Removed {
        /// The revision.
        rev: String,
    },
    /// A file of the revision was edited (never edit an existing migration).
    #[error("changed since {rev}; migration files must never be edited: restore it (`git checkout {rev} -- {path}`) and put the change in a new migration")]
    Edited {
        /// The revision.
        rev: String,
        /// The file's path within the repository.
        path: String,
    },
    /// A new file that sorts before the last file of the revision (append-only).
    #[error("is new since {rev} but sorts before {last}, the last file there; new migrations must sort after every existing one: give it a higher number")]
    NotAppended {
        /// The revision.
        rev: String,
        /// The last file at the revision.
        last: String,
    },
}

impl Rule {
    /// A stable identifier of the rule, for `--format json` (`"rule"`) and for scripts.
    pub fn id(&self) -> &'static str {
        match self {
            Rule::NotADirectory => "not-a-directory",
            Rule::DirectoryUnreadable { .. } => "directory-unreadable",
            Rule::CannotList { .. } => "cannot-list",
            Rule::NameNotUtf8 => "name-not-utf8",
            Rule::Subdirectory => "subdirectory",
            Rule::SymbolicLink => "symbolic-link",
            Rule::NotARegularFile => "not-a-regular-file",
            Rule::NotSql => "not-sql",
            Rule::BadName => "bad-name",
            Rule::PrefixWidth { .. } => "prefix-width",
            Rule::DuplicatePrefix { .. } => "duplicate-prefix",
            Rule::FileUnreadable { .. } => "file-unreadable",
            Rule::NotUtf8 { .. } => "not-utf8",
            Rule::Unrunnable(_) => "unrunnable",
            Rule::TransactionControl { .. } => "transaction-control",
            Rule::NulByte => "nul-byte",
            Rule::TooLong { .. } => "too-long",
            Rule::RefusedInTransaction { .. } => "refused-in-transaction",
            Rule::CopyWithClient => "copy-with-client",
            Rule::NonstandardStrings { .. } => "nonstandard-strings",
            Rule::NotARevision { .. } => "not-a-revision",
            Rule::NotAGitWorkTree { .. } => "not-a-git-work-tree",
            Rule::NoSuchCommit { .. } => "no-such-commit",
            Rule::GitFailed { .. } => "git-failed",
            Rule::CannotListForHistory { .. } => "cannot-list",
            Rule::Removed { .. } => "removed",
            Rule::Edited { .. } => "edited",
            Rule::NotAppended { .. } => "not-appended",
        }
    }
}

/// Why transaction control is refused, and what to do instead.
fn transaction_advice(transactional: bool) -> String {
    if transactional {
        format!("the runner wraps each file and its tracking row in one transaction; remove it (a file that must run outside a transaction starts with the line `{NO_TRANSACTION_MARKER}`)")
    } else {
        "a no-transaction file runs statement by statement in autocommit; remove it so that no transaction is left open on the runner's connection".to_string()
    }
}
