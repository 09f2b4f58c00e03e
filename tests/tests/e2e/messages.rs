//! What the tools print when something is wrong, on inputs taken from bug reports of other
//! migration tools: every message true, actionable and free of secrets, and the cost of a
//! run linear in its input.

use std::time::{Duration, Instant};

use crate::support::secrets;
use crate::support::{Outcome, Project, Tool};

fn both(outcome: &Outcome) -> String {
    format!("{}\n{}", outcome.stdout, outcome.stderr)
}

/// Asserts that stdout or stderr holds each of `needles`.
#[track_caller]
fn assert_says(outcome: &Outcome, needles: &[&str]) {
    let text = both(outcome);
    for needle in needles {
        assert!(text.contains(needle), "lacks {needle:?}:\n{text}");
    }
}

#[test]
fn a_database_url_without_url_structure_is_not_echoed() {
    let password = secrets::plain_sentinel_password();
    for value in [password.clone(), format!("not a url {password}")] {
        for tool in [Tool::Migrate, Tool::SchemaCheck] {
            // The run's own leak check fails the test if any of the value is printed.
            let out = tool
                .cmd()
                .env("DATABASE_URL", &value)
                .args(["--env", "dev", "--dir", "."])
                .run();
            out.assert_code(2);
            out.assert_stderr("is not a URL")
                .assert_stderr(&format!("its {} characters are not shown", value.len()))
                .assert_stderr("postgres://USER:PASSWORD@localhost:5432/dreichor_dev");
        }
    }
}

/// A no-transaction file of many one-line statements: the line of each statement used to be
/// computed from the start of the file, so the tool's own CPU time grew with the square of
/// the statements (7.6 s of CPU at 30 000, 206 s of wall time at 100 000). Four times the
/// statements must cost about four times the CPU, not sixteen; CPU time rather than wall
/// time, so that other work on the machine does not decide the outcome. bench/run.sh
/// compares 100 000 statements with psql.
#[test]
fn a_no_transaction_file_costs_cpu_linear_in_its_statements() {
    let cpu = |statements: usize| {
        let f = Project::start();
        let mut text = String::from("-- dreichor:no-transaction\nCREATE TABLE many (id int);\n");
        for i in 0..statements {
            text.push_str(&format!("INSERT INTO many VALUES ({i});\n"));
        }
        f.write("001_many.sql", text);
        let out = f
            .tool(Tool::Migrate, &[])
            .measured()
            .timeout(Duration::from_secs(300))
            .run();
        out.assert_code(0);
        assert_eq!(
            f.scalar("SELECT count(*) FROM many"),
            Some(statements.to_string())
        );
        out.cpu_seconds()
    };
    let small = cpu(4_000);
    let large = cpu(16_000);
    eprintln!("migrate CPU: 4 000 statements {small:.2} s, 16 000 statements {large:.2} s");
    assert!(
        large < 8.0 * small.max(0.05),
        "4 times the statements cost {:.1} times the CPU ({small:.2} s, {large:.2} s): not linear",
        large / small.max(0.05)
    );
}

#[test]
fn counts_are_singular_for_one_and_a_no_op_run_prints_one_line() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    let first = f.tool(Tool::Migrate, &[]).run();
    first.assert_code(0);
    first.assert_stderr("(1 migration in ");

    let again = f.tool(Tool::Migrate, &[]).run();
    again.assert_code(0);
    assert_eq!(
        again.stdout.trim_end(),
        "dreichor_dev: nothing to apply, 1 migration already applied",
        "{}",
        both(&again)
    );
    assert_eq!(again.stderr, "", "a no-op run prints one line");

    f.write("002_b.sql", "CREATE TABLE b (id int);\n");
    f.write("003_c.sql", "SELECT * FROM nowhere;\n");
    let failed = f.tool(Tool::Migrate, &[]).run();
    failed.assert_code(1);
    failed.assert_stderr("the 1 file applied before it stays applied");

    let lint = Tool::Migrate
        .cmd()
        .args(["lint", "--dir"])
        .arg(f.dir())
        .run();
    lint.assert_code(0);
    assert!(
        lint.stdout.contains(": 3 migrations, clean (0 warnings)"),
        "{}",
        both(&lint)
    );
    f.remove("002_b.sql");
    f.remove("003_c.sql");
    let lint = Tool::Migrate
        .cmd()
        .args(["lint", "--dir"])
        .arg(f.dir())
        .run();
    assert!(
        lint.stdout.contains(": 1 migration, clean (0 warnings)"),
        "{}",
        both(&lint)
    );
}

