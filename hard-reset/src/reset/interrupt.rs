//! Holding Ctrl-C (SIGINT), SIGTERM and SIGHUP while the database is dropped, created and
//! migrated.
//!
//! Killed between `DROP DATABASE` and `CREATE DATABASE`, `hard-reset` would leave the
//! environment without a database, and say nothing about it. So from just before the drop
//! until the migrations have finished (or failed), the signals only set a flag
//! (`signal_hook::flag`: the handler stores a number and does nothing else, which is
//! async-signal-safe). The steps look at the flag after each step and after each migration
//! file, tell the operator once that the signal is held, and carry on; the summary (exit 0
//! when every step succeeded) or the failure (exit 1) then says that it was interrupted.
//! Before the drop nothing has changed yet, so there the signals keep their default action and
//! end the tool at once.
//!
//! SIGHUP is the one an operator does not send: the SSH session dropped. The terminal is then
//! gone, so the tool carries on writing into the void (output never panics on a closed
//! terminal, see `cli::Output`) and the result is what `migrate status` shows afterwards.
//!
//! A signal that arrives while a query runs does not disturb it: signal-hook installs its
//! handler with `SA_RESTART`, and the client's event loop retries an interrupted wait.
//!
//! Ending the hold unregisters the flag, but signal-hook cannot give a signal its default
//! action back (`signal_hook_registry::unregister`, "Warning"): until the process exits a
//! further SIGINT, SIGTERM or SIGHUP is ignored. Only the summary is printed after that.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::flag;
use signal_hook::low_level;
use signal_hook::SigId;

use crate::reset::{Operator, STEPS};

/// A signal the operator sent while it was held, and the step it was noticed after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interruption {
    /// The signal's number (SIGINT, SIGTERM or SIGHUP).
    pub signal: i32,
    /// The step (4 to 6) that was running when it arrived.
    pub step: usize,
}

impl Interruption {
    /// The signal's name: `SIGINT`, `SIGTERM` or `SIGHUP (the terminal went away)`.
    pub fn name(&self) -> String {
        match self.signal {
            SIGINT => "SIGINT".into(),
            SIGTERM => "SIGTERM".into(),
            SIGHUP => "SIGHUP (the terminal went away)".into(),
            other => format!("signal {other}"),
        }
    }

    /// What the operator did, as they would say it: `Ctrl-C` for SIGINT.
    fn as_pressed(&self) -> String {
        if self.signal == SIGINT {
            "Ctrl-C".into()
        } else {
            self.name()
        }
    }
}

impl fmt::Display for Interruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.signal == SIGINT {
            "SIGINT, Ctrl-C".to_string()
        } else {
            self.name()
        };
        write!(
            f,
            "interrupted by the operator ({how}) during step {}/{STEPS}",
            self.step
        )
    }
}

/// SIGINT, SIGTERM and SIGHUP held: registered by [`Hold::start`], unregistered when dropped.
#[derive(Debug)]
pub(super) struct Hold {
    /// 0, or the number of the last signal that arrived.
    arrived: Arc<AtomicUsize>,
    ids: Vec<SigId>,
    /// The signal the operator has been told about.
    told: Option<Interruption>,
}

impl Hold {
    /// From now on SIGINT, SIGTERM and SIGHUP only set the flag.
    pub(super) fn start() -> io::Result<Hold> {
        let mut hold = Hold {
            arrived: Arc::new(AtomicUsize::new(0)),
            ids: Vec::new(),
            told: None,
        };
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            // On an error `hold` is dropped, which unregisters what was registered.
            let id = flag::register_usize(signal, Arc::clone(&hold.arrived), signal as usize)?;
            hold.ids.push(id);
        }
        Ok(hold)
    }

    /// The signal held so far, if one arrived: the one the operator was told about, or one
    /// that arrived during `step`.
    pub(super) fn arrived(&self, step: usize) -> Option<Interruption> {
        self.told
            .or_else(|| match self.arrived.load(Ordering::SeqCst) {
                0 => None,
                signal => Some(Interruption {
                    signal: signal as i32,
                    step,
                }),
            })
    }

    /// After `step` (or one of its parts): the first time a signal is found, tells the
    /// operator that it is held.
    pub(super) fn check(&mut self, step: usize, operator: &mut dyn Operator) {
        if self.told.is_some() {
            return;
        }
        if let Some(interruption) = self.arrived(step) {
            operator.say(&format!(
                "  {} is held until the database is recreated and migrated",
                interruption.as_pressed()
            ));
            self.told = Some(interruption);
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            low_level::unregister(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interruption_names_the_signal_and_the_step() {
        let ctrl_c = Interruption {
            signal: SIGINT,
            step: 6,
        };
        assert_eq!(
            ctrl_c.to_string(),
            "interrupted by the operator (SIGINT, Ctrl-C) during step 6/7"
        );
        assert_eq!(ctrl_c.as_pressed(), "Ctrl-C");
        let term = Interruption {
            signal: SIGTERM,
            step: 4,
        };
        assert_eq!(
            term.to_string(),
            "interrupted by the operator (SIGTERM) during step 4/7"
        );
    }

    #[test]
    fn a_held_signal_is_announced_once() {
        struct Lines(Vec<String>);
        impl Operator for Lines {
            fn say(&mut self, line: &str) {
                self.0.push(line.into());
            }
            fn ask(&mut self, _: &str) -> Option<String> {
                None
            }
        }
        // Built by hand: registering in the test process would leave its SIGINT ignored.
        let mut hold = Hold {
            arrived: Arc::new(AtomicUsize::new(0)),
            ids: Vec::new(),
            told: None,
        };
        let mut lines = Lines(Vec::new());
        hold.check(4, &mut lines);
        assert!(lines.0.is_empty());
        assert_eq!(hold.arrived(4), None);
        // What the handler does when the signal arrives.
        hold.arrived.store(SIGTERM as usize, Ordering::SeqCst);
        hold.check(5, &mut lines);
        hold.check(6, &mut lines);
        assert_eq!(
            lines.0,
            ["  SIGTERM is held until the database is recreated and migrated"]
        );
        assert_eq!(
            hold.arrived(6),
            Some(Interruption {
                signal: SIGTERM,
                step: 5
            })
        );
    }
}
