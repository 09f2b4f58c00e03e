//! A migration file cannot change the runner (issue 10): whatever a file does to its session,
//! the next file and the runner's own bookkeeping see the session's defaults, the data later
//! files write does not depend on how the files are batched into runs, and no SQL in a file
//! can end the runner's hold on the migration lock without the run stopping.
//!
//! The central check is [`every_setting_a_role_may_change_is_back_to_its_default_for_the_next_file`]:
//! generated from `pg_settings` on the test server itself, so that a parameter added by a
//! new PostgreSQL release is covered without anyone listing it.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::cluster::describe_error;
use crate::support::{Outcome, Project, Tool};

/// `migrate --env dev --dir DIR` as the dev role.
fn migrate(f: &Project, args: &[&str]) -> Outcome {
    f.tool(Tool::Migrate, args).run()
}

/// Applies `files` twice, to two projects: all in one run, and one run per file (each file
/// in a session of its own, as psql with one session per file would). Returns both.
fn together_and_one_by_one(files: &[(&str, &str)]) -> (Project, Project) {
    let together = Project::start();
    for (name, sql) in files {
        together.write(name, sql);
    }
    migrate(&together, &[]).assert_code(0);
    let one_by_one = Project::start();
    for (name, sql) in files {
        one_by_one.write(name, sql);
        migrate(&one_by_one, &[]).assert_code(0);
    }
    (together, one_by_one)
}

/// The rows of `sql` in `dreichor_dev`, each value as text with its bytes in hex (so that
/// a difference in encoding cannot hide behind a lossy display).
fn exact(f: &Project, sql: &str) -> Vec<Vec<Option<String>>> {
    f.query(&format!(
        "SELECT encode(convert_to(x::text, 'UTF8'), 'hex') FROM ({sql}) AS q(x)"
    ))
}

#[test]
fn a_files_client_encoding_does_not_reach_the_next_file() {
    let (together, one_by_one) = together_and_one_by_one(&[
        (
            "001_enc.sql",
            "CREATE TABLE names (n text);\nSET client_encoding = 'LATIN1';\n",
        ),
        ("002_name.sql", "INSERT INTO names VALUES ('Zoë');\n"),
    ]);
    for f in [&together, &one_by_one] {
        assert_eq!(f.scalar("SELECT n FROM names").as_deref(), Some("Zoë"));
    }
    assert_eq!(
        exact(&together, "SELECT n FROM names"),
        exact(&one_by_one, "SELECT n FROM names")
    );
}

#[test]
fn a_files_string_syntax_does_not_reach_the_next_file() {
    let (together, one_by_one) = together_and_one_by_one(&[
        (
            "001_paths.sql",
            "CREATE TABLE paths (p text);\nSET standard_conforming_strings = off;\n",
        ),
        (
            "002_path.sql",
            "INSERT INTO paths VALUES ('C:\\new\\table');\n",
        ),
    ]);
    for f in [&together, &one_by_one] {
        assert_eq!(
            f.scalar("SELECT p FROM paths").as_deref(),
            Some("C:\\new\\table")
        );
    }
}

#[test]
fn transaction_characteristics_of_one_file_do_not_reach_the_next() {
    let (together, _) = together_and_one_by_one(&[
        (
            "001_account.sql",
            "CREATE TABLE account (id int PRIMARY KEY);\nSET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY;\n",
        ),
        ("002_invoice.sql", "CREATE TABLE invoice (id int);\n"),
        (
            "003_serializable.sql",
            "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, DEFERRABLE;\n",
        ),
        (
            "004_seen.sql",
            "CREATE TABLE seen AS SELECT current_setting('transaction_isolation') AS iso, current_setting('transaction_read_only') AS ro, current_setting('transaction_deferrable') AS d;\n",
        ),
    ]);
    assert!(together.table_exists("invoice"));
    assert_eq!(
        together.query("SELECT iso, ro, d FROM seen"),
        [[
            Some("read committed".to_string()),
            Some("off".to_string()),
            Some("off".to_string())
        ]]
    );
}

/// A role the dev role is a member of, owning a table, with CREATE on schema public.
fn with_a_role_to_switch_to(f: &Project) {
    f.cluster.sql(
        "postgres",
        "CREATE ROLE mig_owner NOLOGIN; GRANT mig_owner TO dreichor_dev;",
    );
    f.sql("GRANT CREATE ON SCHEMA public TO mig_owner;");
}