#[test]
fn lint_since_a_missing_revision_is_not_counted_as_a_violation() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("001_a.sql"), "SELECT 1;\n").expect("writing");
    let out = Tool::Migrate
        .cmd()
        .args(["lint", "--since", "nosuchref", "--dir"])
        .arg(dir.path())
        .run();
    out.assert_code(2);
    assert!(!both(&out).contains("1 violation"), "{}", both(&out));
    assert!(
        out.stdout.contains(
            ": 1 migration, 0 violations; the append-only check against nosuchref could not run"
        ),
        "{}",
        both(&out)
    );
}

#[test]
fn schema_check_timeout_zero_says_what_range_is_allowed() {
    let f = Project::start();
    let out = f.tool(Tool::SchemaCheck, &["--timeout", "0"]).run();
    out.assert_code(2);
    out.assert_stderr(
        "schema-check: error: --timeout 0 is out of range: give a number of seconds greater than 0 and at most 3600",
    );
}

#[test]
fn every_message_starts_with_the_tool_s_name_clap_s_too() {
    for (tool, name) in [
        (Tool::Migrate, "migrate"),
        (Tool::SchemaCheck, "schema-check"),
        (Tool::HardReset, "hard-reset"),
    ] {
        let out = tool.cmd().arg("--no-such-flag").run();
        out.assert_code(2);
        assert!(
            out.stderr.starts_with(&format!(
                "{name}: error: unexpected argument '--no-such-flag'"
            )),
            "{}",
            out.stderr
        );
        let out = tool
            .cmd()
            .args(["--env", "dev", "--dir", "/nonexistent"])
            .run();
        assert!(
            out.stderr.starts_with(&format!("{name}: ")),
            "{}",
            out.stderr
        );
    }
    // Warnings too.
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("001_a.sql"), "").expect("writing");
    let f = Project::start();
    let out = Tool::Migrate
        .cmd()
        .env("DATABASE_URL", f.envs.url("dev"))
        .args(["--env", "dev", "--dir"])
        .arg(dir.path())
        .run();
    out.assert_code(0);
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("warning"))
        .collect();
    assert!(!warnings.is_empty(), "{}", out.stderr);
    for line in warnings {
        assert!(line.starts_with("migrate: warning: "), "{}", out.stderr);
    }
}

#[test]
fn a_row_without_a_checksum_gets_advice_that_works() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.tool(Tool::Migrate, &[]).run().assert_code(0);
    // Rows of the five-column table whose checksum was removed by hand.
    let b = "CREATE TABLE b (id int);\n";
    let c = "CREATE TABLE c (id int);\n";
    f.write("002_b.sql", b);
    f.write("003_c.sql", c);
    f.tool(Tool::Migrate, &[]).run().assert_code(0);
    f.sql("UPDATE public.dreichor_schema_migrations SET checksum = NULL WHERE version IN ('002_b', '003_c')");

    let gate = f.tool(Tool::SchemaCheck, &[]).run();
    gate.assert_code(1);
    let update_c = format!(
        "UPDATE public.dreichor_schema_migrations SET checksum = '{}' WHERE version = '003_c';",
        common::migrations::checksum_of(c)
    );
    assert_says(
        &gate,
        &[
            "003_c is recorded without a checksum (a row written by hand or by another tool)",
            &update_c,
        ],
    );
    assert!(!both(&gate).contains("two-column"), "{}", both(&gate));

    // Both pieces of advice work: the SQL for one row, migrate for the other.
    f.sql(&update_c);
    let migrated = f.tool(Tool::Migrate, &[]).run();
    migrated.assert_code(0);
    migrated.assert_stderr("recorded the checksum of the current file for 1 version that had none");
    assert_eq!(
        f.scalar("SELECT checksum FROM public.dreichor_schema_migrations WHERE version = '002_b'"),
        Some(common::migrations::checksum_of(b))
    );
    f.tool(Tool::SchemaCheck, &[]).run().assert_code(0);
    f.tool(Tool::Migrate, &[]).run().assert_code(0);
}

