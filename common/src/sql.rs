//! A PostgreSQL-aware lexer: statements, transaction control, positions.
//!
//! Three parts of the tooling need to know where the statements of a migration file are:
//! files marked `-- dreichor:no-transaction` run statement by statement, every other file
//! must not contain transaction control of its own (`BEGIN`, `COMMIT`, ...), and `lint`
//! rejects files that cannot work at all. Splitting on `;` gets all of this wrong as soon
//! as a `;` sits in a string, a quoted identifier, a comment or a function body, and
//! searching for `BEGIN` finds every PL/pgSQL block. So this module lexes the way the
//! server does (<https://www.postgresql.org/docs/15/sql-syntax-lexical.html>): `'...'`
//! with `''`, `E'...'` with backslash escapes, `U&'...'`, `"..."` with `""`, dollar quotes
//! `$tag$...$tag$`, `--` comments and *nesting* `/* */` comments. It runs in one pass over
//! the bytes and allocates only for its results.
//!
//! SQL-standard function bodies (`CREATE FUNCTION ... BEGIN ATOMIC stmt; stmt; END`,
//! PostgreSQL 14 and later) hold semicolons that do not end the `CREATE` statement, and
//! their `BEGIN` is not a transaction. The lexer follows the heuristic psql uses for the
//! same problem (`psqlscan.l`), a little stricter:
//!
//! - Only a *routine definition* can hold a body: a statement whose first unquoted words
//!   are `CREATE FUNCTION`, `CREATE PROCEDURE`, `CREATE OR REPLACE FUNCTION` or
//!   `CREATE OR REPLACE PROCEDURE`, in any case. As in psql, only unquoted words count
//!   here; comments and any other tokens between them are passed over.
//! - In a routine definition, outside parentheses (as in psql), the words `BEGIN ATOMIC`
//!   at level zero open level one (psql takes any `BEGIN`; comments may sit between the
//!   two words); inside a level, `CASE` opens one more and `END` closes one. A word right
//!   after `.` or `AS` is a name (`t.end`, `AS case`) and does neither.
//! - A `;` ends the statement only at level zero (unlike psql, parentheses do not matter
//!   here), so the body ends at the `;` after the `END` that returns to level zero.
//!
//! Every other statement ends at its first `;` whatever words it holds:
//! `SELECT begin atomic FROM t;` is one statement, and a statement that starts with `BEGIN`
//! is always transaction control.
//!
//! A psql meta-command (`\i`, `\set`, `\copy`, ...) is a backslash outside every quote and
//! comment; the server has no idea what it means, so such a file is reported unusable
//! rather than sent.
//!
//! Positions: errors are shown to operators as `line:column`, with the column in
//! characters as an editor shows it. PostgreSQL reports an error position as a 1-based
//! *character* index into the query string, not a byte offset, so
//! [`byte_offset_of_char_position`] converts it back before [`line_col`] is applied.

use std::fmt;

/// A statement's byte range in the source.
///
/// The ranges returned by [`split`] tile the input: joined in order they give back the
/// input byte for byte. A statement's range runs from the end of the previous one through
/// its terminating `;` (inclusive), so leading comments belong to the statement they
/// precede; the last range runs to the end of the input (trailing whitespace and comments
/// after the last `;` form a final range that is blank). An input that ends exactly at a
/// `;` has no empty final range, and an empty input has no statements at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    /// Byte offset of the first byte of the range.
    pub start: usize,
    /// Byte offset one past the last byte of the range (the terminating `;` included).
    pub end: usize,
}

impl Statement {
    /// The text of the statement, leading comments and terminating `;` included.
    ///
    /// Panics, like string slicing, when the range is not inside `src` at character
    /// boundaries; ranges that [`split`] returned for the same `src` always are.
    ///
    /// ```
    /// let src = "SELECT 1; SELECT 2";
    /// let lexed = common::sql::split(src);
    /// assert_eq!(lexed.statements[1].text(src), " SELECT 2");
    /// ```
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        &src[self.start..self.end]
    }

    /// True when the statement holds nothing but whitespace, comments and `;`.
    ///
    /// An unterminated block comment is not blank: it is an error, reported by [`split`].
    ///
    /// ```
    /// let src = "SELECT 1; -- the end\n";
    /// let lexed = common::sql::split(src);
    /// assert!(!lexed.statements[0].is_blank(src));
    /// assert!(lexed.statements[1].is_blank(src));
    /// ```
    pub fn is_blank(&self, src: &str) -> bool {
        self.tokens(src).all(|token| token.is_blank())
    }

    /// Byte offset of the first significant (non-whitespace, non-comment) character, if any.
    ///
    /// A `;` is significant; an unterminated block comment is too (see [`Self::is_blank`]).
    ///
    /// ```
    /// let src = "SELECT 1;\n-- next\nSELECT 2;";
    /// let lexed = common::sql::split(src);
    /// assert_eq!(lexed.statements[1].first_token_offset(src), Some(18));
    /// ```
    pub fn first_token_offset(&self, src: &str) -> Option<usize> {
        self.tokens(src)
            .find(|token| !token.is_trivia())
            .map(|token| token.start)
    }

    /// The tokens of this range alone. Clamped to `src`, and lexed over bytes, so a range
    /// that does not fit `src` gives odd tokens but never a panic.
    fn tokens<'a>(&self, src: &'a str) -> Tokens<'a> {
        let end = self.end.min(src.len());
        Tokens::new(&src.as_bytes()[..end], self.start.min(end))
    }
}

/// What makes a migration file unusable before it reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// A `'...'` string (plain, `E`, `U&`, `B`, `X` or `N`) that the input ends inside.
    UnterminatedString,
    /// A `"..."` (or `U&"..."`) identifier that the input ends inside.
    UnterminatedQuotedIdentifier,
    /// A `$tag$` whose closing `$tag$` never comes.
    UnterminatedDollarQuote,
    /// A `/*` without its `*/` (block comments nest, so every level needs one).
    UnterminatedBlockComment,
    /// A backslash outside every quote and comment: a psql meta-command such as `\i`.
    PsqlMetaCommand,
}

impl fmt::Display for ProblemKind {
    /// The unterminated cases use the server's own wording (`scan.l`), so an operator sees
    /// the same phrase from `lint` as from `psql`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProblemKind::UnterminatedString => "unterminated quoted string",
            ProblemKind::UnterminatedQuotedIdentifier => "unterminated quoted identifier",
            ProblemKind::UnterminatedDollarQuote => "unterminated dollar-quoted string",
            ProblemKind::UnterminatedBlockComment => "unterminated /* comment",
            ProblemKind::PsqlMetaCommand => "psql meta-command (only plain SQL is allowed)",
        })
    }
}

/// A problem found while lexing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong.
    pub kind: ProblemKind,
    /// Byte offset where the construct starts: the opening quote, the `E` of `E'...'`, the
    /// `$` of the opening tag, the outermost `/*`, the backslash.
    pub offset: usize,
}

/// The result of [`split`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexed {
    /// Statement ranges, tiling the input in order.
    pub statements: Vec<Statement>,
    /// Problems in input order; empty for a usable file.
    pub problems: Vec<Problem>,
}

/// Splits `src` into statements and reports what makes it unusable.
///
/// Never fails: an unterminated construct runs to the end of the input (so it lands in the
/// last statement) and is reported in [`Lexed::problems`].
///
/// ```
/// use common::sql::{split, ProblemKind};
///
/// let src = "CREATE TABLE t (s text DEFAULT ';');\nDO $$ BEGIN PERFORM 1; END $$;\n";
/// let lexed = split(src);
/// let texts: Vec<&str> = lexed.statements.iter().map(|s| s.text(src)).collect();
/// assert_eq!(
///     texts,
///     ["CREATE TABLE t (s text DEFAULT ';');", "\nDO $$ BEGIN PERFORM 1; END $$;", "\n"],
/// );
/// assert!(lexed.problems.is_empty());
///
/// assert_eq!(split("SELECT 'oops;").problems[0].kind, ProblemKind::UnterminatedString);
/// ```
pub fn split(src: &str) -> Lexed {
    let bytes = src.as_bytes();
    let mut statements = Vec::new();
    let mut problems = Vec::new();
    let mut splitter = Splitter::default();
    let mut start = 0;
    for token in Tokens::new(bytes, 0) {
        if let Some(kind) = token.problem {
            problems.push(Problem {
                kind,
                offset: token.start,
            });
        }
        if splitter.ends_statement(&token, bytes) {
            statements.push(Statement {
                start,
                end: token.end,
            });
            start = token.end;
        }
    }
    if start < src.len() {
        statements.push(Statement {
            start,
            end: src.len(),
        });
    }
    Lexed {
        statements,
        problems,
    }
}

