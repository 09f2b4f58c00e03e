complete -c hard-reset -l env -d 'The environment: `dev` (database dreichor_dev) or `prod` (dreichor_prod). Required, here or in DREICHOR_ENV; both given and different is an error' -r
complete -c hard-reset -l dir -d 'The migrations directory (default: infra/db/migrations, relative to the current directory). An installed tool run outside a checkout needs this or DREICHOR_MIGRATIONS_DIR' -r -F
complete -c hard-reset -l format -d 'Output format: `text`, or `json` (exactly one JSON document on stdout; progress and messages on stderr)' -r -f -a "text\t'Human-readable lines'
json\t'Exactly one JSON document on stdout; progress and messages on stderr'"
complete -c hard-reset -l stop-command -d 'The shell command that stops the runtime (run with `sh -c`; a non-zero exit aborts with nothing dropped), e.g. \'systemctl stop dreichor-runtime\'' -r
complete -c hard-reset -l backup -d 'Back up the database with `pg_dump -Fc` into FILE before dropping it: written to FILE.partial, checked with `pg_restore -l`, then renamed. Neither may exist yet. Prod needs this or --no-backup' -r -F
complete -c hard-reset -l no-backup -d 'Reset without a backup (prod needs this or --backup)'
complete -c hard-reset -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hard-reset -s V -l version -d 'Print version'
