#!/usr/bin/env bash
# The canonical migration runner (design document, "Migration Runner"): a thin wrapper that
# runs the `migrate` binary of this repository against the environment's database.
#
#   infra/db/migrate.sh --env dev              apply pending migrations to dreichor_dev
#   infra/db/migrate.sh --env prod --dry-run   show what would be applied to dreichor_prod
#   infra/db/migrate.sh status --env dev       state of every migration
#   infra/db/migrate.sh lint                   offline check of the directory
#   infra/db/migrate.sh snapshot --env prod --reason TEXT
#                                              accept the live schema (audited; a terminal only)
#
# DATABASE_URL (and DREICHOR_ENV, unless --env is given) come from the environment, e.g.
#   set -a; . /etc/dreichor/dev.env; set +a
#
# It works from any directory. It uses the binary named by DREICHOR_MIGRATE_BIN when set;
# otherwise, in a checkout, target/release/migrate, rebuilt with cargo when any source is
# newer than it; installed from the package (/usr/share/dreichor/migrate.sh), /usr/bin/migrate.
# In a checkout --dir defaults to its infra/db/migrations (unless DREICHOR_MIGRATIONS_DIR is
# set); installed, pass --dir or set DREICHOR_MIGRATIONS_DIR. Every argument is passed
# through, and the exit code is migrate's (0 ok, 1 problem, 2 invalid input, 3 unreachable).
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/../.." && pwd -P)

binary() {
    if [[ -n "${DREICHOR_MIGRATE_BIN:-}" ]]; then
        if [[ ! -x "$DREICHOR_MIGRATE_BIN" ]]; then
            echo "migrate.sh: DREICHOR_MIGRATE_BIN=$DREICHOR_MIGRATE_BIN is not an executable file" >&2
            exit 2
        fi
        printf '%s\n' "$DREICHOR_MIGRATE_BIN"
        return
    fi
    if [[ ! -f "$root/Cargo.toml" ]]; then
        # Installed, not in a checkout: the packaged binary.
        command -v migrate || {
            echo "migrate.sh: migrate is not on PATH; install the dreichor-db-tools package or set DREICHOR_MIGRATE_BIN" >&2
            exit 2
        }
        return
    fi
    local bin="$root/target/release/migrate"
    local stale=
    if [[ ! -x "$bin" ]]; then
        stale="no binary yet"
    elif [[ -n "$(find "$root/common" "$root/migrate" "$root/Cargo.toml" "$root/Cargo.lock" \
                  -newer "$bin" -print -quit 2>/dev/null)" ]]; then
        stale="sources changed"
    fi
    if [[ -n "$stale" ]]; then
        if ! command -v cargo >/dev/null 2>&1; then
            echo "migrate.sh: $bin must be built ($stale) but cargo is not installed;" \
                 "install Rust (https://rustup.rs) or set DREICHOR_MIGRATE_BIN" >&2
            exit 2
        fi
        echo "migrate.sh: building migrate in release mode ($stale)..." >&2
        # A failed build touched nothing: exit 2, within the tools' documented codes.
        cargo build --quiet --release --locked --manifest-path "$root/Cargo.toml" -p migrate >&2 \
            || { echo "migrate.sh: building migrate failed (see above); nothing was touched" >&2; exit 2; }
    fi
    printf '%s\n' "$bin"
}

bin=$(binary)
if [[ ! -f "$root/Cargo.toml" || -n "${DREICHOR_MIGRATIONS_DIR:-}" ]]; then
    exec "$bin" "$@" # migrate finds the directory through --dir or DREICHOR_MIGRATIONS_DIR
fi

# Default --dir to this repository's migrations, wherever the operator stands.
for arg in "$@"; do
    case "$arg" in
        --dir | --dir=* | -h | --help | -V | --version) exec "$bin" "$@" ;;
    esac
done
exec "$bin" "$@" --dir "$root/infra/db/migrations"