/// A statement that is transaction control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionControl {
    /// The command, upper case, named as in PostgreSQL's SQL command reference: `BEGIN`
    /// (also for `BEGIN WORK` / `BEGIN TRANSACTION`), `START TRANSACTION`, `COMMIT`, `END`,
    /// `ROLLBACK`, `ABORT`, `SAVEPOINT`, `RELEASE SAVEPOINT` (also for a bare `RELEASE`),
    /// `ROLLBACK TO SAVEPOINT`, `PREPARE TRANSACTION`, `COMMIT PREPARED`, `ROLLBACK PREPARED`.
    pub keyword: String,
    /// Byte offset of the statement's first keyword.
    pub offset: usize,
}

/// Statements that are transaction control, in input order.
///
/// Only the first keyword(s) of each statement count, so `BEGIN` in a `DO` body, a string,
/// a comment or a `BEGIN ATOMIC` function body, columns such as `begin_at` or `"commit"`,
/// `CASE ... END` and `COMMENT ON` are not reported. Plain `PREPARE name AS ...` is a
/// prepared statement, not transaction control.
///
/// ```
/// use common::sql::transaction_control;
///
/// let src = "-- setup\nBEGIN;\nDO $$ BEGIN PERFORM 1; END $$;\nCOMMIT;";
/// let found = transaction_control(src);
/// let keywords: Vec<&str> = found.iter().map(|t| t.keyword.as_str()).collect();
/// assert_eq!(keywords, ["BEGIN", "COMMIT"]);
/// assert_eq!(found[0].offset, 9);
/// ```
pub fn transaction_control(src: &str) -> Vec<TransactionControl> {
    split(src).transaction_control(src)
}

impl Lexed {
    /// [`transaction_control`] over statements already split from `src`: discovery lexes
    /// each file once, not once per question.
    pub fn transaction_control(&self, src: &str) -> Vec<TransactionControl> {
        self.statements
            .iter()
            .filter_map(|statement| classify(src, statement))
            .collect()
    }

    /// [`is_blank`] over statements already split from `src`.
    pub fn is_blank(&self, src: &str) -> bool {
        self.problems.is_empty() && self.statements.iter().all(|s| s.is_blank(src))
    }
}

/// The unquoted words (identifiers and keywords) of `src`, in order: what is outside strings,
/// quoted identifiers and comments. For recognising a statement by its keywords.
///
/// ```
/// use common::sql::words;
///
/// let src = "-- CONCURRENTLY in a comment\nCREATE INDEX \"concurrently\" ON t (a) WHERE b = 'concurrently'";
/// assert_eq!(words(src), ["CREATE", "INDEX", "ON", "t", "a", "WHERE", "b"]);
/// ```
pub fn words(src: &str) -> Vec<&str> {
    Tokens::new(src.as_bytes(), 0)
        .filter(|token| token.kind == TokenKind::Word)
        .map(|token| &src[token.start..token.end])
        .collect()
}

/// True when the whole source is nothing but whitespace, comments and `;`.
///
/// Such a file is a legal no-op migration. An unterminated block comment is not blank.
///
/// ```
/// use common::sql::is_blank;
///
/// assert!(is_blank("-- nothing yet\n/* really /* nothing */ */;\n"));
/// assert!(!is_blank("-- something\nSELECT 1;"));
/// assert!(!is_blank("/* never closed"));
/// ```
pub fn is_blank(src: &str) -> bool {
    Tokens::new(src.as_bytes(), 0).all(|token| token.is_blank())
}

/// Byte offset of the first token at or after `from` whose meaning depends on
/// `standard_conforming_strings`: a plain `'...'` (or `N'...'`) string constant that holds a
/// backslash, or a backslash outside every quote (which is how `'it\'s'`, written for the
/// setting off, reads with it on). `from` must be where a token starts, e.g. a statement's
/// end. `E'...'` strings, dollar quotes and comments mean the same under both settings.
///
/// ```
/// use common::sql::first_backslash_string;
///
/// let src = "SET x = 1;\nSELECT E'a\\n', $$b\\n$$, 'c\\n';";
/// assert_eq!(first_backslash_string(src, 10), src.find("'c"));
/// assert_eq!(first_backslash_string("SELECT 'plain';", 0), None);
/// ```
pub fn first_backslash_string(src: &str, from: usize) -> Option<usize> {
    let bytes = src.as_bytes();
    Tokens::new(bytes, from)
        .find(|token| {
            let text = &bytes[token.start..token.end];
            match token.kind {
                TokenKind::MetaCommand => true,
                TokenKind::Literal => {
                    let plain = text.first() == Some(&b'\'')
                        || (matches!(text.first(), Some(b'n' | b'N'))
                            && text.get(1) == Some(&b'\''));
                    plain && text.contains(&b'\\')
                }
                _ => false,
            }
        })
        .map(|token| token.start)
}

/// 1-based (line, column) of a byte offset; column counts characters (not bytes).
///
/// An offset past the end maps to the end; an offset inside a multi-byte character maps to
/// that character. `\n`, `\r\n` and a lone `\r` each end a line (the server's lexer treats
/// both `\r` and `\n` as newlines); the `\r` of `\r\n` takes no column.
///
/// ```
/// use common::sql::line_col;
///
/// let src = "SELECT 1;\r\nSELECT 'é', x;";
/// assert_eq!(line_col(src, 0), (1, 1));
/// assert_eq!(line_col(src, src.find('x').unwrap()), (2, 13));
/// ```
pub fn line_col(src: &str, byte_offset: usize) -> (usize, usize) {
    Lines::new(src).line_col(byte_offset)
}

/// The line starts of a source, for many [`line_col`] look-ups in one file: each look-up
/// costs a binary search plus the characters of its own line, where [`line_col`] alone
/// scans from the start of the file. A no-transaction file of 100 000 statements asks for
/// the line of every statement: one pass here rather than one pass per statement.
///
/// ```
/// use common::sql::Lines;
///
/// let src = "SELECT 1;\r\nSELECT 'é', x;";
/// let lines = Lines::new(src);
/// assert_eq!(lines.line_col(src.find('x').unwrap()), (2, 13));
/// assert_eq!(lines.count(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    src: &'a str,
    /// Byte offset where each line starts; the first is 0.
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    /// Indexes `src` in one pass. `\n`, `\r\n` and a lone `\r` each end a line, as in
    /// [`line_col`].
    pub fn new(src: &'a str) -> Self {
        let bytes = src.as_bytes();
        let mut starts = vec![0];
        for (i, &byte) in bytes.iter().enumerate() {
            match byte {
                b'\n' => starts.push(i + 1),
                b'\r' if bytes.get(i + 1) != Some(&b'\n') => starts.push(i + 1),
                _ => {}
            }
        }
        Lines { src, starts }
    }

    /// The number of lines: one more than the line breaks.
    pub fn count(&self) -> usize {
        self.starts.len()
    }

    /// 1-based (line, column) of a byte offset, exactly as [`line_col`] gives it.
    pub fn line_col(&self, byte_offset: usize) -> (usize, usize) {
        let mut offset = byte_offset.min(self.src.len());
        while !self.src.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line start at or before `offset`.
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        let column = 1 + self.src.as_bytes()[start..offset]
            .iter()
            // UTF-8 continuation bytes and the `\r` of `\r\n` take no column; a `\r`
            // inside the range is always the `\r` of `\r\n` (a lone one starts a line).
            .filter(|&&byte| byte & 0xC0 != 0x80 && byte != b'\r')
            .count();
        (line, column)
    }
}

/// PostgreSQL reports an error position as a 1-based CHARACTER index into the query
/// string. Convert it to a byte offset into `src` (clamped to `src.len()`).
///
/// Position 0 (the server's "no position") maps to 0.
///
/// ```
/// use common::sql::byte_offset_of_char_position;
///
/// let src = "SELECT 'ü' + x";
/// assert_eq!(byte_offset_of_char_position(src, 14), src.find('x').unwrap());
/// assert_eq!(byte_offset_of_char_position(src, 99), src.len());
/// ```
pub fn byte_offset_of_char_position(src: &str, position: usize) -> usize {
    match position.checked_sub(1) {
        None => 0,
        Some(index) => src
            .char_indices()
            .nth(index)
            .map_or(src.len(), |(offset, _)| offset),
    }
}