#[test]
fn a_no_transaction_file_that_switches_role_is_recorded_as_the_runner() {
    let f = Project::start();
    with_a_role_to_switch_to(&f);
    f.write(
        "001_items.sql",
        "CREATE TABLE items (v int);\nALTER TABLE items OWNER TO mig_owner;\n",
    );
    f.write(
        "002_index.sql",
        "-- dreichor:no-transaction\nSET ROLE mig_owner;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_v ON items (v);\n",
    );
    f.write(
        "003_owned.sql",
        "SET ROLE mig_owner;\nCREATE TABLE owned (id int);\n",
    );
    f.write(
        "004_after.sql",
        "CREATE TABLE after_role AS SELECT current_user AS who;\n",
    );
    let out = migrate(&f, &[]);
    out.assert_code(0);
    assert_eq!(
        f.versions(),
        ["001_items", "002_index", "003_owned", "004_after"]
    );
    assert!(f.table_exists("items_v"));
    assert_eq!(
        f.scalar("SELECT tableowner FROM pg_tables WHERE tablename = 'owned'")
            .as_deref(),
        Some("mig_owner")
    );
    assert_eq!(
        f.scalar("SELECT who FROM after_role").as_deref(),
        Some("dreichor_dev")
    );
    assert_eq!(
        f.query("SELECT DISTINCT applied_by FROM public.dreichor_schema_migrations"),
        [[Some("dreichor_dev".to_string())]]
    );
}

#[test]
fn idle_timeouts_a_file_sets_do_not_end_the_runner() {
    let f = Project::start();
    f.sql("CREATE TABLE c (id int); ALTER TABLE c OWNER TO dreichor_dev;");
    f.write(
        "001_a.sql",
        "CREATE TABLE a (id int);\nSET idle_in_transaction_session_timeout = '1ms';\nSET idle_session_timeout = '1ms';\n",
    );
    // Blocked by the test's lock: rolled back after lock_timeout, then retried after a
    // backoff of 2 s during which the session idles.
    f.write("002_alter.sql", "ALTER TABLE c ADD COLUMN x int;\n");
    f.write("003_d.sql", "CREATE TABLE d (id int);\n");
    let mut holder = f.connect_as_dev("holds-table-c");
    holder
        .batch_execute("BEGIN; LOCK TABLE c IN ACCESS EXCLUSIVE MODE")
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    let mut run = f
        .tool(Tool::Migrate, &[])
        .arg("--lock-timeout")
        .arg("1")
        .spawn();
    run.wait_for_stderr("retry 1 of", Duration::from_secs(30));
    holder.batch_execute("COMMIT").expect("releasing table c");
    let out = run.wait();
    out.assert_code(0);
    assert_eq!(f.versions(), ["001_a", "002_alter", "003_d"]);
    assert!(f.table_exists("d"));
}

/// Every way a file can reach `pg_advisory_unlock_all()`: plain, in a `DO` block, through
/// `EXECUTE`, by a quoted name, from a function of its own. None may release the hold.
const RELEASES: &str = "SELECT pg_advisory_unlock_all();\n\
DO $$ BEGIN PERFORM pg_advisory_unlock_all(); END $$;\n\
DO $$ BEGIN EXECUTE 'SELECT pg_advisory_unlock_all()'; END $$;\n\
SELECT \"pg_catalog\".\"pg_advisory_unlock_all\"();\n\
CREATE OR REPLACE FUNCTION let_go() RETURNS void LANGUAGE sql AS $$ SELECT pg_advisory_unlock_all() $$;\n\
SELECT let_go();\n";

