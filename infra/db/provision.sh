#!/usr/bin/env bash
# infra/db/provision.sh: host provisioning of the Dreichor databases.
#
# PostgreSQL is a host service, managed by the operator with the system packages and systemd
# (seeds/000, "PostgreSQL as Host Service"). This script puts one instance into the state the
# design document requires and the tools check:
#
#   roles      dreichor_dev, dreichor_prod: LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
#              NOREPLICATION NOBYPASSRLS, neither a member of the other
#   databases  dreichor_dev owned by dreichor_dev, dreichor_prod owned by dreichor_prod;
#              PUBLIC has neither CONNECT nor TEMPORARY on them, CONNECT is granted to the
#              owning role only, so neither environment's role can connect to the other's
#              database; in each, PUBLIC may not CREATE in schema public and the owner may
#   files      DIR/dev.env and DIR/prod.env (mode 0600, DIR defaults to /etc/dreichor) with
#              DATABASE_URL=postgres://dreichor_<env>:<password>@localhost:<port>/dreichor_<env>
#              DREICHOR_ENV=<env>
#              usable as a systemd EnvironmentFile= and with `set -a; . FILE; set +a`
#   runtime    per environment also dreichor_<env>_runtime, with the same attributes: the role
#              the runtime and the deploy agent log in with. CONNECT on its own database only;
#              USAGE on the schemas; SELECT, INSERT, UPDATE, DELETE on tables, USAGE, SELECT on
#              sequences, EXECUTE on functions, present ones by GRANT and future ones by
#              ALTER DEFAULT PRIVILEGES FOR ROLE dreichor_<env>; SELECT only on the tools' own
#              tables; CREATE and TEMPORARY nowhere; owner of nothing. Its DATABASE_URL goes to
#              DIR/<env>.runtime.env (0600); DIR/<env>.env keeps the owner's for the operator.
#              On a host provisioned before runtime roles existed, it is added, and the
#              operator is told which services must load the new file.
#
# It never drops anything and never changes an existing password unless asked to with
# --rotate-passwords. For each environment it decides, before it changes anything for that
# environment:
#
#   role missing, env file missing
#       create the role with DREICHOR_<ENV>_PASSWORD or a generated password (32 random
#       alphanumerics) and write the env file.
#   role exists, env file exists
#       keep both ("unchanged"). If DREICHOR_<ENV>_PASSWORD is given and differs from the
#       file's password: refuse, unless --rotate-passwords.
#   role exists, env file missing, DREICHOR_<ENV>_PASSWORD given
#       verify the password by logging in with it over TCP; it works: write the env file;
#       it does not (or the server would accept any password, so it cannot be verified):
#       refuse, unless --rotate-passwords, which sets it.
#   role exists, env file missing, no password variable
#       refuse: the password cannot be known. Give DREICHOR_<ENV>_PASSWORD, or pass
#       --rotate-passwords to set a new one.
#   role missing, env file exists
#       refuse: the role was dropped by someone, or the file belongs to another server.
#       Move the file away and run again to create the role with a new password.
#   --rotate-passwords on an existing role
#       set the new password (the variable's, else generated) and rewrite the env file, said
#       loudly: whatever uses the old file must be restarted.
#
# Drift is repaired only where the repair takes privileges away, and every repair is printed:
# a role that became SUPERUSER, CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS is set back,
# a membership of one environment's role in the other's is revoked, as are CONNECT or
# TEMPORARY granted to PUBLIC or CONNECT granted to the other environment's role. What would
# need a judgement is refused and explained instead, with the command to run: a role that
# was set NOLOGIN, a database owned by another role. A refused environment is left untouched;
# the other one is still provisioned; the exit code is then 1.
#
# It ends with checks that change nothing: neither environment's role has CONNECT on the
# other's database, each env file's DATABASE_URL logs in over TCP, and pg_hba.conf has no
# trust for TCP connections (which would make every password check meaningless).
#
# Passwords are never printed and never passed on a command line (visible in process
# listings): SQL that carries one reaches psql on stdin, with statement logging switched off
# for that session so that the server log does not record it either, and a login test gets
# it through PGPASSWORD in the environment of psql.
#
# Exit codes: 0 success, 1 refused or failed, 2 bad flags or input (nothing touched),
# 3 the admin connection could not be made (the code the other tools use for it).

set -euo pipefail
# Command substitutions fail the script too (bash 4.4+), not only plain commands.
shopt -s inherit_errexit

readonly ENVS_ALL=(dev prod)

usage() {
    cat <<'EOF'
Usage: infra/db/provision.sh [--install] [--credentials-dir DIR] [--env dev|prod] [--rotate-passwords]

Creates the roles and databases dreichor_dev and dreichor_prod on the local PostgreSQL,
isolates them from each other, and writes each environment's DATABASE_URL and DREICHOR_ENV
to DIR/dev.env and DIR/prod.env (mode 0600): the owners, for migrate and hard-reset. Per
environment it also creates the runtime role dreichor_<env>_runtime, which may read and write
rows but not change the schema, and writes its URL to DIR/<env>.runtime.env (mode 0600): the
file the runtime and the deploy agent load. Safe to run again: it never drops anything and
never changes an existing password unless --rotate-passwords is given.

Options:
  --install              install PostgreSQL from the system packages (apt-get install -y
                         postgresql) and enable and start its systemd service; where
                         systemd is not PID 1 (a container), start the cluster with
                         pg_ctlcluster instead, creating one if there is none. Needs root.
  --credentials-dir DIR  where dev.env and prod.env are written (default /etc/dreichor);
                         created with mode 0700 if missing.
  --env dev|prod         provision only this environment (default: both).
  --rotate-passwords     set a new password on roles that already exist (from
                         DREICHOR_<ENV>_PASSWORD, else generated) and rewrite their env
                         files. Whatever runs with the old file must be restarted.
  -h, --help             show this help.

Environment:
  PGHOST, PGPORT, PGUSER, PGPASSWORD
      the admin connection (a superuser), used when PGHOST, PGPORT or PGUSER is set;
      otherwise psql runs as the postgres OS user over the local socket (runuser as root,
      sudo otherwise). The port written to the env files is PGPORT, else the server's port.
  DREICHOR_DEV_PASSWORD, DREICHOR_PROD_PASSWORD
      the password for that environment's role; generated (32 alphanumerics) when unset.
  DREICHOR_DEV_RUNTIME_PASSWORD, DREICHOR_PROD_RUNTIME_PASSWORD
      the same for the runtime roles (the rules below apply to them and their files too).

Existing state, per environment:
  role and env file exist           kept as they are: "unchanged" (a password variable
                                    that differs from the file is refused)
  role exists, env file missing     with DREICHOR_<ENV>_PASSWORD: verified by logging in,
                                    then the file is written; without it: refused
                                    (--rotate-passwords sets a new password instead)
  role missing, env file exists     refused: move the file away to start afresh
  attributes or grants drifted      privileges beyond the above are taken away, and said;
                                    NOLOGIN or a database owned by another role: refused

Exit codes:
  0  success: everything is in place
  1  refused (see the messages) or failed; a refused environment is left untouched
  2  bad flags or input: nothing was touched
  3  the admin connection could not be made
EOF
}