/// What `split` remembers about the statement it is in, to tell a `;` that ends it from
/// one inside a `BEGIN ATOMIC` body.
#[derive(Debug, Default)]
struct Splitter {
    /// How far the statement's words match `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
    head: Head,
    /// Open `(` not yet closed; a word inside parentheses is never a level keyword.
    paren_depth: u32,
    /// The previous significant token was a `BEGIN` that may open a body.
    after_begin: bool,
    /// The previous significant token was `.` or `AS`, so a word now is a name or label
    /// (`t.end`, `AS case`), never the keyword that opens or closes a level.
    after_label_intro: bool,
    /// Open `BEGIN ATOMIC` / `CASE` levels; a `;` ends the statement only at zero.
    atomic_depth: u32,
}

/// The start of a statement, word by word (psql's `identifiers[]`): only a statement whose
/// first words are `CREATE [OR REPLACE] FUNCTION|PROCEDURE` can hold a `BEGIN ATOMIC` body.
/// Only unquoted words count; comments, literals, quoted identifiers and punctuation
/// between them are passed over, as in psql.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// No word yet.
    #[default]
    Start,
    /// `CREATE`.
    Create,
    /// `CREATE OR`.
    CreateOr,
    /// `CREATE OR REPLACE`.
    CreateOrReplace,
    /// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`: a routine definition.
    Routine,
    /// Anything else: `BEGIN`, `CASE` and `END` are never counted in this statement.
    Other,
}

impl Head {
    /// The state after the statement's next word.
    fn next(self, word: &[u8]) -> Head {
        let routine = |word| is_keyword(word, "FUNCTION") || is_keyword(word, "PROCEDURE");
        match self {
            Head::Start if is_keyword(word, "CREATE") => Head::Create,
            Head::Create if is_keyword(word, "OR") => Head::CreateOr,
            Head::CreateOr if is_keyword(word, "REPLACE") => Head::CreateOrReplace,
            Head::Create | Head::CreateOrReplace if routine(word) => Head::Routine,
            Head::Routine => Head::Routine,
            _ => Head::Other,
        }
    }
}

impl Splitter {
    /// Feeds one token; true when it is the `;` that ends the statement.
    fn ends_statement(&mut self, token: &Token, bytes: &[u8]) -> bool {
        match token.kind {
            TokenKind::Comment => return false,
            TokenKind::Semicolon if self.atomic_depth == 0 => {
                *self = Splitter::default();
                return true;
            }
            TokenKind::Word => {
                let word = &bytes[token.start..token.end];
                self.head = self.head.next(word);
                // Like psql, only words outside parentheses of a routine definition open
                // or close levels; unlike psql, only `BEGIN ATOMIC` opens the body.
                let counts =
                    self.head == Head::Routine && self.paren_depth == 0 && !self.after_label_intro;
                if counts && self.after_begin && is_keyword(word, "ATOMIC") {
                    self.atomic_depth = 1;
                } else if counts && self.atomic_depth > 0 {
                    if is_keyword(word, "CASE") {
                        self.atomic_depth += 1;
                    } else if is_keyword(word, "END") {
                        self.atomic_depth -= 1;
                    }
                }
                self.after_begin = counts && self.atomic_depth == 0 && is_keyword(word, "BEGIN");
                self.after_label_intro = is_keyword(word, "AS");
            }
            TokenKind::Other => {
                match bytes[token.start] {
                    b'(' => self.paren_depth = self.paren_depth.saturating_add(1),
                    b')' => self.paren_depth = self.paren_depth.saturating_sub(1),
                    _ => {}
                }
                self.after_begin = false;
                self.after_label_intro = bytes[token.start] == b'.';
            }
            _ => {
                self.after_begin = false;
                self.after_label_intro = false;
            }
        }
        false
    }
}

/// The transaction control command a statement is, if it is one.
fn classify(src: &str, statement: &Statement) -> Option<TransactionControl> {
    let bytes = src.as_bytes();
    let mut tokens = statement
        .tokens(src)
        .filter(|token| token.kind != TokenKind::Comment);
    let first = tokens
        .next()
        .filter(|token| token.kind == TokenKind::Word)?;
    // Pulled lazily: most statements are decided by their first word alone.
    let mut next_word = || match tokens.next() {
        Some(token) if token.kind == TokenKind::Word => &bytes[token.start..token.end],
        Some(token) if bytes[token.start] == b'(' => b"(",
        _ => b"",
    };
    let word = &bytes[first.start..first.end];
    let keyword = if is_keyword(word, "BEGIN") {
        "BEGIN"
    } else if is_keyword(word, "START") {
        // START TRANSACTION is PostgreSQL's only START command.
        "START TRANSACTION"
    } else if is_keyword(word, "COMMIT") {
        if is_keyword(next_word(), "PREPARED") {
            "COMMIT PREPARED"
        } else {
            "COMMIT"
        }
    } else if is_keyword(word, "END") {
        "END"
    } else if is_keyword(word, "ABORT") {
        "ABORT"
    } else if is_keyword(word, "ROLLBACK") {
        let mut second = next_word();
        if is_keyword(second, "PREPARED") {
            "ROLLBACK PREPARED"
        } else {
            if is_keyword(second, "WORK") || is_keyword(second, "TRANSACTION") {
                second = next_word();
            }
            if is_keyword(second, "TO") {
                "ROLLBACK TO SAVEPOINT"
            } else {
                "ROLLBACK"
            }
        }
    } else if is_keyword(word, "SAVEPOINT") {
        "SAVEPOINT"
    } else if is_keyword(word, "RELEASE") {
        "RELEASE SAVEPOINT"
    } else if is_keyword(word, "PREPARE") {
        // TRANSACTION is an unreserved keyword, so `PREPARE transaction AS ...` and
        // `PREPARE transaction (int) AS ...` prepare a statement named "transaction";
        // PREPARE TRANSACTION is followed by its string literal instead.
        if !is_keyword(next_word(), "TRANSACTION") {
            return None;
        }
        let third = next_word();
        if is_keyword(third, "AS") || third == b"(" {
            return None;
        }
        "PREPARE TRANSACTION"
    } else {
        return None;
    };
    Some(TransactionControl {
        keyword: keyword.to_owned(),
        offset: first.start,
    })
}

/// Unquoted identifiers and keywords are case-insensitive (ASCII folding, as the server
/// does for keywords).
fn is_keyword(word: &[u8], keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword.as_bytes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    /// An unquoted identifier or keyword.
    Word,
    /// `"..."` or `U&"..."`.
    QuotedIdentifier,
    /// A string constant in any quoting style, dollar quotes included.
    Literal,
    /// `-- ...` or `/* ... */`.
    Comment,
    Semicolon,
    /// A backslash and the rest of its line.
    MetaCommand,
    /// Anything else, one byte at a time (operators, punctuation, digits), or a `$n`
    /// parameter. Never a `;`, never a byte of a multi-byte character.
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: TokenKind,
    start: usize,
    end: usize,
    problem: Option<ProblemKind>,
}

impl Token {
    /// A complete comment: ignorable everywhere.
    fn is_trivia(&self) -> bool {
        self.kind == TokenKind::Comment && self.problem.is_none()
    }

    fn is_blank(&self) -> bool {
        self.is_trivia() || self.kind == TokenKind::Semicolon
    }
}

/// The token stream over `bytes[pos..]`. Lexing needs no state beyond the position, so it
/// can start at any token boundary, such as the start of a statement.
#[derive(Debug)]
struct Tokens<'a> {
    bytes: &'a [u8],
    pos: usize,
}

const BYTE_ORDER_MARK: &[u8] = "\u{feff}".as_bytes();

impl<'a> Tokens<'a> {
    fn new(bytes: &'a [u8], pos: usize) -> Self {
        // The checksum ignores a leading byte-order mark and the runner strips it; lexing
        // it as the start of an identifier would hide a `BEGIN` glued to it.
        let pos = if pos == 0 && bytes.starts_with(BYTE_ORDER_MARK) {
            BYTE_ORDER_MARK.len()
        } else {
            pos
        };
        Tokens { bytes, pos }
    }

    /// The byte at `i`, or 0 past the end (0 never matches what the lexer looks for).
    fn at(&self, i: usize) -> u8 {
        self.bytes.get(i).copied().unwrap_or(0)
    }

    /// Where the line holding `i` ends: at the next `\n` or `\r` (the server's `newline`
    /// class), or at the end of the input.
    fn line_end(&self, i: usize) -> usize {
        self.bytes[i..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .map_or(self.bytes.len(), |n| i + n)
    }

    fn block_comment(&self, start: usize) -> (TokenKind, usize, Option<ProblemKind>) {
        let mut depth = 1u32;
        let mut i = start + 2;
        while i < self.bytes.len() {
            match (self.bytes[i], self.at(i + 1)) {
                (b'/', b'*') => {
                    depth += 1;
                    i += 2;
                }
                (b'*', b'/') => {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        return (TokenKind::Comment, i, None);
                    }
                }
                _ => i += 1,
            }
        }
        (
            TokenKind::Comment,
            self.bytes.len(),
            Some(ProblemKind::UnterminatedBlockComment),
        )
    }