#[test]
fn no_sql_in_a_file_releases_the_migration_lock() {
    let f = Project::start();
    f.write(
        "001_acct.sql",
        format!("CREATE TABLE acct (id int PRIMARY KEY, bal int);\nINSERT INTO acct VALUES (1, 0);\n{RELEASES}"),
    );
    f.write(
        "002_credit.sql",
        format!(
            "-- dreichor:no-transaction\n{RELEASES}SELECT pg_sleep(3);\nUPDATE acct SET bal = bal + 10 WHERE id = 1;\n"
        ),
    );
    let mut first = f.tool(Tool::Migrate, &[]).spawn();
    first.wait_for_stderr("applying 002_credit", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let second = f.tool(Tool::Migrate, &[]).arg("--lock-wait").arg("1").run();
    second.assert_code(1);
    second.assert_stderr("was not acquired");
    first.wait().assert_code(0);
    assert_eq!(f.scalar("SELECT bal FROM acct").as_deref(), Some("10"));
    assert_eq!(f.versions(), ["001_acct", "002_credit"]);
}

/// Ends every other session of the database, the migration lock's among them: what a file
/// that clears a table of its users before an ALTER does.
const END_OTHERS: &str = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid();\n";

/// `pg_terminate_backend` only signals: the lock's session may still hold the lock for a
/// moment after the statement returns. Either the file that ended it or the next one is
/// refused at its commit; what matters is that nothing commits once the lock is gone, and
/// that the run stops. The next file waits a little so that the session is surely gone.
#[test]
fn a_file_that_ends_the_locks_session_stops_the_run_before_another_commit() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.write(
        "002_b.sql",
        format!("CREATE TABLE b (id int);\n{END_OTHERS}"),
    );
    f.write(
        "003_c.sql",
        "SELECT pg_sleep(0.5);\nCREATE TABLE c (id int);\n",
    );
    let out = migrate(&f, &[]);
    out.assert_code(1);
    out.assert_stderr("the migration lock was lost");
    out.assert_stderr("dreichor-migrate-lock");
    let versions = f.versions();
    assert!(
        versions == ["001_a"] || versions == ["001_a", "002_b"],
        "{versions:?}"
    );
    assert_eq!(f.table_exists("b"), versions.len() == 2);
    assert!(!f.table_exists("c"), "a file committed without the lock");
}

#[test]
fn a_no_transaction_file_that_ends_the_locks_session_stops_before_another_statement() {
    let f = Project::start();
    f.write(
        "001_a.sql",
        format!(
            "-- dreichor:no-transaction\nCREATE TABLE a (id int);\n{END_OTHERS}SELECT pg_sleep(0.5);\nCREATE TABLE a2 (id int);\n"
        ),
    );
    let out = migrate(&f, &[]);
    out.assert_code(1);
    out.assert_stderr("the migration lock was lost");
    out.assert_stderr("this statement did not run");
    out.assert_stderr("of its 4 statements had run and stay applied");
    assert!(f.table_exists("a"));
    assert!(!f.table_exists("a2"), "a statement ran without the lock");
    assert!(f.versions().is_empty());
}

#[test]
fn a_nul_byte_is_refused_offline_with_its_line_and_nothing_runs() {
    let f = Project::start();
    for (name, sql) in [
        ("001_a.sql", "CREATE TABLE a (id int);\n"),
        ("002_b.sql", "CREATE TABLE b (id int);\n"),
        ("003_c.sql", "CREATE TABLE c (id int);\n"),
        ("004_nul.sql", "SELECT 1;\nSELECT 'a\0b';\n"),
    ] {
        f.write(name, sql);
    }
    let lint = Tool::Migrate
        .cmd()
        .args(["lint", "--dir"])
        .arg(f.dir())
        .run();
    lint.assert_code(2);
    let said = format!("{}{}", lint.stdout, lint.stderr);
    assert!(said.contains("004_nul.sql:2:"), "{said}");
    assert!(said.contains("NUL byte"), "{said}");
    let out = migrate(&f, &[]);
    out.assert_code(2);
    out.assert_stderr("004_nul.sql:2:");
    assert!(f.versions().is_empty());
    assert!(!f.table_exists("a"));
}

/// Parameters that are not session defaults a file could leave behind, or that the sweep
/// sets by other means: the transaction's own characteristics (they end with it; their
/// session defaults, `default_transaction_*`, are swept), and the role (set with `SET ROLE`).
const NOT_SWEPT: &[&str] = &[
    "transaction_isolation",
    "transaction_read_only",
    "transaction_deferrable",
    "role",
    "session_authorization",
];

/// `"name"` for SQL.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'value'` for SQL (the probe's `standard_conforming_strings` is on).
fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Values to try for a string parameter: a non-default value the server accepts for it.
fn string_candidates(name: &str) -> &'static [&'static str] {
    match name {
        "application_name" => &["sweep"],
        "client_encoding" => &["LATIN1"],
        "DateStyle" => &["SQL, DMY"],
        "TimeZone" => &["Pacific/Chatham"],
        "timezone_abbreviations" => &["Australia"],
        "search_path" => &["pg_temp"],
        "default_text_search_config" => &["pg_catalog.simple", "pg_catalog.german"],
        "lc_monetary" | "lc_numeric" | "lc_time" => &["POSIX", "C", "C.UTF-8"],
        "default_tablespace" | "temp_tablespaces" => &["pg_default"],
        "local_preload_libraries" => &["sweep_absent_library"],
        "restrict_nonsystem_relation_kind" => &["view", "foreign-table"],
        "default_table_access_method" => &[],
        _ => &["sweep"],
    }
}

