#!/usr/bin/env bash
# The first day on a fresh Debian or Ubuntu host, in one command (as root, or with sudo):
#
#   infra/db/quickstart.sh [--credentials-dir DIR]
#
# 1. installs PostgreSQL from the system packages and starts it (provision.sh --install);
# 2. creates the roles and databases dreichor_dev and dreichor_prod, isolated from each
#    other, and writes their credentials to DIR/dev.env and DIR/prod.env (mode 0600,
#    default DIR /etc/dreichor); safe to run again;
# 3. applies the migrations of infra/db/migrations to dreichor_dev (migrate.sh --env dev).
#
# Production is provisioned but NOT migrated: that is a separate, deliberate operator step
# (infra/db/migrate.sh --env prod). Needs Rust (cargo) to build the migrate binary once,
# unless DREICHOR_MIGRATE_BIN names a built one.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
creds=/etc/dreichor
while (($# > 0)); do
    case "$1" in
        --credentials-dir) creds=${2:?--credentials-dir needs a directory}; shift 2 ;;
        --credentials-dir=*) creds=${1#*=}; shift ;;
        -h | --help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "quickstart.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

echo "== 1-2. provisioning PostgreSQL, roles, databases and credentials"
"$here/provision.sh" --install --credentials-dir "$creds"

echo
echo "== 3. building the tools (release) and migrating dreichor_dev"
if [[ -z "${DREICHOR_MIGRATE_BIN:-}" ]]; then
    build=(build --quiet --release --locked --manifest-path "$here/../../Cargo.toml"
           -p migrate -p schema-check -p hard-reset)
    # Under sudo, root's PATH rarely has rustup's cargo: build as the invoking user, with
    # theirs, so that target/ stays theirs too.
    user_cargo=
    if [[ -n "${SUDO_USER:-}" && "$SUDO_USER" != root ]]; then
        user_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
        [[ -x "$user_home/.cargo/bin/cargo" ]] && user_cargo="$user_home/.cargo/bin/cargo"
    fi
    if [[ -n "$user_cargo" ]]; then
        runuser -u "$SUDO_USER" -- "$user_cargo" "${build[@]}"
    elif command -v cargo >/dev/null 2>&1; then
        cargo "${build[@]}"
    elif [[ -x "$HOME/.cargo/bin/cargo" ]]; then
        "$HOME/.cargo/bin/cargo" "${build[@]}"
    else
        echo "quickstart.sh: cargo not found; install Rust (https://rustup.rs) and run again" >&2
        exit 2
    fi
fi
(
    set -a
    # shellcheck source=/dev/null
    . "$creds/dev.env"
    set +a
    "$here/migrate.sh" --env dev
)

cat <<TXT

Done. dreichor_dev is migrated; dreichor_prod is provisioned and empty.
Credentials: $creds/dev.env and $creds/prod.env (mode 0600; never commit or print them).
Next:
  set -a; . $creds/dev.env; set +a
  infra/db/migrate.sh status --env dev     # every migration and its state
  target/release/schema-check --env dev    # the deploy gate: exit 0 = compatible
  infra/db/migrate.sh --env prod           # when you mean it (with prod.env loaded)
TXT
