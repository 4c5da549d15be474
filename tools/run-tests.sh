#!/usr/bin/env bash
# The test command behind `npm test`. Files that build network namespaces, bridges or TAP
# devices (each mentions "netns") share the host's devices and have time-sensitive labs: they run
# one at a time, after the others, which run two at a time (the in-memory ones in virtual time).
# Arguments go to both tap runs (e.g. --reporter=tap). Exit status: non-zero if either run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
mapfile -t serial < <(grep -l netns test/*.test.ts)
mapfile -t parallel < <(grep -L netns test/*.test.ts)
tap --jobs=2 "$@" "${parallel[@]}"
first=$?
tap --jobs=1 "$@" "${serial[@]}"
second=$?
exit $(( first != 0 ? first : second ))