    /// A quoted string or identifier whose content starts at `content`, closed by `quote`
    /// and with a doubled `quote` standing for itself. In `E'...'` a backslash also escapes
    /// the byte after it; everywhere else (standard_conforming_strings, the default since
    /// PostgreSQL 9.1) a backslash is an ordinary character.
    fn quoted(
        &self,
        content: usize,
        quote: u8,
        backslash_escapes: bool,
    ) -> (TokenKind, usize, Option<ProblemKind>) {
        let (kind, problem) = if quote == b'"' {
            (
                TokenKind::QuotedIdentifier,
                ProblemKind::UnterminatedQuotedIdentifier,
            )
        } else {
            (TokenKind::Literal, ProblemKind::UnterminatedString)
        };
        let mut i = content;
        while i < self.bytes.len() {
            let byte = self.bytes[i];
            if byte == quote {
                if self.at(i + 1) != quote {
                    return (kind, i + 1, None);
                }
                i += 2;
            } else if backslash_escapes && byte == b'\\' {
                i += 2;
            } else {
                i += 1;
            }
        }
        (kind, self.bytes.len(), Some(problem))
    }

    /// A `$` at the start of a token: a `$n` parameter, a dollar quote, or a lone `$`.
    fn dollar(&self, start: usize) -> (TokenKind, usize, Option<ProblemKind>) {
        let len = self.bytes.len();
        let next = self.at(start + 1);
        if next.is_ascii_digit() {
            let digits = self.bytes[start + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            return (TokenKind::Other, start + 1 + digits, None);
        }
        let mut i = start + 1;
        if is_ident_start(next) {
            i += 1;
            while i < len && is_dollar_tag_cont(self.bytes[i]) {
                i += 1;
            }
        }
        if self.at(i) != b'$' {
            // Not a tag (`$x ...`): the server takes the `$` alone and lexes on after it.
            return (TokenKind::Other, start + 1, None);
        }
        let delimiter = &self.bytes[start..=i];
        let body = i + 1;
        // Tags are case-sensitive and other tags inside the body are plain text, so the
        // quote ends at the first exact repeat of the opening delimiter.
        match self.bytes[body..]
            .windows(delimiter.len())
            .position(|window| window == delimiter)
        {
            Some(n) => (TokenKind::Literal, body + n + delimiter.len(), None),
            None => (
                TokenKind::Literal,
                len,
                Some(ProblemKind::UnterminatedDollarQuote),
            ),
        }
    }

    /// An identifier or keyword, or the prefix letter of a special string constant.
    fn word(&self, start: usize) -> (TokenKind, usize, Option<ProblemKind>) {
        let mut i = start + 1;
        while i < self.bytes.len() && is_ident_cont(self.bytes[i]) {
            i += 1;
        }
        // Only a whole one-letter token is a prefix: `some'x'` is an identifier followed
        // by an ordinary string, not an escape string.
        if i == start + 1 {
            let next = self.at(i);
            match self.bytes[start] {
                b'e' | b'E' if next == b'\'' => return self.quoted(i + 1, b'\'', true),
                b'b' | b'B' | b'x' | b'X' | b'n' | b'N' if next == b'\'' => {
                    return self.quoted(i + 1, b'\'', false)
                }
                // U&'...' and U&"..." quote as usual; their backslash escapes are
                // Unicode code points, never a quote.
                b'u' | b'U' if next == b'&' && matches!(self.at(i + 1), b'\'' | b'"') => {
                    return self.quoted(i + 2, self.at(i + 1), false)
                }
                _ => {}
            }
        }
        (TokenKind::Word, i, None)
    }
}

impl Iterator for Tokens<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let bytes = self.bytes;
        let mut i = self.pos;
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        if i >= bytes.len() {
            self.pos = i;
            return None;
        }
        let start = i;
        let (kind, end, problem) = match bytes[i] {
            b'-' if self.at(i + 1) == b'-' => (TokenKind::Comment, self.line_end(i), None),
            b'/' if self.at(i + 1) == b'*' => self.block_comment(i),
            b'\'' => self.quoted(i + 1, b'\'', false),
            b'"' => self.quoted(i + 1, b'"', false),
            b'$' => self.dollar(i),
            b';' => (TokenKind::Semicolon, i + 1, None),
            // A meta-command's arguments run to the end of the line and may hold quotes
            // (`\echo don't`), which must not be lexed as SQL.
            b'\\' => (
                TokenKind::MetaCommand,
                self.line_end(i),
                Some(ProblemKind::PsqlMetaCommand),
            ),
            byte if is_ident_start(byte) => self.word(i),
            _ => (TokenKind::Other, i + 1, None),
        };
        self.pos = end;
        Some(Token {
            kind,
            start,
            end,
            problem,
        })
    }
}

/// The server's `space` class.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

/// The server's `ident_start`: letters, `_`, and every byte of a non-ASCII character.
fn is_ident_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80
}

/// The server's `ident_cont`: `$` is allowed inside an identifier (`foo$bar`).
fn is_ident_cont(byte: u8) -> bool {
    is_ident_start(byte) || byte.is_ascii_digit() || byte == b'$'
}

