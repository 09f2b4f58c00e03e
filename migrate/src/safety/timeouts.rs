//! `require-lock-timeout` and `require-statement-timeout`, in the runner's context.
//!
//! squawk asks every file to `SET lock_timeout` itself before a slow statement. This runner
//! sets `lock_timeout` for every file (10 s by default, `--lock-timeout`), and
//! `statement_timeout` when the operator asks for one (`--statement-timeout`), as session
//! defaults (startup options), so a file needs neither; what defeats them is a file that
//! turns one off (`SET lock_timeout = 0`). After that, each statement that may wait on a
//! lock or run long is a finding, until the file turns the timeout on again. `RESET` and
//! `SET ... TO DEFAULT` restore the runner's value, so they turn it on again.

use squawk_linter::analyze::possibly_slow_stmt;
use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{Parse, SourceFile};

/// A slow statement run while the file had a timeout turned off.
#[derive(Debug, Clone)]
pub struct Hit {
    /// `require-lock-timeout` or `require-statement-timeout`.
    pub rule: &'static str,
    /// One line: what is wrong.
    pub message: String,
    /// What to write instead.
    pub instead: &'static str,
    /// The statement.
    pub stmt: ast::Stmt,
}

/// The timeouts the runner sets, with their rule names.
const TIMEOUTS: [(&str, &str); 2] = [
    ("lock_timeout", "require-lock-timeout"),
    ("statement_timeout", "require-statement-timeout"),
];

/// Every slow statement that runs while the file has turned a timeout off.
pub fn check(parse: &Parse<SourceFile>) -> Vec<Hit> {
    let mut off = [false; 2];
    let mut hits = Vec::new();
    for stmt in parse.tree().stmts() {
        match &stmt {
            ast::Stmt::Set(_) | ast::Stmt::Reset(_) => {
                let words = setting_words(&stmt);
                for (i, (name, _)) in TIMEOUTS.iter().enumerate() {
                    if words.iter().any(|w| w == name) || words.iter().any(|w| w == "all") {
                        off[i] = matches!(&stmt, ast::Stmt::Set(_)) && turns_off(&words, name);
                    }
                }
            }
            _ if possibly_slow_stmt(&stmt) => {
                for (i, (name, rule)) in TIMEOUTS.iter().enumerate() {
                    if off[i] {
                        hits.push(Hit {
                            rule,
                            message: format!(
                                "runs after the file turned {name} off: a statement queued behind a long transaction blocks every later query on its table for as long as it waits"
                            ),
                            instead: "remove the SET that turns it off: the runner sets lock_timeout (10 s, --lock-timeout) and, when asked, statement_timeout (--statement-timeout) for every file",
                            stmt: stmt.clone(),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    hits
}

/// The statement's words, lower case, quotes dropped: `set local lock_timeout = 0`.
fn setting_words(stmt: &ast::Stmt) -> Vec<String> {
    stmt.syntax()
        .to_string()
        .to_ascii_lowercase()
        .split(|c: char| c.is_whitespace() || matches!(c, '=' | ';' | '\'' | '"'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// `SET [LOCAL | SESSION] name {= | TO} 0` with any unit (`'0'`, `0ms`, `'0s'`).
fn turns_off(words: &[String], name: &str) -> bool {
    let Some(at) = words.iter().position(|w| w == name) else {
        return false;
    };
    let value = words[at + 1..].iter().find(|w| *w != "to");
    value.is_some_and(|v| {
        let digits = v.trim_start_matches('0');
        v.starts_with('0') && ["", "ms", "s", "min", "h", "d", "us"].contains(&digits)
    })
}