#[test]
fn a_row_that_is_not_a_version_is_named_with_the_statement_that_removes_it() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE a (id int);\n");
    f.tool(Tool::Migrate, &[]).run().assert_code(0);
    f.sql("INSERT INTO public.dreichor_schema_migrations (version, checksum) VALUES ('zz-not a version', 'x')");
    f.write("003_c.sql", "CREATE TABLE c (id int);\n");
    let delete =
        "DELETE FROM public.dreichor_schema_migrations WHERE version = 'zz-not a version';";

    let refused = f.tool(Tool::Migrate, &[]).run();
    refused.assert_code(1);
    refused
        .assert_stderr("\"zz-not a version\", which is not a migration version")
        .assert_stderr(delete);
    let gate = f.tool(Tool::SchemaCheck, &[]).run();
    gate.assert_code(1);
    assert_says(&gate, &["which is not a migration version", delete]);
    for out in [&refused, &gate] {
        let text = both(out);
        assert!(!text.contains("rename"), "{text}");
        assert!(!text.contains("zz-not a version.sql"), "{text}");
    }

    f.sql(delete);
    f.tool(Tool::Migrate, &[]).run().assert_code(0);
    assert_eq!(f.versions(), ["001_a", "003_c"]);
}

/// A legacy dump that turns standard_conforming_strings off and then writes `\'` in plain
/// strings. psql applies it (statement by statement); one message cannot, because PostgreSQL
/// parses a whole message with the settings it starts with. The refusal gives that reason,
/// not "psql meta-command", and what it says to write instead works.
#[test]
fn a_legacy_dump_without_standard_strings_is_refused_with_the_true_reason() {
    let f = Project::start();
    f.write(
        "001_legacy.sql",
        "-- legacy dump\nSET standard_conforming_strings = off;\nCREATE TABLE notes (body text);\nINSERT INTO notes VALUES ('it\\'s; done');\n",
    );
    let out = f.tool(Tool::Migrate, &[]).run();
    out.assert_code(2);
    out.assert_stderr("001_legacy.sql:2:1: SET standard_conforming_strings = off")
        .assert_stderr("PostgreSQL parses a whole message with the settings it starts with")
        .assert_stderr("E'it\\'s'");
    assert!(!both(&out).contains("meta-command"), "{}", both(&out));
    assert!(!f.table_exists("notes"));

    f.write(
        "001_legacy.sql",
        "-- legacy dump\nCREATE TABLE notes (body text);\nINSERT INTO notes VALUES (E'it\\'s; done');\n",
    );
    f.tool(Tool::Migrate, &[]).run().assert_code(0);
    assert_eq!(
        f.scalar("SELECT body FROM notes").as_deref(),
        Some("it's; done")
    );
}

