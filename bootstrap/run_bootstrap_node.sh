#!/usr/bin/env bash
# Runs the bootstrap node CLI from the built tree, wherever this script is linked from.
set -euo pipefail

SOURCE=${BASH_SOURCE[0]}
while [[ -L $SOURCE ]]; do
  DIR=$(cd -P "$(dirname "$SOURCE")" && pwd)
  SOURCE=$(readlink "$SOURCE")
  [[ $SOURCE == /* ]] || SOURCE=$DIR/$SOURCE
done
DIR=$(cd -P "$(dirname "$SOURCE")" && pwd)

CLI=$DIR/../dist/src/cli/run-bootstrap-node.js
if [[ ! -f $CLI ]]; then
  echo "$(basename "$0"): $CLI not found; build first with 'npm run build'" >&2
  exit 1
fi
exec node "$CLI" "$@"
