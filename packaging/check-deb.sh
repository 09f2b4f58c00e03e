#!/usr/bin/env bash
# Builds the Debian package and checks it, without touching the machine's own packages:
#
#   packaging/check-deb.sh            build, compare the contents with packaging/deb-contents.txt,
#                                     install into a throwaway root (dpkg --root), try it, remove it
#   packaging/check-deb.sh --update   rewrite packaging/deb-contents.txt from the package
#
# Needs cargo-deb (`cargo install cargo-deb --locked`) and a release build of the three tools
# (`cargo build --release --locked -p migrate -p schema-check -p hard-reset`). Prints the
# package's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

expected=packaging/deb-contents.txt
deb=$(cargo deb -p migrate --no-build --locked --quiet)
deb=${deb##*$'\n'}
[[ -f $deb ]] || { echo "check-deb.sh: cargo deb printed no package path" >&2; exit 1; }

# Mode and path of every entry; sizes and dates change with every build.
contents=$(dpkg-deb -c "$deb" | awk '{ print $1, $6 }' | sort -k2)
if [[ ${1:-} == --update ]]; then
    printf '%s\n' "$contents" >"$expected"
    echo "check-deb.sh: wrote $expected"
    exit 0
fi
if ! diff -u "$expected" <(printf '%s\n' "$contents"); then
    echo "check-deb.sh: the package's contents differ from $expected (above);" \
         "if the change is intended, run packaging/check-deb.sh --update and commit" >&2
    exit 1
fi

# Installed for real, with dpkg, into a root of its own: the host's dpkg database and
# /usr stay untouched. libc6 is not in that root, hence --force-depends.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/status"
dpkg --root="$root" --log=/dev/null --force-depends -i "$deb" >/dev/null 2>&1 \
    || { echo "check-deb.sh: dpkg -i into $root failed" >&2; exit 1; }
for tool in migrate schema-check hard-reset; do
    "$root/usr/bin/$tool" --version >/dev/null
    man -l "$root/usr/share/man/man1/$tool.1.gz" >/dev/null 2>&1 \
        || { echo "check-deb.sh: man -l cannot render $tool.1.gz" >&2; exit 1; }
    bash -c 'source "$1"' _ "$root/usr/share/bash-completion/completions/$tool" \
        || { echo "check-deb.sh: the bash completion of $tool does not load" >&2; exit 1; }
done
# Outside a checkout the packaged migrate.sh runs /usr/bin/migrate (here: the one in $root).
PATH="$root/usr/bin:$PATH" "$root/usr/share/dreichor/migrate.sh" --version >/dev/null
dpkg --root="$root" --log=/dev/null -r dreichor-db-tools >/dev/null 2>&1
left=$(find "$root" -mindepth 1 -not -path "$root/var*" -type f)
[[ -z $left ]] || { echo "check-deb.sh: dpkg -r left files behind: $left" >&2; exit 1; }
echo "check-deb.sh: contents as expected; installed, tried and removed in a throwaway root"
echo "$deb"
