#!/usr/bin/env bash
# emulator.sh — the one way anything in pubsub-kit starts a local emulator.
#
# Tests, CI and `pubsub-kit dev` all go through this script so that ports,
# state files and shutdown behave the same everywhere. It ships inside the
# package (shared/tools/), so an installed pubsub-kit has it: users run it as
# `pubsub-kit emulator ...`, and the checkout's ./emulator.sh execs it.
#
#   ./emulator.sh start  [pubsub|firestore|all]   (default: pubsub)
#   ./emulator.sh env                              (export lines for eval)
#   ./emulator.sh status [pubsub|firestore|all]   (default: pubsub)
#   ./emulator.sh stop   [pubsub|firestore|all]   (default: all)
#   ./emulator.sh logs   [pubsub|firestore]       (default: pubsub)
#
# Only `env` lines (and `start`, which prints the same) go to stdout, so
# `eval "$(./emulator.sh start)"` works; progress and errors go to stderr.
#
# Its callers set EMULATOR_STATE_DIR (the project's .emulator/) and
# EMULATOR_COMMAND (how users invoke it, for usage and hints).

set -euo pipefail
# Without job control a background child is not a process-group leader, so
# setsid(1) calls setsid() in place instead of forking: $! is then both the
# emulator's pid and its process-group id, which is what `stop` kills.
set +m

# How users invoke this script, for usage and hints; its error prefix drops the "./".
readonly COMMAND="${EMULATOR_COMMAND:-./emulator.sh}"
readonly PREFIX="${COMMAND#./}"
# A separate state folder (EMULATOR_STATE_DIR) lets a second set of emulators run beside the
# first, on other ports, without either seeing the other's pid files. Never beside this file:
# installed, it lives in site-packages.
readonly STATE_DIR="${EMULATOR_STATE_DIR:-${PUBSUB_KIT_ROOT:-$PWD}/.emulator}"
readonly HOST=127.0.0.1
readonly DEFAULT_PROJECT=pubsub-kit-local
readonly START_TIMEOUT="${EMULATOR_START_TIMEOUT:-60}"  # seconds
readonly STOP_TIMEOUT=10                                # seconds before SIGKILL

usage() {
    cat <<EOF
Usage: $COMMAND COMMAND [TARGET]

Commands:
  start  [pubsub|firestore|all]  start in the background and wait until it
                                 answers (default: pubsub); prints env lines
  env                            print export lines for running emulators
  status [pubsub|firestore|all]  exit 0 if all requested are running and
                                 answering, else 1 (default: pubsub)
  stop   [pubsub|firestore|all]  stop the whole process group (default: all)
  logs   [pubsub|firestore]      print the emulator's log (default: pubsub)

Environment:
  PUBSUB_EMULATOR_PORT     (default 8085)   FIRESTORE_EMULATOR_PORT (default 8086)
  PUBSUB_PROJECT_ID        (default $DEFAULT_PROJECT)
  PUBSUB_EMULATOR_BIN      FIRESTORE_EMULATOR_BIN   (default: from gcloud's SDK)
  EMULATOR_START_TIMEOUT   seconds to wait for readiness (default 60)
  EMULATOR_STATE_DIR       pid, port and log files (default .emulator/ in the project)

Example: eval "\$($COMMAND start all)"
EOF
}

# Bad invocation: say what was expected, show usage, exit 2.
usage_error() {
    echo "$PREFIX: $*" >&2
    usage >&2
    exit 2
}

die() {
    echo "$PREFIX: $*" >&2
    exit 1
}

info() {
    echo "$PREFIX: $*" >&2
}

# --- configuration ----------------------------------------------------------

project_id() {
    local project="${PUBSUB_PROJECT_ID:-$DEFAULT_PROJECT}"
    # The id ends up in URLs and in lines the caller evals, so refuse anything
    # that could need quoting rather than trying to escape it.
    [[ "$project" =~ ^[A-Za-z0-9._:-]+$ ]] ||
        usage_error "PUBSUB_PROJECT_ID='$project' is not a valid project id (expected letters, digits, '.', '_', ':' or '-')"
    echo "$project"
}

port_var() {
    case "$1" in
        pubsub) echo PUBSUB_EMULATOR_PORT ;;
        firestore) echo FIRESTORE_EMULATOR_PORT ;;
    esac
}

