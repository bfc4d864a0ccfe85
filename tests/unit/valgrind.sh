#!/bin/sh
# Runs one Criterion test binary under valgrind, for
#   meson test -C build --suite unit --wrapper="$PWD/tests/unit/valgrind.sh"
#
# A plain `valgrind --error-exitcode=1 ./test_x` checks only Criterion's
# runner: every test runs in a worker process that the runner re-executes
# ("boxfort-worker"), which valgrind follows only with --trace-children=yes,
# and whose exit status Criterion ignores once the test has reported. So each
# process logs to a file of its own and this script fails when any log shows
# a memory error or a leak, after copying that log to standard error (the TAP
# report on standard output is left alone).
set -u
logdir=$(mktemp -d "${TMPDIR:-/tmp}/leakdiff-valgrind.XXXXXX") || exit 99
valgrind --trace-children=yes --log-file="$logdir/%p.log" \
	--error-exitcode=1 --leak-check=full \
	--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
	"$@"
status=$?
bad=0
for f in "$logdir"/*.log; do
	[ -e "$f" ] || continue
	if ! grep -q 'ERROR SUMMARY: 0 errors' "$f"; then
		cat "$f" >&2
		bad=1
	fi
done
rm -rf "$logdir"
if [ "$bad" -ne 0 ]; then
	echo "valgrind found errors in a test process (log above)" >&2
	exit 1
fi
exit "$status"
