#!/usr/bin/env bash
# Benchmarks `migrate` and `schema-check` against psql baselines on a throwaway PostgreSQL
# cluster of its own. See bench/README.md for what is measured, how, and the targets.
#
# Usage: bash bench/run.sh
# Knobs (environment): BENCH_SIZES (default "100 1000"), BENCH_ROUNDS (5),
# BENCH_CHECK_RUNS (30), BENCH_PARTS (default "apply drift"), BENCH_CORPUS (the crates.io
# migrations), BENCH_STATEMENTS (100000), BENCH_BIG_MB (50), BENCH_LARGE_ROUNDS (3),
# BENCH_SNAPSHOT_ROUNDS (11),
# PG_BIN (default: pg_config --bindir).
# Writes bench/results.md and prints the same table.

set -euo pipefail
export LC_ALL=C

# Never the system server: no libpq defaults and no DATABASE_URL from the caller.
while IFS= read -r var; do
  unset "$var"
done < <(compgen -e | grep -E '^PG' || true)
unset DATABASE_URL DREICHOR_ENV DREICHOR_ADMIN_DATABASE_URL

if [[ "${GITHUB_ACTIONS:-}" == "true" ]]; then
  echo "bench: migrate refuses to run inside GitHub Actions (GITHUB_ACTIONS=true); run the benchmark elsewhere" >&2
  exit 2
fi

read -r -a SIZES <<<"${BENCH_SIZES:-100 1000}"
ROUNDS=${BENCH_ROUNDS:-5}
CHECK_RUNS=${BENCH_CHECK_RUNS:-30}
PARTS=" ${BENCH_PARTS:-apply drift} "
want() { [[ $PARTS == *" $1 "* ]]; }
STATEMENTS=${BENCH_STATEMENTS:-100000}
BIG_MB=${BENCH_BIG_MB:-50}
LARGE_ROUNDS=${BENCH_LARGE_ROUNDS:-3}
# The snapshot's share of applying the crates.io corpus: a few tens of ms against half a
# second, on noisy cores; more rounds than the apply contenders for a stable median.
SNAPSHOT_ROUNDS=${BENCH_SNAPSHOT_ROUNDS:-11}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS="$ROOT/bench/results.md"

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
  printf 'bench: error: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------
log "building the release binaries"
(cd "$ROOT" && cargo build --release --quiet -p migrate -p schema-check)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
MIGRATE="$TARGET_DIR/release/migrate"
SCHEMA_CHECK="$TARGET_DIR/release/schema-check"
[[ -x "$MIGRATE" && -x "$SCHEMA_CHECK" ]] || die "release binaries not found in $TARGET_DIR/release"

# ---------------------------------------------------------------------------------------
# The throwaway cluster
# ---------------------------------------------------------------------------------------
PG_BIN=${PG_BIN:-$(pg_config --bindir 2>/dev/null || true)}
if [[ ! -x "$PG_BIN/initdb" ]]; then
  PG_BIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
fi
[[ -x "$PG_BIN/initdb" && -x "$PG_BIN/psql" ]] || die "PostgreSQL server binaries not found (set PG_BIN)"
PSQL="$PG_BIN/psql"

# Short path: the server's unix socket lives in it (sun_path is about 107 bytes).
WORK=$(mktemp -d /tmp/drb.XXXXXX)
DATA="$WORK/data"
SERVER_LOG="$WORK/server.log"
PORT=

as_pg() {
  if [[ $EUID -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -f "$DATA/postmaster.pid" ]]; then
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ $EUID -eq 0 ]]; then
  chown postgres: "$WORK"
fi

log "initdb in $WORK"
pwfile="$WORK/superuser.pw"
random_hex() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
random_hex >"$pwfile"
if [[ $EUID -eq 0 ]]; then
  chown postgres: "$pwfile"
fi
as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres --pwfile="$pwfile" \
  --auth-local=trust --auth-host=scram-sha-256 \
  --encoding=UTF8 --locale=C --no-sync >"$WORK/initdb.log" 2>&1 ||
  {
    cat "$WORK/initdb.log" >&2
    die "initdb failed"
  }
rm -f "$pwfile"

