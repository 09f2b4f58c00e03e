//! Tests of the harness itself: every case of the suite trusts that the cluster is isolated,
//! authenticates like production, cleans up after itself, and that a leaked password cannot
//! pass unnoticed. If one of those stopped being true the other cases could go green for the
//! wrong reason, so each is proven here rather than assumed.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use postgres::error::SqlState;

use crate::support::cluster::{connect, describe_error};
use crate::support::secrets::{self, check_no_secrets, percent_encode};
use crate::support::{Cluster, Outcome, Run, Tool};

/// How the logins of these cases name their sessions.
const APPLICATION: &str = "dreichor-test-harness";

/// The one value of a one-row, one-column query, as text.
fn scalar(client: &mut postgres::Client, sql: &str) -> String {
    let messages = client.simple_query(sql).expect("query");
    messages
        .iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or("").to_owned()),
            _ => None,
        })
        .expect("one row")
}

/// Whether something accepts TCP connections at `addr`.
fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

#[test]
fn cluster_accepts_password_login_over_tcp_v4() {
    let cluster = Cluster::shared();
    let mut admin = cluster.admin();
    assert_eq!(
        scalar(&mut admin, "SELECT host(inet_client_addr())"),
        "127.0.0.1"
    );

    // A role whose password needs percent-encoding logs in through a URL, as the tools do.
    let role = format!("r_{}", secrets::random_hex(4));
    let password = cluster.create_role(&role, "");
    assert!(password.contains(secrets::URL_SPECIAL_TAIL));
    let url = cluster.url_for(&role, &password, "127.0.0.1", "postgres");
    let mut client =
        connect(&url, APPLICATION).unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    assert_eq!(scalar(&mut client, "SELECT current_user"), role);

    // Stored as SCRAM, so the login above really was a password exchange.
    let stored = cluster.query_strings(
        "postgres",
        &format!("SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = '{role}'"),
    );
    assert_eq!(stored[0][0].as_deref(), Some("SCRAM-SHA-256$"));

    // And the superuser through its URL, with `localhost`.
    let mut via_url = connect(&cluster.admin_url(), APPLICATION)
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    assert_eq!(scalar(&mut via_url, "SELECT current_user"), "postgres");
}

#[test]
fn cluster_accepts_password_login_over_tcp_v6() {
    let cluster = Cluster::shared();
    if !cluster.has_ipv6() {
        eprintln!("no IPv6 loopback on this machine: the cluster listens on 127.0.0.1 only");
        return;
    }
    let mut admin = cluster.admin_v6();
    assert_eq!(scalar(&mut admin, "SELECT host(inet_client_addr())"), "::1");

    let role = format!("r_{}", secrets::random_hex(4));
    let password = cluster.create_role(&role, "");
    let url = cluster.url_for(&role, &password, "[::1]", "postgres");
    let mut client =
        connect(&url, APPLICATION).unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    assert_eq!(
        scalar(&mut client, "SELECT host(inet_client_addr())"),
        "::1"
    );
}

#[test]
fn cluster_refuses_a_wrong_password() {
    let cluster = Cluster::shared();
    let role = format!("r_{}", secrets::random_hex(4));
    let password = cluster.create_role(&role, "");
    for (user, wrong) in [
        ("postgres", format!("{}x", cluster.superuser_password())),
        (role.as_str(), password.replace('@', "")),
    ] {
        let url = cluster.url_for(user, &wrong, "127.0.0.1", "postgres");
        let error = connect(&url, APPLICATION)
            .err()
            .expect("a wrong password must be refused");
        assert_eq!(
            error.code(),
            Some(&SqlState::INVALID_PASSWORD),
            "{}",
            describe_error(&error)
        );
    }
}