wanted_port() {
    local var port
    var=$(port_var "$1")
    port="${!var:-}"
    [[ -n "$port" ]] || port=$([[ "$1" == pubsub ]] && echo 8085 || echo 8086)
    if ! [[ "$port" =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
        usage_error "$var='$port' is not a port number (expected 1-65535)"
    fi
    echo "$((10#$port))"
}

pid_file() { echo "$STATE_DIR/$1.pid"; }
port_file() { echo "$STATE_DIR/$1.port"; }
log_file() { echo "$STATE_DIR/$1.log"; }

# --- process state ----------------------------------------------------------

# True if the emulator's process group still has a process started with our
# --port flag. Matching the flag (not just "some process in that group")
# keeps a stale pid file from a previous boot from pointing `stop` at an
# unrelated program that happens to reuse the number.
group_alive() {
    local pgid="$1" port="$2"
    pgrep -g "$pgid" -f -- "--port=$port( |\$)" >/dev/null 2>&1
}

# Sets PID and PORT for a running emulator; removes stale state otherwise.
read_state() {
    local name="$1" pidf portf
    pidf=$(pid_file "$name")
    portf=$(port_file "$name")
    PID="" PORT=""
    [[ -f "$pidf" ]] || return 1
    # A concurrent `stop` may delete these between the test above and here.
    PID=$(cat "$pidf" 2>/dev/null) || true
    PORT=$(cat "$portf" 2>/dev/null) || true
    if [[ "$PID" =~ ^[0-9]+$ && "$PORT" =~ ^[0-9]+$ ]] && group_alive "$PID" "$PORT"; then
        return 0
    fi
    rm -f "$pidf" "$portf"
    PID="" PORT=""
    return 1
}

is_running() { read_state "$1"; }

# --- probes -----------------------------------------------------------------

# Exit 0 iff GET url returns HTTP 200. The proxy handler is emptied because a
# developer's http_proxy would otherwise swallow requests to 127.0.0.1.
http_ok() {
    python3 - "$1" <<'PY'
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(sys.argv[1], timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

# Exit 0 iff something accepts TCP connections on HOST:port.
port_in_use() {
    python3 - "$HOST" "$1" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

# A real API call, not just an open socket: both emulators accept TCP well
# before their handlers are ready.
#   pubsub:    ListTopics over the emulator's REST gateway -> 200 {}
#   firestore: ListDocuments of an (empty) collection      -> 200 {}
answers() {
    local name="$1" port="$2" project
    project=$(project_id)
    case "$name" in
        pubsub) http_ok "http://$HOST:$port/v1/projects/$project/topics" ;;
        firestore) http_ok "http://$HOST:$port/v1/projects/$project/databases/(default)/documents/emulator-readiness" ;;
    esac
}

# --- locating the emulators ---------------------------------------------------

SDK_ROOT=""
# Sets SDK_ROOT. `gcloud info` takes a second or two, so ask once per run.
find_sdk_root() {
    if [[ -z "$SDK_ROOT" ]]; then
        command -v gcloud >/dev/null 2>&1 ||
            die "gcloud is not on PATH: install the Google Cloud CLI (apt-get install google-cloud-cli), or set $1 to the emulator's start script."
        SDK_ROOT=$(gcloud info --format='value(installation.sdk_root)' 2>/dev/null) || true
        [[ -n "$SDK_ROOT" ]] ||
            die "could not read the SDK root from 'gcloud info'; set $1 to the emulator's start script."
    fi
}

# Sets BIN to the emulator's start script, or explains how to install it.
find_emulator_bin() {
    local name="$1" var rel hint
    case "$name" in
        pubsub)
            var=PUBSUB_EMULATOR_BIN
            rel=platform/pubsub-emulator/bin/cloud-pubsub-emulator
            hint="'gcloud components install pubsub-emulator' or, if gcloud came from apt, 'apt-get install google-cloud-cli-pubsub-emulator'"
            ;;
        firestore)
            var=FIRESTORE_EMULATOR_BIN
            rel=platform/cloud-firestore-emulator/cloud_firestore_emulator
            hint="'gcloud components install cloud-firestore-emulator' or, if gcloud came from apt, 'apt-get install google-cloud-cli-firestore-emulator'"
            ;;
    esac
    if [[ -n "${!var:-}" ]]; then
        BIN="${!var}"
        [[ -f "$BIN" && -x "$BIN" ]] ||
            die "$var=$BIN is not an executable file: point it at the $name emulator's start script, or unset it to use the one in gcloud's SDK."
    else
        find_sdk_root "$var"
        BIN="$SDK_ROOT/$rel"
        [[ -f "$BIN" && -x "$BIN" ]] ||
            die "the $name emulator is not installed (no $BIN): install it with $hint."
    fi
}

require_java() {
    command -v java >/dev/null 2>&1 ||
        die "java is not on PATH: the emulators need Java 17 or newer (apt-get install openjdk-17-jre-headless)."
    local version major
    version=$(java -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n 1)
    major=${version%%.*}
    [[ "$major" == 1 ]] && major=$(echo "$version" | cut -d. -f2)  # "1.8.0_x" style
    if [[ "$major" =~ ^[0-9]+$ ]] && ((major < 17)); then
        die "java on PATH is version $version: the emulators need Java 17 or newer (apt-get install openjdk-17-jre-headless)."
    fi
}

require_tools() {
    local tool
    for tool in python3 setsid flock pgrep; do
        command -v "$tool" >/dev/null 2>&1 ||
            die "$tool is not on PATH; it is needed to manage the emulators (python3: apt-get install python3; the others: apt-get install util-linux procps)."
    done
}

# --- commands -----------------------------------------------------------------

ensure_state_dir() {
    mkdir -p "$STATE_DIR"
    # Self-ignoring state folder: keeps pid/log files out of git even if the
    # repo's .gitignore does not list it.
    [[ -f "$STATE_DIR/.gitignore" ]] || echo '*' >"$STATE_DIR/.gitignore"
}

# Kill the emulator's whole process group: TERM, a bounded wait, then KILL.
# The group matters because the Firestore wrapper script does not exec java,
# and TERM to the wrapper alone leaves the JVM running and the port taken.
kill_group() {
    local pgid="$1" port="$2" deadline
    kill -TERM -- "-$pgid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while group_alive "$pgid" "$port" && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if group_alive "$pgid" "$port"; then
        info "process group $pgid ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL -- "-$pgid" 2>/dev/null || true
        deadline=$((SECONDS + 5))
        while group_alive "$pgid" "$port" && ((SECONDS < deadline)); do
            sleep 0.2
        done
        ! group_alive "$pgid" "$port" || die "could not stop process group $pgid"
    fi
    # The JVM is reparented to init once the wrapper exits; give init a moment
    # to reap it so callers checking `pgrep java` right after see nothing.
    deadline=$((SECONDS + 2))
    while kill -0 -- "-$pgid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.1
    done
}

# Wait until the emulator answers; fail fast if its processes are gone.
# Returns 1 on timeout, 3 if the process group died.
wait_ready() {
    local name="$1" pgid="$2" port="$3" deadline
    deadline=$((SECONDS + START_TIMEOUT))
    while ! answers "$name" "$port"; do
        group_alive "$pgid" "$port" || return 3
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

start_one() {
    local name="$1" port log args pid started status
    port=$(wanted_port "$name")
    log=$(log_file "$name")

    # Serialise concurrent starts (e.g. parallel test workers): the second
    # caller waits here, then finds the emulator running and ready.
    exec 9>"$STATE_DIR/$name.lock"
    flock -w $((START_TIMEOUT + STOP_TIMEOUT + 30)) 9 ||
        die "timed out waiting for another $PREFIX to finish with the $name emulator"

    if is_running "$name"; then
        [[ "$PORT" == "$port" ]] ||
            info "$name emulator is already running on port $PORT (not $port); stop it first to change ports"
        wait_ready "$name" "$PID" "$PORT" ||
            die "$name emulator (pid $PID) is running but does not answer on $HOST:$PORT; see $log, or run '$COMMAND stop $name' and start again"
        exec 9>&-
        return 0
    fi

    if port_in_use "$port"; then
        die "port $port on $HOST is already in use by another process (not our $name emulator): stop it or choose another port with $(port_var "$name")=..."
    fi

    require_java
    find_emulator_bin "$name"
    case "$name" in
        pubsub) args=(--host="$HOST" --port="$port") ;;
        # The wrapper passes its args straight to the Java main, which ignores
        # positional words; `start` mirrors what gcloud itself passes.
        firestore) args=(start --host="$HOST" --port="$port") ;;
    esac

    info "starting $name emulator on $HOST:$port (log: $log)"
    echo "$port" >"$(port_file "$name")"
    started=$SECONDS
    # setsid gives the emulator its own session and process group, so `stop`
    # can take down the wrapper and its JVM together. fd 9 (the lock) is
    # closed so the long-lived emulator does not hold the lock forever.
    setsid "$BIN" "${args[@]}" </dev/null >"$log" 2>&1 9>&- &
    pid=$!
    # Not a job of ours to report on: without this, bash prints "Killed"
    # noise if we have to SIGKILL it after a failed start.
    disown "$pid"
    echo "$pid" >"$(pid_file "$name")"

    status=0
    wait_ready "$name" "$pid" "$port" || status=$?
    case "$status" in
        0)
            info "$name emulator is ready on $HOST:$port (pid $pid, answered after $((SECONDS - started))s)"
            ;;
        3)
            rm -f "$(pid_file "$name")" "$(port_file "$name")"
            {
                echo "$PREFIX: the $name emulator exited during startup; last lines of $log:"
                tail -n 20 "$log" | sed 's/^/    /'
            } >&2
            exit 1
            ;;
        *)
            kill_group "$pid" "$port"
            rm -f "$(pid_file "$name")" "$(port_file "$name")"
            die "the $name emulator did not answer on $HOST:$port within ${START_TIMEOUT}s, so it was stopped; see $log"
            ;;
    esac
    exec 9>&-
}