/// A non-default value for a numeric parameter: its maximum, or its minimum when the
/// default is the maximum, then a step either way.
fn numeric_candidates(reset: &str, min: &str, max: &str, integer: bool) -> Vec<String> {
    let mut out = Vec::new();
    for v in [max, min] {
        if v != reset {
            out.push(v.to_string());
        }
    }
    if integer {
        if let Ok(r) = reset.parse::<i64>() {
            out.push((r + 1).to_string());
            out.push((r - 1).to_string());
        }
    }
    out
}

/// Finds, for every parameter the dev role may set (`context = 'user'` in `pg_settings`), a
/// value other than its default that the server accepts, by trying it in a session of the
/// dev role. Returns the `SET` statements and the parameters for which no other value exists.
fn sweep_statements(f: &Project) -> (Vec<String>, Vec<String>) {
    let mut probe = f.connect_as_dev("settings-sweep-probe");
    let rows = probe
        .simple_query(
            "SELECT name, vartype, reset_val, coalesce(min_val, ''), coalesce(max_val, ''), \
                    coalesce(array_to_string(enumvals, E'\\x1f'), '') \
             FROM pg_settings WHERE context = 'user' ORDER BY name",
        )
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    let mut statements = Vec::new();
    let mut unchangeable = Vec::new();
    for message in rows {
        let postgres::SimpleQueryMessage::Row(row) = message else {
            continue;
        };
        let get = |i: usize| row.get(i).unwrap_or("").to_string();
        let (name, vartype, reset, min, max, enums) =
            (get(0), get(1), get(2), get(3), get(4), get(5));
        if NOT_SWEPT.contains(&name.as_str()) {
            continue;
        }
        let candidates: Vec<String> = match vartype.as_str() {
            "bool" => vec![if reset == "on" { "off" } else { "on" }.to_string()],
            "enum" => enums
                .split('\u{1f}')
                .filter(|v| !v.eq_ignore_ascii_case(&reset))
                .map(str::to_string)
                .collect(),
            "integer" => numeric_candidates(&reset, &min, &max, true),
            "real" => numeric_candidates(&reset, &min, &max, false),
            _ => string_candidates(&name)
                .iter()
                .filter(|v| **v != reset)
                .map(|v| v.to_string())
                .collect(),
        };
        let accepted = candidates.into_iter().find_map(|value| {
            let set = format!(
                "SET {} = {}",
                quote_ident(&name),
                quote_literal(&value)
            );
            // Tried in a transaction that is rolled back: the probe stays at its defaults.
            let ok = probe.batch_execute(&format!("BEGIN; {set}")).is_ok();
            let changed = ok
                && probe
                    .simple_query(&format!(
                        "SELECT current_setting({}) <> {}",
                        quote_literal(&name),
                        quote_literal(&reset)
                    ))
                    .is_ok_and(|m| {
                        m.iter().any(|x| {
                            matches!(x, postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("t"))
                        })
                    });
            let _ = probe.batch_execute("ROLLBACK");
            changed.then_some(set)
        });
        match accepted {
            Some(set) => statements.push(set),
            None => unchangeable.push(name),
        }
    }
    (statements, unchangeable)
}

/// What the second file records: every parameter's value as the file sees it, the role, and
/// values whose text depends on the settings (dates, floats, bytea, intervals, money-like
/// formatting, a backslash, a non-ASCII letter).
const SEEN: &str = "CREATE TABLE seen AS SELECT name, setting FROM pg_settings WHERE context IN ('user', 'superuser') AND name NOT LIKE '%.%';\n\
INSERT INTO seen VALUES ('(current_user)', current_user::text), ('(session_user)', session_user::text);\n\
CREATE TABLE written (k text, v text);\n\
INSERT INTO written VALUES ('ts', '2024-01-02 03:04:05+00'::timestamptz::text), \
('date', '03/04/2024'::date::text), ('float', (1.0::float8 / 3)::text), ('bytea', '\\x00ff'::bytea::text), \
('interval', interval '1 day 2 hours 3 minutes'::text), ('numeric', to_char(1234.5, '9G999D9')), \
('backslash', 'C:\\new'), ('letter', 'Zoë'), ('array', ARRAY[NULL, 'x']::text), ('json', '{\"a\": 1.10}'::jsonb::text);\n";

