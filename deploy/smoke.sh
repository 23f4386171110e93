#!/usr/bin/env bash
# The image, built and run: builds deploy/Dockerfile with podman as localhost/herald:smoke
# (and its test stand-ins as localhost/herald-smoke:smoke), brings up deploy/smoke/compose.yaml
# (Redis, two worker replicas, the producer API, the webhook receiver, the sandbox as
# Interakt), and checks what production relies on:
#
#   - every container runs as a non-root user on a read-only root filesystem;
#   - /readyz answers 200 on every Herald server; /metrics shows the sends, the webhooks and
#     the enqueues;
#   - jobs enqueued through the API are sent, and their delivery events (signed webhooks the
#     sandbox posts) are recorded: each job's state reads delivered or read;
#   - SIGTERM to both workers in the middle of a batch loses no job and sends none twice: the
#     workers exit 0, nothing stays pending, and restarted workers send the rest exactly once;
#   - every container stops on SIGTERM with exit status 0.
#
# Then it prints the image's size. Exit 0 only when all of that holds.
#
#     bash deploy/smoke.sh                       # binaries from target/release, else target/debug
#     BIN_DIR=target/debug bash deploy/smoke.sh  # what CI does beside the suites, once built
#     bash deploy/smoke.sh --prepare             # the tools and the base image only (CI, while
#                                                # the tests build: network, not CPU)
#
# Needs root or sudo the first time: it installs what is missing (Debian: podman, buildah,
# runc, debootstrap, podman-compose, uidmap, slirp4netns) and, when the base image
# localhost/debian:bookworm-min is missing, makes it with debootstrap (no registry needed;
# about 40 s). Variables: BIN_DIR (the binaries, any profile), HERALD_BASE_IMAGE (the
# Dockerfile's BASE_IMAGE; debian:bookworm-slim where a registry is reachable),
# HERALD_DEBIAN_MIRROR (for debootstrap; default: the mirror apt uses), HERALD_SMOKE_KEEP=1
# (leave the stack up after a failure, to look at it). See docs/deployment.md.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

PROJECT=herald-smoke
COMPOSE_FILE=deploy/smoke/compose.yaml
IMAGE=localhost/herald:smoke
SMOKE_IMAGE=localhost/herald-smoke:smoke
BASE_IMAGE=${HERALD_BASE_IMAGE:-localhost/debian:bookworm-min}
BINARIES=(herald-worker herald-webhook herald-producer herald-sandbox herald-dashboard)
TOKEN=smoke-api-token
# Containers, as podman-compose names them (project_service_n).
REDIS=${PROJECT}_redis_1
SANDBOX=${PROJECT}_sandbox_1
WORKERS=("${PROJECT}_worker_1" "${PROJECT}_worker_2")
WEBHOOK=${PROJECT}_webhook_1
API=${PROJECT}_api_1
ALL=("${WORKERS[@]}" "$API" "$WEBHOOK" "$SANDBOX" "$REDIS")

WORK=$(mktemp -d)
step() { printf '\n== %s [%d s]\n' "$*" $((SECONDS - started)); }
say() { printf '   %s\n' "$*"; }

dump_logs() {
    for c in "${ALL[@]}"; do
        if podman container exists "$c" 2>/dev/null; then
            echo "----- last lines of $c -----" >&2
            podman logs --tail 25 "$c" 2>&1 | cut -c1-400 >&2 || true
        fi
    done
}

fail() {
    echo "deploy/smoke.sh: FAILED: $*" >&2
    dump_logs
    exit 1
}

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

######################################################################## tools
step "tools"
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v podman-compose >/dev/null 2>&1 || missing+=(podman-compose)
command -v newuidmap >/dev/null 2>&1 || missing+=(uidmap)
command -v slirp4netns >/dev/null 2>&1 || missing+=(slirp4netns)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing (Debian packages): ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >"$WORK/apt.log" 2>&1 \
        || { cat "$WORK/apt.log" >&2; fail "apt-get install ${missing[*]}"; }
fi
say "$(podman --version), podman-compose $(dpkg-query -W -f '${Version}' podman-compose 2>/dev/null || echo '?')"

