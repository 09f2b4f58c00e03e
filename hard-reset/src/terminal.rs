//! The operator at the terminal: lines on stderr, answers read key by key.
//!
//! A prompt reads keys with the terminal in raw mode (through `dialoguer`'s `console`), so
//! that the keys which end an answer early arrive as keys rather than as a signal: Ctrl-C
//! and Ctrl-D both give no answer, which aborts the reset with nothing changed (exit 1).
//! `dialoguer::Input` raises SIGINT on Ctrl-C, which ended the tool without a word (exit
//! 130), and ignores Ctrl-D.

use std::io::{IsTerminal, Write};

use dialoguer::console::{Key, Term};

use crate::reset::Operator;

/// The operator at the terminal.
#[derive(Debug)]
pub struct Terminal;

impl Operator for Terminal {
    fn say(&mut self, line: &str) {
        // Never panic on a closed terminal (a dropped SSH session mid-reset): the steps must
        // go on whether or not anyone reads them.
        let _ = writeln!(std::io::stderr(), "{line}");
    }

    fn ask(&mut self, prompt: &str) -> Option<String> {
        // The prompt goes where the operator looks: stderr, unless only stdout is a terminal.
        let term = if std::io::stderr().is_terminal() {
            Term::stderr()
        } else {
            Term::stdout()
        };
        let answer = read_answer(&term, prompt);
        if answer.is_none() {
            // End the prompt's line, so that the abort message starts on its own.
            let _ = term.write_line("");
        }
        answer
    }
}

/// Shows `prompt` and reads one line: `None` on Ctrl-C, Ctrl-D or when the terminal fails
/// (went away). Backspace deletes; other control keys are ignored.
fn read_answer(term: &Term, prompt: &str) -> Option<String> {
    term.write_str(&format!("{prompt}: ")).ok()?;
    let mut typed = String::new();
    loop {
        match term.read_key_raw().ok()? {
            Key::Enter => {
                term.write_line("").ok()?;
                return Some(typed);
            }
            Key::CtrlC | Key::Char('\u{4}') | Key::Unknown => return None,
            Key::Backspace if !typed.is_empty() => {
                typed.pop();
                term.clear_chars(1).ok()?;
            }
            Key::Char(c) if !c.is_control() => {
                typed.push(c);
                term.write_str(c.encode_utf8(&mut [0; 4])).ok()?;
            }
            _ => {}
        }
    }
}