#[test]
fn provisioned_roles_cannot_connect_to_the_other_environment() {
    let cluster = Cluster::start();
    let envs = cluster.provision_envs();

    for (user, password, own, other) in [
        (
            "dreichor_dev",
            &envs.dev_password,
            "dreichor_dev",
            "dreichor_prod",
        ),
        (
            "dreichor_prod",
            &envs.prod_password,
            "dreichor_prod",
            "dreichor_dev",
        ),
    ] {
        let mut client = connect(
            &cluster.url_for(user, password, "localhost", own),
            APPLICATION,
        )
        .unwrap_or_else(|e| panic!("{user} into {own}: {}", describe_error(&e)));
        assert_eq!(scalar(&mut client, "SELECT current_database()"), own);

        let error = connect(
            &cluster.url_for(user, password, "localhost", other),
            APPLICATION,
        )
        .err()
        .unwrap_or_else(|| panic!("{user} must not connect to {other}"));
        assert_eq!(
            error.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{}",
            describe_error(&error)
        );
        let message = error.as_db_error().expect("a server error").message();
        assert!(
            message.contains("permission denied for database"),
            "{message}"
        );
    }

    // The URLs handed to the tools work as they are.
    for url in [&envs.dev_url, &envs.prod_url] {
        connect(url, APPLICATION).unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    }
}

#[test]
fn provisioned_roles_are_not_superusers_and_own_their_databases() {
    let cluster = Cluster::start();
    cluster.provision_envs();

    let roles = cluster.query_strings(
        "postgres",
        "SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication \
         FROM pg_roles WHERE rolname LIKE 'dreichor%' ORDER BY rolname",
    );
    let expected = |name: &str| {
        ["t", "f", "f", "f", "f"]
            .iter()
            .fold(vec![Some(name.to_owned())], |mut row, v| {
                row.push(Some((*v).to_owned()));
                row
            })
    };
    assert_eq!(
        roles,
        vec![expected("dreichor_dev"), expected("dreichor_prod")]
    );

    let owners = cluster.query_strings(
        "postgres",
        "SELECT datname, pg_get_userbyid(datdba) FROM pg_database \
         WHERE datname LIKE 'dreichor%' ORDER BY datname",
    );
    assert_eq!(
        owners,
        vec![
            vec![Some("dreichor_dev".into()), Some("dreichor_dev".into())],
            vec![Some("dreichor_prod".into()), Some("dreichor_prod".into())],
        ]
    );

    // PUBLIC (grantee 0) keeps neither CONNECT nor TEMPORARY on either database, so a role
    // created later cannot connect either.
    let public = cluster.query_strings(
        "postgres",
        "SELECT d.datname, a.privilege_type FROM pg_database d, aclexplode(d.datacl) a \
         WHERE d.datname LIKE 'dreichor%' AND a.grantee = 0",
    );
    assert_eq!(public, Vec::<Vec<Option<String>>>::new());
    let bystander = format!("r_{}", secrets::random_hex(4));
    cluster.create_role(&bystander, "");
    let privileges = cluster.query_strings(
        "postgres",
        &format!(
            "SELECT has_database_privilege('{bystander}', 'dreichor_dev', 'CONNECT'), \
                    has_database_privilege('{bystander}', 'dreichor_prod', 'TEMPORARY'), \
                    has_database_privilege('dreichor_dev', 'dreichor_prod', 'CONNECT'), \
                    has_database_privilege('dreichor_dev', 'dreichor_dev', 'CONNECT')"
        ),
    );
    assert_eq!(
        privileges,
        vec![vec![
            Some("f".into()),
            Some("f".into()),
            Some("f".into()),
            Some("t".into())
        ]]
    );
}