/// The server's `dolq_cont`: like `ident_cont` but without `$`, which ends the tag.
fn is_dollar_tag_cont(byte: u8) -> bool {
    is_ident_start(byte) || byte.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The texts of the statements of `src`.
    fn texts(src: &str) -> Vec<&str> {
        let lexed = split(src);
        assert_tiles(src, &lexed.statements);
        lexed.statements.iter().map(|s| s.text(src)).collect()
    }

    /// The texts of the non-blank statements, trimmed.
    fn statements(src: &str) -> Vec<&str> {
        let lexed = split(src);
        assert_tiles(src, &lexed.statements);
        assert_eq!(lexed.problems, [], "unexpected problems in {src:?}");
        lexed
            .statements
            .iter()
            .filter(|s| !s.is_blank(src))
            .map(|s| s.text(src).trim())
            .collect()
    }

    fn assert_tiles(src: &str, statements: &[Statement]) {
        let mut at = 0;
        for statement in statements {
            assert_eq!(statement.start, at, "gap or overlap in {statements:?}");
            assert!(statement.end > statement.start, "empty range {statement:?}");
            at = statement.end;
        }
        assert_eq!(at, src.len(), "ranges do not reach the end: {statements:?}");
        let joined: String = statements.iter().map(|s| s.text(src)).collect();
        assert_eq!(joined, src);
    }

    fn problems(src: &str) -> Vec<(ProblemKind, usize)> {
        split(src)
            .problems
            .iter()
            .map(|p| (p.kind, p.offset))
            .collect()
    }

    fn keywords(src: &str) -> Vec<String> {
        transaction_control(src)
            .into_iter()
            .map(|t| t.keyword)
            .collect()
    }

    // Splitting.

    #[test]
    fn splits_on_semicolon_outside_quotes() {
        assert_eq!(
            texts("SELECT 1;SELECT 2;\nSELECT 3;"),
            ["SELECT 1;", "SELECT 2;", "\nSELECT 3;"]
        );
    }

    #[test]
    fn empty_input_has_no_statements() {
        assert_eq!(
            split(""),
            Lexed {
                statements: vec![],
                problems: vec![]
            }
        );
    }

    #[test]
    fn input_ending_at_semicolon_has_no_empty_final_range() {
        assert_eq!(texts("SELECT 1;"), ["SELECT 1;"]);
    }

    #[test]
    fn file_without_final_semicolon_keeps_last_statement() {
        assert_eq!(texts("SELECT 1;\nSELECT 2"), ["SELECT 1;", "\nSELECT 2"]);
    }

    #[test]
    fn trailing_comments_form_a_blank_final_range() {
        let src = "SELECT 1;\n-- done\n/* really */\n";
        let lexed = split(src);
        assert_eq!(lexed.statements.len(), 2);
        assert!(lexed.statements[1].is_blank(src));
        assert_eq!(lexed.statements[1].first_token_offset(src), None);
    }

    #[test]
    fn file_ending_in_line_comment_without_newline_is_fine() {
        let src = "SELECT 1; -- it's done; really";
        assert_eq!(texts(src), ["SELECT 1;", " -- it's done; really"]);
        assert_eq!(problems(src), []);
    }

    #[test]
    fn leading_comments_belong_to_the_statement_they_precede() {
        let src = "-- first\nSELECT 1;\n/* second */ SELECT 2;";
        assert_eq!(
            texts(src),
            ["-- first\nSELECT 1;", "\n/* second */ SELECT 2;"]
        );
    }

    #[test]
    fn semicolon_inside_single_quotes_does_not_split() {
        assert_eq!(
            statements("INSERT INTO t VALUES ('a;b'); SELECT 2;"),
            ["INSERT INTO t VALUES ('a;b');", "SELECT 2;"]
        );
    }

    #[test]
    fn doubled_single_quote_does_not_end_the_string() {
        assert_eq!(
            statements("SELECT 'it''s; fine', ''''; SELECT 2;"),
            ["SELECT 'it''s; fine', '''';", "SELECT 2;"]
        );
    }

    #[test]
    fn backslash_is_not_an_escape_in_plain_strings() {
        assert_eq!(
            statements(r"SELECT 'C:\'; SELECT 2;"),
            [r"SELECT 'C:\';", "SELECT 2;"]
        );
    }

    #[test]
    fn escape_string_backslash_quote_does_not_end_the_string() {
        assert_eq!(
            statements(r"SELECT E'it\'s; x'; SELECT 2;"),
            [r"SELECT E'it\'s; x';", "SELECT 2;"]
        );
        assert_eq!(
            statements(r"SELECT e'\';'';'; SELECT 2;"),
            [r"SELECT e'\';'';';", "SELECT 2;"]
        );
    }

    #[test]
    fn escape_string_double_backslash_then_semicolon_splits() {
        assert_eq!(
            statements(r"SELECT E'\\'; SELECT 2;"),
            [r"SELECT E'\\';", "SELECT 2;"]
        );
    }

    #[test]
    fn escape_string_prefix_must_be_a_whole_token() {
        // `some'x\'` is the identifier `some` and the ordinary string `'x\'`.
        assert_eq!(
            statements(r"SELECT some'x\'; SELECT 2;"),
            [r"SELECT some'x\';", "SELECT 2;"]
        );
        assert_eq!(
            statements(r"SELECT 1 AS e, 'x\'; SELECT 2;"),
            [r"SELECT 1 AS e, 'x\';", "SELECT 2;"]
        );
    }

    #[test]
    fn unicode_strings_and_identifiers_use_ordinary_quoting() {
        assert_eq!(
            statements(r#"SELECT U&'d\0061t\+000061;\' AS U&"semi;""colon"; SELECT 2;"#),
            [
                r#"SELECT U&'d\0061t\+000061;\' AS U&"semi;""colon";"#,
                "SELECT 2;"
            ]
        );
        assert_eq!(
            statements(r"SELECT u&'a;' UESCAPE '!'; SELECT 2;"),
            [r"SELECT u&'a;' UESCAPE '!';", "SELECT 2;"]
        );
    }

    #[test]
    fn bit_hex_and_national_strings_use_ordinary_quoting() {
        assert_eq!(
            statements(r"SELECT B'1;0', x'1F;', N'n;\'; SELECT 2;"),
            [r"SELECT B'1;0', x'1F;', N'n;\';", "SELECT 2;"]
        );
    }

    #[test]
    fn semicolon_inside_quoted_identifier_does_not_split() {
        assert_eq!(
            statements(r#"CREATE TABLE "a;""b\" (x int); SELECT 2;"#),
            [r#"CREATE TABLE "a;""b\" (x int);"#, "SELECT 2;"]
        );
    }

    #[test]
    fn empty_dollar_quote_keeps_do_body_together() {
        assert_eq!(
            statements("DO $$ BEGIN PERFORM 1; END $$; SELECT 2;"),
            ["DO $$ BEGIN PERFORM 1; END $$;", "SELECT 2;"]
        );
    }

    #[test]
    fn tagged_dollar_quote_may_hold_double_dollars_and_semicolons() {
        let src = "CREATE FUNCTION f() RETURNS text AS $fn$ SELECT $$a;b$$; $x$ ; $fn$ \
                   LANGUAGE sql; SELECT 2;";
        assert_eq!(
            statements(src),
            [
                "CREATE FUNCTION f() RETURNS text AS $fn$ SELECT $$a;b$$; $x$ ; $fn$ \
                 LANGUAGE sql;",
                "SELECT 2;"
            ]
        );
    }

    #[test]
    fn dollar_tags_are_case_sensitive() {
        assert_eq!(
            statements("SELECT $a$ x; $A$ ; $a$; SELECT 2;"),
            ["SELECT $a$ x; $A$ ; $a$;", "SELECT 2;"]
        );
    }

    #[test]
    fn dollar_tags_may_hold_underscores_digits_and_non_ascii() {
        assert_eq!(
            statements("SELECT $_t1$;$_t1$, $é$;$é$; SELECT 2;"),
            ["SELECT $_t1$;$_t1$, $é$;$é$;", "SELECT 2;"]
        );
    }

    #[test]
    fn dollar_quote_closes_right_after_an_identifier_in_its_body() {
        assert_eq!(
            statements("SELECT $q$abc$q$; SELECT 2;"),
            ["SELECT $q$abc$q$;", "SELECT 2;"]
        );
    }

    #[test]
    fn positional_parameters_are_not_dollar_quotes() {
        assert_eq!(
            statements("PREPARE p(int, int) AS SELECT $1, $2; SELECT $12;"),
            ["PREPARE p(int, int) AS SELECT $1, $2;", "SELECT $12;"]
        );
    }

    #[test]
    fn dollar_inside_identifier_does_not_start_a_quote() {
        assert_eq!(
            statements("SELECT foo$bar$ FROM t; SELECT foo$$ ; SELECT 2;"),
            ["SELECT foo$bar$ FROM t;", "SELECT foo$$ ;", "SELECT 2;"]
        );
    }

    #[test]
    fn dollar_without_a_tag_is_a_lone_character() {
        assert_eq!(
            statements("SELECT $x; SELECT $ ; SELECT 2;"),
            ["SELECT $x;", "SELECT $ ;", "SELECT 2;"]
        );
    }

    #[test]
    fn block_comments_nest() {
        assert_eq!(
            statements("SELECT 1 /* a /* b */ ; */; SELECT 2;"),
            ["SELECT 1 /* a /* b */ ; */;", "SELECT 2;"]
        );
    }

    #[test]
    fn slash_star_slash_does_not_close_a_block_comment() {
        assert_eq!(statements("/*/ ; */ SELECT 1;"), ["/*/ ; */ SELECT 1;"]);
        assert_eq!(statements("/**/SELECT 1;"), ["/**/SELECT 1;"]);
    }

    #[test]
    fn quotes_inside_comments_are_ignored() {
        assert_eq!(
            statements("SELECT 1 /* it's \"a $$ */; SELECT 2;"),
            ["SELECT 1 /* it's \"a $$ */;", "SELECT 2;"]
        );
    }

    #[test]
    fn line_comment_hides_quote_and_semicolon() {
        assert_eq!(
            texts("SELECT 1 -- it's; here\n; SELECT 2;"),
            ["SELECT 1 -- it's; here\n;", " SELECT 2;"]
        );
    }

    #[test]
    fn line_comment_ends_at_carriage_return() {
        assert_eq!(
            statements("SELECT 1 -- note\r; SELECT 2;"),
            ["SELECT 1 -- note\r;", "SELECT 2;"]
        );
    }

    #[test]
    fn minus_and_slash_alone_are_not_comments() {
        assert_eq!(
            statements("SELECT 4 - 1 / 2 * 3; SELECT -1;"),
            ["SELECT 4 - 1 / 2 * 3;", "SELECT -1;"]
        );
    }

    #[test]
    fn begin_atomic_body_with_case_stays_one_statement() {
        let function = "CREATE FUNCTION grade(score int) RETURNS text LANGUAGE sql\n\
                        BEGIN ATOMIC\n\
                        \x20 INSERT INTO log VALUES (score);\n\
                        \x20 SELECT CASE WHEN score > 50 THEN 'pass' ELSE 'fail' END;\n\
                        \x20 SELECT (CASE score WHEN 1 THEN CASE WHEN true THEN 'x' END END);\n\
                        END;";
        let src = format!("{function}\nSELECT grade(1);");
        assert_eq!(statements(&src), [function, "SELECT grade(1);"]);
    }

    #[test]
    fn begin_atomic_is_recognised_in_any_case_and_for_procedures() {
        let src = "create or replace procedure p() begin atomic\n\
                   insert into t values (1); delete from t;\nend;\ncall p();";
        assert_eq!(
            statements(src),
            [
                "create or replace procedure p() begin atomic\n\
                 insert into t values (1); delete from t;\nend;",
                "call p();"
            ]
        );
    }

    #[test]
    fn empty_begin_atomic_body_ends_at_end() {
        assert_eq!(
            statements("CREATE PROCEDURE p() BEGIN ATOMIC END; SELECT 1;"),
            ["CREATE PROCEDURE p() BEGIN ATOMIC END;", "SELECT 1;"]
        );
    }

    #[test]
    fn begin_atomic_ignores_end_and_case_used_as_names() {
        let function = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC \
                        SELECT 1 AS end; SELECT t.case FROM t; END;";
        let src = format!("{function} SELECT 2;");
        assert_eq!(statements(&src), [function, "SELECT 2;"]);
    }

    #[test]
    fn comments_between_begin_and_atomic_are_skipped() {
        let function = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN /* body */ ATOMIC \
                        SELECT 1; END;";
        let src = format!("{function} SELECT 2;");
        assert_eq!(statements(&src), [function, "SELECT 2;"]);
    }

    #[test]
    fn statement_starting_with_begin_is_not_an_atomic_body() {
        assert_eq!(
            statements("BEGIN; SELECT 1; END;"),
            ["BEGIN;", "SELECT 1;", "END;"]
        );
        assert_eq!(
            statements("BEGIN ATOMIC; SELECT 1;"),
            ["BEGIN ATOMIC;", "SELECT 1;"]
        );
    }

    #[test]
    fn begin_not_followed_by_atomic_does_not_open_a_body() {
        assert_eq!(
            statements("CREATE TABLE t (begin int, atomic int); SELECT 1;"),
            ["CREATE TABLE t (begin int, atomic int);", "SELECT 1;"]
        );
    }

    #[test]
    fn begin_atomic_outside_a_routine_definition_does_not_open_a_body() {
        let src = "CREATE TABLE t (begin int, atomic int);\n\
                   SELECT begin atomic FROM t;\n\
                   COMMIT;\n\
                   CREATE TABLE second_half (id int);\n";
        assert_eq!(
            statements(src),
            [
                "CREATE TABLE t (begin int, atomic int);",
                "SELECT begin atomic FROM t;",
                "COMMIT;",
                "CREATE TABLE second_half (id int);"
            ]
        );
        let found = transaction_control(src);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].keyword, "COMMIT");
        assert_eq!(line_col(src, found[0].offset), (3, 1));
    }

    #[test]
    fn select_begin_atomic_is_one_statement() {
        assert_eq!(
            statements("SELECT begin atomic; SELECT 1;"),
            ["SELECT begin atomic;", "SELECT 1;"]
        );
        assert_eq!(
            statements("SELECT 1 AS begin, 2 atomic; COMMIT;"),
            ["SELECT 1 AS begin, 2 atomic;", "COMMIT;"]
        );
    }

    #[test]
    fn create_or_replace_function_with_case_in_body_is_one_statement() {
        let function = "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC \
                        SELECT 1; SELECT CASE WHEN true THEN 1 END; END;";
        assert_eq!(statements(function), [function]);
        let src = format!("{function}\nCOMMIT;");
        assert_eq!(statements(&src), [function, "COMMIT;"]);
        assert_eq!(keywords(&src), ["COMMIT"]);
    }

    #[test]
    fn create_procedure_with_atomic_body_is_one_statement() {
        let procedure = "CREATE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END;";
        assert_eq!(statements(procedure), [procedure]);
        let src = format!("{procedure} SELECT 2;");
        assert_eq!(statements(&src), [procedure, "SELECT 2;"]);
    }

    #[test]
    fn routine_head_is_matched_word_by_word_in_any_case_past_comments() {
        let function = "-- lead\ncreate /* a */ Or -- b\n rEpLaCe\nFunction f() RETURNS int \
                        LANGUAGE sql BEGIN ATOMIC SELECT 1; END;";
        let src = format!("{function} SELECT 2;");
        assert_eq!(statements(&src), [function, "SELECT 2;"]);
        // Not a routine head: the words are not the statement's first, or are not in order,
        // or name another object.
        for head in [
            "EXPLAIN CREATE FUNCTION",
            "CREATE REPLACE FUNCTION",
            "CREATE OR FUNCTION",
            "CREATE TRIGGER",
            "CREATE OR REPLACE VIEW",
            "CREATE \"function\"",
            "ALTER FUNCTION",
        ] {
            let src = format!("{head} f() BEGIN ATOMIC SELECT 1; END;");
            assert_eq!(
                statements(&src),
                [
                    format!("{head} f() BEGIN ATOMIC SELECT 1;").as_str(),
                    "END;"
                ],
                "{head}"
            );
        }
    }

    #[test]
    fn create_table_with_begin_and_atomic_columns_is_not_an_atomic_body() {
        let src = "CREATE TABLE t (begin int, atomic int, id int);\n\
                   CREATE TABLE u AS SELECT begin atomic, 1 AS case FROM t;\n\
                   CREATE TABLE v (x int) ; COMMIT;";
        assert_eq!(
            statements(src),
            [
                "CREATE TABLE t (begin int, atomic int, id int);",
                "CREATE TABLE u AS SELECT begin atomic, 1 AS case FROM t;",
                "CREATE TABLE v (x int) ;",
                "COMMIT;"
            ]
        );
        assert_eq!(keywords(src), ["COMMIT"]);
    }

    #[test]
    fn begin_atomic_inside_parentheses_of_a_routine_does_not_open_a_body() {
        // A parameter named `begin` of a type named `atomic`, as psql sees it: outside
        // parentheses only.
        let function = "CREATE FUNCTION f(begin atomic) RETURNS int LANGUAGE sql RETURN 1;";
        assert_eq!(
            statements(&format!("{function} COMMIT;")),
            [function, "COMMIT;"]
        );
        // `CASE ... END` in parentheses inside a body neither opens nor closes a level.
        let function = "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC \
                        SELECT (CASE WHEN true THEN 1 END); SELECT f((2)); END;";
        assert_eq!(
            statements(&format!("{function} COMMIT;")),
            [function, "COMMIT;"]
        );
    }

    #[test]
    fn leading_byte_order_mark_is_whitespace() {
        let src = "\u{feff}BEGIN;";
        assert_eq!(keywords(src), ["BEGIN"]);
        assert!(is_blank("\u{feff}-- empty\n"));
        assert_eq!(texts(src), [src]);
    }

    // Problems.

    #[test]
    fn unterminated_string_is_reported_at_its_quote() {
        let src = "SELECT 1;\nSELECT 'abc;\nSELECT 2;";
        assert_eq!(problems(src), [(ProblemKind::UnterminatedString, 17)]);
        assert_eq!(texts(src), ["SELECT 1;", "\nSELECT 'abc;\nSELECT 2;"]);
    }

    #[test]
    fn unterminated_escape_string_is_reported_at_its_prefix() {
        assert_eq!(
            problems(r"SELECT E'abc\';"),
            [(ProblemKind::UnterminatedString, 7)]
        );
        assert_eq!(
            problems(r"SELECT E'\"),
            [(ProblemKind::UnterminatedString, 7)]
        );
        assert_eq!(
            problems("SELECT U&'x"),
            [(ProblemKind::UnterminatedString, 7)]
        );
    }

    #[test]
    fn unterminated_quoted_identifier_is_reported_at_its_quote() {
        assert_eq!(
            problems("SELECT 1 AS \"x\"\"; SELECT 2;"),
            [(ProblemKind::UnterminatedQuotedIdentifier, 12)]
        );
        assert_eq!(
            problems("SELECT U&\"x"),
            [(ProblemKind::UnterminatedQuotedIdentifier, 7)]
        );
    }

    #[test]
    fn unterminated_dollar_quote_is_reported_at_its_opening_tag() {
        let src = "SELECT 1;\nDO $body$ BEGIN NULL; END $$;\n";
        assert_eq!(problems(src), [(ProblemKind::UnterminatedDollarQuote, 13)]);
        assert_eq!(
            problems("SELECT $$"),
            [(ProblemKind::UnterminatedDollarQuote, 7)]
        );
    }

    #[test]
    fn unterminated_nested_block_comment_is_reported_at_the_outer_opening() {
        let src = "SELECT 1; /* a /* b */ SELECT 2;";
        assert_eq!(problems(src), [(ProblemKind::UnterminatedBlockComment, 10)]);
        assert!(!is_blank("/* a /* b */"));
        assert!(!split(src).statements[1].is_blank(src));
        assert_eq!(split(src).statements[1].first_token_offset(src), Some(10));
    }

    #[test]
    fn psql_meta_commands_are_reported() {
        let src = "\\set ON_ERROR_STOP on\nSELECT 1;\n  \\i other.sql\n\\copy t FROM 'x.csv'\n";
        assert_eq!(
            problems(src),
            [
                (ProblemKind::PsqlMetaCommand, 0),
                (ProblemKind::PsqlMetaCommand, 34),
                (ProblemKind::PsqlMetaCommand, 47),
            ]
        );
    }

    #[test]
    fn meta_command_arguments_are_not_lexed_as_sql() {
        assert_eq!(
            problems("\\echo don't\nSELECT 1;"),
            [(ProblemKind::PsqlMetaCommand, 0)]
        );
    }

    #[test]
    fn backslash_inside_quotes_and_comments_is_not_a_meta_command() {
        let src = "SELECT '\\i', E'\\\\', \"\\x\", $$\\q$$; -- \\i x\n/* \\set */";
        assert_eq!(problems(src), []);
    }

    #[test]
    fn problem_kinds_display_as_lower_case_phrases() {
        assert_eq!(
            ProblemKind::UnterminatedDollarQuote.to_string(),
            "unterminated dollar-quoted string"
        );
        assert_eq!(
            ProblemKind::PsqlMetaCommand.to_string(),
            "psql meta-command (only plain SQL is allowed)"
        );
        assert_eq!(
            ProblemKind::UnterminatedString.to_string(),
            "unterminated quoted string"
        );
        assert_eq!(
            ProblemKind::UnterminatedQuotedIdentifier.to_string(),
            "unterminated quoted identifier"
        );
        assert_eq!(
            ProblemKind::UnterminatedBlockComment.to_string(),
            "unterminated /* comment"
        );
    }

    // Blankness and first tokens.

    #[test]
    fn blank_means_only_whitespace_comments_and_semicolons() {
        assert!(is_blank(""));
        assert!(is_blank(" \t\r\n\x0c"));
        assert!(is_blank("-- a\n/* b /* c */ */ ; ;\n-- d"));
        assert!(!is_blank("SELECT 1;"));
        assert!(!is_blank("-- a\n'x'"));
        assert!(!is_blank("\\i x.sql"));
    }

    #[test]
    fn first_token_offset_skips_whitespace_and_comments() {
        let src = "SELECT 1; \n-- c\n/* d */ SELECT 2; ;";
        let lexed = split(src);
        let offsets: Vec<_> = lexed
            .statements
            .iter()
            .map(|s| s.first_token_offset(src))
            .collect();
        let second = src.rfind("SELECT").unwrap();
        assert_eq!(offsets, [Some(0), Some(second), Some(src.len() - 1)]);
        assert!(lexed.statements[2].is_blank(src));
    }

    // Transaction control.

    #[test]
    fn detects_every_transaction_control_statement() {
        let src = "BEGIN; begin work; Begin Transaction ISOLATION LEVEL SERIALIZABLE;\n\
                   START TRANSACTION READ ONLY; COMMIT; commit work AND CHAIN; END;\n\
                   ROLLBACK; ROLLBACK TRANSACTION; ABORT; SAVEPOINT s; RELEASE SAVEPOINT s;\n\
                   RELEASE s; ROLLBACK TO SAVEPOINT s; rollback work to s;\n\
                   PREPARE TRANSACTION 'gid'; COMMIT PREPARED 'gid'; ROLLBACK PREPARED 'gid';";
        assert_eq!(
            keywords(src),
            [
                "BEGIN",
                "BEGIN",
                "BEGIN",
                "START TRANSACTION",
                "COMMIT",
                "COMMIT",
                "END",
                "ROLLBACK",
                "ROLLBACK",
                "ABORT",
                "SAVEPOINT",
                "RELEASE SAVEPOINT",
                "RELEASE SAVEPOINT",
                "ROLLBACK TO SAVEPOINT",
                "ROLLBACK TO SAVEPOINT",
                "PREPARE TRANSACTION",
                "COMMIT PREPARED",
                "ROLLBACK PREPARED",
            ]
        );
    }

    #[test]
    fn transaction_control_offset_is_the_first_keyword_after_comments() {
        let src = "CREATE TABLE t (x int);\n-- now\n/* commit */ commit;";
        assert_eq!(
            transaction_control(src),
            [TransactionControl {
                keyword: "COMMIT".to_owned(),
                offset: src.rfind("commit").unwrap(),
            }]
        );
    }

    #[test]
    fn transaction_control_without_final_semicolon_is_found() {
        assert_eq!(keywords("SELECT 1;\nCOMMIT"), ["COMMIT"]);
    }

    #[test]
    fn begin_inside_do_bodies_strings_and_comments_is_not_transaction_control() {
        let src = "DO $$ BEGIN PERFORM 1; COMMIT; END $$;\n\
                   DO $x$ BEGIN NULL; END $x$;\n\
                   SELECT 'BEGIN; COMMIT;';\n\
                   -- BEGIN;\n\
                   /* COMMIT; */\n\
                   SELECT E'\\'; BEGIN; \\'';";
        assert_eq!(keywords(src), Vec::<String>::new());
    }

    #[test]
    fn begin_atomic_function_is_not_transaction_control() {
        let src = "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql\n\
                   BEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN 1 END;\n  SELECT 2;\nEND;\n";
        assert_eq!(keywords(src), Vec::<String>::new());
    }

    #[test]
    fn names_that_look_like_keywords_are_not_transaction_control() {
        let src = "ALTER TABLE t ADD COLUMN begin_at timestamptz;\n\
                   CREATE TABLE \"commit\" (\"begin\" int);\n\
                   SELECT * FROM \"commit\";\n\
                   \"begin\";\n\
                   begin_at;\n\
                   UPDATE t SET x = CASE WHEN y THEN 1 ELSE 2 END;\n\
                   COMMENT ON TABLE t IS 'commit';\n\
                   ENDS;\n\
                   (COMMIT);";
        assert_eq!(keywords(src), Vec::<String>::new());
    }

    #[test]
    fn plain_prepare_is_not_transaction_control() {
        let src = "PREPARE q AS SELECT 1;\n\
                   PREPARE transaction AS SELECT 1;\n\
                   PREPARE transaction (int) AS SELECT $1;\n\
                   EXECUTE q;";
        assert_eq!(keywords(src), Vec::<String>::new());
        assert_eq!(
            keywords("prepare transaction 'x';"),
            ["PREPARE TRANSACTION"]
        );
    }

    // Positions.

    /// The reference for [`Lines`]: every character from the start of the file.
    fn line_col_by_scan(src: &str, byte_offset: usize) -> (usize, usize) {
        let mut offset = byte_offset.min(src.len());
        while !src.is_char_boundary(offset) {
            offset -= 1;
        }
        let bytes = src.as_bytes();
        let (mut line, mut column) = (1, 1);
        for (i, &byte) in bytes[..offset].iter().enumerate() {
            match byte {
                b'\n' => (line, column) = (line + 1, 1),
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {}
                b'\r' => (line, column) = (line + 1, 1),
                _ if byte & 0xC0 == 0x80 => {}
                _ => column += 1,
            }
        }
        (line, column)
    }

    #[test]
    fn line_col_counts_lines_and_characters() {
        let src = "SELECT 1;\nSELECT x;\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 9), (1, 10));
        assert_eq!(line_col(src, 10), (2, 1));
        assert_eq!(line_col(src, 17), (2, 8));
        assert_eq!(line_col(src, 20), (3, 1));
    }

    #[test]
    fn line_col_treats_crlf_as_one_line_break() {
        let src = "SELECT 1;\r\n\r\nSELECT x;";
        assert_eq!(line_col(src, 9), (1, 10));
        assert_eq!(line_col(src, 10), (1, 10));
        assert_eq!(line_col(src, 11), (2, 1));
        assert_eq!(line_col(src, src.find('x').unwrap()), (3, 8));
    }

    #[test]
    fn line_col_treats_lone_carriage_return_as_a_line_break() {
        assert_eq!(line_col("a\rbc", 3), (2, 2));
    }

    #[test]
    fn line_col_counts_multibyte_characters_once() {
        let src = "-- größe 🦀\nSELECT 'ü', x;";
        assert_eq!(line_col(src, src.find('x').unwrap()), (2, 13));
        let crab = src.find('🦀').unwrap();
        assert_eq!(line_col(src, crab), (1, 10));
        // Inside the crab's four bytes: still the crab.
        assert_eq!(line_col(src, crab + 2), (1, 10));
        assert_eq!(line_col(src, crab + 4), (1, 11));
    }

    #[test]
    fn line_col_past_the_end_maps_to_the_end() {
        assert_eq!(line_col("ab\ncd", 99), (2, 3));
        assert_eq!(line_col("", 5), (1, 1));
    }

    #[test]
    fn char_position_converts_to_byte_offset() {
        let src = "SELECT 'äö🦀' FROM t";
        assert_eq!(byte_offset_of_char_position(src, 1), 0);
        assert_eq!(
            byte_offset_of_char_position(src, 10),
            src.find('ö').unwrap()
        );
        assert_eq!(
            byte_offset_of_char_position(src, 11),
            src.find('🦀').unwrap()
        );
        assert_eq!(
            byte_offset_of_char_position(src, 13),
            src.find(" FROM").unwrap()
        );
        assert_eq!(byte_offset_of_char_position(src, 0), 0);
        assert_eq!(byte_offset_of_char_position(src, 19), src.len() - 1);
        assert_eq!(byte_offset_of_char_position(src, 20), src.len());
        assert_eq!(byte_offset_of_char_position(src, 1000), src.len());
    }

    #[test]
    fn server_position_maps_to_line_and_column() {
        let src = "CREATE TABLE ü (x int);\nSELECT nope;";
        // The server would report position 32 for `nope`: characters, not bytes.
        let offset = byte_offset_of_char_position(src, 32);
        assert_eq!(&src[offset..offset + 4], "nope");
        assert_eq!(line_col(src, offset), (2, 8));
    }

    // The corpus: real migrations from crates.io.

    /// The corpus directory. Missing is a failure, in CI and on a workstation alike: a test
    /// that passes without running hides the missing corpus.
    fn corpus_dir() -> std::path::PathBuf {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/corpus/crates_io/migrations");
        assert!(
            dir.is_dir(),
            "the crates.io corpus is missing at {}: put the shared directory beside the clone",
            dir.display()
        );
        dir
    }

    fn non_blank(src: &str) -> Vec<&str> {
        split(src)
            .statements
            .iter()
            .filter(|s| !s.is_blank(src))
            .map(|s| s.text(src))
            .collect()
    }

    #[test]
    fn corpus_migrations_split_cleanly() {
        let dir = corpus_dir();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "sql"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 285, "the corpus changed");
        let mut with_dollar_bodies = 0;
        for path in &files {
            let name = path.file_name().unwrap().to_string_lossy();
            let src = std::fs::read_to_string(path).unwrap();
            let lexed = split(&src);
            assert_eq!(lexed.problems, [], "{name}");
            assert_tiles(&src, &lexed.statements);
            assert_eq!(transaction_control(&src), [], "{name}");
            // A function body split apart leaves an odd number of `$$` in a statement.
            for statement in &lexed.statements {
                let text = statement.text(&src);
                assert_eq!(text.matches("$$").count() % 2, 0, "{name}: {text}");
            }
            if src.contains("$$") {
                with_dollar_bodies += 1;
            }
        }
        assert!(with_dollar_bodies >= 20, "{with_dollar_bodies}");
    }

    #[test]
    fn corpus_statement_counts_match_hand_counts() {
        let dir = corpus_dir();
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();

        // Two plpgsql functions behind a long comment, each body in `$$`.
        let src = read("0001_diesel_initial_setup.sql");
        let found = non_blank(&src);
        assert_eq!(found.len(), 2);
        for statement in &found {
            assert!(statement
                .trim_start()
                .contains("CREATE OR REPLACE FUNCTION"));
            assert!(statement.ends_with("$$ LANGUAGE plpgsql;"), "{statement}");
            assert!(statement.contains("END;\n$$"), "{statement}");
        }

        // One line: a function with `;` in its `$$` body, then two triggers.
        let src = read("0120_dumped_migration_119.sql");
        let found = non_blank(&src);
        assert_eq!(found.len(), 3);
        assert!(found[0].ends_with("END IF; END $$ LANGUAGE plpgsql;"));

        // Extension, ALTER, UPDATE, ALTER, two indexes, a `$BODY$` function, two triggers.
        let src = read("0152_category_trees.sql");
        let found = non_blank(&src);
        assert_eq!(found.len(), 9);
        assert!(found[6].contains("$BODY$\nBEGIN\n"));
        assert!(found[6].ends_with("$BODY$ LANGUAGE plpgsql;"));

        // Table, index, INSERT of many quoted names, function, trigger.
        let src = read("0124_create_reserved_crate_names.sql");
        assert_eq!(non_blank(&src).len(), 5);
    }

    // Properties.

    /// Fragments weighted so that every quoting construct, and its unterminated form,
    /// turns up often in generated input.
    fn sql_like() -> impl Strategy<Value = String> {
        let fragment = prop_oneof![
            4 => Just("'"),
            2 => Just("\""),
            3 => Just("$"),
            4 => Just(";"),
            3 => Just("-"),
            3 => Just("/"),
            3 => Just("*"),
            3 => Just("\n"),
            1 => Just("\r\n"),
            2 => Just("E"),
            1 => Just("U&"),
            1 => Just("&"),
            3 => Just("\\"),
            4 => Just("a"),
            2 => Just("b"),
            3 => Just(" "),
            2 => Just("$tag$"),
            2 => Just("$$"),
            1 => Just("$1"),
            1 => Just("é"),
            1 => Just("🦀"),
            1 => Just("CREATE FUNCTION "),
            1 => Just("create or replace procedure "),
            1 => Just("("),
            1 => Just(")"),
            1 => Just(" BEGIN "),
            1 => Just(" ATOMIC "),
            1 => Just(" CASE "),
            1 => Just(" END "),
            1 => Just("COMMIT"),
        ];
        prop::collection::vec(fragment, 0..80).prop_map(|parts| parts.concat())
    }

    fn any_source() -> impl Strategy<Value = String> {
        prop_oneof![sql_like(), any::<String>()]
    }

    proptest! {
        #[test]
        fn split_ranges_always_tile_the_input(src in any_source()) {
            let lexed = split(&src);
            assert_tiles(&src, &lexed.statements);
            for (i, statement) in lexed.statements.iter().enumerate() {
                let last = i + 1 == lexed.statements.len();
                prop_assert!(last || statement.text(&src).ends_with(';'));
                let _ = statement.is_blank(&src);
                if let Some(offset) = statement.first_token_offset(&src) {
                    prop_assert!(statement.start <= offset && offset < statement.end);
                }
            }
            for problem in &lexed.problems {
                prop_assert!(src.is_char_boundary(problem.offset) && problem.offset < src.len());
            }
            for control in transaction_control(&src) {
                prop_assert!(src.is_char_boundary(control.offset));
            }
            let _ = is_blank(&src);
        }

        #[test]
        fn each_statement_splits_the_same_on_its_own(src in sql_like()) {
            let lexed = split(&src);
            let count = lexed.statements.len();
            for statement in lexed.statements.iter().take(count.saturating_sub(1)) {
                let text = statement.text(&src);
                let alone = split(text);
                prop_assert_eq!(alone.statements.len(), 1, "{:?}", text);
                // Only meta-commands can be reported before the last statement.
                let expected: Vec<Problem> = lexed
                    .problems
                    .iter()
                    .filter(|p| (statement.start..statement.end).contains(&p.offset))
                    .map(|p| Problem { kind: p.kind, offset: p.offset - statement.start })
                    .collect();
                prop_assert!(expected.iter().all(|p| p.kind == ProblemKind::PsqlMetaCommand));
                prop_assert_eq!(alone.problems, expected);
            }
        }

        #[test]
        fn positions_never_panic(src in any_source(), offset in 0usize..400) {
            let (line, column) = line_col(&src, offset);
            prop_assert!(line >= 1 && column >= 1);
            let byte = byte_offset_of_char_position(&src, offset);
            prop_assert!(byte <= src.len() && src.is_char_boundary(byte));
        }

        #[test]
        fn the_line_index_agrees_with_a_scan_from_the_start(src in any_source(), offsets in proptest::collection::vec(0usize..400, 1..8)) {
            let lines = Lines::new(&src);
            for offset in offsets {
                prop_assert_eq!(lines.line_col(offset), line_col_by_scan(&src, offset));
            }
        }

        #[test]
        fn char_position_on_one_line_is_the_column(src in "[^\r\n]{0,40}", position in 1usize..45) {
            let characters = src.chars().count();
            let offset = byte_offset_of_char_position(&src, position);
            prop_assert_eq!(line_col(&src, offset), (1, position.min(characters + 1)));
        }
    }
}
