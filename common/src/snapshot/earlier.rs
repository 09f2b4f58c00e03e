//! Renderings an earlier release of the capture recorded that mean what today's rendering
//! means.
//!
//! The capture's SQL is part of the snapshot's format. When a release renders an entry more
//! completely or more canonically, a snapshot recorded by the release before holds the old
//! rendering, and on the day the tools are upgraded the gate would call every such entry drift
//! and stop deploys for a change nobody made. Each form below is one such change of the
//! capture, recognised exactly; anything else stays drift. The gate then proves "no drift" as
//! for a restore (`Proof::Equivalent`: compatible, the renderings listed) until the next run
//! that records a snapshot, or `migrate snapshot`, records today's rendering.
//!
//! 1. **A partition index** (an index attached to a partitioned table's index). The capture
//!    appended the partition bound to a partition's definition, and an index has none: the
//!    NULL swallowed the whole definition, recorded as the empty string (found by the drift
//!    sweep of issue 13). Today it reads `CREATE INDEX ... PARTITION OF parent_index`. An
//!    empty recorded definition against a live partition index in the form an attach gives
//!    it (its parent's definition, its own name and table, nothing else) is that old
//!    rendering: the old snapshot never held the index's definition. What an index can have
//!    of its own beyond that (options: `ALTER INDEX ... SET (fillfactor = 50)`; ` (INVALID)`;
//!    ` (REPLICA IDENTITY)`) stays drift: set by hand after the upgrade it would otherwise pass
//!    every gate and be recorded by the next run without a word; set by a migration before
//!    the upgrade, it is accepted once with `migrate snapshot`. An index that was dropped or
//!    added is still drift.
//! 2. **A policy's roles.** Listed in catalog order (`pg_policy.polroles`, as written), today
//!    in name order, byte by byte (a restore reorders them: `pg_dump` writes them in another
//!    order). `TO` names a set of roles: the same names in another order are the same policy.

use squawk_lexer::{tokenize, TokenKind};

/// Whether `recorded`, an entry of `kind` as an earlier release rendered it, is `live` as
/// today's capture renders it (the forms in the module documentation).
pub fn same_as_today(kind: &str, recorded: &str, live: &str) -> bool {
    match kind {
        "index" => recorded.is_empty() && is_attached_as_is(live),
        "policy" => roles_in_name_order(recorded).is_some_and(|sorted| sorted == live),
        _ => false,
    }
}

/// Whether `live` renders a partition index with nothing of its own: `... PARTITION OF
/// parent_index` at the very end (no options after it), no ` WITH (` options in the index's
/// definition, not marked ` (INVALID)` or ` (REPLICA IDENTITY)`. Conservative: a ` WITH (`
/// inside a quoted name or a literal makes it drift, never the other way round.
fn is_attached_as_is(live: &str) -> bool {
    let Some((index, parent)) = live.rsplit_once(" PARTITION OF ") else {
        return false;
    };
    let mut names = 0usize;
    let mut expect_name = true;
    for token in tokenize(parent) {
        match token.kind {
            TokenKind::Ident
            | TokenKind::QuotedIdent {
                terminated: true, ..
            } if expect_name => {
                names += 1;
                expect_name = false;
            }
            TokenKind::Dot if !expect_name => expect_name = true,
            _ => return false,
        }
    }
    names > 0
        && !expect_name
        && !index.contains(" WITH (")
        && !index.ends_with(" (INVALID)")
        && !index.ends_with(" (REPLICA IDENTITY)")
}