#[test]
fn every_setting_a_role_may_change_is_back_to_its_default_for_the_next_file() {
    let probe = Project::start();
    let (sets, unchangeable) = sweep_statements(&probe);
    drop(probe);
    // A sweep that sets little would prove little: PostgreSQL 15 has about 130 such
    // parameters, and only those without another valid value may be left out.
    assert!(
        sets.len() >= 120,
        "only {} parameters swept: {sets:?}",
        sets.len()
    );
    for name in &unchangeable {
        assert!(
            ["default_table_access_method"].contains(&name.as_str()),
            "no non-default value found for {name}: add one to string_candidates"
        );
    }
    let mut first = String::from("CREATE TABLE base (id int);\n");
    for set in &sets {
        first.push_str(set);
        first.push_str(";\n");
    }
    first.push_str("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE;\n");
    first.push_str("SELECT set_config('statement_timeout', '123456', false);\n");
    let files = [("001_sweep.sql", first.as_str()), ("002_seen.sql", SEEN)];
    let (together, one_by_one) = together_and_one_by_one(&files);
    // In one run, 002 ran right after 001 in the same session.
    let settings = |f: &Project| -> BTreeMap<String, Option<String>> {
        f.query("SELECT name, setting FROM seen ORDER BY name")
            .into_iter()
            .map(|row| (row[0].clone().unwrap_or_default(), row[1].clone()))
            .collect()
    };
    let (a, b) = (settings(&together), settings(&one_by_one));
    let differing: Vec<_> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: one run {v:?}, one run per file {:?}", b.get(k)))
        .collect();
    assert!(differing.is_empty(), "{}", differing.join("\n"));
    assert_eq!(
        exact(&together, "SELECT k || '=' || v FROM written ORDER BY k"),
        exact(&one_by_one, "SELECT k || '=' || v FROM written ORDER BY k"),
    );
    assert_eq!(
        together
            .scalar("SELECT v FROM written WHERE k = 'letter'")
            .as_deref(),
        Some("Zoë")
    );
}

/// A no-transaction file that sets a tiny `idle_session_timeout` before its last statement:
/// whatever the timing, the file is recorded only if that statement ran.
#[test]
fn a_no_transaction_file_is_never_recorded_for_a_statement_its_idle_timeout_cut_off() {
    let f = Project::start();
    f.write(
        "001_acct.sql",
        "CREATE TABLE acct (id int PRIMARY KEY, bal int);\nINSERT INTO acct VALUES (1, 0);\n",
    );
    f.write(
        "002_pay.sql",
        "-- dreichor:no-transaction\nSET idle_session_timeout = '1ms';\nUPDATE acct SET bal = bal + 10 WHERE id = 1;\n",
    );
    let out = migrate(&f, &[]);
    let recorded = f.versions().contains(&"002_pay".to_string());
    let bal = f.scalar("SELECT bal FROM acct").unwrap_or_default();
    assert!(
        !recorded || bal == "10",
        "recorded with bal {bal}: {}",
        out.stderr
    );
    if !recorded {
        out.assert_code(1);
        out.assert_stderr("idle_session_timeout");
    }
}

/// Code that runs at COMMIT, after the reset: a deferred constraint trigger whose function
/// changes the session. It must fire before the reset, so the next file sees the defaults.
#[test]
fn a_deferred_trigger_cannot_change_the_session_of_the_next_file() {
    let trigger = "CREATE TABLE t (id int);\n\
CREATE FUNCTION leak() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
PERFORM set_config('standard_conforming_strings', 'off', false); \
PERFORM set_config('default_transaction_isolation', 'serializable', false); \
PERFORM set_config('search_path', 'pg_temp, public', false); RETURN NULL; END $$;\n\
CREATE CONSTRAINT TRIGGER leak AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION leak();\n\
INSERT INTO t VALUES (1);\n";
    let (together, one_by_one) = together_and_one_by_one(&[
        ("001_trigger.sql", trigger),
        (
            "002_seen.sql",
            "CREATE TABLE seen AS SELECT 'C:\\new' AS p, current_setting('transaction_isolation') AS iso, current_setting('search_path') AS sp;\n",
        ),
    ]);
    let seen = |f: &Project| f.query("SELECT p, iso, sp FROM public.seen");
    assert_eq!(seen(&together), seen(&one_by_one));
    assert_eq!(
        together.scalar("SELECT p FROM public.seen").as_deref(),
        Some("C:\\new")
    );
}