stop_one() {
    local name="$1"
    if is_running "$name"; then
        exec 9>"$STATE_DIR/$name.lock"
        flock -w $((START_TIMEOUT + STOP_TIMEOUT + 30)) 9 || true
        # Re-read under the lock: another caller may have stopped it meanwhile.
        if is_running "$name"; then
            kill_group "$PID" "$PORT"
            rm -f "$(pid_file "$name")" "$(port_file "$name")"
            info "stopped $name emulator (process group $PID)"
        fi
        exec 9>&-
    fi
}

cmd_env() {
    local project any=0
    project=$(project_id)
    if is_running pubsub; then
        echo "export PUBSUB_EMULATOR_HOST=$HOST:$PORT"
        echo "export PUBSUB_PROJECT_ID=$project"
        any=1
    fi
    if is_running firestore; then
        echo "export FIRESTORE_EMULATOR_HOST=$HOST:$PORT"
        echo "export GOOGLE_CLOUD_PROJECT=$project"
        any=1
    fi
    ((any)) || echo "# no emulator is running ($COMMAND start [pubsub|firestore|all])" >&2
}

cmd_status() {
    local name rc=0
    for name in "$@"; do
        if ! is_running "$name"; then
            echo "$name: not running"
            rc=1
        elif answers "$name" "$PORT"; then
            echo "$name: running on $HOST:$PORT (pid $PID)"
        else
            echo "$name: process $PID is up but not answering on $HOST:$PORT (starting, or hung; see $(log_file "$name"))"
            rc=1
        fi
    done
    return "$rc"
}

