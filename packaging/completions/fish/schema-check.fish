complete -c schema-check -l env -d 'The environment: `dev` (database dreichor_dev) or `prod` (dreichor_prod). Required, here or in DREICHOR_ENV; both given and different is an error' -r
complete -c schema-check -l dir -d 'The migrations directory (default: infra/db/migrations, relative to the current directory). An installed tool run outside a checkout needs this or DREICHOR_MIGRATIONS_DIR' -r -F
complete -c schema-check -l format -d 'Output format: `text`, or `json` (exactly one JSON document on stdout; progress and messages on stderr)' -r -f -a "text\t'Human-readable lines'
json\t'Exactly one JSON document on stdout; progress and messages on stderr'"
complete -c schema-check -l timeout -d 'Bound on the whole check, connecting included, in seconds; exit 3 past it' -r
complete -c schema-check -l manifest -d 'Check against a manifest written by `migrate manifest` instead of the SQL files of --dir (for hosts that do not have the files)' -r -F
complete -c schema-check -l textfile -d 'Also write the result as metrics for node_exporter\'s textfile collector to PATH (a name ending in .prom; written to a temporary file and renamed), on every outcome' -r -F
complete -c schema-check -l strict -d 'Versions applied in the database but unknown to this release (the database is ahead, e.g. after a runtime rollback), and a database without a schema snapshot, make it incompatible instead of a warning'
complete -c schema-check -s h -l help -d 'Print help (see more with \'--help\')'
complete -c schema-check -s V -l version -d 'Print version'
