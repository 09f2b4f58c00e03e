# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_migrate_global_optspecs
    string join \n env= dir= format= dry-run lock-wait= lock-timeout= statement-timeout= h/help V/version
end

function __fish_migrate_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_migrate_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_migrate_using_subcommand
    set -l cmd (__fish_migrate_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c migrate -n "__fish_migrate_needs_command" -l env -d 'The environment: `dev` (database dreichor_dev) or `prod` (dreichor_prod). Required, here or in DREICHOR_ENV; both given and different is an error' -r
complete -c migrate -n "__fish_migrate_needs_command" -l dir -d 'The migrations directory (default: infra/db/migrations, relative to the current directory). An installed tool run outside a checkout needs this or DREICHOR_MIGRATIONS_DIR' -r -F
complete -c migrate -n "__fish_migrate_needs_command" -l format -d 'Output format: `text`, or `json` (exactly one JSON document on stdout; progress and messages on stderr)' -r -f -a "text\t'Human-readable lines'
json\t'Exactly one JSON document on stdout; progress and messages on stderr'"
complete -c migrate -n "__fish_migrate_needs_command" -l lock-wait -d 'How long to wait for the migration lock when another run holds it, in seconds' -r
complete -c migrate -n "__fish_migrate_needs_command" -l lock-timeout -d 'PostgreSQL lock_timeout for migration statements, in seconds (0: off). A file that times out waiting for a lock is rolled back and retried a few times with backoff. `... CONCURRENTLY` statements (no-transaction files) run without it: they wait for older transactions by design, and their lock blocks no reads or writes' -r
complete -c migrate -n "__fish_migrate_needs_command" -l statement-timeout -d 'PostgreSQL statement_timeout for migration statements, in seconds (0: off; default: the server\'s setting)' -r
complete -c migrate -n "__fish_migrate_needs_command" -l dry-run -d 'Print what would be applied, in order, and change nothing at all (not even the tracking table)'
complete -c migrate -n "__fish_migrate_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c migrate -n "__fish_migrate_needs_command" -s V -l version -d 'Print version'
complete -c migrate -n "__fish_migrate_needs_command" -f -a "status" -d 'Print the state of every migration (applied, pending, modified, missing file, out of order); changes nothing. Exit 0 when the state could be read'
complete -c migrate -n "__fish_migrate_needs_command" -f -a "lint" -d 'Check the migrations directory offline (no DATABASE_URL needed), and each statement for what it locks and what can take production down: exit 0 when the directory is clean (safety findings are warnings), 2 with every violation listed'
complete -c migrate -n "__fish_migrate_needs_command" -f -a "manifest" -d 'Print the manifest of the directory (versions and checksums, JSON) for `schema-check --manifest` and for embedding in the runtime; offline'
complete -c migrate -n "__fish_migrate_needs_command" -f -a "snapshot" -d 'Accept the live schema as the schema snapshot, audited (who, when, why, old and new digests): for renderings that change with nobody touching the schema, such as a PostgreSQL major upgrade. Shows every difference it accepts and asks for the database name; at a terminal only, never under CI or GitHub Actions'
complete -c migrate -n "__fish_migrate_needs_command" -f -a "new" -d 'Create the next migration file, <next prefix>_NAME.sql, with the directory\'s prefix width (001 in an empty directory), and print its path; offline. Refuses a NAME outside [a-z0-9_] and a directory that `lint` does not pass'
complete -c migrate -n "__fish_migrate_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c migrate -n "__fish_migrate_using_subcommand status" -l env -d 'The environment: `dev` (database dreichor_dev) or `prod` (dreichor_prod). Required, here or in DREICHOR_ENV; both given and different is an error' -r
complete -c migrate -n "__fish_migrate_using_subcommand status" -l dir -d 'The migrations directory (default: infra/db/migrations, relative to the current directory). An installed tool run outside a checkout needs this or DREICHOR_MIGRATIONS_DIR' -r -F
complete -c migrate -n "__fish_migrate_using_subcommand status" -l format -d 'Output format: `text`, or `json` (exactly one JSON document on stdout; progress and messages on stderr)' -r -f -a "text\t'Human-readable lines'
json\t'Exactly one JSON document on stdout; progress and messages on stderr'"
complete -c migrate -n "__fish_migrate_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c migrate -n "__fish_migrate_using_subcommand lint" -l since -d 'Also enforce append-only against this git revision: every file there must be unchanged, every new file must sort after the last one there (CI: the base branch). Only the files new since REV are linted for safety (old files cannot change)' -r
complete -c migrate -n "__fish_migrate_using_subcommand lint" -l env -d 'The environment: `dev` (database dreichor_dev) or `prod` (dreichor_prod). Required, here or in DREICHOR_ENV; both given and different is an error' -r
complete -c migrate -n "__fish_migrate_using_subcommand lint" -l dir -d 'The migrations directory (default: infra/db/migrations, relative to the current directory). An installed tool run outside a checkout needs this or DREICHOR_MIGRATIONS_DIR' -r -F
complete -c migrate -n "__fish_migrate_using_subcommand lint" -l format -d 'Output format: `text`, or `json` (exactly one JSON document on stdout; progress and messages on stderr)' -r -f -a "text\t'Human-readable lines'
json\t'Exactly one JSON document on stdout; progress and messages on stderr'"
complete -c migrate -n "__fish_migrate_using_subcommand lint" -l deny-warnings -d 'Safety findings are errors (exit 2), as in CI. A finding is silenced only in the file, by `-- dreichor:allow <rule> <reason>` on the line directly above the statement'
complete -c migrate -n "__fish_migrate_using_subcommand lint" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c migrate -n "__fish_migrate_using_subcommand manifest" -l env -d 'The environment: `dev` (database dreichor_dev) or `prod` (dreichor_prod). Required, here or in DREICHOR_ENV; both given and different is an error' -r
complete -c migrate -n "__fish_migrate_using_subcommand manifest" -l dir -d 'The migrations directory (default: infra/db/migrations, relative to the current directory). An installed tool run outside a checkout needs this or DREICHOR_MIGRATIONS_DIR' -r -F
complete -c migrate -n "__fish_migrate_using_subcommand manifest" -l format -d 'Output format: `text`, or `json` (exactly one JSON document on stdout; progress and messages on stderr)' -r -f -a "text\t'Human-readable lines'
json\t'Exactly one JSON document on stdout; progress and messages on stderr'"
complete -c migrate -n "__fish_migrate_using_subcommand manifest" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c migrate -n "__fish_migrate_using_subcommand snapshot" -l reason -d 'Why the live schema is accepted (recorded with who and when), e.g. "PostgreSQL 16 upgrade renders defaults differently"' -r
complete -c migrate -n "__fish_migrate_using_subcommand snapshot" -l env -d 'The environment: `dev` (database dreichor_dev) or `prod` (dreichor_prod). Required, here or in DREICHOR_ENV; both given and different is an error' -r
complete -c migrate -n "__fish_migrate_using_subcommand snapshot" -l dir -d 'The migrations directory (default: infra/db/migrations, relative to the current directory). An installed tool run outside a checkout needs this or DREICHOR_MIGRATIONS_DIR' -r -F
complete -c migrate -n "__fish_migrate_using_subcommand snapshot" -l format -d 'Output format: `text`, or `json` (exactly one JSON document on stdout; progress and messages on stderr)' -r -f -a "text\t'Human-readable lines'
json\t'Exactly one JSON document on stdout; progress and messages on stderr'"
complete -c migrate -n "__fish_migrate_using_subcommand snapshot" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c migrate -n "__fish_migrate_using_subcommand new" -l env -d 'The environment: `dev` (database dreichor_dev) or `prod` (dreichor_prod). Required, here or in DREICHOR_ENV; both given and different is an error' -r
complete -c migrate -n "__fish_migrate_using_subcommand new" -l dir -d 'The migrations directory (default: infra/db/migrations, relative to the current directory). An installed tool run outside a checkout needs this or DREICHOR_MIGRATIONS_DIR' -r -F
complete -c migrate -n "__fish_migrate_using_subcommand new" -l format -d 'Output format: `text`, or `json` (exactly one JSON document on stdout; progress and messages on stderr)' -r -f -a "text\t'Human-readable lines'
json\t'Exactly one JSON document on stdout; progress and messages on stderr'"
complete -c migrate -n "__fish_migrate_using_subcommand new" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c migrate -n "__fish_migrate_using_subcommand help; and not __fish_seen_subcommand_from status lint manifest snapshot new help" -f -a "status" -d 'Print the state of every migration (applied, pending, modified, missing file, out of order); changes nothing. Exit 0 when the state could be read'
complete -c migrate -n "__fish_migrate_using_subcommand help; and not __fish_seen_subcommand_from status lint manifest snapshot new help" -f -a "lint" -d 'Check the migrations directory offline (no DATABASE_URL needed), and each statement for what it locks and what can take production down: exit 0 when the directory is clean (safety findings are warnings), 2 with every violation listed'
complete -c migrate -n "__fish_migrate_using_subcommand help; and not __fish_seen_subcommand_from status lint manifest snapshot new help" -f -a "manifest" -d 'Print the manifest of the directory (versions and checksums, JSON) for `schema-check --manifest` and for embedding in the runtime; offline'
complete -c migrate -n "__fish_migrate_using_subcommand help; and not __fish_seen_subcommand_from status lint manifest snapshot new help" -f -a "snapshot" -d 'Accept the live schema as the schema snapshot, audited (who, when, why, old and new digests): for renderings that change with nobody touching the schema, such as a PostgreSQL major upgrade. Shows every difference it accepts and asks for the database name; at a terminal only, never under CI or GitHub Actions'
complete -c migrate -n "__fish_migrate_using_subcommand help; and not __fish_seen_subcommand_from status lint manifest snapshot new help" -f -a "new" -d 'Create the next migration file, <next prefix>_NAME.sql, with the directory\'s prefix width (001 in an empty directory), and print its path; offline. Refuses a NAME outside [a-z0-9_] and a directory that `lint` does not pass'
complete -c migrate -n "__fish_migrate_using_subcommand help; and not __fish_seen_subcommand_from status lint manifest snapshot new help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
