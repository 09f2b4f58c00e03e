//! Ctrl-C during a `migrate` run: cancel the running file, do not abandon it.
//!
//! Without this, SIGINT kills the runner while the server still holds the file's whole
//! message: the server carries on, commits the file and its row some time later, and keeps
//! the migration lock until then, while the operator believes the run stopped. Instead, the
//! first SIGINT, SIGTERM or SIGHUP (the SSH session dropped) sends PostgreSQL a cancel request for the running statement
//! (`pg_cancel_backend` over a separate connection, as psql does on Ctrl-C): a transactional
//! file is rolled back with its row, and the run stops before the next file. A second signal
//! ends the process as the signal would have by default. Outside the
//! apply loop the signals keep their default action: nothing is being changed there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use postgres::{CancelToken, NoTls};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

/// Watches for SIGINT, SIGTERM and SIGHUP while files are applied; dropped, it stops watching.
pub struct CancelOnSignal {
    arrived: Arc<AtomicBool>,
    token: Arc<Mutex<CancelToken>>,
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for CancelOnSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelOnSignal")
            .field("arrived", &self.arrived())
            .finish_non_exhaustive()
    }
}

impl CancelOnSignal {
    /// From now on SIGINT, SIGTERM or SIGHUP cancels the statement running on the client of
    /// `token`.
    pub fn start(token: CancelToken) -> std::io::Result<CancelOnSignal> {
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
        let handle = signals.handle();
        let arrived = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&arrived);
        let token = Arc::new(Mutex::new(token));
        let current = Arc::clone(&token);
        let thread = std::thread::Builder::new()
            .name("cancel-on-signal".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if !flag.swap(true, Ordering::SeqCst) {
                        // Nothing useful can be done when the cancel request itself fails
                        // (the server is gone): the run's own error says what happened.
                        let token = current.lock().map(|t| t.clone());
                        if let Ok(token) = token {
                            let _ = token.cancel_query(NoTls);
                        }
                    } else {
                        // A second signal: the operator insists. Do what the signal would
                        // have done; the server rolls back whatever is still open.
                        let _ = signal_hook::low_level::emulate_default_handler(signal);
                    }
                }
            })?;
        Ok(CancelOnSignal {
            arrived,
            token,
            handle,
            thread: Some(thread),
        })
    }

    /// From now on a signal cancels the statement running on the client of `token` (the
    /// runner replaced its session).
    pub fn retarget(&self, token: CancelToken) {
        if let Ok(mut current) = self.token.lock() {
            *current = token;
        }
    }

    /// Whether a signal has arrived.
    pub fn arrived(&self) -> bool {
        self.arrived.load(Ordering::SeqCst)
    }
}

impl Drop for CancelOnSignal {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
