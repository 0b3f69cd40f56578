#!/usr/bin/env bash
# fetch-rita.sh fills bench/peer/rita/ with the source of the peer,
# github.com/bruth/rita, at the commit this benchmark was written against.
#
#   ./fetch-rita.sh                      # git clone https://github.com/bruth/rita, check out the commit
#   ./fetch-rita.sh /path/to/rita.git    # a local clone or bare mirror of it (git archive of the commit)
#   ./fetch-rita.sh https://host/rita    # any other git URL to clone
#
# rita/ is git-ignored: the benchmark builds it through the
# `replace github.com/bruth/rita => ./rita` of go.mod, against this
# module's versions of nats.go and nats-server (not the old ones rita pins).
set -euo pipefail

COMMIT=${RITA_COMMIT:-1c52b4b}
SRC=${1:-https://github.com/bruth/rita}
HERE=$(cd "$(dirname "$0")" && pwd)
DEST=$HERE/rita

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -d "$SRC" ]; then
	# A local repository, bare or not.
	if git --git-dir="$SRC" rev-parse --git-dir >/dev/null 2>&1; then
		gitdir=$SRC
	else
		gitdir=$(git -C "$SRC" rev-parse --absolute-git-dir)
	fi
else
	git clone --quiet "$SRC" "$tmp/clone"
	gitdir=$tmp/clone/.git
fi

full=$(git --git-dir="$gitdir" rev-parse --verify "$COMMIT^{commit}")
mkdir -p "$tmp/out"
git --git-dir="$gitdir" archive "$full" | tar -x -C "$tmp/out"
rm -rf "$DEST"
mv "$tmp/out" "$DEST"
echo "$full" >"$DEST/COMMIT"
echo "rita $full -> $DEST"