# ---------------------------------------------------------------------------------------------
# Output helpers.

say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$1" >&2
    exit "${2:-1}"
}
usage_error() {
    printf 'error: %s\n' "$1" >&2
    printf 'Run %s --help for usage.\n' "$0" >&2
    exit 2
}

# ---------------------------------------------------------------------------------------------
# Flags.

install=0
rotate=0
creds_dir=/etc/dreichor
envs=("${ENVS_ALL[@]}")

while (($# > 0)); do
    case $1 in
    --install) install=1 ;;
    --rotate-passwords) rotate=1 ;;
    --credentials-dir)
        (($# >= 2)) || usage_error "--credentials-dir needs a directory"
        creds_dir=$2
        shift
        ;;
    --credentials-dir=*) creds_dir=${1#*=} ;;
    --env)
        (($# >= 2)) || usage_error "--env needs dev or prod"
        envs=("$2")
        shift
        ;;
    --env=*) envs=("${1#*=}") ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) usage_error "unknown argument: $1" ;;
    esac
    shift
done

[[ ${envs[0]} == dev || ${envs[0]} == prod ]] || usage_error "--env must be dev or prod, not '${envs[0]}'"
[[ -n $creds_dir ]] || usage_error "--credentials-dir must not be empty"
[[ ! -e $creds_dir || -d $creds_dir ]] || usage_error "--credentials-dir $creds_dir exists and is not a directory"

# A bad password variable stops the run before anything is touched.
for env in "${envs[@]}"; do
    for var in "DREICHOR_${env^^}_PASSWORD" "DREICHOR_${env^^}_RUNTIME_PASSWORD"; do
        if [[ -n ${!var+set} ]]; then
            [[ -n ${!var} ]] || usage_error "$var is set but empty"
            # Control characters (a stray newline from `echo` or a file) are almost surely a
            # mistake, and would be a surprise in a URL: refuse them.
            [[ ${!var} != *[[:cntrl:]]* ]] || usage_error "$var contains a control character"
        fi
    done
done

# ---------------------------------------------------------------------------------------------
# Small pure helpers.

# A password of 32 characters from [A-Za-z0-9] (about 190 bits): nothing to percent-encode.
# head closes the pipe after 64 bytes, so tr never gets SIGPIPE under pipefail.
generate_password() {
    local pw=""
    while ((${#pw} < 32)); do
        pw+=$(head -c 64 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9')
    done
    printf '%s' "${pw:0:32}"
}

# Percent-encodes everything but RFC 3986 unreserved characters, byte by byte (UTF-8 too).
urlencode() {
    local LC_ALL=C
    local s=$1 out="" c n i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
        [A-Za-z0-9._~-]) out+=$c ;;
        *)
            printf -v n '%d' "'$c"
            printf -v c '%%%02X' $((n & 255))
            out+=$c
            ;;
        esac
    done
    printf '%s' "$out"
}

# A string as an SQL literal that means the same whatever standard_conforming_strings is.
sql_literal() {
    local s=${1//\\/\\\\}
    printf "E'%s'" "${s//\'/\'\'}"
}

# ---------------------------------------------------------------------------------------------
# --install

systemd_is_pid1() { [[ -d /run/systemd/system ]]; } # sd_booted(3)

install_postgres() {
    ((EUID == 0)) || die "--install needs root (it runs apt-get and systemctl)"
    command -v apt-get >/dev/null || die "--install supports Debian and Ubuntu (apt-get) only; install PostgreSQL with the system's packages and run again without --install"

    if dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q 'install ok installed'; then
        say "package postgresql is installed: unchanged"
    else
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y postgresql; then
            say "apt-get install failed; updating the package lists and trying once more"
            apt-get update
            apt-get install -y postgresql || die "apt-get install -y postgresql failed"
        fi
        say "installed package postgresql"
    fi

    if systemd_is_pid1; then
        local was_enabled=0 was_active=0
        systemctl is-enabled --quiet postgresql && was_enabled=1
        systemctl is-active --quiet postgresql && was_active=1
        systemctl enable --now postgresql || die "systemctl enable --now postgresql failed"
        if ((was_enabled && was_active)); then
            say "service postgresql is enabled and running: unchanged"
        else
            say "enabled and started service postgresql"
        fi
        return
    fi

    say "systemd is not running as PID 1 here (a container?): no service to enable, and PostgreSQL" \
        "will not start at boot: the cluster is managed with pg_lsclusters and pg_ctlcluster instead"
    local clusters ver name port status
    clusters=$(pg_lsclusters --no-header) || die "pg_lsclusters failed"
    if [[ -z $clusters ]]; then
        # The newest installed server version, as the postgresql package would pick.
        ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -n 1)
        [[ -n $ver ]] || die "no PostgreSQL server found under /usr/lib/postgresql"
        pg_createcluster "$ver" main >/dev/null || die "pg_createcluster $ver main failed"
        say "created cluster $ver/main"
        clusters=$(pg_lsclusters --no-header)
    fi
    while read -r ver name port status _; do
        if [[ $status == online* ]]; then
            say "cluster $ver/$name (port $port) is online: unchanged"
        elif [[ $(cat "/etc/postgresql/$ver/$name/start.conf" 2>/dev/null || echo auto) == *auto* ]]; then
            pg_ctlcluster "$ver" "$name" start || die "pg_ctlcluster $ver $name start failed"
            say "started cluster $ver/$name (port $port)"
        else
            say "cluster $ver/$name (port $port) is down and not set to start automatically: left alone"
        fi
    done <<<"$clusters"
}

# ---------------------------------------------------------------------------------------------
# The admin connection.

if [[ -n ${PGHOST-} || -n ${PGPORT-} || -n ${PGUSER-} ]]; then
    admin_mode=variables
elif ((EUID == 0)); then
    admin_mode=runuser
elif [[ $(id -un) == postgres ]]; then
    admin_mode=self
else
    admin_mode=sudo
fi

# Runs psql on the admin connection against database $1, SQL on stdin, extra psql arguments
# after it. -X: no ~/.psqlrc; -qAt: bare rows. The postgres user may not be able to enter the
# current directory, hence `cd /`.
admin_psql() {
    local db=$1
    shift
    local cmd=(psql -X -v ON_ERROR_STOP=1 -v VERBOSITY=terse -qAt -d "$db" "$@")
    case $admin_mode in
    variables | self) "${cmd[@]}" ;;
    runuser) (cd / && runuser -u postgres -- "${cmd[@]}") ;;
    sudo) (cd / && sudo -u postgres -- "${cmd[@]}") ;;
    esac
}

