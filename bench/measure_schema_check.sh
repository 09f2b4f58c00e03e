#!/usr/bin/env bash
# Measures schema-check against a database with many applied migrations, next to the cost of
# the cheapest possible client round trip (`psql -X -c 'select 1'`, same URL: TCP, SCRAM).
#
# Not a test: a measurement for the issue notes. It runs its own throwaway cluster (initdb as
# the `postgres` OS user, fsync off, a free port, never the system server on 5432) and removes
# it afterwards, whatever happens.
#
#   bench/measure_schema_check.sh [MIGRATIONS] [RUNS]      defaults: 1000 30
#
# Needs the release binaries: cargo build --release -p migrate -p schema-check
set -euo pipefail

migrations=${1:-1000}
runs=${2:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
migrate=$root/target/release/migrate
check=$root/target/release/schema-check
for bin in "$migrate" "$check"; do
    [ -x "$bin" ] || { echo "missing $bin: cargo build --release -p migrate -p schema-check" >&2; exit 2; }
done
pgbin=$(pg_config --bindir 2>/dev/null || true)
[ -x "$pgbin/initdb" ] || pgbin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
psql=$pgbin/psql

work=$(mktemp -d /tmp/measure-sc.XXXXXX)
chmod 755 "$work"
chown postgres: "$work"
data=$work/data
cleanup() {
    if [ -f "$data/postmaster.pid" ]; then
        runuser -u postgres -- "$pgbin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# A free port that is not 5432.
port=$(python3 -c 'import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p != 5432: print(p); break')

password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir "$data" "$work/sock"
chown postgres: "$data" "$work/sock"
runuser -u postgres -- "$pgbin/initdb" -D "$data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 --no-sync --encoding=UTF8 --locale=C.UTF-8 >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$data" -l "$work/server.log" -w -o \
    "-p $port -k $work/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null

admin() { "$psql" -X -q -v ON_ERROR_STOP=1 -h "$work/sock" -p "$port" -U postgres "$@"; }
admin -d postgres -c "CREATE ROLE dreichor_dev LOGIN PASSWORD '$password'"
admin -d postgres -c "CREATE DATABASE dreichor_dev OWNER dreichor_dev"
admin -d postgres -c "REVOKE CONNECT, TEMPORARY ON DATABASE dreichor_dev FROM PUBLIC; GRANT CONNECT ON DATABASE dreichor_dev TO dreichor_dev"

dir=$work/migrations
mkdir "$dir"
for i in $(seq 1 "$migrations"); do
    printf -- '-- migration %d\nSELECT %d;\n' "$i" "$i" >"$dir/$(printf '%04d' "$i")_m.sql"
done
url="postgres://dreichor_dev:$password@localhost:$port/dreichor_dev"
env -i PATH="$PATH" DATABASE_URL="$url" "$migrate" --env dev --dir "$dir" >/dev/null 2>&1
env -i PATH="$PATH" DATABASE_URL="$url" "$check" --env dev --dir "$dir" | head -1

ms() { echo $(( $(date +%s%N) / 1000 )); }
check_times=()
psql_times=()
for _ in $(seq 1 "$runs"); do
    t=$(ms); env -i PATH="$PATH" DATABASE_URL="$url" "$check" --env dev --dir "$dir" >/dev/null; check_times+=($(( $(ms) - t )))
    t=$(ms); env -i PATH="$PATH" "$psql" -X -q "$url" -c 'select 1' >/dev/null; psql_times+=($(( $(ms) - t )))
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%d\n", (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
c=$(median "${check_times[@]}")
p=$(median "${psql_times[@]}")
echo "migrations: $migrations, runs: $runs (interleaved)"
echo "schema-check median: $((c / 1000)).$(printf '%03d' $((c % 1000))) ms"
echo "psql select 1 median: $((p / 1000)).$(printf '%03d' $((p % 1000))) ms"
awk -v c="$c" -v p="$p" 'BEGIN { printf "ratio schema-check / psql: %.2f\n", c / p }'
