//! Bounding the time of work on a connection: a deploy gate must not hang.

use std::time::Duration;

use crate::config::DbUrl;
use crate::error::Error;

/// Runs `work` on its own thread and gives up after `timeout` with exit 3.
///
/// The client's `connect_timeout` only bounds the TCP connect: a server (or anything else
/// listening on the port) that accepts the connection and then never answers the startup or
/// a query would hang the caller forever. A deploy gate must not hang, so the whole exchange
/// runs on a thread that is abandoned on timeout (its socket closes when the process exits,
/// or when the peer finally answers).
pub fn within<T: Send + 'static>(
    timeout: Duration,
    url: &DbUrl,
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    Bounded::start(timeout, url, work)?.wait()
}

/// Work running on its own thread under a deadline (see [`within`]); the caller can do
/// something else meanwhile (the gate reads the migrations while it connects).
#[derive(Debug)]
pub struct Bounded<T> {
    rx: std::sync::mpsc::Receiver<Result<T, Error>>,
    deadline: std::time::Instant,
    timeout: Duration,
    url: String,
}

impl<T: Send + 'static> Bounded<T> {
    /// Starts `work` now; its deadline is `timeout` from now.
    pub fn start(
        timeout: Duration,
        url: &DbUrl,
        work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<Bounded<T>, Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("db".into())
            .spawn(move || {
                let _ = tx.send(work());
            })
            .map_err(|e| Error::Failed(format!("cannot start a thread: {e}")))?;
        Ok(Bounded {
            rx,
            deadline: std::time::Instant::now() + timeout,
            timeout,
            url: url.redacted(),
        })
    }

    /// The result, or exit 3 when the deadline passes first.
    pub fn wait(self) -> Result<T, Error> {
        let left = self
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(result) => result,
            Err(_) => Err(Error::Unreachable {
                url: self.url,
                reason: format!(
                    "no answer within {} s (the server accepted the connection but did not respond, is overloaded, or a lock blocked the query)",
                    self.timeout.as_secs_f64()
                ),
            }),
        }
    }
}