/// A file must not commit without its row: a rule or a trigger on the tracking table that
/// drops the row makes the file fail, rolled back, instead of "applied" and run again later.
#[test]
fn a_rule_or_trigger_that_drops_the_tracking_row_fails_the_file() {
    for hook in [
        "CREATE RULE hide AS ON INSERT TO public.dreichor_schema_migrations DO INSTEAD NOTHING;\n",
        "CREATE FUNCTION drop_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;\n\
         CREATE TRIGGER drop_row BEFORE INSERT ON public.dreichor_schema_migrations FOR EACH ROW EXECUTE FUNCTION drop_row();\n",
    ] {
        let f = Project::start();
        f.write("001_a.sql", "CREATE TABLE a (id int);\n");
        f.write("002_hook.sql", format!("CREATE TABLE b (id int);\n{hook}"));
        f.write("003_c.sql", "CREATE TABLE c (id int);\n");
        let out = migrate(&f, &[]);
        out.assert_code(1);
        out.assert_stderr("002_hook.sql");
        assert_eq!(f.versions(), ["001_a"], "{hook}");
        assert!(!f.table_exists("b"), "{hook}");
        assert!(!f.table_exists("c"), "{hook}");
    }
}

/// `ALTER DATABASE ... SET standard_conforming_strings = off` in a file applies to later
/// sessions only; the session that runs files pins the standard string syntax, which the
/// lexer assumes, so a later file means the same in the same run and in a later one.
#[test]
fn a_database_default_for_string_syntax_does_not_change_later_files() {
    let (together, one_by_one) = together_and_one_by_one(&[
        (
            "001_db.sql",
            "CREATE TABLE paths (p text);\nALTER DATABASE dreichor_dev SET standard_conforming_strings = off;\n",
        ),
        ("002_path.sql", "INSERT INTO paths VALUES ('C:\\new\\table');\n"),
    ]);
    for f in [&together, &one_by_one] {
        assert_eq!(
            f.scalar("SELECT p FROM paths").as_deref(),
            Some("C:\\new\\table")
        );
    }
}

/// `kill -9` of a run ends its lock's session at once, while its backend finishes the file's
/// message. A run started in that moment may apply the same file at the same time: the
/// tracking row's primary key lets one commit, and the other must say so, not "fix the file".
#[test]
fn a_run_that_races_a_killed_runs_backend_says_the_file_was_applied_by_it() {
    let f = Project::start();
    f.write("001_log.sql", "CREATE TABLE log (id int);\n");
    f.write(
        "002_slow.sql",
        "INSERT INTO log VALUES (1);\nSELECT pg_sleep(3);\n",
    );
    let mut first = f.tool(Tool::Migrate, &[]).spawn();
    first.wait_for_stderr("applying 002_slow", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    first.kill_9();
    let second = migrate(&f, &[]);
    assert_eq!(f.scalar("SELECT count(*) FROM log").as_deref(), Some("1"));
    assert_eq!(f.versions(), ["001_log", "002_slow"]);
    if second.code == 1 {
        second.assert_stderr("another session recorded this version at the same moment");
    } else {
        // The killed run's backend committed before the second run read the table.
        second.assert_code(0);
    }
}

/// A file above the one-message size goes in parts of one transaction; what a part sets must
/// not change how the next part is read, as it cannot in a file sent whole.
#[test]
fn a_large_file_sent_in_parts_is_read_like_a_small_one() {
    let f = Project::start();
    let mut big = String::from(
        "CREATE TABLE names (n text);\nSET client_encoding = 'LATIN1';\nSET standard_conforming_strings = off;\nSET idle_in_transaction_session_timeout = '1ms';\n",
    );
    let filler = format!("SELECT '{}';\n", "x".repeat(200));
    while big.len() < (9 << 20) {
        big.push_str(&filler);
    }
    big.push_str("INSERT INTO names VALUES ('Zoë'), (E'tab\\there');\n");
    f.write("001_big.sql", &big);
    f.write("002_small.sql", "INSERT INTO names VALUES ('C:\\new');\n");
    let out = f
        .tool(Tool::Migrate, &[])
        .timeout(Duration::from_secs(180))
        .run();
    out.assert_code(0);
    assert_eq!(
        f.query("SELECT n FROM names ORDER BY n"),
        [
            [Some("C:\\new".to_string())],
            [Some("Zoë".to_string())],
            [Some("tab\there".to_string())]
        ]
    );
}