/// A policy's definition (`PERMISSIVE FOR ALL TO b, a USING (...)`) with the roles of its `TO`
/// list in name order as today's capture writes them (`ORDER BY name COLLATE "C"` on
/// `quote_ident`ed names and `PUBLIC`); `None` when the text has no such list (it is then
/// compared as it is). Tokens by `squawk-lexer`: a quoted role name holding `, ` or `USING` is
/// one token.
fn roles_in_name_order(definition: &str) -> Option<String> {
    let mut at = 0usize;
    let mut after_to = None;
    let mut roles: Vec<&str> = Vec::new();
    let mut list_end = None;
    let mut expect_role = true;
    for token in tokenize(definition) {
        let start = at;
        at += token.len as usize;
        let piece = definition.get(start..at)?;
        if after_to.is_none() {
            if token.kind == TokenKind::Ident && piece == "TO" {
                after_to = Some(at);
            }
            continue;
        }
        match token.kind {
            TokenKind::Whitespace => {}
            TokenKind::Ident
            | TokenKind::QuotedIdent {
                terminated: true, ..
            } if expect_role => {
                roles.push(piece);
                list_end = Some(at);
                expect_role = false;
            }
            TokenKind::Comma if !expect_role => expect_role = true,
            _ => break,
        }
    }
    let (after_to, list_end) = (after_to?, list_end?);
    if expect_role || roles.is_empty() {
        return None;
    }
    roles.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Some(format!(
        "{} {}{}",
        &definition[..after_to],
        roles.join(", "),
        &definition[list_end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_recorded_partition_index_is_todays_rendering() {
        let live = "CREATE INDEX event_2026_at_idx ON public.event_2026 USING btree (at) PARTITION OF public.event_at";
        assert!(same_as_today("index", "", live));
        // Not for an index that is not a partition index, nor for another kind.
        assert!(!same_as_today(
            "index",
            "",
            "CREATE INDEX i ON public.t USING btree (a)"
        ));
        assert!(!same_as_today("table", "", "PARTITION OF public.event"));
        // What an index has of its own (options, validity, replica identity) is not hidden.
        for own in [
            "CREATE INDEX event_2026_at_idx ON public.event_2026 USING btree (at) WITH (fillfactor='50') PARTITION OF public.event_at WITH (fillfactor=50)",
            "CREATE INDEX event_2026_at_idx ON public.event_2026 USING btree (at) (INVALID) PARTITION OF public.event_at",
            "CREATE UNIQUE INDEX event_2026_at_idx ON public.event_2026 USING btree (at) (REPLICA IDENTITY) PARTITION OF public.event_at",
            "CREATE INDEX i ON public.t USING btree (a) PARTITION OF public.p WITH (fillfactor=50)",
            // " PARTITION OF " in a quoted name or a literal of an index that is not one.
            "CREATE INDEX \"x PARTITION OF y\" ON public.t USING btree (a)",
            "CREATE INDEX i ON public.t USING btree (a) WHERE (b <> ' PARTITION OF p')",
        ] {
            assert!(!same_as_today("index", "", own), "{own}");
        }
        assert!(same_as_today(
            "index",
            "",
            "CREATE INDEX \"Ev 1\" ON \"S\".\"Ev\" USING btree (at) PARTITION OF \"S\".\"Ev at\""
        ));
        // A recorded definition that is not empty is compared as it is.
        assert!(!same_as_today(
            "index",
            "CREATE INDEX x ON public.event_2026 USING btree (at)",
            live
        ));
    }

    #[test]
    fn policy_roles_in_another_order_are_the_same_policy() {
        assert!(same_as_today(
            "policy",
            "PERMISSIVE FOR ALL TO drift_reader, dreichor_dev USING ((customer = CURRENT_USER))",
            "PERMISSIVE FOR ALL TO dreichor_dev, drift_reader USING ((customer = CURRENT_USER))"
        ));
        assert!(same_as_today(
            "policy",
            "RESTRICTIVE FOR SELECT TO PUBLIC, \"Zed, USING x\", abc",
            "RESTRICTIVE FOR SELECT TO \"Zed, USING x\", PUBLIC, abc"
        ));
        assert!(same_as_today(
            "policy",
            "PERMISSIVE FOR INSERT TO b, a WITH CHECK ((n > 0))",
            "PERMISSIVE FOR INSERT TO a, b WITH CHECK ((n > 0))"
        ));
    }

    #[test]
    fn a_policy_that_differs_in_anything_but_role_order_is_not_the_same() {
        // Another role set.
        assert!(!same_as_today(
            "policy",
            "PERMISSIVE FOR ALL TO b, a",
            "PERMISSIVE FOR ALL TO a, c"
        ));
        assert!(!same_as_today(
            "policy",
            "PERMISSIVE FOR ALL TO b, a",
            "PERMISSIVE FOR ALL TO a"
        ));
        // Same roles, another command or expression.
        assert!(!same_as_today(
            "policy",
            "PERMISSIVE FOR ALL TO b, a USING ((n > 0))",
            "PERMISSIVE FOR SELECT TO a, b USING ((n > 0))"
        ));
        assert!(!same_as_today(
            "policy",
            "PERMISSIVE FOR ALL TO b, a USING ((n > 0))",
            "PERMISSIVE FOR ALL TO a, b USING ((n > 1))"
        ));
        // No list to sort.
        assert_eq!(roles_in_name_order("PERMISSIVE FOR ALL"), None);
        assert_eq!(roles_in_name_order("PERMISSIVE FOR ALL TO"), None);
    }
}