port_is_free() {
  # A connect that fails means nobody listens there.
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

started=
for _ in 1 2 3 4 5; do
  PORT=$((20000 + RANDOM % 40000))
  [[ $PORT -eq 5432 ]] && continue
  port_is_free "$PORT" || continue
  if as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$SERVER_LOG" -w -t 30 \
    -o "-p $PORT -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off -c password_encryption=scram-sha-256" \
    start >/dev/null 2>&1; then
    started=1
    break
  fi
done
if [[ -z "$started" ]]; then
  tail -n 30 "$SERVER_LOG" >&2 || true
  die "the cluster did not start"
fi
log "cluster on 127.0.0.1:$PORT (socket in $WORK)"

# Superuser over the trusted socket: setup only, never timed.
su_sql() {
  "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U postgres -d "${2:-postgres}" -Atc "$1"
}

DEV_PW=$(random_hex)
su_sql "CREATE ROLE dreichor_dev LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$DEV_PW'"
URL="postgres://dreichor_dev:$DEV_PW@127.0.0.1:$PORT/dreichor_dev"

recreate_db() {
  if [[ -n $(su_sql "SELECT 1 FROM pg_database WHERE datname = 'dreichor_dev'") ]]; then
    su_sql "DROP DATABASE dreichor_dev WITH (FORCE)"
  fi
  su_sql "CREATE DATABASE dreichor_dev OWNER dreichor_dev TEMPLATE template0"
  su_sql "REVOKE CONNECT, TEMPORARY ON DATABASE dreichor_dev FROM PUBLIC; GRANT CONNECT ON DATABASE dreichor_dev TO dreichor_dev"
  # Flush the dirty buffers of the previous run now rather than during the next timed one.
  su_sql "CHECKPOINT"
}

tracking_rows() {
  su_sql "SELECT count(*) FROM public.dreichor_schema_migrations" dreichor_dev
}

# ---------------------------------------------------------------------------------------
# The migrations and the baseline scripts (generated outside any timing)
# ---------------------------------------------------------------------------------------

# The tracking table and row exactly as migrate writes them (common/src/tracking.rs: CREATE,
# insert_row), so that the baselines do the same work.
TRACKING_DDL="CREATE TABLE IF NOT EXISTS public.dreichor_schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now(), checksum text, duration_ms bigint, applied_by text);"
tracking_insert() { # version checksum
  printf "INSERT INTO public.dreichor_schema_migrations (version, applied_at, checksum, duration_ms, applied_by) VALUES ('%s', now(), '%s', (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint, current_user);" "$1" "$2"
}

generate() { # N
  local n=$1 dir="$WORK/m$1" i name file sum
  mkdir -p "$dir"
  : >"$WORK/b1_$n.sql"
  : >"$WORK/b2_$n.sql"
  printf '%s\n' "$TRACKING_DDL" >>"$WORK/b1_$n.sql"
  printf '%s\n' "$TRACKING_DDL" >>"$WORK/b2_$n.sql"
  for ((i = 1; i <= n; i++)); do
    name=$(printf '%04d_bench_t%d' "$i" "$i")
    file="$dir/$name.sql"
    printf 'CREATE TABLE bench_t%d (id int primary key, v text);\nCREATE INDEX bench_t%d_v ON bench_t%d (v);\nINSERT INTO bench_t%d VALUES (1,'"'a'"'),(2,'"'b'"'),(3,'"'c'"');\n' \
      "$i" "$i" "$i" "$i" >"$file"
    sum=$(sha256sum "$file")
    sum=${sum%% *}
    # Baseline 1: psql sends every statement as its own message.
    {
      printf 'BEGIN;\n\\i %s\n' "$file"
      tracking_insert "$name" "$sum"
      printf '\nCOMMIT;\n'
    } >>"$WORK/b1_$n.sql"
    # Baseline 2: `\;` keeps psql from sending at a semicolon, so BEGIN, the file, the row
    # and COMMIT leave as ONE simple Query message, the same shape as migrate's.
    {
      printf 'BEGIN\\;\n'
      sed 's/;/\\;/g' "$file"
      tracking_insert "$name" "$sum" | sed 's/;$/\\;/'
      printf '\nCOMMIT;\n'
    } >>"$WORK/b2_$n.sql"
  done
}

# ---------------------------------------------------------------------------------------
# Contenders
# ---------------------------------------------------------------------------------------
run_contender() { # name N; output goes to $WORK/last.log
  case $1 in
  migrate) DATABASE_URL=$URL "$MIGRATE" --env dev --dir "$WORK/m$2" ;;
  psql_stmt) "$PSQL" -X -q -v ON_ERROR_STOP=1 -f "$WORK/b1_$2.sql" "$URL" ;;
  psql_msg) "$PSQL" -X -q -v ON_ERROR_STOP=1 -f "$WORK/b2_$2.sql" "$URL" ;;
  schema_check) DATABASE_URL=$URL "$SCHEMA_CHECK" --env dev --dir "$WORK/m$2" ;;
  # The drift part: $2 names the schema (corpus, gen500) and its migrations directory.
  migrate_schema) DATABASE_URL=$URL "$MIGRATE" --env dev --dir "${SCHEMA_DIR[$2]}" ;;
  gate) DATABASE_URL=$URL "$SCHEMA_CHECK" --env dev --dir "${SCHEMA_DIR[$2]}" ;;
  gate_drifted)
    # Drift is the expected verdict here: exit 1, anything else is a failure.
    local code=0
    DATABASE_URL=$URL "$SCHEMA_CHECK" --env dev --dir "${SCHEMA_DIR[$2]}" || code=$?
    [[ $code -eq 1 ]]
    ;;
  psql_select1) "$PSQL" -X -c 'select 1' "$URL" ;;
  *) die "unknown contender $1" ;;
  esac >"$WORK/last.log" 2>&1
}

