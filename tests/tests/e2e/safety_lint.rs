//! The safety lint end to end: `migrate lint` (warnings, `--deny-warnings`, `--since`,
//! JSON), `migrate --dry-run` listing each pending file's findings, and the crates.io history
//! linted whole.

use std::path::{Path, PathBuf};

use crate::support::{Project, Run, Tool};

/// `migrate lint --dir DIR ARGS...`, run.
fn lint(dir: &Path, args: &[&str]) -> crate::support::Outcome {
    Tool::Migrate
        .cmd()
        .args(["lint", "--dir"])
        .arg(dir)
        .args(args)
        .run()
}

const REWRITE: &str = "ALTER TABLE orders ALTER COLUMN amount TYPE numeric(20, 2);\n";

#[test]
fn findings_are_warnings_unless_denied_and_json_has_every_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("001_init.sql"),
        "CREATE TABLE orders (id bigint, amount int);\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("002_widen.sql"), REWRITE).unwrap();

    let out = lint(dir.path(), &[]);
    out.assert_code(0);
    assert!(
        out.stdout.contains("warning: 002_widen.sql:1:")
            && out.stdout.contains("changing-column-type")
            && out
                .stdout
                .contains("takes ACCESS EXCLUSIVE on orders (blocks reads and writes)")
            && out.stdout.contains("instead: add a column of the new type"),
        "{}",
        out.stdout
    );

    let out = lint(dir.path(), &["--deny-warnings", "--format", "json"]);
    out.assert_code(2);
    let doc = out.json();
    assert_eq!(doc["ok"], false);
    let findings = doc["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{doc}");
    let finding = &findings[0];
    assert_eq!(finding["file"], "002_widen.sql");
    assert_eq!(finding["line"], 1);
    assert_eq!(finding["column"], 40); // the `TYPE` clause
    assert_eq!(finding["rule"], "changing-column-type");
    assert_eq!(finding["severity"], "error");
    assert!(finding["message"]
        .as_str()
        .unwrap()
        .contains("ACCESS EXCLUSIVE"));
    assert_eq!(finding["lock"]["mode"], "ACCESS EXCLUSIVE");
    assert_eq!(finding["lock"]["table"], "orders");

    // Allowed with a reason: clean even with --deny-warnings.
    std::fs::write(
        dir.path().join("002_widen.sql"),
        format!("-- dreichor:allow changing-column-type orders holds 12 rows in every environment\n{REWRITE}"),
    )
    .unwrap();
    lint(dir.path(), &["--deny-warnings"]).assert_code(0);
}

#[test]
fn since_lints_only_the_files_new_since_the_revision() {
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        Run::new("git")
            .arg("-C")
            .arg(repo.path())
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .run()
            .assert_code(0)
            .clone()
    };
    let dir = repo.path().join("migrations");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("001_old.sql"), REWRITE).unwrap();
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "base"]);

    // The old file's finding is not reported against main: it cannot change any more.
    lint(&dir, &["--since", "main", "--deny-warnings"]).assert_code(0);
    lint(&dir, &["--deny-warnings"]).assert_code(2);

    std::fs::write(dir.join("002_new.sql"), "DROP INDEX orders_amount;\n").unwrap();
    let out = lint(
        &dir,
        &["--since", "main", "--deny-warnings", "--format", "json"],
    );
    out.assert_code(2);
    let doc = out.json();
    let files: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["002_new.sql"], "{doc}");
    assert_eq!(
        doc["findings"][0]["rule"],
        "require-concurrent-index-deletion"
    );
}

#[test]
fn dry_run_lists_each_pending_files_findings_under_it() {
    let f = Project::start();
    f.write(
        "001_init.sql",
        "CREATE TABLE orders (id bigint, amount int);\n",
    );
    f.tool(Tool::Migrate, &[]).run().assert_code(0);
    f.write(
        "002_index.sql",
        "CREATE INDEX orders_amount ON orders (amount);\n",
    );
    f.write("003_note.sql", "ALTER TABLE orders ADD COLUMN note text;\n");
    let out = f.tool(Tool::Migrate, &["--dry-run"]).run();
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim() == "would apply 002_index")
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        lines[at + 1].contains("warning: 002_index.sql:1:1: require-concurrent-index-creation")
            && lines[at + 1].contains("takes SHARE on orders (blocks writes)"),
        "{}",
        out.stdout
    );
    assert!(
        lines[at + 2].contains("instead: CREATE INDEX CONCURRENTLY"),
        "{}",
        out.stdout
    );
    assert_eq!(
        lines[at + 3].trim(),
        "would apply 003_note",
        "{}",
        out.stdout
    );
    let doc = f
        .tool(Tool::Migrate, &["--dry-run", "--format", "json"])
        .run()
        .json();
    assert_eq!(doc["findings"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(f.versions(), ["001_init"]);
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/crates_io/migrations")
}

/// The findings in the crates.io history (the README quotes them): 285 files written over
/// ten years by other people, every one of which must lint without a crash.
const CORPUS_FINDINGS: &[(&str, usize)] = &[
    ("require-concurrent-index-creation", 54),
    ("constraint-missing-not-valid", 43),
    ("adding-foreign-key-constraint", 30),
    ("changing-column-type", 27),
    ("ban-drop-column", 20),
    ("adding-not-nullable-field", 18),
    ("require-concurrent-index-deletion", 18),
    ("adding-serial-primary-key-field", 9),
    ("ban-drop-table", 8),
    ("renaming-column", 4),
    ("adding-required-field", 3),
    ("adding-field-with-default", 3),
    ("ban-drop-not-null", 3),
    ("disallowed-unique-constraint", 3),
    ("renaming-table", 1),
    ("prefer-robust-stmts", 1),
];

#[test]
fn the_crates_io_history_lints_without_a_crash_with_its_findings_counted() {
    let dir = corpus_dir();
    if !dir.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the crates.io corpus is missing at {} and CI is set",
            dir.display()
        );
        eprintln!(
            "crates.io corpus lint: NOT RUN, the corpus is missing at {}",
            dir.display()
        );
        return;
    }
    let out = lint(&dir, &["--format", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["files"], 285);
    let findings = doc["findings"].as_array().unwrap();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for finding in findings {
        let rule = finding["rule"].as_str().unwrap().to_string();
        match counts.iter_mut().find(|(r, _)| *r == rule) {
            Some((_, n)) => *n += 1,
            None => counts.push((rule, 1)),
        }
    }
    for (rule, expected) in CORPUS_FINDINGS {
        let got = counts
            .iter()
            .find(|(r, _)| r == rule)
            .map_or(0, |(_, n)| *n);
        assert_eq!(got, *expected, "{rule}: {counts:?}");
    }
    assert_eq!(
        findings.len(),
        CORPUS_FINDINGS.iter().map(|(_, n)| n).sum::<usize>()
    );
}
