//! `-- dreichor:allow <rule> <reason>`: silencing one rule on one statement, with a reason.
//!
//! The comment sits on the line directly above the statement (several allow lines may be
//! stacked there, one rule each). It silences that rule on that statement only, and it
//! must say why: an allow without a reason silences nothing and is a finding itself
//! (`allow-without-reason`), and so is an allow for a rule that does not fire on the
//! statement below it (`unused-allow`), so that a stale allow cannot silence a later,
//! different problem. For a statement run by `EXECUTE '...'` in a `DO` block, the
//! statement begins at the string: the allow goes on the line above the `EXECUTE`.
//!
//! The comment is found by its line (`--` first on the line, after blanks), the way a
//! reviewer reads the file.

use super::Finding;

/// The marker that starts an allow comment.
pub const MARKER: &str = "-- dreichor:allow";

/// One allow comment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allow {
    /// 1-based line of the comment.
    line: usize,
    /// 1-based column of the comment.
    column: usize,
    /// The rule it names.
    rule: String,
    /// Why; empty when missing.
    reason: String,
}

/// The allow comments of a file, in line order.
fn allows(text: &str) -> Vec<Allow> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let trimmed = line.trim_start();
            let rest = trimmed.strip_prefix(MARKER)?;
            // `-- dreichor:allowed` is not the marker.
            if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
                return None;
            }
            let rest = rest.trim();
            let (rule, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            Some(Allow {
                line: i + 1,
                column: line.len() - trimmed.len() + 1,
                rule: rule.to_string(),
                reason: reason.trim().to_string(),
            })
        })
        .collect()
}

/// Removes the findings an allow comment silences, and adds a finding for each allow that
/// has no reason or silences nothing.
pub fn apply(file: &str, text: &str, findings: Vec<Finding>) -> Vec<Finding> {
    let allows = allows(text);
    if allows.is_empty() {
        return findings;
    }
    let allow_lines: Vec<usize> = allows.iter().map(|a| a.line).collect();
    // The allow comments directly above a statement beginning on `line`.
    let above = |line: usize| -> Vec<usize> {
        let mut indexes = Vec::new();
        let mut l = line;
        while l > 1 {
            l -= 1;
            match allow_lines.iter().position(|&al| al == l) {
                Some(i) => indexes.push(i),
                None => break,
            }
        }
        indexes
    };
    let mut used = vec![false; allows.len()];
    let mut kept = Vec::new();
    for finding in findings {
        let silenced_by = above(finding.statement_line)
            .into_iter()
            .find(|&i| allows[i].rule == finding.rule);
        match silenced_by {
            Some(i) => {
                used[i] = true;
                if allows[i].reason.is_empty() {
                    kept.push(finding);
                }
            }
            None => kept.push(finding),
        }
    }
    for (allow, used) in allows.iter().zip(used) {
        let problem = if allow.rule.is_empty() {
            Some((
                "allow-without-reason",
                "names no rule and gives no reason".to_string(),
            ))
        } else if !used {
            Some((
                "unused-allow",
                format!(
                    "allows {} but that rule does not fire on the statement directly below",
                    allow.rule
                ),
            ))
        } else if allow.reason.is_empty() {
            Some((
                "allow-without-reason",
                format!(
                    "allows {} without a reason, so it silences nothing",
                    allow.rule
                ),
            ))
        } else {
            None
        };
        if let Some((rule, message)) = problem {
            kept.push(Finding {
                file: file.to_string(),
                line: allow.line,
                column: allow.column,
                rule: rule.to_string(),
                message,
                instead: Some(
                    "`-- dreichor:allow <rule> <reason>` on the line directly above the statement the rule fires on, saying why it is safe there".into(),
                ),
                lock: None,
                statement_line: allow.line,
            });
        }
    }
    kept
}