# Seconds of user + system CPU used by this shell's reaped children so far, from the output
# of the `times` builtin (its second line), e.g. "0m1.234s 0m0.100s".
children_cpu() { # file written by `times`
  awk 'NR == 2 {
    split($1, u, "m"); split($2, s, "m")
    printf "%.3f\n", u[1] * 60 + substr(u[2], 1, length(u[2]) - 1) + s[1] * 60 + substr(s[2], 1, length(s[2]) - 1) }' "$1"
}

# Runs a contender once; appends its wall time in seconds to $WORK/t_<name>_<N> and the CPU
# time (user + system) of the client process to $WORK/cpu_<name>_<N>. `times` is a builtin:
# nothing but the contender runs between the two snapshots.
timed() { # name N
  local start end
  times >"$WORK/cpu.before"
  start=${EPOCHREALTIME/./}
  if ! run_contender "$1" "$2"; then
    tail -n 20 "$WORK/last.log" >&2
    die "$1 failed at N=$2"
  fi
  end=${EPOCHREALTIME/./}
  times >"$WORK/cpu.after"
  awk -v us=$((end - start)) 'BEGIN { printf "%.6f\n", us / 1e6 }' >>"$WORK/t_$1_$2"
  awk -v a="$(children_cpu "$WORK/cpu.after")" -v b="$(children_cpu "$WORK/cpu.before")" \
    'BEGIN { printf "%.3f\n", a - b }' >>"$WORK/cpu_$1_$2"
}