# q DB SQL: runs SQL without a password in it; prints the rows; exit 1 on error.
q() {
    local out
    if ! out=$(printf '%s\n' "$2" | admin_psql "$1"); then
        printf 'error: the query above failed in database %s\n' "$1" >&2
        return 1
    fi
    printf '%s' "$out"
}

# q_secret DB SECRET SQL: runs SQL that carries SECRET. Statement logging is switched off for
# the session first (the server logs a failing statement's text by default,
# log_min_error_statement = error), and psql's error output has SECRET masked.
q_secret() {
    local db=$1 secret=$2 sql=$3 err
    local prelude="SET log_statement = 'none'; SET log_min_duration_statement = -1;
SET log_min_error_statement = panic; SET pg_stat_statements.track_utility = off;
SET password_encryption = 'scram-sha-256';"
    if ! err=$(printf '%s\n%s\n' "$prelude" "$sql" | admin_psql "$db" 2>&1 >/dev/null); then
        local quoted=${secret//\\/\\\\}
        quoted=${quoted//\'/\'\'}
        err=${err//"$quoted"/***}
        err=${err//"$secret"/***}
        printf '%s\n' "$err" >&2
        return 1
    fi
}

# "Can ROLE log in to DB over TCP on localhost:$port with PASSWORD?", as the runtime would
# connect. None of the admin variables may leak into it.
try_login() {
    local role=$1 db=$2 password=$3 v
    (
        for v in $(compgen -e); do
            if [[ $v == PG* ]]; then unset "$v"; fi
        done
        export PGPASSWORD=$password PGPASSFILE=/dev/null PGCONNECT_TIMEOUT=10
        psql -X -qAt -h localhost -p "$port" -U "$role" -d "$db" -c 'select 1' >/dev/null
    )
}

# Whether the server checks passwords at all for ROLE on localhost: with trust in
# pg_hba.conf any password logs in, and a login proves nothing. The probe leaves one
# authentication failure in the server log, so it is made only to verify a given password.
password_is_checked() {
    ! try_login "$1" "$2" "not-the-password-$(generate_password)" 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# Env files.

env_file() { printf '%s/%s.env' "$creds_dir" "$1"; }
runtime_file() { printf '%s/%s.runtime.env' "$creds_dir" "$1"; }

# Reads FILE, an env file this script wrote for ROLE and database DB: sets file_pw and
# file_port, or fails with a reason. Not run in a subshell, so that it can set both.
parse_env_file() {
    local file=$1 role=$2 db=$3 line url="" enc
    if [[ ! -r $file ]]; then
        printf 'error: %s is not readable\n' "$file" >&2
        return 1
    fi
    while IFS= read -r line || [[ -n $line ]]; do
        if [[ $line == DATABASE_URL=* ]]; then url=${line#DATABASE_URL=}; fi
    done <"$file"
    url=${url#[\"\']}
    url=${url%[\"\']}
    local re='^postgres://'"$role"':(([A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})+)@localhost:([0-9]+)/'"$db"'$'
    if [[ ! $url =~ $re ]]; then
        printf 'error: %s has no line DATABASE_URL=postgres://%s:PASSWORD@localhost:PORT/%s\n' \
            "$file" "$role" "$db" >&2
        return 1
    fi
    enc=${BASH_REMATCH[1]}
    file_port=${BASH_REMATCH[3]}
    if [[ $enc == *%00* ]]; then
        printf 'error: %s: the password in DATABASE_URL contains %%00\n' "$file" >&2
        return 1
    fi
    # Only unreserved characters and %XX escapes (checked above), so %b sees no backslash
    # but the \x put in here.
    local LC_ALL=C
    printf -v file_pw '%b' "${enc//%/\\x}"
}

# Writes FILE, the env file of ROLE in ENV, with PASSWORD to a temporary file beside it,
# whose name it leaves in staged_file: mode 0600 from mktemp and the umask from the start,
# never chmod'ed afterwards. move_into_place then replaces the env file atomically, once the
# role has the password: a failure in between leaves the old file, or none, never a file
# that lies.
stage_env_file() {
    local file=$1 role=$2 env=$3 password=$4 tmp who
    tmp=$(mktemp "$creds_dir/.${file##*/}.XXXXXX")
    staged+=("$tmp")
    staged_file=$tmp
    if [[ $role == *_runtime ]]; then
        who="runtime credentials (role $role: reads and writes rows, cannot change the schema), for the runtime and the deploy agent"
    else
        who="owner credentials (role $role: owns the database), for the operator's migrate and hard-reset"
    fi
    {
        printf '# Dreichor %s %s.\n' "$env" "$who"
        printf '# Written by infra/db/provision.sh. Holds a password: keep it mode 0600. Use it as a\n'
        printf '# systemd EnvironmentFile= or with  set -a; . %s; set +a\n' "$file"
        printf 'DATABASE_URL=postgres://%s:%s@localhost:%s/dreichor_%s\n' \
            "$role" "$(urlencode "$password")" "$port" "$env"
        printf 'DREICHOR_ENV=%s\n' "$env"
    } >"$tmp"
}

move_into_place() {
    local tmp=$1 file=$2
    if ! mv -f -- "$tmp" "$file"; then
        staged=() # keep it: it holds the password the role now has
        die "could not move $tmp to $file; the role's password is in $tmp"
    fi
}

staged=()
# shellcheck disable=SC2317 # only reached through the EXIT trap
cleanup() {
    local f
    for f in "${staged[@]}"; do
        if [[ -e $f ]]; then rm -f -- "$f"; fi
    done
    return 0
}
trap cleanup EXIT


# ---------------------------------------------------------------------------------------------
# Provisioning one environment.

other_env() { if [[ $1 == dev ]]; then echo prod; else echo dev; fi; }

# Prints why ENV is refused. The caller returns at once: nothing was changed for ENV.
refuse() {
    printf 'refused %s: %s\n' "$1" "$2" >&2
    printf '  nothing was changed for %s\n' "$1" >&2
    status=1
}

readonly ROLE_ATTRS="LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"

# Decides what to do with ROLE and its password, touching nothing: LABEL names it in a
# refusal, FILE is its env file, VAR the variable that may give its password, ATTRS what
# role_attrs read (empty: no such role), LOGIN_DB where a given password is verified. Sets
# action (create, keep, adopt, rotate), password and source, or refuses and returns 1.
decide() {
    local label=$1 role=$2 file=$3 var=$4 attrs=$5 login_db=$6 db=dreichor_${env} given
    given=${!var-}
    password="" source=""

    if [[ -z $attrs && -e $file ]]; then
        refuse "$label" "$file exists but role $role does not (was the role dropped, or does the file belong to another server?). Its password cannot be trusted: move the file away and run this again to create the role with a new password"
        return 1
    fi

    if [[ -z $attrs ]]; then
        action=create
    else
        if [[ ${attrs##*|} != t ]]; then
            refuse "$label" "role $role exists with NOLOGIN: someone disabled its logins, and enabling them again is your decision: ALTER ROLE $role LOGIN, then run this again"
            return 1
        fi
        if [[ -e $file ]]; then
            if ! parse_env_file "$file" "$role" "$db"; then
                refuse "$label" "cannot read the password from $file (see above): fix or move the file, or pass --rotate-passwords to set a new password and write the file again"
                return 1
            fi
            if ((rotate)); then
                action=rotate
            elif [[ -n $given && $given != "$file_pw" ]]; then
                refuse "$label" "$var differs from the password in $file, and a role's password is not changed silently: pass --rotate-passwords to set $var as the new password, or unset $var to keep the file"
                return 1
            else
                action=keep password=$file_pw
                if [[ $file_port != "$port" ]]; then
                    warn "$file names port $file_port, the server listens on $port; the file is left as it is (--rotate-passwords writes it again)"
                fi
            fi
        elif ((rotate)); then
            action=rotate
        elif [[ -n $given ]]; then
            if ! password_is_checked "$role" "$login_db"; then
                refuse "$label" "$var cannot be verified: the server lets $role log in on localhost:$port with any password (trust in pg_hba.conf?). Pass --rotate-passwords to set it anyway"
                return 1
            fi
            if ! try_login "$role" "$login_db" "$given"; then
                refuse "$label" "$var does not log in as $role on localhost:$port (see above), and the password is not reset: give the right one, or pass --rotate-passwords to set $var as the new password"
                return 1
            fi
            action=adopt password=$given source="from $var"
        else
            refuse "$label" "role $role exists but $file does not, so its password cannot be known. Give it in $var (it is verified by logging in, then the file is written), or pass --rotate-passwords to set a new password"
            return 1
        fi
    fi

    if [[ $action == create || $action == rotate ]]; then
        if [[ -n $given ]]; then
            password=$given source="from $var"
        else
            password=$(generate_password) source=generated
        fi
    fi
}

# ROLE's attributes as decide reads them; empty when the role does not exist.
role_attrs() {
    q postgres "select rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin
        from pg_roles where rolname = '$1'"
}

# Carries out decide's choice for ROLE (its env FILE is staged, not yet written), then takes
# drifted attributes away and revokes ROLE's membership in each of the roles in FORBIDDEN.
apply_role() {
    local role=$1 file=$2 attrs=$3 forbidden=$4
    case $action in
    create)
        stage_env_file "$file" "$role" "$env" "$password"
        q_secret postgres "$password" "CREATE ROLE $role $ROLE_ATTRS PASSWORD $(sql_literal "$password");"
        say "created role $role ($ROLE_ATTRS), password $source"
        ;;
    rotate)
        stage_env_file "$file" "$role" "$env" "$password"
        q_secret postgres "$password" "ALTER ROLE $role PASSWORD $(sql_literal "$password");"
        say "!!! ROTATED the password of role $role (new password $source): restart whatever uses $file !!!"
        ;;
    *)
        say "role $role exists, password unchanged"
        ;;
    esac
    if [[ $action != create ]]; then
        local drift="" names=(SUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS) flags i
        IFS='|' read -r -a flags <<<"$attrs"
        for i in "${!names[@]}"; do
            if [[ ${flags[i]} == t ]]; then drift+=" ${names[i]}"; fi
        done
        if [[ -n $drift ]]; then
            q postgres "ALTER ROLE $role $ROLE_ATTRS;" >/dev/null
            say "FIXED role $role: it had${drift}; now $ROLE_ATTRS"
        else
            say "role $role is $ROLE_ATTRS: unchanged"
        fi
    fi
    local other member memberships
    for other in $forbidden; do
        member=$(q postgres "select count(*) from pg_auth_members
            where roleid = (select oid from pg_roles where rolname = '$other')
              and member = (select oid from pg_roles where rolname = '$role')")
        if ((member > 0)); then
            q postgres "REVOKE $other FROM $role;" >/dev/null
            say "FIXED role $role: it was a member of $other; revoked"
        fi
    done
    memberships=$(q postgres "select string_agg(r.rolname, ', ' order by r.rolname) from pg_auth_members m
        join pg_roles r on r.oid = m.roleid where m.member = (select oid from pg_roles where rolname = '$role')")
    if [[ -n $memberships ]]; then
        warn "role $role is a member of $memberships; left as it is: check that this is intended"
    fi
}

# Writes ROLE's env FILE as decide chose (staged by apply_role for create and rotate).
write_env_file() {
    local role=$1 file=$2
    case $action in
    create | rotate)
        move_into_place "$staged_file" "$file"
        say "wrote $file (mode 0600)"
        ;;
    adopt)
        stage_env_file "$file" "$role" "$env" "$password"
        move_into_place "$staged_file" "$file"
        say "wrote $file (mode 0600) with the password $source, verified by logging in"
        ;;
    keep)
        say "$file exists: unchanged"
        local mode
        mode=$(stat -c '%a' -- "$file")
        if [[ $mode != 600 && $mode != 400 ]]; then
            warn "$file has mode $mode but holds a password: chmod 600 $file"
        fi
        ;;
    esac
}

provision_env() {
    local env=$1 role=dreichor_$1 db=dreichor_$1 other file attrs owner
    other=$(other_env "$env")
    file=$(env_file "$env")

    attrs=$(role_attrs "$role")
    owner=$(q postgres "select pg_get_userbyid(datdba) from pg_database where datname = '$db'")
    if [[ -n $owner && $owner != "$role" ]]; then
        refuse "$env" "database $db exists but is owned by $owner, not $role. Its tables may belong to $owner too, so changing the owner is your decision: if it holds nothing you need, create the role if need be and ALTER DATABASE $db OWNER TO $role, then run this again"
        return 0
    fi
    local login_db=postgres
    if [[ -n $owner ]]; then login_db=$db; fi
    decide "$env" "$role" "$file" "DREICHOR_${env^^}_PASSWORD" "$attrs" "$login_db" || return 0

    # --- the role --------------------------------------------------------------------------
    apply_role "$role" "$file" "$attrs" "dreichor_$other dreichor_${other}_runtime"

    # --- the database ----------------------------------------------------------------------
    if [[ -z $owner ]]; then
        # CREATE DATABASE cannot run inside a transaction block (nor a DO block), so the
        # existence check is a separate query; a concurrent creation makes this one fail.
        q postgres "CREATE DATABASE $db OWNER $role;" >/dev/null
        say "created database $db, owner $role"
    else
        say "database $db exists, owner $role: unchanged"
    fi

    local public_privs has_connect
    public_privs=$(q postgres "select coalesce(string_agg(a.privilege_type, ', ' order by a.privilege_type), '')
        from pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
        where d.datname = '$db' and a.grantee = 0 and a.privilege_type in ('CONNECT', 'TEMPORARY')")
    if [[ -n $public_privs ]]; then
        q postgres "REVOKE CONNECT, TEMPORARY ON DATABASE $db FROM PUBLIC;" >/dev/null
        say "revoked $public_privs on database $db from PUBLIC"
    else
        say "PUBLIC has no CONNECT or TEMPORARY on database $db: unchanged"
    fi
    has_connect=$(q postgres "select has_database_privilege('$role', '$db', 'CONNECT')")
    if [[ $has_connect == t ]]; then
        say "$role has CONNECT on database $db: unchanged"
    else
        q postgres "GRANT CONNECT ON DATABASE $db TO $role;" >/dev/null
        say "granted CONNECT on database $db to $role"
    fi

    # --- schema public in it ---------------------------------------------------------------
    local schema schema_owner usable public_create
    schema=$(q "$db" "select pg_get_userbyid(n.nspowner),
            has_schema_privilege('$role', n.oid, 'USAGE') and has_schema_privilege('$role', n.oid, 'CREATE'),
            exists (select 1 from aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                    where a.grantee = 0 and a.privilege_type = 'CREATE')
        from pg_namespace n where n.nspname = 'public'")
    if [[ -z $schema ]]; then
        q "$db" "CREATE SCHEMA public AUTHORIZATION $role;" >/dev/null
        say "created schema public in database $db, owner $role (it was missing)"
    else
        IFS='|' read -r schema_owner usable public_create <<<"$schema"
        if [[ $usable == t ]]; then
            say "schema public in database $db (owner $schema_owner) is usable by $role: unchanged"
        else
            # Before PostgreSQL 15, public belongs to the bootstrap superuser and only
            # PUBLIC's CREATE, revoked below, lets anyone else create in it.
            q "$db" "GRANT USAGE, CREATE ON SCHEMA public TO $role;" >/dev/null
            say "granted USAGE, CREATE on schema public in database $db (owner $schema_owner) to $role"
        fi
        if [[ $public_create == t ]]; then
            q "$db" "REVOKE CREATE ON SCHEMA public FROM PUBLIC;" >/dev/null
            say "revoked CREATE on schema public in database $db from PUBLIC"
        else
            say "PUBLIC has no CREATE on schema public in database $db: unchanged"
        fi
    fi

    # --- the env file ----------------------------------------------------------------------
    write_env_file "$role" "$file"
    pw_of[$env]=$password
    owner_action[$env]=$action

    provision_runtime "$env"
}

# ---------------------------------------------------------------------------------------------
# The runtime role of one environment.

# The tools' own tables (common/src/tracking.rs, TOOLS_TABLES, keeps the same list; a unit
# test there checks it): only their owner writes them, the runtime role may only read them.
readonly TOOLS_TABLES=('public.dreichor_schema_migrations' 'public.dreichor_schema_snapshot')

# TOOLS_TABLES as an SQL array of the ones that exist.
tools_tables_sql() {
    local t list=""
    for t in "${TOOLS_TABLES[@]}"; do list+="to_regclass('$t'),"; done
    printf 'array_remove(array[%s]::regclass[], null)' "${list%,}"
}

# Creates or checks dreichor_<env>_runtime and its file DIR/<env>.runtime.env: the role the
# runtime and the deploy agent log in with. It may read and write rows and nothing more, by
# PostgreSQL's own rules: CONNECT on its own database only, USAGE on the schemas, DML on the
# tables, USAGE and SELECT on the sequences, EXECUTE on the functions, present ones by GRANT
# and future ones by ALTER DEFAULT PRIVILEGES FOR ROLE the owner, so that no migration has to
# name it; SELECT only on the tools' own tables; CREATE and TEMPORARY nowhere; owner of
# nothing; a member of neither environment's other roles.
provision_runtime() {
    local env=$1 owner=dreichor_$1 db=dreichor_$1 role=dreichor_$1_runtime other file attrs login_db=postgres
    other=$(other_env "$env")
    file=$(runtime_file "$env")
    attrs=$(role_attrs "$role")
    if [[ -n $attrs && $(q postgres "select has_database_privilege('$role', '$db', 'CONNECT')") == t ]]; then
        login_db=$db
    fi
    decide "$env runtime role" "$role" "$file" "DREICHOR_${env^^}_RUNTIME_PASSWORD" "$attrs" "$login_db" || return 0
    apply_role "$role" "$file" "$attrs" "$owner dreichor_$other dreichor_${other}_runtime"
    runtime_action[$env]=$action

    local owned
    owned=$(q postgres "select count(*) from pg_shdepend where deptype = 'o'
        and refclassid = 'pg_authid'::regclass and refobjid = (select oid from pg_roles where rolname = '$role')")
    if ((owned > 0)); then
        warn "role $role owns $owned object(s), and an owner can change them: REASSIGN OWNED BY $role TO $owner in the databases concerned (left as it is)"
    fi

    # --- the database: CONNECT, and neither CREATE nor TEMPORARY ------------------------------
    if [[ $(q postgres "select has_database_privilege('$role', '$db', 'CONNECT')") == t ]]; then
        say "$role has CONNECT on database $db: unchanged"
    else
        q postgres "GRANT CONNECT ON DATABASE $db TO $role;" >/dev/null
        say "granted CONNECT on database $db to $role"
    fi
    local db_extra="has_database_privilege('$role', '$db', 'CREATE') or has_database_privilege('$role', '$db', 'TEMPORARY')"
    if [[ $(q postgres "select $db_extra") == t ]]; then
        q postgres "REVOKE CREATE, TEMPORARY ON DATABASE $db FROM $role;" >/dev/null
        if [[ $(q postgres "select $db_extra") == t ]]; then
            printf 'error: %s still has CREATE or TEMPORARY on database %s, through PUBLIC or a role it is a member of: remove it by hand\n' "$role" "$db" >&2
            status=1
        else
            say "FIXED database $db: revoked CREATE, TEMPORARY from $role"
        fi
    fi

    # --- inside the database -----------------------------------------------------------------
    local tools schemas missing n_usage n_tables n_sequences n_routines
    tools=$(tools_tables_sql)
    local in_schemas="select oid from pg_namespace
        where nspname = 'public' or nspowner = (select oid from pg_roles where rolname = '$owner')"
    schemas=$(q "$db" "select string_agg(quote_ident(nspname), ', ' order by nspname) from pg_namespace where oid in ($in_schemas)")
    missing=$(q "$db" "select
        (select count(*) from pg_namespace n where n.oid in ($in_schemas) and not exists (
            select 1 from aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
            where a.grantee = (select oid from pg_roles where rolname = '$role') and a.privilege_type = 'USAGE')),
        (select count(*) from pg_class c where c.relnamespace in ($in_schemas) and c.relkind in ('r', 'p', 'v', 'm', 'f')
            and not c.oid::regclass = any($tools)
            and not (has_table_privilege('$role', c.oid, 'SELECT') and has_table_privilege('$role', c.oid, 'INSERT')
                 and has_table_privilege('$role', c.oid, 'UPDATE') and has_table_privilege('$role', c.oid, 'DELETE'))),
        (select count(*) from pg_class c where c.relnamespace in ($in_schemas) and c.relkind = 'S'
            and not (has_sequence_privilege('$role', c.oid, 'USAGE') and has_sequence_privilege('$role', c.oid, 'SELECT'))),
        (select count(*) from pg_proc p where p.pronamespace in ($in_schemas)
            and not has_function_privilege('$role', p.oid, 'EXECUTE'))")
    IFS='|' read -r n_usage n_tables n_sequences n_routines <<<"$missing"
    # USAGE is granted to the role itself, not left to PUBLIC's, which a hardening may revoke.
    # The tools' tables are granted SELECT only, in the same transaction as the grant on all
    # tables, so that the runtime role never holds more on them, even for a moment.
    local t tools_fix=""
    for t in "${TOOLS_TABLES[@]}"; do
        tools_fix+="DO \$\$ BEGIN IF to_regclass('$t') IS NOT NULL THEN
            REVOKE ALL ON TABLE $t FROM $role; GRANT SELECT ON TABLE $t TO $role; END IF; END \$\$;
"
    done
    if ((n_usage + n_tables + n_sequences + n_routines > 0)); then
        q "$db" "BEGIN;
            GRANT USAGE ON SCHEMA $schemas TO $role;
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA $schemas TO $role;
            GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA $schemas TO $role;
            GRANT EXECUTE ON ALL ROUTINES IN SCHEMA $schemas TO $role;
            $tools_fix
            COMMIT;" >/dev/null
        say "granted $role, in database $db, what it lacked: USAGE on schema $schemas and, in them, SELECT, INSERT, UPDATE, DELETE on all tables ($n_tables lacked them), USAGE, SELECT on all sequences ($n_sequences), EXECUTE on all functions ($n_routines)"
    else
        say "$role has USAGE on schema $schemas and the privileges on the tables, sequences and functions in them: unchanged"
    fi

    # The tools' own tables: SELECT only, for every role but their owner.
    local revokes tools_read
    revokes=$(q "$db" "select string_agg(format('REVOKE %s ON TABLE %I.%I FROM %s', a.privilege_type, n.nspname, c.relname,
            case when a.grantee = 0 then 'PUBLIC' else quote_ident(pg_get_userbyid(a.grantee)) end), '; ')
        from pg_class c join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) a
        where c.oid::regclass = any($tools) and a.grantee <> c.relowner and a.privilege_type <> 'SELECT'")
    if [[ -n $revokes ]]; then
        q "$db" "$revokes;" >/dev/null
        say "FIXED the tools' own tables in database $db: only their owner may write them: $revokes"
    fi
    tools_read=$(q "$db" "select count(*) from unnest($tools) t where not has_table_privilege('$role', t, 'SELECT')")
    if ((tools_read > 0)); then
        q "$db" "$tools_fix" >/dev/null
        say "granted SELECT on the tools' own tables in database $db to $role"
    fi

    # Default privileges: what the migrations create later is covered without naming the role.
    local defaults
    defaults=$(q "$db" "select count(*) from (values ('r', 'SELECT'), ('r', 'INSERT'), ('r', 'UPDATE'), ('r', 'DELETE'),
            ('S', 'USAGE'), ('S', 'SELECT'), ('f', 'EXECUTE'), ('n', 'USAGE')) w(t, p)
        where not exists (select 1 from pg_default_acl d, aclexplode(d.defaclacl) a
            where d.defaclrole = (select oid from pg_roles where rolname = '$owner') and d.defaclnamespace = 0
              and d.defaclobjtype = w.t::\"char\" and a.grantee = (select oid from pg_roles where rolname = '$role')
              and a.privilege_type = w.p)")
    if ((defaults > 0)); then
        q "$db" "ALTER DEFAULT PRIVILEGES FOR ROLE $owner GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO $role;
            ALTER DEFAULT PRIVILEGES FOR ROLE $owner GRANT USAGE, SELECT ON SEQUENCES TO $role;
            ALTER DEFAULT PRIVILEGES FOR ROLE $owner GRANT EXECUTE ON FUNCTIONS TO $role;
            ALTER DEFAULT PRIVILEGES FOR ROLE $owner GRANT USAGE ON SCHEMAS TO $role;" >/dev/null
        say "set the default privileges of $owner in database $db: what its migrations create is usable by $role (DML on tables, USAGE, SELECT on sequences, EXECUTE on functions, USAGE on schemas)"
    else
        say "the default privileges of $owner in database $db cover $role: unchanged"
    fi

    # CREATE nowhere.
    local creates
    creates=$(q "$db" "select coalesce(string_agg(quote_ident(nspname), ', ' order by nspname), '') from pg_namespace
        where nspname not like 'pg\\_%' and nspname <> 'information_schema' and has_schema_privilege('$role', oid, 'CREATE')")
    if [[ -n $creates ]]; then
        q "$db" "REVOKE CREATE ON SCHEMA $creates FROM $role;" >/dev/null
        creates=$(q "$db" "select coalesce(string_agg(quote_ident(nspname), ', ' order by nspname), '') from pg_namespace
            where nspname not like 'pg\\_%' and nspname <> 'information_schema' and has_schema_privilege('$role', oid, 'CREATE')")
        if [[ -n $creates ]]; then
            printf 'error: %s still has CREATE on schema %s in database %s, through PUBLIC or a role it is a member of: remove it by hand\n' "$role" "$creates" "$db" >&2
            status=1
        else
            say "FIXED database $db: revoked CREATE on its schemas from $role"
        fi
    else
        say "checked: $role has CREATE on no schema in database $db"
    fi

    # --- the env file ----------------------------------------------------------------------
    write_env_file "$role" "$file"
    rt_pw_of[$env]=$password
}

# ---------------------------------------------------------------------------------------------
# Main.

umask 077

if ((install)); then
    install_postgres
fi

if [[ $admin_mode == variables ]]; then
    admin_desc="${PGUSER:-$(id -un)}@${PGHOST:-local socket}${PGPORT:+:$PGPORT}, from PG* variables"
else
    admin_desc="postgres over the local socket ($admin_mode)"
fi
if ! info=$(admin_psql postgres <<<"select current_user, (select rolsuper from pg_roles where rolname = current_user),
        current_setting('server_version'), current_setting('server_version_num'), current_setting('port');"); then
    die "could not connect as $admin_desc (see above): set PGHOST, PGPORT, PGUSER and PGPASSWORD for a superuser, or run this as root on the database host (--install installs PostgreSQL)" 3
fi
IFS='|' read -r admin_user admin_super server_version server_version_num server_port <<<"$info"
say "admin connection: $admin_user, $admin_desc; PostgreSQL $server_version"
[[ $admin_super == t ]] || die "the admin connection's role $admin_user is not a superuser; connect as one (PGUSER)"
((server_version_num >= 110000)) || die "PostgreSQL $server_version is too old: 11 or newer is needed (scram-sha-256, GRANT ... ON ALL ROUTINES)"

port=${PGPORT:-$server_port}
[[ $port =~ ^[0-9]+$ ]] || die "PGPORT '$port' is not a number" 2
case ${PGHOST-} in
"" | localhost | 127.0.0.1 | ::1 | /*) ;;
*) warn "PGHOST=$PGHOST may not be this host; the env files name localhost:$port, as the design document requires" ;;
esac

if [[ ! -d $creds_dir ]]; then
    mkdir -p -- "$creds_dir"
    say "created directory $creds_dir (mode 0700)"
fi

status=0
action="" password="" source="" file_pw="" file_port="" staged_file=""
declare -A pw_of=()    # env -> the password in its env file, for the environments not refused
declare -A rt_pw_of=() # env -> the same for the runtime role
declare -A owner_action=() runtime_action=()

for env in "${envs[@]}"; do
    provision_env "$env"
done

# --- checks across both environments ------------------------------------------------------------
# The other environment's roles may have been created only after this one's privileges were
# set, so isolation is checked once both exist, and a direct grant revoked.
for env in "${envs[@]}"; do
    [[ -n ${pw_of[$env]+set} ]] || continue
    other=$(other_env "$env")
    for intruder in "dreichor_$other" "dreichor_${other}_runtime"; do
        intruder_exists=$(q postgres "select count(*) from pg_roles where rolname = '$intruder'")
        ((intruder_exists == 1)) || continue
        crosses=$(q postgres "select has_database_privilege('$intruder', 'dreichor_$env', 'CONNECT')")
        if [[ $crosses == t ]]; then
            q postgres "REVOKE CONNECT, TEMPORARY ON DATABASE dreichor_$env FROM $intruder;" >/dev/null
            say "FIXED database dreichor_$env: revoked CONNECT, TEMPORARY from $intruder"
            crosses=$(q postgres "select has_database_privilege('$intruder', 'dreichor_$env', 'CONNECT')")
            if [[ $crosses == t ]]; then
                printf 'error: %s still has CONNECT on database dreichor_%s, through a role it is a member of or a grant made by another role: remove it by hand\n' \
                    "$intruder" "$env" >&2
                status=1
                continue
            fi
        fi
        say "checked: $intruder has no CONNECT on database dreichor_$env"
    done
done

# login_check ROLE ENV FILE PASSWORD: the file's DATABASE_URL logs in, as the runtime would.
# A login proves the password only where the server asks for one. Read from the server's view
# of pg_hba.conf rather than probed with a wrong password, which would leave an authentication
# failure in the server log on every run. With trust, any password logs in as any role: said
# before the login checks, which then say that they prove nothing. A warning, not an error:
# a development host may trust on purpose; a production host must not.
trust_lines=$(q postgres "select coalesce(string_agg(line_number::text, ', ' order by line_number), '')
    from pg_hba_file_rules where type like 'host%' and auth_method = 'trust'")
if [[ -n $trust_lines ]]; then
    warn "pg_hba.conf has trust for TCP connections (line $trust_lines): any password logs in there, so the passwords protect nothing and the login checks below prove nothing; on a production host change those lines to scram-sha-256 and reload PostgreSQL"
fi
login_check() {
    if try_login "$1" "dreichor_$2" "$4"; then
        if [[ -n $trust_lines ]]; then
            say "unproven: the DATABASE_URL in $3 logs in as $1, but so would any password (trust, see above)"
        else
            say "checked: the DATABASE_URL in $3 logs in as $1"
        fi
    else
        printf 'error: the DATABASE_URL in %s does not log in as %s on localhost:%s (see above): check pg_hba.conf and listen_addresses; if the password is wrong, run this again with --rotate-passwords\n' \
            "$3" "$1" "$port" >&2
        status=1
    fi
}
for env in "${envs[@]}"; do
    if [[ -n ${pw_of[$env]+set} ]]; then
        login_check "dreichor_$env" "$env" "$(env_file "$env")" "${pw_of[$env]}"
    fi
    if [[ -n ${rt_pw_of[$env]+set} ]]; then
        login_check "dreichor_${env}_runtime" "$env" "$(runtime_file "$env")" "${rt_pw_of[$env]}"
    fi
done

say ""
if ((status == 0)); then
    say "Done."
else
    say "Finished with refusals or errors (see above)."
fi
if ((${#pw_of[@]} + ${#rt_pw_of[@]} > 0)); then
    say "Credentials (mode 0600, readable by $(id -un) only):"
    for env in "${envs[@]}"; do
        if [[ -n ${pw_of[$env]+set} ]]; then
            say "  $(env_file "$env"): DATABASE_URL=postgres://dreichor_$env:***@localhost:$port/dreichor_$env"
            say "      the owner, for the operator's migrate and hard-reset"
        fi
        if [[ -n ${rt_pw_of[$env]+set} ]]; then
            say "  $(runtime_file "$env"): DATABASE_URL=postgres://dreichor_${env}_runtime:***@localhost:$port/dreichor_$env"
            say "      the runtime role, for the runtime and the deploy agent's schema-check: it cannot change the schema"
        fi
    done
fi
# A host provisioned before the runtime roles existed: its services still load the owner's file.
for env in "${envs[@]}"; do
    if [[ ${runtime_action[$env]-} == create && -n ${owner_action[$env]-} && ${owner_action[$env]} != create ]]; then
        say ""
        say "!!! ACTION NEEDED for $env: the runtime role dreichor_${env}_runtime is new. Whatever runs the runtime"
        say "    or the deploy agent for $env still loads $(env_file "$env") (the owner, who may change the schema):"
        say "    make it load $(runtime_file "$env") instead (systemd: EnvironmentFile=$(runtime_file "$env")),"
        say "    restart it, and keep $(env_file "$env") for migrate and hard-reset only (docs/operations.md, section 1.4) !!!"
    fi
done
# quickstart.sh applies dev itself and says what comes next once it is done.
if ((${#pw_of[@]} > 0)) && [[ -z ${DREICHOR_QUICKSTART:-} ]]; then
    say "Next, apply the migrations (as the owner):"
    for env in "${envs[@]}"; do
        [[ -n ${pw_of[$env]+set} ]] || continue
        say "  set -a; . $(env_file "$env"); set +a; infra/db/migrate.sh --env $env"
    done
fi
exit "$status"
