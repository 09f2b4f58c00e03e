//! `migrate snapshot --reason TEXT`: the one audited way to accept the live schema as it is,
//! for renderings that change with nobody touching the schema (a PostgreSQL major upgrade,
//! an extension update). The terminal checks and the prompt live in `migrate`; this is the
//! engine: lock, compare, show, confirm, record.

use std::time::Duration;

use serde_json::{json, Value};

use super::diff::Drift;
use super::store::{self, Comparison};
use crate::config::{DbUrl, Env};
use crate::connect::{self, failed};
use crate::error::Error;
use crate::lock::{self, Acquired};
use crate::migrations::Migration;
use crate::plan;
use crate::report::Report;
use crate::runner::APPLICATION;
use crate::tracking::{self, Shape};

/// Asks the operator to agree, shown the drift and the equivalent renderings it records.
pub type Confirm<'a> = dyn FnMut(&[Drift], &[Drift]) -> Result<(), Error> + 'a;

/// What `migrate snapshot` did.
#[derive(Debug, Clone, Default)]
pub struct Accepted {
    /// The database.
    pub database: String,
    /// The differences accepted (empty: the schema already matched; nothing recorded).
    pub accepted: Vec<Drift>,
    /// Definitions rendered differently but meaning the same (as after a restore), recorded
    /// as the live server renders them; not drift.
    pub equivalent: Vec<Drift>,
    /// The digest replaced (`None`: there was no snapshot).
    pub previous_digest: Option<String>,
    /// The digest recorded (`None`: nothing recorded).
    pub digest: Option<String>,
    /// The reason given.
    pub reason: String,
}

impl Report for Accepted {
    fn text(&self) -> String {
        match &self.digest {
            None => format!(
                "{}: the live schema matches the snapshot; nothing to accept, nothing recorded",
                self.database
            ),
            Some(digest) if self.accepted.is_empty() && !self.equivalent.is_empty() => format!(
                "{}: no drift; recorded {} equivalent rendering{} as the server renders {} now; snapshot {} replaces {} (reason: {})",
                self.database,
                self.equivalent.len(),
                if self.equivalent.len() == 1 { "" } else { "s" },
                if self.equivalent.len() == 1 { "it" } else { "them" },
                plan::short(digest),
                self.previous_digest.as_deref().map_or("none", plan::short),
                self.reason
            ),
            Some(digest) => format!(
                "{}: accepted {} difference{}; snapshot {} replaces {} (reason: {})",
                self.database,
                self.accepted.len(),
                if self.accepted.len() == 1 { "" } else { "s" },
                plan::short(digest),
                self.previous_digest.as_deref().map_or("none", plan::short),
                self.reason
            ),
        }
    }

    fn json(&self) -> Value {
        json!({
            "ok": true,
            "database": self.database,
            "accepted": self.accepted,
            "equivalent": self.equivalent,
            "previous_digest": self.previous_digest,
            "digest": self.digest,
            "reason": self.reason,
        })
    }
}

/// Records the live schema as the snapshot, after `confirm` agreed to the differences it is
/// shown: the drift, and (when there is none) the equivalent renderings, which it records
/// as the live server renders them so that the gate's cheap proof works again. Refuses while migrations are pending or modified (apply them first: accepting a
/// half-migrated schema would hide the rest) and while another run holds the migration lock.
/// `operator` is who is at the terminal, for the record.
pub fn accept(
    url: &DbUrl,
    env: Env,
    files: &[Migration],
    reason: &str,
    operator: Option<&str>,
    confirm: &mut Confirm,
) -> Result<Accepted, Error> {
    let timeout = Duration::from_secs(10);
    let mut client = connect::open(url, env, APPLICATION, timeout)?;
    // The migration lock, in a session of its own as `migrate` takes it: no run may change
    // the schema between the comparison shown and the snapshot recorded.
    let lock_session = connect::open(url, env, lock::APPLICATION, timeout)?;
    let mut hold = match lock::acquire(lock_session, Duration::ZERO, |_| {})
        .map_err(|e| failed(url, "taking the migration lock", &e))?
    {
        Acquired::Yes(hold) => hold,
        Acquired::No(holder) => {
            let who = holder.map_or("another session".to_string(), |h| h.to_string());
            return Err(Error::Failed(format!(
                "a migrate run holds the migration lock on {} ({who}); nothing was recorded. Wait for it to finish and look at the drift again",
                env.database()
            )));
        }
    };
    let shape =
        tracking::shape(&mut client).map_err(|e| failed(url, "reading the tracking table", &e))?;
    if matches!(shape, Shape::Missing | Shape::TwoColumn) {
        return Err(Error::Failed(format!(
            "the tracking table {} is missing or in the two-column form; run migrate first, which records the first snapshot; nothing was recorded",
            tracking::TABLE
        )));
    }
    let applied = tracking::read(&mut client, shape)
        .map_err(|e| failed(url, "reading the tracking table", &e))?;
    let pending = plan::plan(&applied, files).map_err(Error::Drift)?.pending;
    if let Some(first) = pending.first() {
        return Err(Error::Failed(format!(
            "{} migration{} pending ({}...): apply them with migrate first, which records a snapshot; accepting the schema now would hide what they change. Nothing was recorded",
            pending.len(),
            if pending.len() == 1 { " is" } else { "s are" },
            first.version
        )));
    }
    let ensured =
        store::ensure(&mut client).map_err(|e| failed(url, "creating the snapshot table", &e))?;
    let comparison = store::compare(&mut client)
        .map_err(|e| failed(url, "comparing the schema with its snapshot", &e))?;
    let (previous_digest, accepted, equivalent) = match comparison {
        Comparison::Same {
            digest, equivalent, ..
        } if !equivalent.is_empty() => (Some(digest), Vec::new(), equivalent),
        Comparison::Same { .. } => {
            hold.release();
            return Ok(Accepted {
                database: env.database().to_string(),
                reason: reason.to_string(),
                ..Accepted::default()
            });
        }
        Comparison::NoSnapshot => (None, Vec::new(), Vec::new()),
        Comparison::Drifted {
            recorded, drift, ..
        } => (Some(recorded), drift, Vec::new()),
    };
    confirm(&accepted, &equivalent)?;
    if ensured.lz4_pending {
        store::use_lz4(&mut client);
    }
    let recorded = store::record(
        &mut client,
        Some(store::Second {
            session: hold.session_for_reading(),
            prepared: false,
        }),
        reason,
        operator,
    )
    .map_err(|e| failed(url, "recording the schema snapshot", &e))?;
    hold.release();
    Ok(Accepted {
        database: env.database().to_string(),
        accepted,
        equivalent,
        previous_digest: previous_digest.or(recorded.previous_digest),
        digest: Some(recorded.digest),
        reason: reason.to_string(),
    })
}