# runc: crun 1.8, Debian's default, refuses hybrid cgroups; limits no higher than the hard
# ones (a container cannot raise them without CAP_SYS_RESOURCE); no systemd needed. Our own
# file, for this script's podman calls only, unless the caller chose one.
if [ -z "${CONTAINERS_CONF:-}" ]; then
    nofile=$(ulimit -Hn)
    [ "$nofile" = unlimited ] && nofile=1048576
    nproc=$(ulimit -Hu)
    if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
    cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    export CONTAINERS_CONF=$WORK/containers.conf
fi

cleanup() {
    status=$?
    if [ "$status" -ne 0 ] && [ "${HERALD_SMOKE_KEEP:-}" = 1 ]; then
        echo "deploy/smoke.sh: the stack is left up (HERALD_SMOKE_KEEP=1); remove it with:" >&2
        echo "  podman-compose -p $PROJECT -f $COMPOSE_FILE down; podman network rm ${PROJECT}_default" >&2
    else
        podman-compose -p "$PROJECT" -f "$COMPOSE_FILE" down -t 1 >/dev/null 2>&1 || true
        podman network rm "${PROJECT}_default" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT

##################################################################### base image
if ! podman image exists "$BASE_IMAGE"; then
    case "$BASE_IMAGE" in
    localhost/*)
        step "base image $BASE_IMAGE (debootstrap)"
        mirror=${HERALD_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)}
        mirror=${mirror:-http://deb.debian.org/debian}
        rootfs=$WORK/rootfs
        $SUDO debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
            || { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap from $mirror"; }
        $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        $SUDO tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >"$WORK/import.log" 2>&1 \
            || { cat "$WORK/import.log" >&2; fail "podman import of the base"; }
        $SUDO rm -rf "$rootfs"
        say "made from $mirror"
        ;;
    *) say "$BASE_IMAGE is not here: podman build pulls it" ;;
    esac
fi

if [ "${1:-}" = --prepare ]; then
    step "prepared: tools and base image"
    exit 0
fi

##################################################################### binaries
step "binaries"
has_all() { for b in "${BINARIES[@]}"; do [ -x "$1/$b" ] || return 1; done; }
if [ -z "${BIN_DIR:-}" ]; then
    if has_all target/release; then
        BIN_DIR=target/release
    elif has_all target/debug; then
        BIN_DIR=target/debug
    else
        say "no binaries in target/release or target/debug: building the release ones"
        cargo build --release --locked -p herald-worker -p herald-webhook -p herald-producer \
            -p herald-sandbox -p herald-dashboard
        BIN_DIR=target/release
    fi
fi
has_all "$BIN_DIR" || fail "BIN_DIR=$BIN_DIR lacks one of ${BINARIES[*]} (cargo build -p ... first)"
# The build context: the binaries alone. Debug builds lose their line tables (about half
# their size); release binaries are copied as they are.
CONTEXT=$WORK/context
mkdir -p "$CONTEXT"
for b in "${BINARIES[@]}"; do
    if [ "$(basename "$BIN_DIR")" = debug ] && command -v strip >/dev/null 2>&1; then
        strip --strip-debug -o "$CONTEXT/$b" "$BIN_DIR/$b"
    else
        cp "$BIN_DIR/$b" "$CONTEXT/$b"
    fi
done
say "from $BIN_DIR (built $(date -u -r "$BIN_DIR/herald-worker" '+%Y-%m-%d %H:%M UTC')): $(du -sh "$CONTEXT" | cut -f1) in the context"

######################################################################### images
step "images"
build() {
    local target=$1 tag=$2
    podman build -f deploy/Dockerfile --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg BINARIES=host \
        --target "$target" -t "$tag" "$CONTEXT" >"$WORK/build-$target.log" 2>&1 \
        || { tail -40 "$WORK/build-$target.log" >&2; fail "podman build --target $target"; }
    say "$tag: $(podman image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1 / 1e6}')"
}
build runtime "$IMAGE"
build smoke "$SMOKE_IMAGE"

########################################################################## stack
step "stack up"
podman-compose -p "$PROJECT" -f "$COMPOSE_FILE" down -t 1 >/dev/null 2>&1 || true
HERALD_IMAGE=$IMAGE HERALD_SMOKE_IMAGE=$SMOKE_IMAGE \
    podman-compose -p "$PROJECT" -f "$COMPOSE_FILE" up -d >"$WORK/up.log" 2>&1 \
    || { cat "$WORK/up.log" >&2; fail "podman-compose up"; }

# Waits until "$@" succeeds, for at most $1 seconds; $2 says what for.
wait_for() {
    local limit=$1 what=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "waited ${limit}s for $what"
        sleep 0.5
    done
}
# GET from inside a container (nothing is published on the host): body on stdout, fails
# unless 2xx.
get() { podman exec "$1" curl -fsS --max-time 5 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$2"; }
# Retried: podman's network on these machines can hold a new connection to `redis` for a few
# seconds while containers stop or start (seen as "cannot reach Redis ... timed out" right
# after `podman stop` of the workers); the smoke test is about Herald, not that.
status_json() {
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        podman exec "$API" herald-worker status --json 2>/dev/null && return 0
        sleep 1
    done
    podman exec "$API" herald-worker status --json
}
# A field of `status --json` (total), e.g. `count sent`.
count() { status_json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

wait_for 60 "Redis to answer PING" sh -c "podman exec $REDIS redis-cli ping | grep -q PONG"
wait_for 60 "the sandbox" get "$SANDBOX" 8089/_sandbox/stats
for c in "${WORKERS[@]}"; do wait_for 60 "$c's /readyz" get "$c" 9090/readyz; done
wait_for 60 "the webhook receiver's /readyz" get "$WEBHOOK" 8081/readyz
wait_for 60 "the API's /readyz" get "$API" 8080/readyz
say "/readyz 200 on both workers, the webhook receiver and the API"

step "non-root, read-only"
for c in "${ALL[@]}"; do
    uid=$(podman exec "$c" id -u)
    [ "$uid" != 0 ] || fail "$c runs as root"
    [ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$c")" = true ] || fail "$c's root filesystem is writable"
    if podman exec "$c" sh -c 'echo x > /probe' 2>/dev/null; then fail "$c could write to /"; fi
done
say "every container: uid 10001, root filesystem read-only"

###################################################################### the work
# POSTs a batch of N OTPs (phones from FIRST) and B bookings; prints the job ids.
enqueue() {
    local body
    body=$(python3 -c '
import json, sys
n, first, b = (int(a) for a in sys.argv[1:])
# Each OTP to a prefix of its own (the OTP guard allows 30 an hour per prefix: the number
# without its last four digits), as the numbers of real customers spread.
items = [{"kind": "otp", "phone": "+9190%04d0000" % (first + i), "code": "%06d" % i, "valid_for": "10m"} for i in range(n)]
items += [{"kind": "booking", "phone": "+9191%08d" % (first + i), "booking_id": "B%d" % (first + i),
           "service": "Haircut", "date": "2030-11-24", "time": "10:30"} for i in range(b)]
print(json.dumps(items))' "$1" "$2" "$3")
    podman exec "$API" curl -fsS --max-time 10 -X POST -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' --data-binary "$body" http://127.0.0.1:8080/v1/jobs/batch \
        | python3 -c '
import json, sys
answer = json.load(sys.stdin)
assert answer["enqueued"] == len(answer["items"]) and answer["rejected"] == 0, answer
print(" ".join(item["job_id"] for item in answer["items"]))'
}
at_least() { [ "$(count "$1")" -ge "$2" ]; }

step "jobs through the API: sent, delivery events recorded"
ids=$(enqueue 20 0 5) || fail "POST /v1/jobs/batch"
FIRST=25
wait_for 120 "$FIRST jobs sent" at_least sent $FIRST
wait_for 120 "$FIRST delivery events recorded" at_least delivered $FIRST
# Each job's state through the API, in one exec.
states=$(podman exec "$API" sh -c "for id in $ids; do curl -fsS -H 'Authorization: Bearer $TOKEN' http://127.0.0.1:8080/v1/jobs/\$id; echo; done" \
    | python3 -c '
import json, sys
print(" ".join(sorted({json.loads(line)["state"] for line in sys.stdin if line.strip()})))')
case "$states" in
delivered | read | "delivered read") say "$FIRST jobs sent; each one's state through the API: $states" ;;
*) fail "job states through the API: $states (expected delivered or read)" ;;
esac

step "/metrics"
metric_sum() { # name, then the containers and ports to add it up over
    local name=$1
    shift
    local total=0 c port page
    while [ $# -gt 0 ]; do
        c=$1 port=$2
        shift 2
        page=$(get "$c" "$port/metrics") || fail "$c's /metrics"
        total=$(printf '%s\n' "$page" | awk -v n="$name" -v t="$total" '
            index($0, n) == 1 && (substr($0, length(n) + 1, 1) == " " || substr($0, length(n) + 1, 1) == "{") { t += $NF }
            END { print t }')
    done
    echo "$total"
}
sent_metric=$(metric_sum herald_jobs_sent_total "${WORKERS[0]}" 9090 "${WORKERS[1]}" 9090)
[ "$sent_metric" = "$FIRST" ] || fail "herald_jobs_sent_total over both workers: $sent_metric, expected $FIRST"
replicas=$(metric_sum herald_worker_replicas "${WORKERS[0]}" 9090)
[ "$replicas" = 2 ] || fail "herald_worker_replicas: $replicas, expected 2"
enqueued=$(metric_sum herald_api_jobs_enqueued_total "$API" 8080)
[ "$enqueued" = "$FIRST" ] || fail "herald_api_jobs_enqueued_total: $enqueued, expected $FIRST"
events=$(metric_sum herald_webhook_events_total "$WEBHOOK" 8081)
[ "$events" -ge "$FIRST" ] || fail "herald_webhook_events_total: $events, expected at least $FIRST"
forged=$(metric_sum herald_webhook_signature_failures_total "$WEBHOOK" 8081)
[ "$forged" = 0 ] || fail "herald_webhook_signature_failures_total: $forged (the sandbox signs with the receiver's secret)"
say "sent $sent_metric over 2 replicas (herald_worker_replicas $replicas), enqueued $enqueued, webhook events $events, signature failures 0"

step "SIGTERM to both workers in the middle of a batch"
SECOND=200
TOTAL=$((FIRST + SECOND))
enqueue $SECOND 1000 0 >/dev/null || fail "POST /v1/jobs/batch (second batch)"
wait_for 60 "the second batch to start going out" at_least sent $((FIRST + 20))
podman stop -t 40 "${WORKERS[@]}" >/dev/null
for c in "${WORKERS[@]}"; do
    code=$(podman inspect --format '{{.State.ExitCode}}' "$c")
    [ "$code" = 0 ] || fail "$c exited $code after SIGTERM"
done
read -r sent pending ready delayed dead <<<"$(status_json | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["sent"], s["pending"], s["ready"], s["delayed"], s["dead"])')"
accepted=$(get "$SANDBOX" 8089/_sandbox/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["accepted"])')
say "stopped (exit 0 each) with $sent sent, $ready back on the lanes, $pending pending, $delayed delayed, $dead dead; the sandbox accepted $accepted"
[ "$pending" = 0 ] || fail "$pending jobs still pending after both workers stopped (not handed back)"
[ "$delayed" = 0 ] && [ "$dead" = 0 ] || fail "$delayed delayed, $dead dead: expected none"
[ $((sent + ready)) = "$TOTAL" ] || fail "sent $sent + ready $ready != $TOTAL enqueued: jobs lost"
[ "$accepted" = "$sent" ] || fail "the sandbox accepted $accepted messages for $sent sent jobs"
[ "$ready" -gt 0 ] || fail "the batch was over before SIGTERM: nothing was tested (raise SECOND)"

podman start "${WORKERS[@]}" >/dev/null
wait_for 120 "all $TOTAL jobs sent after the restart" at_least sent $TOTAL
wait_for 120 "all $TOTAL delivery events" at_least delivered $TOTAL
accepted=$(get "$SANDBOX" 8089/_sandbox/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["accepted"])')
[ "$accepted" = "$TOTAL" ] || fail "the sandbox accepted $accepted messages for $TOTAL jobs (a job sent twice, or lost)"
say "restarted: all $TOTAL sent exactly once and delivered"

step "SIGTERM to every container"
for c in "${ALL[@]}"; do
    podman stop -t 40 "$c" >/dev/null
    code=$(podman inspect --format '{{.State.ExitCode}}' "$c")
    [ "$code" = 0 ] || fail "$c exited $code after SIGTERM"
done
say "workers, API, webhook receiver, sandbox and Redis each exited 0"

step "done"
size=$(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}')
echo "deploy/smoke.sh: OK in $((SECONDS - started)) s; image $IMAGE is $size (binaries from $BIN_DIR, base $BASE_IMAGE)"
