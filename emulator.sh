#!/usr/bin/env bash
# emulator.sh — the one way anything in pubsub-kit starts a local emulator.
#
# The script itself ships inside the package, shared/tools/emulator.sh, so that an
# installed pubsub-kit has it too (`pubsub-kit emulator ...` in any project). This
# wrapper keeps ./emulator.sh working in the checkout, the same commands with the
# same output, its state in .emulator/ beside it.
#
#   ./emulator.sh start  [pubsub|firestore|all]   (default: pubsub)
#   ./emulator.sh env                              (export lines for eval)
#   ./emulator.sh status [pubsub|firestore|all]   (default: pubsub)
#   ./emulator.sh stop   [pubsub|firestore|all]   (default: all)
#   ./emulator.sh logs   [pubsub|firestore]       (default: pubsub)
#
# Only `env` lines (and `start`, which prints the same) go to stdout, so
# `eval "$(./emulator.sh start)"` works; progress and errors go to stderr.

set -euo pipefail

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
export EMULATOR_STATE_DIR="${EMULATOR_STATE_DIR:-$here/.emulator}"
export EMULATOR_COMMAND=./emulator.sh
exec bash "$here/shared/tools/emulator.sh" "$@"