#[test]
fn a_no_transaction_file_whose_backend_is_terminated_never_claims_nothing_was_committed() {
    let f = Project::start();
    f.write(
        "001_slow.sql",
        "-- dreichor:no-transaction\nCREATE TABLE first (id int);\nSELECT pg_sleep(30);\nCREATE TABLE third (id int);\n",
    );
    let mut run = f.tool(Tool::Migrate, &[]).spawn();
    run.wait_for_stderr("applying 001_slow", Duration::from_secs(30));
    // Until the sleep runs: the first statement has committed by then.
    let deadline = Instant::now() + Duration::from_secs(20);
    while f
        .scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dreichor-migrate' AND query LIKE '%pg_sleep%'")
        .as_deref()
        != Some("1")
    {
        assert!(Instant::now() < deadline, "the sleep never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    f.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'dreichor-migrate'");
    let out = run.wait();
    out.assert_code(1);
    out.assert_stderr("1 of its 3 statements had run and stays applied (line 2)")
        .assert_stderr("a new session finds 001_slow not recorded: the statements listed above as run stay applied");
    assert!(
        !out.stderr.contains("nothing of it was committed"),
        "{}",
        out.stderr
    );
    assert!(f.table_exists("first"));
    assert!(!f.table_exists("third"));
}

#[test]
fn errors_without_a_position_are_located_by_replay_whatever_their_class_or_say_why_not() {
    let f = Project::start();
    // Class 55 (object_not_in_prerequisite_state): replaying is safe, so the line is found.
    f.write(
        "001_err.sql",
        "CREATE SEQUENCE invoice_no;\nCREATE TABLE invoices (no bigint);\nSELECT currval('invoice_no');\n",
    );
    let out = f.tool(Tool::Migrate, &[]).run();
    out.assert_code(1);
    out.assert_stderr("001_err.sql:3:1: currval of sequence \"invoice_no\" is not yet defined in this session (SQLSTATE 55000)");
    assert!(!f.table_exists("invoices"));

    // Cancelled by statement_timeout (class 57): a replay would be cancelled again; say so.
    f.write(
        "001_err.sql",
        "CREATE TABLE slow (id int);\nSELECT pg_sleep(5);\n",
    );
    let out = f.tool(Tool::Migrate, &["--statement-timeout", "1"]).run();
    out.assert_code(1);
    out.assert_stderr("001_err.sql: canceling statement due to statement timeout (SQLSTATE 57014)")
        .assert_stderr("the line is not known: PostgreSQL gave no position, and the file was not replayed to find the statement: the statement was cancelled");
    assert!(!f.table_exists("slow"));
}

#[test]
fn a_file_ending_inside_a_statement_is_reported_at_its_end_not_at_the_runner_s_semicolon() {
    let f = Project::start();
    f.write(
        "001_paren.sql",
        "CREATE TABLE e1 (id int);\nCREATE TABLE e2 (\n  id int\n",
    );
    let out = f.tool(Tool::Migrate, &[]).run();
    out.assert_code(1);
    out.assert_stderr("001_paren.sql:3:9: syntax error at end of input (SQLSTATE 42601)");
    assert!(!out.stderr.contains("at or near \";\""), "{}", out.stderr);
    assert!(!f.table_exists("e1"));
}

/// A transactional file above 8 MiB travels in several messages of one transaction (memory):
/// still all or nothing, and its errors still carry the file's own line.
#[test]
fn a_large_file_sent_in_parts_is_all_or_nothing_with_the_right_line() {
    let f = Project::start();
    let mut big = String::from("CREATE TABLE big (v text);\n");
    let row = format!("INSERT INTO big VALUES ('{}');\n", "x".repeat(100));
    let rows = (9 << 20) / row.len() + 1;
    for _ in 0..rows {
        big.push_str(&row);
    }
    let bad_line = rows + 2;
    f.write(
        "001_big.sql",
        format!(
            "{big}INSERT INTO nowhere VALUES (1);\n{big_tail}",
            big_tail = "SELECT 1;\n"
        ),
    );
    let out = f
        .tool(Tool::Migrate, &[])
        .timeout(Duration::from_secs(120))
        .run();
    out.assert_code(1);
    out.assert_stderr(&format!(
        "001_big.sql:{bad_line}:13: relation \"nowhere\" does not exist"
    ));
    assert!(!f.table_exists("big"), "a part of the file was committed");

    f.write("001_big.sql", format!("{big}CREATE TABLE e2 (\n  id int\n"));
    let out = f
        .tool(Tool::Migrate, &[])
        .timeout(Duration::from_secs(120))
        .run();
    out.assert_code(1);
    out.assert_stderr(&format!(
        "001_big.sql:{}:9: syntax error at end of input",
        rows + 3
    ));
    assert!(!f.table_exists("big"));

    f.write("001_big.sql", &big);
    f.tool(Tool::Migrate, &[])
        .timeout(Duration::from_secs(120))
        .run()
        .assert_code(0);
    assert_eq!(f.scalar("SELECT count(*) FROM big"), Some(rows.to_string()));
}
