//! Running a program in a pseudo-terminal, as an operator at a keyboard would: for
//! `hard-reset`, which refuses to run without a terminal and reads its confirmations from it.
//!
//! A [`Pty`] starts from a [`Run`], so it gets the same cleared environment as every other
//! run (plus `TERM=xterm`), and keeps everything it reads from the terminal: the whole
//! transcript goes through the harness's leak check when the run ends, as every
//! [`super::Outcome`] does, and is shown (redacted) when a wait fails. Each wait for output is
//! bounded by [`TIMEOUT`], so a tool that stops talking fails the case instead of hanging it.

use std::time::Duration;

use rexpect::process::{Signal, WaitStatus};
use rexpect::session::PtySession;

use super::secrets;
use super::Run;

/// Bounds every wait for output, and the whole run after the last answer.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A program running in a pseudo-terminal. Everything read from it is kept, so that the
/// whole transcript can be checked for passwords and shown when a case fails.
pub struct Pty {
    session: PtySession,
    description: String,
    transcript: String,
}

/// How a pseudo-terminal run ended. Only ever handed to a test after the leak check passed.
#[derive(Debug)]
pub struct PtyOutcome {
    /// Exit code; 128 + N when killed by signal N.
    pub code: i32,
    /// Everything the program wrote to the terminal, with `\r\n` turned into `\n`.
    pub transcript: String,
}

impl Pty {
    /// Starts `run` with the terminal as its standard input, output and error (its timeout
    /// and stdin text do not apply: [`TIMEOUT`] bounds each wait, and answers are typed).
    ///
    /// ```ignore
    /// let mut pty = Pty::spawn(project.hard_reset("dev", &["--stop-command", "true"]));
    /// pty.expect("Type the database name (dreichor_dev) to confirm");
    /// pty.answer("dreichor_dev");
    /// pty.finish().assert_code(0);
    /// ```
    pub fn spawn(run: Run) -> Pty {
        let description = run.describe();
        let mut command = run.command();
        command.env("TERM", "xterm");
        let timeout_ms = u64::try_from(TIMEOUT.as_millis()).expect("a timeout in range");
        let session = rexpect::session::spawn_command(command, Some(timeout_ms))
            .unwrap_or_else(|e| panic!("starting {description} in a pseudo-terminal: {e}"));
        Pty {
            session,
            description,
            transcript: String::new(),
        }
    }

    /// Waits for `needle` in the output; panics with the transcript when it does not come.
    #[track_caller]
    pub fn expect(&mut self, needle: &str) {
        match self.session.exp_string(needle) {
            Ok(before) => {
                self.transcript.push_str(&before);
                self.transcript.push_str(needle);
            }
            Err(e) => panic!(
                "waiting for {needle:?}: {}\n--- transcript so far ---\n{}",
                secrets::redact(&e.to_string()),
                secrets::redact(&self.transcript)
            ),
        }
    }

    /// Types `line` and Enter.
    pub fn answer(&mut self, line: &str) {
        self.session.send_line(line).expect("typing an answer");
    }

    /// Presses Ctrl and `key` at the keyboard (`'c'` for Ctrl-C, `'d'` for Ctrl-D): the
    /// control character goes through the terminal, which turns Ctrl-C into SIGINT unless
    /// the program reads keys in raw mode, exactly as an operator's terminal does.
    pub fn press_ctrl(&mut self, key: char) {
        self.session
            .send_control(key)
            .unwrap_or_else(|e| panic!("pressing Ctrl-{key} in {}: {e}", self.description));
    }

    /// What Ctrl-C does: SIGINT to the program. The terminal would send it to the foreground
    /// process group, which the program leads.
    pub fn interrupt(&mut self) {
        self.send(Signal::SIGINT);
    }

    /// Sends `signal` to the program.
    pub fn send(&mut self, signal: Signal) {
        self.session
            .process_mut()
            .signal(signal)
            .unwrap_or_else(|e| panic!("sending {signal:?} to {}: {e}", self.description));
    }

    /// Reads to the end, waits for the exit, and checks the transcript for passwords: panics
    /// with "password leaked" (and the redacted transcript) when it holds one.
    pub fn finish(mut self) -> PtyOutcome {
        match self.session.exp_eof() {
            Ok(rest) => self.transcript.push_str(&rest),
            Err(e) => panic!(
                "waiting for the end of output: {}\n--- transcript so far ---\n{}",
                secrets::redact(&e.to_string()),
                secrets::redact(&self.transcript)
            ),
        }
        let code = match self
            .session
            .process()
            .wait()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.description))
        {
            WaitStatus::Exited(_, code) => code,
            WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
            other => panic!("unexpected wait status {other:?}"),
        };
        if let Err(leak) = secrets::check_no_secrets(&self.transcript) {
            panic!(
                "{leak}\n--- transcript (redacted) ---\n{}",
                secrets::redact(&self.transcript)
            );
        }
        PtyOutcome {
            code,
            transcript: self.transcript.replace("\r\n", "\n"),
        }
    }
}

impl PtyOutcome {
    /// Panics unless the exit code is `code`, showing the transcript.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert!(
            self.code == code,
            "expected exit code {code}, got {}\n--- transcript ---\n{}",
            self.code,
            self.transcript
        );
        self
    }

    /// Panics unless the transcript contains `needle`.
    #[track_caller]
    pub fn assert_contains(&self, needle: &str) -> &Self {
        assert!(
            self.transcript.contains(needle),
            "the transcript lacks {needle:?}\n--- transcript ---\n{}",
            self.transcript
        );
        self
    }

    /// Panics when the transcript contains `needle`.
    #[track_caller]
    pub fn assert_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.transcript.contains(needle),
            "the transcript contains {needle:?}\n--- transcript ---\n{}",
            self.transcript
        );
        self
    }
}

/// Panics unless every needle is in `transcript`, in this order.
///
/// ```ignore
/// assert_in_order(&out.transcript, &["step 1/7", "step 7/7: summary"]);
/// ```
#[track_caller]
pub fn assert_in_order(transcript: &str, needles: &[&str]) {
    let mut at = 0;
    for needle in needles {
        match transcript[at..].find(needle) {
            Some(i) => at += i + needle.len(),
            None => panic!("{needle:?} missing or out of order\n--- transcript ---\n{transcript}"),
        }
    }
}
