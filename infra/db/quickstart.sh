#!/usr/bin/env bash
# The first day on a fresh Debian or Ubuntu host, in one command (as root, or with sudo):
#
#   infra/db/quickstart.sh [--credentials-dir DIR]
#
# 1. installs PostgreSQL from the system packages and starts it (provision.sh --install);
# 2. creates the roles and databases dreichor_dev and dreichor_prod, isolated from each
#    other, and writes their credentials to DIR/dev.env and DIR/prod.env (mode 0600,
#    default DIR /etc/dreichor); safe to run again;
# 3. builds the tools (release) and installs them on PATH with their man pages and shell
#    completions: the Debian package when cargo-deb is installed (cargo install cargo-deb
#    --locked), else the binaries into /usr/local/bin;
# 4. applies the migrations of infra/db/migrations to dreichor_dev (migrate.sh --env dev).
#
# Production is provisioned but NOT migrated: that is a separate, deliberate operator step
# (infra/db/migrate.sh --env prod). Needs Rust (cargo; under sudo, the invoking user's) unless
# DREICHOR_MIGRATE_BIN names a built migrate (then nothing is built or installed).
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
creds=/etc/dreichor
while (($# > 0)); do
    case "$1" in
        --credentials-dir) creds=${2:?--credentials-dir needs a directory}; shift 2 ;;
        --credentials-dir=*) creds=${1#*=}; shift ;;
        -h | --help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "quickstart.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

root=$(cd -- "$here/../.." && pwd -P)
if [[ $(id -u) -ne 0 ]]; then
    echo "quickstart.sh: run it as root (or with sudo): it installs PostgreSQL and the tools" >&2
    exit 2
fi

echo "== 1-2. provisioning PostgreSQL, roles, databases and credentials"
# provision.sh's own "Next" hints are for when it runs alone: the steps below do them.
DREICHOR_QUICKSTART=1 "$here/provision.sh" --install --credentials-dir "$creds"

# The invoking user's cargo under sudo (root's PATH rarely has rustup's), so that target/
# stays theirs; root's own otherwise.
cargo_as_user() {
    if [[ -n "${SUDO_USER:-}" && "$SUDO_USER" != root ]]; then
        local user_home
        user_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
        if [[ -x "$user_home/.cargo/bin/cargo" ]]; then
            runuser -u "$SUDO_USER" -- "$user_home/.cargo/bin/cargo" "$@"
            return
        fi
    fi
    if command -v cargo >/dev/null 2>&1; then
        cargo "$@"
    elif [[ -x "$HOME/.cargo/bin/cargo" ]]; then
        "$HOME/.cargo/bin/cargo" "$@"
    else
        echo "quickstart.sh: cargo not found; install Rust (https://rustup.rs) and run again" >&2
        exit 2
    fi
}

# Without cargo-deb: the binaries, man pages and completions under /usr/local, where PATH,
# man and bash-completion look.
install_local() {
    local tool
    for tool in migrate schema-check hard-reset; do
        install -D -m 0755 "$root/target/release/$tool" "/usr/local/bin/$tool"
        install -D -m 0644 "$root/packaging/completions/bash/$tool" \
            "/usr/local/share/bash-completion/completions/$tool"
        install -D -m 0644 "$root/packaging/completions/zsh/_$tool" \
            "/usr/local/share/zsh/site-functions/_$tool"
    done
    install -d /usr/local/share/man/man1
    install -m 0644 "$root"/packaging/man/*.1 /usr/local/share/man/man1/
    mandb -q 2>/dev/null || true
    echo "installed migrate, schema-check and hard-reset into /usr/local/bin, with man pages and completions"
}

echo
if [[ -n "${DREICHOR_MIGRATE_BIN:-}" ]]; then
    echo "== 3. using DREICHOR_MIGRATE_BIN=$DREICHOR_MIGRATE_BIN: nothing is built or installed"
else
    echo "== 3. building the tools (release; the first build takes a few minutes) and installing them"
    cargo_as_user build --release --locked --manifest-path "$root/Cargo.toml" \
        -p migrate -p schema-check -p hard-reset
    if cargo_as_user deb --version >/dev/null 2>&1; then
        deb=$(cd "$root" && cargo_as_user deb -p migrate --no-build --locked --quiet)
        deb=${deb##*$'\n'}
        dpkg -i "$deb"
        echo "installed the package $(basename "$deb") (dpkg -r dreichor-db-tools removes it)"
    else
        echo "cargo-deb is not installed (cargo install cargo-deb --locked): installing without a package"
        install_local
    fi
fi

echo
echo "== 4. migrating dreichor_dev"
(
    set -a
    # shellcheck source=/dev/null
    . "$creds/dev.env"
    set +a
    "$here/migrate.sh" --env dev
)

if [[ -n "${DREICHOR_MIGRATE_BIN:-}" ]]; then
    gate="$root/target/release/schema-check"
    [[ -x $gate ]] || gate="schema-check (build it: cargo build --release -p schema-check)"
else
    gate=schema-check
fi
cat <<TXT

Done. dreichor_dev is migrated. dreichor_prod is provisioned; this command never migrates it.
Credentials: $creds/dev.env and $creds/prod.env (mode 0600; never commit or print them).
Next:
  set -a; . $creds/dev.env; set +a
  infra/db/migrate.sh status               # every migration and its state
  $gate                             # the deploy gate: exit 0 = compatible
  man migrate                              # also schema-check, hard-reset, migrate-new, ...
  infra/db/migrate.sh --env prod           # when you mean it (with prod.env loaded)
TXT