#[test]
fn dropping_a_cluster_stops_it_and_removes_its_directory() {
    let cluster = Cluster::start();
    let dir = cluster.dir().to_owned();
    let port = cluster.port();
    let postmaster_pid = std::fs::read_to_string(dir.join("data/postmaster.pid"))
        .expect("a running server has a pid file")
        .lines()
        .next()
        .expect("the pid is the first line")
        .to_owned();
    assert!(accepts(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));

    drop(cluster);

    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(!accepts(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
    assert!(!accepts(SocketAddr::from((Ipv6Addr::LOCALHOST, port))));
    assert!(
        !PathBuf::from(format!("/proc/{postmaster_pid}")).exists(),
        "the postmaster (pid {postmaster_pid}) is still running"
    );
}

#[test]
fn a_stopped_cluster_refuses_connections_and_keeps_its_log_until_dropped() {
    let cluster = Cluster::start();
    let port = cluster.port();
    cluster.stop();
    cluster.stop();
    assert!(!accepts(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
    assert!(
        cluster.log().contains("database system is shut down"),
        "{}",
        cluster.log()
    );
    let dir = cluster.dir().to_owned();
    assert!(dir.exists());
    drop(cluster);
    assert!(!dir.exists());
}

/// A started cluster has its directory and accepts connections. Run by
/// [`killing_the_test_process_still_removes_its_cluster`] in a child test process with
/// `DREICHOR_E2E_HELPER` set, it then also says where the cluster is and waits to be killed.
#[test]
fn a_started_cluster_has_its_directory_and_accepts_connections() {
    let cluster = Cluster::start();
    assert!(cluster.dir().is_dir());
    assert!(accepts(SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        cluster.port()
    ))));
    if std::env::var_os("DREICHOR_E2E_HELPER").is_none() {
        return;
    }
    eprintln!(
        "cluster-dir={} template-dir={} port={}",
        cluster.dir().display(),
        Cluster::template_dir().display(),
        cluster.port()
    );
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn killing_the_test_process_still_removes_its_cluster() {
    let mut helper = Run::new(std::env::current_exe().expect("the test binary's path"))
        .args([
            "harness::a_started_cluster_has_its_directory_and_accepts_connections",
            "--exact",
            "--nocapture",
        ])
        .env("DREICHOR_E2E_HELPER", "1");
    if let Some(pg_bin) = std::env::var_os("PG_BIN") {
        helper = helper.env("PG_BIN", pg_bin);
    }
    let mut running = helper.spawn();
    running.wait_for_stderr(" port=", Duration::from_secs(60));
    let line = running.stderr_so_far();
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
            .to_owned()
    };
    let cluster_dir = PathBuf::from(field("cluster-dir="));
    let template_dir = PathBuf::from(field("template-dir="));
    let port: u16 = field("port=").parse().expect("a port number");
    assert!(cluster_dir.exists() && template_dir.exists());
    assert!(accepts(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));

    // SIGKILL: no destructor, no atexit, nothing in the test process runs.
    running.kill_9();
    assert_eq!(running.wait().code, 128 + 9);

    let deadline = Instant::now() + Duration::from_secs(20);
    while (cluster_dir.exists()
        || template_dir.exists()
        || accepts(SocketAddr::from((Ipv4Addr::LOCALHOST, port))))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !cluster_dir.exists(),
        "{} is left behind",
        cluster_dir.display()
    );
    assert!(
        !template_dir.exists(),
        "{} is left behind",
        template_dir.display()
    );
    assert!(!accepts(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
}

#[test]
fn the_leak_check_catches_a_password_in_output() {
    let password = secrets::sentinel_password();
    let core = &password[secrets::SENTINEL_PREFIX.len()..][..16];

    assert!(check_no_secrets("migrate: applied 3, already applied 0").is_ok());
    for (form, text) in [
        ("raw", format!("connecting as dreichor_dev:{password}")),
        (
            "percent-encoded",
            format!(
                "postgres://dreichor_dev:{}@localhost/x",
                percent_encode(&password)
            ),
        ),
        // Any other encoding of the special tail still carries the random core.
        (
            "random core",
            format!("{{\"url\":\"postgres://u:Sntnl-{core}%40%2f\"}}"),
        ),
    ] {
        let leak = check_no_secrets(&text).expect_err(form);
        assert_eq!(leak.form, form);
        // The report must not spread the password itself.
        assert!(check_no_secrets(&leak.to_string()).is_ok());
        assert!(check_no_secrets(&secrets::redact(&text)).is_ok());
    }

    let leaky = Outcome {
        code: 1,
        stdout: String::new(),
        stderr: format!("error: cannot connect to {}", percent_encode(&password)),
    };
    assert!(leaky.check_no_secrets().is_err());
    let clean = Outcome {
        code: 1,
        stdout: String::new(),
        stderr: "error: cannot connect to postgres://dreichor_dev:***@localhost/dreichor_dev"
            .into(),
    };
    assert!(clean.check_no_secrets().is_ok());
}

#[test]
#[should_panic(expected = "password leaked")]
fn a_run_that_prints_a_password_fails_the_test() {
    let password = secrets::sentinel_password();
    Run::new("sh")
        .args(["-c", "echo \"$SECRET\" >&2"])
        .env("SECRET", &password)
        .run();
}

#[test]
fn the_system_postgres_is_not_used() {
    let cluster = Cluster::shared();
    assert_ne!(cluster.port(), 5432);
    let mut admin = cluster.admin();
    assert_eq!(
        scalar(&mut admin, "SELECT inet_server_port()"),
        cluster.port().to_string()
    );
    let data_dir = scalar(&mut admin, "SELECT current_setting('data_directory')");
    assert!(
        data_dir.starts_with(&cluster.dir().display().to_string()),
        "connected to a server whose data directory is {data_dir}"
    );

    // Children see PATH, LANG and what the test set: no PG*, no DATABASE_URL, whatever the
    // developer's shell exports.
    let out = Run::new("env").env("DREICHOR_ENV", "dev").run();
    out.assert_code(0);
    let names: BTreeSet<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    assert_eq!(names, BTreeSet::from(["DREICHOR_ENV", "LANG", "PATH"]));
    assert!(out.stdout.contains("LANG=C.UTF-8\n"));
}

#[test]
fn tool_binaries_exist() {
    for tool in [Tool::Migrate, Tool::SchemaCheck, Tool::HardReset] {
        assert!(tool.path().is_file());
        let out = tool.cmd().arg("--help").run();
        assert!(
            out.code < 128,
            "{tool:?} was killed by signal {}\n{}",
            out.code - 128,
            out.stderr
        );
    }
}

#[test]
fn run_passes_arguments_environment_stdin_and_directory() {
    let dir = std::env::temp_dir();
    let out = Run::new("sh")
        .args(["-c", r#"read -r line; printf '{"line":"%s","arg":"%s","var":"%s","pwd":"%s"}' "$line" "$1" "$VAR" "$(pwd)""#])
        .arg("sh")
        .arg("an argument")
        .env("VAR", "a value")
        .stdin("from stdin\n")
        .current_dir(&dir)
        .run();
    out.assert_code(0);
    let json = out.json();
    assert_eq!(json["line"], "from stdin");
    assert_eq!(json["arg"], "an argument");
    assert_eq!(json["var"], "a value");
    assert_eq!(
        PathBuf::from(json["pwd"].as_str().expect("a string"))
            .canonicalize()
            .ok(),
        dir.canonicalize().ok()
    );
    assert_eq!(Run::new("sh").args(["-c", "exit 3"]).run().code, 3);
}

#[test]
#[should_panic(expected = "timed out after")]
fn run_kills_a_child_that_outlives_its_timeout() {
    Run::new("sh")
        .args(["-c", "echo started; sleep 30"])
        .timeout(Duration::from_millis(300))
        .run();
}

#[test]
fn a_spawned_child_can_be_killed_with_sigkill() {
    let started = Instant::now();
    let mut running = Run::new("sh")
        .args(["-c", "echo ready >&2; exec sleep 30"])
        .spawn();
    running.wait_for_stderr("ready", Duration::from_secs(10));
    running.kill_9();
    let out = running.wait();
    assert_eq!(out.code, 137);
    assert_eq!(out.stderr, "ready\n");
    assert!(started.elapsed() < Duration::from_secs(10));
}