median() { # file
  sort -g "$1" | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    if (NR % 2) printf "%.4f\n", v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

calc() { awk "BEGIN { printf \"$1\n\", $2 }"; }
verdict() { # condition-in-awk
  if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; fi
}

# Server log bytes written while running "$@": for counting the messages a contender sends.
log_during() {
  local before
  before=$(stat -c %s "$SERVER_LOG")
  "$@"
  sleep 0.2
  tail -c +"$((before + 1))" "$SERVER_LOG"
}

if want apply; then
# ---------------------------------------------------------------------------------------
# Check what each contender sends (log_statement = all), untimed
# ---------------------------------------------------------------------------------------
APPLY=(migrate psql_stmt psql_msg)
VERIFY_N=10
generate "$VERIFY_N"
su_sql "ALTER SYSTEM SET log_statement = 'all'"
su_sql "SELECT pg_reload_conf()" >/dev/null
declare -A MESSAGES
for c in "${APPLY[@]}"; do
  recreate_db
  MESSAGES[$c]=$(log_during run_contender "$c" "$VERIFY_N" | grep -c 'LOG:  statement: ' || true)
  [[ $(tracking_rows) -eq $VERIFY_N ]] || die "$c did not record $VERIFY_N rows"
  # The statements of one user: the superuser's own setup statements are in the log too.
done
su_sql "ALTER SYSTEM RESET log_statement"
su_sql "SELECT pg_reload_conf()" >/dev/null
# Baseline 2 must send exactly one message per file, plus the CREATE TABLE.
if [[ ${MESSAGES[psql_msg]} -ne $((VERIFY_N + 1)) ]]; then
  die "baseline 2 sent ${MESSAGES[psql_msg]} messages for $VERIFY_N files, expected $((VERIFY_N + 1))"
fi
log "messages for $VERIFY_N files: migrate ${MESSAGES[migrate]}, psql per statement ${MESSAGES[psql_stmt]}, psql one message per file ${MESSAGES[psql_msg]}"

# ---------------------------------------------------------------------------------------
# Apply: interleaved rounds, rotating order, fresh database each time
# ---------------------------------------------------------------------------------------
for n in "${SIZES[@]}"; do
  generate "$n"
  for ((r = 0; r < ROUNDS; r++)); do
    for ((k = 0; k < ${#APPLY[@]}; k++)); do
      c=${APPLY[$(((r + k) % ${#APPLY[@]}))]}
      recreate_db
      timed "$c" "$n"
      rows=$(tracking_rows)
      [[ $rows -eq $n ]] || die "$c recorded $rows rows, expected $n"
    done
    log "N=$n round $((r + 1))/$ROUNDS: migrate $(tail -n 1 "$WORK/t_migrate_$n")s, psql per statement $(tail -n 1 "$WORK/t_psql_stmt_$n")s, psql one message $(tail -n 1 "$WORK/t_psql_msg_$n")s"
  done
done

# ---------------------------------------------------------------------------------------
# schema-check vs psql select 1, on a database migrate migrated; and peak RSS
# ---------------------------------------------------------------------------------------
max_rss_mib() { # cmd...: "Maximum resident set size (kbytes)" of /usr/bin/time -v
  local out
  out=$(/usr/bin/time -v "$@" 2>&1 >/dev/null) || true
  awk -F': ' '/Maximum resident set size/ { printf "%.1f\n", $2 / 1024 }' <<<"$out"
}

BIG=${SIZES[${#SIZES[@]} - 1]}
declare -A CHECK_STATUS
for n in "${SIZES[@]}"; do
  recreate_db
  run_contender migrate "$n" || die "migrate failed at N=$n"
  code=0
  run_contender schema_check "$n" || code=$?
  CHECK_STATUS[$n]=$code
  if [[ $code -ne 0 ]]; then
    log "schema-check exits $code on a freshly migrated database (N=$n): not measured"
    sed 's/^/  | /' "$WORK/last.log" >&2
    continue
  fi
  for ((r = 0; r < CHECK_RUNS; r++)); do
    if ((r % 2)); then
      timed psql_select1 "$n"
      timed schema_check "$n"
    else
      timed schema_check "$n"
      timed psql_select1 "$n"
    fi
  done
done

recreate_db
RSS_MIGRATE=$(max_rss_mib env DATABASE_URL="$URL" "$MIGRATE" --env dev --dir "$WORK/m$BIG")
[[ $(tracking_rows) -eq $BIG ]] || die "migrate under /usr/bin/time did not apply $BIG files"
RSS_CHECK=n/a
if [[ ${CHECK_STATUS[$BIG]} -eq 0 ]]; then
  RSS_CHECK=$(max_rss_mib env DATABASE_URL="$URL" "$SCHEMA_CHECK" --env dev --dir "$WORK/m$BIG")
fi
RSS_PSQL=$(max_rss_mib "$PSQL" -X -c 'select 1' "$URL")

# ---------------------------------------------------------------------------------------
# Large inputs: one no-transaction file of many one-line statements (cost linear in the
# statements), and one big transactional file (peak RSS against the file's size)
# ---------------------------------------------------------------------------------------
STMT_DIR="$WORK/stmts"
mkdir -p "$STMT_DIR"
STMT_FILE="$STMT_DIR/0001_many_inserts.sql"
{
  echo '-- dreichor:no-transaction'
  echo 'CREATE TABLE many (id int);'
  seq 1 "$STATEMENTS" | sed 's/.*/INSERT INTO many VALUES (&);/'
} >"$STMT_FILE"
STMT_SUM=$(sha256sum "$STMT_FILE")
STMT_SUM=${STMT_SUM%% *}
# psql in autocommit sends every statement as its own message, as migrate does for a
# no-transaction file, then the same tracking row.
{
  printf '%s\n' "$TRACKING_DDL"
  cat "$STMT_FILE"
  tracking_insert 0001_many_inserts "$STMT_SUM"
  echo
} >"$WORK/stmts_psql.sql"
many_rows() { su_sql "SELECT count(*) FROM many" dreichor_dev; }
for ((r = 0; r < LARGE_ROUNDS; r++)); do
  for c in $( ((r % 2)) && echo "psql migrate" || echo "migrate psql"); do
    recreate_db
    times >"$WORK/cpu.before"
    start=${EPOCHREALTIME/./}
    if [[ $c == migrate ]]; then
      DATABASE_URL=$URL "$MIGRATE" --env dev --dir "$STMT_DIR" >"$WORK/last.log" 2>&1 ||
        { tail -n 20 "$WORK/last.log" >&2; die "migrate failed on $STATEMENTS statements"; }
    else
      "$PSQL" -X -q -v ON_ERROR_STOP=1 -f "$WORK/stmts_psql.sql" "$URL" >"$WORK/last.log" 2>&1 ||
        { tail -n 20 "$WORK/last.log" >&2; die "psql failed on $STATEMENTS statements"; }
    fi
    end=${EPOCHREALTIME/./}
    times >"$WORK/cpu.after"
    awk -v us=$((end - start)) 'BEGIN { printf "%.6f\n", us / 1e6 }' >>"$WORK/t_stmts_$c"
    awk -v a="$(children_cpu "$WORK/cpu.after")" -v b="$(children_cpu "$WORK/cpu.before")" \
      'BEGIN { printf "%.3f\n", a - b }' >>"$WORK/cpu_stmts_$c"
    [[ $(many_rows) -eq $STATEMENTS && $(tracking_rows) -eq 1 ]] || die "$c did not apply all $STATEMENTS statements"
  done
  log "$STATEMENTS statements round $((r + 1))/$LARGE_ROUNDS: migrate $(tail -n 1 "$WORK/t_stmts_migrate")s, psql $(tail -n 1 "$WORK/t_stmts_psql")s"
done

BIG_DIR="$WORK/big"
mkdir -p "$BIG_DIR"
BIG_FILE="$BIG_DIR/0001_big.sql"
# About BIG_MB MB of 96-byte INSERT lines in one transactional file.
{
  echo 'CREATE TABLE big (id int, v text);'
  seq 1 $((BIG_MB * 1000000 / 96)) | awk '{ printf "INSERT INTO big VALUES (%d, '"'"'%s'"'"');\n", $1, substr("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 1, 95 - length($1 "") - 30) }'
} >"$BIG_FILE"
BIG_FILE_MIB=$(awk -v b="$(stat -c %s "$BIG_FILE")" 'BEGIN { printf "%.1f\n", b / 1048576 }')
recreate_db
RSS_MIGRATE_BIG=$(max_rss_mib env DATABASE_URL="$URL" "$MIGRATE" --env dev --dir "$BIG_DIR")
[[ $(tracking_rows) -eq 1 ]] || die "migrate did not apply the ${BIG_FILE_MIB} MiB file"
RSS_CHECK_BIG=$(max_rss_mib env DATABASE_URL="$URL" "$SCHEMA_CHECK" --env dev --dir "$BIG_DIR")
log "a ${BIG_FILE_MIB} MiB file: peak RSS migrate ${RSS_MIGRATE_BIG} MiB, schema-check ${RSS_CHECK_BIG} MiB"

# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

{
  echo "# Benchmark results"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)'),"
  echo "$(nproc) cores, $("$PG_BIN/postgres" --version), fsync=off, TCP 127.0.0.1 with scram-sha-256."
  echo "Median wall time of $ROUNDS interleaved rounds (rotating order, fresh database each run);"
  echo "schema-check and psql select 1: median of $CHECK_RUNS interleaved runs each."
  echo
  echo "Messages sent for $VERIFY_N files (log_statement = all): migrate ${MESSAGES[migrate]},"
  echo "baseline 1 ${MESSAGES[psql_stmt]}, baseline 2 ${MESSAGES[psql_msg]} (one per file + CREATE TABLE)."
  echo
  echo "## Apply"
  echo
  echo "| N | migrate (s) | baseline 1: psql, statement per message (s) | baseline 2: psql, one message per file (s) | migrate / b1 | migrate / b2 | ms per file: migrate, b1, b2 |"
  echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for n in "${SIZES[@]}"; do
    m=$(median "$WORK/t_migrate_$n")
    b1=$(median "$WORK/t_psql_stmt_$n")
    b2=$(median "$WORK/t_psql_msg_$n")
    echo "| $n | $m | $b1 | $b2 | $(calc %.3f "$m / $b1") | $(calc %.3f "$m / $b2") | $(calc %.2f "$m * 1000 / $n"), $(calc %.2f "$b1 * 1000 / $n"), $(calc %.2f "$b2 * 1000 / $n") |"
  done
  echo
  echo "Client CPU (user + system of the client process, median; the rest of the wall time is the"
  echo "server and the round trips):"
  echo
  echo "| N | migrate (s) | baseline 1 (s) | baseline 2 (s) |"
  echo "| ---: | ---: | ---: | ---: |"
  for n in "${SIZES[@]}"; do
    echo "| $n | $(median "$WORK/cpu_migrate_$n") | $(median "$WORK/cpu_psql_stmt_$n") | $(median "$WORK/cpu_psql_msg_$n") |"
  done
  echo
  echo "## schema-check"
  echo
  echo "| N | schema-check (s) | psql -c 'select 1' (s) | ratio | client CPU: schema-check, psql (s) |"
  echo "| ---: | ---: | ---: | ---: | ---: |"
  for n in "${SIZES[@]}"; do
    if [[ ${CHECK_STATUS[$n]} -eq 0 ]]; then
      s=$(median "$WORK/t_schema_check_$n")
      p=$(median "$WORK/t_psql_select1_$n")
      echo "| $n | $s | $p | $(calc %.3f "$s / $p") | $(median "$WORK/cpu_schema_check_$n"), $(median "$WORK/cpu_psql_select1_$n") |"
    else
      echo "| $n | n/a (exit ${CHECK_STATUS[$n]}) | n/a | n/a | n/a |"
    fi
  done
  echo
  echo "## Peak RSS (MiB, /usr/bin/time -v)"
  echo
  echo "| migrate, N=$BIG | schema-check, N=$BIG | psql -c 'select 1' (for scale) |"
  echo "| ---: | ---: | ---: |"
  echo "| $RSS_MIGRATE | $RSS_CHECK | $RSS_PSQL |"
  echo
  echo "## Large inputs"
  echo
  echo "One no-transaction file of $STATEMENTS one-line INSERTs, migrate against psql -f in autocommit"
  echo "(a message per statement for both), median of $LARGE_ROUNDS interleaved rounds:"
  echo
  echo "| statements | migrate (s) | psql (s) | ratio | client CPU: migrate, psql (s) |"
  echo "| ---: | ---: | ---: | ---: | ---: |"
  sm=$(median "$WORK/t_stmts_migrate")
  sp=$(median "$WORK/t_stmts_psql")
  echo "| $STATEMENTS | $sm | $sp | $(calc %.3f "$sm / $sp") | $(median "$WORK/cpu_stmts_migrate"), $(median "$WORK/cpu_stmts_psql") |"
  echo
  echo "One transactional file of $BIG_FILE_MIB MiB, peak RSS (MiB):"
  echo
  echo "| file (MiB) | migrate | schema-check |"
  echo "| ---: | ---: | ---: |"
  echo "| $BIG_FILE_MIB | $RSS_MIGRATE_BIG | $RSS_CHECK_BIG |"
  echo
  echo "## Targets"
  echo
  echo "| target | value | |"
  echo "| --- | ---: | --- |"
  for n in "${SIZES[@]}"; do
    m=$(median "$WORK/t_migrate_$n")
    b1=$(median "$WORK/t_psql_stmt_$n")
    b2=$(median "$WORK/t_psql_msg_$n")
    echo "| apply within 5% of baseline 2, N=$n | $(calc %.3f "$m / $b2") | $(verdict "$m / $b2 <= 1.05") |"
    echo "| apply faster than baseline 1, N=$n | $(calc %.3f "$m / $b1") | $(verdict "$m < $b1") |"
  done
  for n in "${SIZES[@]}"; do
    if [[ ${CHECK_STATUS[$n]} -eq 0 ]]; then
      r=$(calc %.3f "$(median "$WORK/t_schema_check_$n") / $(median "$WORK/t_psql_select1_$n")")
      echo "| schema-check <= 0.7 x psql select 1, N=$n | $r | $(verdict "$r <= 0.7") |"
    else
      echo "| schema-check <= 0.7 x psql select 1, N=$n | n/a | not measured (exit ${CHECK_STATUS[$n]}) |"
    fi
  done
  echo "| migrate peak RSS < 16 MiB | $RSS_MIGRATE | $(verdict "$RSS_MIGRATE < 16") |"
  if [[ $RSS_CHECK == n/a ]]; then
    echo "| schema-check peak RSS < 16 MiB | n/a | not measured |"
  else
    echo "| schema-check peak RSS < 16 MiB | $RSS_CHECK | $(verdict "$RSS_CHECK < 16") |"
  fi
  echo "| $STATEMENTS statements of a no-transaction file within 1.5 x psql | $(calc %.3f "$sm / $sp") | $(verdict "$sm <= 1.5 * $sp") |"
  echo "| schema-check peak RSS < 16 MiB, a $BIG_FILE_MIB MiB file | $RSS_CHECK_BIG | $(verdict "$RSS_CHECK_BIG < 16") |"
  echo "| migrate peak RSS < 2 x the file, a $BIG_FILE_MIB MiB file | $(calc %.2f "$RSS_MIGRATE_BIG / $BIG_FILE_MIB") x | $(verdict "$RSS_MIGRATE_BIG < 2 * $BIG_FILE_MIB") |"
  if [[ ${#SIZES[@]} -ge 2 ]]; then
    small=${SIZES[0]}
    # Time per file at the big N over time per file at the small N. The server's own cost
    # per CREATE TABLE grows with the catalogue, so baseline 2's growth is the yardstick:
    # migrate is linear when it grows no more than baseline 2 does (10% slack for noise).
    gm=$(calc %.3f "($(median "$WORK/t_migrate_$BIG") / $BIG) / ($(median "$WORK/t_migrate_$small") / $small)")
    gb=$(calc %.3f "($(median "$WORK/t_psql_msg_$BIG") / $BIG) / ($(median "$WORK/t_psql_msg_$small") / $small)")
    gc=n/a
    if awk "BEGIN { exit !($(median "$WORK/cpu_migrate_$small") > 0) }"; then
      gc=$(calc %.3f "($(median "$WORK/cpu_migrate_$BIG") / $BIG) / ($(median "$WORK/cpu_migrate_$small") / $small)")
    fi
    echo "| linear: migrate time per file, N=$BIG / N=$small (baseline 2: $gb; migrate client CPU per file: $gc) | $gm | $(verdict "$gm <= 1.1 * $gb") |"
  fi
} >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
fi # want apply


# ---------------------------------------------------------------------------------------
# Drift: the gate on the crates.io schema and on a generated 500-table schema, on each of
# its three paths; the snapshot's share of applying the crates.io corpus
# ---------------------------------------------------------------------------------------
if want drift; then
  declare -A SCHEMA_DIR ENTRIES
  SCHEMA_DIR[corpus]=${BENCH_CORPUS:-$ROOT/../shared/corpus/crates_io/migrations}
  [[ -d ${SCHEMA_DIR[corpus]} ]] || die "the crates.io corpus is not at ${SCHEMA_DIR[corpus]} (set BENCH_CORPUS)"

  # 500 tables, each with an identity key, defaults, a check, two indexes and a foreign key,
  # plus 50 views, 50 functions and 50 triggers: one migration.
  SCHEMA_DIR[gen500]="$WORK/gen500"
  mkdir -p "${SCHEMA_DIR[gen500]}"
  {
    for ((i = 1; i <= 500; i++)); do
      ref=$((i > 1 ? i - 1 : 1))
      printf 'CREATE TABLE public.g_t%d (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ref bigint REFERENCES public.g_t%d (id), name text NOT NULL DEFAULT '"''"', amount numeric(12,2) NOT NULL DEFAULT 0 CHECK (amount >= 0), created timestamptz NOT NULL DEFAULT now());\n' "$i" "$ref"
      printf 'CREATE INDEX g_t%d_ref ON public.g_t%d (ref);\nCREATE INDEX g_t%d_name ON public.g_t%d (name, created);\n' "$i" "$i" "$i" "$i"
    done
    for ((i = 1; i <= 50; i++)); do
      printf 'CREATE VIEW public.g_v%d AS SELECT id, name FROM public.g_t%d WHERE amount > 0;\n' "$i" "$i"
      printf 'CREATE FUNCTION public.g_f%d() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.created := now(); RETURN NEW; END $$;\n' "$i"
      printf 'CREATE TRIGGER g_tr%d BEFORE UPDATE ON public.g_t%d FOR EACH ROW EXECUTE FUNCTION public.g_f%d();\n' "$i" "$i" "$i"
    done
  } >"${SCHEMA_DIR[gen500]}/001_generated.sql"

  # "recorded the schema snapshot (N entries, digest D) in 45 ms" (or "in 1.20 s"): ms.
  snapshot_ms() { sed -n 's/.*recorded the schema snapshot .* in \([0-9.]*\) \(m\{0,1\}s\)$/\1 \2/p' "$WORK/last.log" |
    awk '{ print ($2 == "s") ? $1 * 1000 : $1 }'; }
  snapshot_entries() { sed -n 's/.*recorded the schema snapshot (\([0-9]*\) entries.*/\1/p' "$WORK/last.log"; }

  # The snapshot's share of applying the corpus: migrate reports how long recording it took.
  # Each round's share (snapshot / the rest of that same run) pairs the two under the same
  # noise; the median of those is the figure.
  : >"$WORK/snap_ms_corpus"
  : >"$WORK/snap_share_corpus"
  for ((r = 0; r < SNAPSHOT_ROUNDS; r++)); do
    recreate_db
    timed migrate_schema corpus
    ms=$(snapshot_ms)
    [[ -n $ms ]] || die "migrate did not report the snapshot's duration"
    echo "$ms" >>"$WORK/snap_ms_corpus"
    calc %.3f "$ms / 10 / ($(tail -n 1 "$WORK/t_migrate_schema_corpus") - $ms / 1000)" >>"$WORK/snap_share_corpus"
    log "corpus apply round $((r + 1))/$SNAPSHOT_ROUNDS: $(tail -n 1 "$WORK/t_migrate_schema_corpus")s, snapshot $ms ms"
  done
  ENTRIES[corpus]=$(snapshot_entries)

  # The gate on each path, alternating with psql select 1: no drift (the catalog fingerprint
  # proves it), after VACUUM FULL (fingerprint differs, the rendered digest proves it), and
  # with drift (an index made by hand: digest differs, entries diffed and named).
  for schema in corpus gen500; do
    if [[ $schema == gen500 ]]; then
      recreate_db
      run_contender migrate_schema gen500 || die "migrate failed on the generated schema"
      ENTRIES[gen500]=$(snapshot_entries)
    fi
    for path in clean digest drifted; do
      case $path in
      digest) su_sql "VACUUM FULL" dreichor_dev ;;
      drifted) su_sql "CREATE INDEX bench_drift ON public.$([[ $schema == corpus ]] && echo crates || echo g_t1) (name)" dreichor_dev ;;
      esac
      gate=gate
      [[ $path == drifted ]] && gate=gate_drifted
      run_contender "$gate" "$schema" || die "the gate's verdict on $schema ($path) is not the expected one"
      for ((r = 0; r < CHECK_RUNS; r++)); do
        if ((r % 2)); then
          timed psql_select1 "${schema}_$path"
          timed "$gate" "$schema"
        else
          timed "$gate" "$schema"
          timed psql_select1 "${schema}_$path"
        fi
      done
      mv "$WORK/t_${gate}_$schema" "$WORK/t_gate_${schema}_$path"
      rm -f "$WORK/cpu_${gate}_$schema"
    done
  done

  {
    if want apply; then cat "$RESULTS"; echo; else echo "# Benchmark results"; echo; fi
    echo "## Drift"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)'), $("$PG_BIN/postgres" --version)."
    echo "schema-check with the drift check against psql -c 'select 1': median of $CHECK_RUNS interleaved runs each."
    echo "Paths: no drift (the catalog fingerprint proves it), after VACUUM FULL (the fingerprint"
    echo "differs, the digest of the rendered snapshot proves no drift), with drift (an index made by"
    echo "hand: entries rendered, diffed and named; exit 1)."
    echo
    echo "| schema | snapshot entries | path | schema-check (s) | psql -c 'select 1' (s) | ratio |"
    echo "| --- | ---: | --- | ---: | ---: | ---: |"
    for schema in corpus gen500; do
      for path in clean digest drifted; do
        g=$(median "$WORK/t_gate_${schema}_$path")
        p=$(median "$WORK/t_psql_select1_${schema}_$path")
        label=$([[ $schema == corpus ]] && echo "crates.io (285 files)" || echo "generated, 500 tables")
        echo "| $label | ${ENTRIES[$schema]} | $path | $g | $p | $(calc %.3f "$g / $p") |"
      done
    done
    echo
    a=$(median "$WORK/t_migrate_schema_corpus")
    sm=$(median "$WORK/snap_ms_corpus")
    share=$(calc %.2f "$(median "$WORK/snap_share_corpus")")
    echo "Applying the crates.io corpus ($SNAPSHOT_ROUNDS rounds, fresh database): median $a s; recording the"
    echo "snapshot, median $sm ms; its share of each run (the snapshot against the rest of the same run),"
    echo "median $share%."
    echo
    echo "| drift target | value | |"
    echo "| --- | ---: | --- |"
    rc=$(calc %.3f "$(median "$WORK/t_gate_corpus_clean") / $(median "$WORK/t_psql_select1_corpus_clean")")
    rg=$(calc %.3f "$(median "$WORK/t_gate_gen500_clean") / $(median "$WORK/t_psql_select1_gen500_clean")")
    echo "| gate, crates.io schema, <= 1.0 x psql select 1 | $rc | $(verdict "$rc <= 1.0") |"
    echo "| gate, generated 500-table schema, <= 3 x psql select 1 | $rg | $(verdict "$rg <= 3") |"
    echo "| snapshot adds <= 5% to applying the corpus | ${share}% | $(verdict "$share <= 5") |"
  } >"$RESULTS.tmp"
  mv "$RESULTS.tmp" "$RESULTS"
fi # want drift

cat "$RESULTS"
log "written to $RESULTS"