cmd_logs() {
    local log
    log=$(log_file "$1")
    [[ -f "$log" ]] || die "no log for the $1 emulator yet ($log); start it with '$COMMAND start $1'"
    cat -- "$log"
}

# Expand a target argument into emulator names, rejecting anything else.
targets() {
    local command="$1" target="$2" allow_all="$3"
    case "$target" in
        pubsub | firestore) echo "$target" ;;
        all)
            [[ "$allow_all" == yes ]] || usage_error "'$command' takes pubsub or firestore, not '$target'"
            echo "pubsub firestore"
            ;;
        *)
            if [[ "$allow_all" == yes ]]; then
                usage_error "unknown target '$target' for '$command' (expected pubsub, firestore or all)"
            else
                usage_error "unknown target '$target' for '$command' (expected pubsub or firestore)"
            fi
            ;;
    esac
}

main() {
    (($# >= 1)) || usage_error "missing command (expected start, env, status, stop or logs)"
    local command="$1"
    shift
    case "$command" in
        -h | --help | help)
            usage
            return 0
            ;;
        env)
            (($# == 0)) || usage_error "'env' takes no arguments, got: $*"
            cmd_env
            return 0
            ;;
        start | status | stop | logs) ;;
        *) usage_error "unknown command '$command' (expected start, env, status, stop or logs)" ;;
    esac
    (($# <= 1)) || usage_error "'$command' takes at most one target, got: $*"

    local default=pubsub allow_all=yes expanded names name
    [[ "$command" == stop ]] && default=all
    [[ "$command" == logs ]] && allow_all=no
    expanded=$(targets "$command" "${1:-$default}" "$allow_all")
    read -ra names <<<"$expanded"

    case "$command" in
        start)
            require_tools
            project_id >/dev/null  # validate before launching anything
            [[ "$START_TIMEOUT" =~ ^[0-9]+$ ]] ||
                usage_error "EMULATOR_START_TIMEOUT='$START_TIMEOUT' is not a number of seconds"
            ensure_state_dir
            for name in "${names[@]}"; do start_one "$name"; done
            cmd_env
            ;;
        status)
            project_id >/dev/null
            cmd_status "${names[@]}"
            ;;
        stop)
            [[ -d "$STATE_DIR" ]] || return 0
            for name in "${names[@]}"; do stop_one "$name"; done
            ;;
        logs)
            cmd_logs "${names[0]}"
            ;;
    esac
}

main "$@"
