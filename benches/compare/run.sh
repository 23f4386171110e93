#!/usr/bin/env bash
# Herald and BullMQ side by side, on the same jobs, the same redis-server and the same HTTP
# endpoint, one after the other. Not part of `cargo test` or CI: run it by hand.
#
#   bash benches/compare/run.sh            # 20,000 OTP jobs, concurrency 50, 5 rounds
#   JOBS=5000 ROUNDS=1 bash benches/compare/run.sh
#   SIDES=herald COMMANDSTATS=1 bash benches/compare/run.sh   # Herald only, with Redis's
#                                          # per-command counts and CPU per job after each round
#   HERALD_BIN=/path/to/dir bash benches/compare/run.sh   # Herald's binaries from there, unbuilt
#                                          # (an earlier release's, to compare)
#
# What it starts (and stops): a redis-server on a free port without persistence, nginx
# (Debian's package; installed when missing) answering every POST with Interakt's 200 body,
# then for each round: BullMQ 6.7 (npm, pinned in bullmq/package-lock.json) enqueues the jobs
# with addBulk and a worker with concurrency 50 posts each one; Herald enqueues the same jobs
# with `herald-producer bulk` and one `herald-worker run --concurrency 50` sends them; then
# the same jobs go through Herald's HTTP API, `POST /v1/jobs/batch` in batches of 1,000 on one
# connection (the server started once, before the rounds).
# Figures per side: enqueue jobs/s (the CLI's from its process's start; BullMQ's from its
# first addBulk, its process already started and connected); the API's batches' jobs/s; end to end jobs/s from the worker process's start to the
# last job sent; the worker's peak RSS; Redis commands per job (INFO commandstats over the
# worker's run); Redis round trips per job (`total_reads_processed`: a pipeline Redis reads
# at once counts one); Redis bytes per queued job (used_memory before and after the enqueue);
# Redis CPU per sent job: the server's CPU time (INFO cpu, user + system) over the worker's
# run, and the part of it inside scripts (INFO commandstats: EVALSHA's and EVAL's usec; the
# commands a script calls are counted inside it, and again under their own names).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
JOBS="${JOBS:-20000}"
ROUNDS="${ROUNDS:-5}"
CONCURRENCY="${CONCURRENCY:-50}"
SIDES="${SIDES:-bullmq herald}"
COMMANDSTATS="${COMMANDSTATS:-}"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need redis-server || ! need node; then
    pkgs=()
    need nginx || pkgs+=(nginx-light)
    need redis-server || pkgs+=(redis-server)
    need node || pkgs+=(nodejs npm)
    echo "installing ${pkgs[*]} (Debian packages)" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

echo "building Herald (release) and installing BullMQ (npm ci)..." >&2
[ -n "${HERALD_BIN:-}" ] || (cd "$root" && cargo build --release --locked -q -p herald-producer -p herald-worker)
bin="${HERALD_BIN:-${CARGO_TARGET_DIR:-$root/target}/release}"
(cd "$here/bullmq" && npm ci --silent --no-audit --no-fund >/dev/null 2>&1)

work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# redis-server: one for both sides, flushed between runs.
rport="$(free_port)"
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --dir "$work" >"$work/redis.log" 2>&1 &
rpid=$!
pids+=($rpid)
R() { redis-cli -p "$rport" "$@"; }
until R ping >/dev/null 2>&1; do sleep 0.05; done
export REDIS_URL="redis://127.0.0.1:$rport"

# nginx: Interakt's answer to a send, for every POST.
hport="$(free_port)"
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx;
    proxy_temp_path $work/nginx;
    fastcgi_temp_path $work/nginx;
    uwsgi_temp_path $work/nginx;
    scgi_temp_path $work/nginx;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$hport;
        location / {
            client_max_body_size 1m;
            default_type application/json;
            return 200 '{"result":true,"message":"Message queued successfully","id":"6f1c2a9e-3b7d-4c1e-9a55-0d2f8e7b4c31"}';
        }
    }
}
EOF
"$NGINX" -c "$work/nginx/nginx.conf" -p "$work/nginx" &
npid=$!
pids+=($npid)
until curl -fsS -o /dev/null -X POST "http://127.0.0.1:$hport/v1/public/rcs/message/" 2>/dev/null; do sleep 0.05; done
npid="$(pgrep -P "$npid" | head -1)" # the worker process, which answers

# Herald's HTTP API (`herald-producer serve`), for its batch endpoint: up at once, before the
# rounds (a server's start is not an enqueue's).
aport="$(free_port)"
HERALD_OTP_GUARD=off HERALD_API_TOKENS=bench RUST_LOG=warn "$bin/herald-producer" serve \
    --listen "127.0.0.1:$aport" >"$work/api.log" 2>&1 &
pids+=($!)
until curl -fsS -o /dev/null "http://127.0.0.1:$aport/healthz" 2>/dev/null; do sleep 0.05; done

# The same jobs for both: OTPs to distinct numbers, valid for 10 minutes.
awk -v n="$JOBS" 'BEGIN { for (i = 0; i < n; i++) printf "{\"kind\":\"otp\",\"phone\":\"+91%d\",\"code\":\"%06d\",\"valid_for\":\"10m\"}\n", 9000000000 + i, 100000 + i % 900000 }' >"$work/jobs.jsonl"
awk -v n="$JOBS" 'BEGIN { for (i = 0; i < n; i++) printf "{\"kind\":\"otp\",\"phone\":\"+91%d\",\"code\":\"%06d\",\"valid_for\":\"10m\",\"idempotency_key\":\"otp:%d:1\"}\n", 9000000000 + i, 100000 + i % 900000, i }' >"$work/keyed.jsonl"

# The jobs as the API's batches of 1,000 (`POST /v1/jobs/batch`, a JSON array each).
python3 - "$work/jobs.jsonl" "$work" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
for n, i in enumerate(range(0, len(lines), 1000)):
    with open(f"{sys.argv[2]}/batch-{n:05}.json", "w") as f:
        f.write("[" + ",".join(lines[i:i + 1000]) + "]")
PY
# Posts every batch, one after the other on one connection (as addBulk's chunks go), and
# prints jobs per second from the first request to the last answer.
api_enqueue_rate() {
    python3 - "$aport" "$work" "$JOBS" <<'PY'
import glob, http.client, json, sys, time
port, work, jobs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
bodies = [open(f, "rb").read() for f in sorted(glob.glob(f"{work}/batch-*.json"))]
conn = http.client.HTTPConnection("127.0.0.1", port)
headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
start = time.perf_counter()
for body in bodies:
    conn.request("POST", "/v1/jobs/batch", body, headers)
    answer = conn.getresponse()
    data = answer.read()
    if answer.status >= 300:
        sys.exit(f"POST /v1/jobs/batch answered {answer.status}: {data[:300]!r}")
print(round(jobs / (time.perf_counter() - start)))
PY
}

used_memory() { R info memory | awk -F: '/^used_memory:/ { print $2 + 0 }'; }
# Redis commands executed since the last CONFIG RESETSTAT, less the given count of our own polls.
commands() { R info commandstats | awk -F'[=,:]' -v own="$1" '/^cmdstat_/ { n += $3 } END { print n - own }'; }
# Round trips since the last CONFIG RESETSTAT: the reads Redis did from its clients (a
# pipeline read at once counts one), less the given count of our own.
round_trips() { R info stats | awk -F: -v own="$1" '/^total_reads_processed:/ { print $2 - own }'; }
# Redis's CPU time (user + system, in microseconds) since it started.
redis_cpu_us() { R info cpu | awk -F: '/^used_cpu_(sys|user):/ { t += $2 } END { printf "%.0f", t * 1e6 }'; }
# Microseconds spent in scripts (EVALSHA, EVAL) since the last CONFIG RESETSTAT.
script_us() { R info commandstats | awk -F'[=,:]' '/^cmdstat_(evalsha|eval):/ { t += $5 } END { print t + 0 }'; }
# Each command's calls and Redis CPU per job, heaviest first (COMMANDSTATS=1).
command_table() {
    R info commandstats | awk -F'[=,:]' -v jobs="$JOBS" '/^cmdstat_/ {
        printf "  %-28s %8.2f calls/job %8.2f us/job\n", substr($1, 9), $3 / jobs, $5 / jobs }' | sort -k4 -rn >&2
    R info cpu | awk -F: -v jobs="$JOBS" '/^used_cpu_(sys|user):/ { t += $2 } END { printf "  redis cpu since start: %.1f s\n", t }' >&2
}
# CPU time (user + system, in clock ticks) a process has used, and that since a mark, per job.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
cpu_us_per_job() { python3 -c "import os; print(round(($(cpu_ticks "$1") - $2) * 1e6 / os.sysconf('SC_CLK_TCK') / $JOBS))"; }
peak_rss_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
now() { date +%s.%N; }

bullmq_round() {
    R flushall >/dev/null
    local before after out
    before="$(used_memory)"
    out="$(cd "$here/bullmq" && JOBS="$JOBS" node enqueue.mjs)"
    after="$(used_memory)"
    bq_enqueue_rate="$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["enqueued"]/d["seconds"]))')"
    bq_bytes=$(( (after - before) / JOBS ))
    R config resetstat >/dev/null
    local cpu0
    cpu0="$(redis_cpu_us)"
    out="$(cd "$here/bullmq" && JOBS="$JOBS" CONCURRENCY="$CONCURRENCY" \
        TARGET_URL="http://127.0.0.1:$hport/v1/public/rcs/message/" node worker.mjs)"
    bq_cpu=$(( ($(redis_cpu_us) - cpu0) / JOBS ))
    bq_script=$(( $(script_us) / JOBS ))
    bq_cmds="$(commands 5)"
    bq_trips="$(round_trips 6)"
    read -r bq_rate bq_rss < <(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["completed"]/d["seconds"]), d["max_rss_kib"])')
}

herald_round() {
    R flushall >/dev/null
    # The jobs are 20,000 OTPs to a handful of numbers: the OTP guard (docs/otp-guard.md) would
    # refuse all but the first few, as it should in production. BullMQ has no such check, so
    # the comparison runs without it (its cost is measured by its own benchmark).
    export HERALD_OTP_GUARD=off
    local before after t0 t1 pid polls sent
    # Bytes per queued job with an idempotency key (the production shape), then the same jobs
    # without keys for the run (BullMQ's jobs carry none either).
    before="$(used_memory)"
    "$bin/herald-producer" bulk "$work/keyed.jsonl" --json >/dev/null 2>&1
    after="$(used_memory)"
    he_bytes_keyed=$(( (after - before) / JOBS ))
    R flushall >/dev/null
    before="$(used_memory)"
    t0="$(now)"
    "$bin/herald-producer" bulk "$work/jobs.jsonl" --json >/dev/null 2>&1
    t1="$(now)"
    after="$(used_memory)"
    he_bytes=$(( (after - before) / JOBS ))
    he_enqueue_rate="$(python3 -c "print(round($JOBS/($t1-$t0)))")"
    R config resetstat >/dev/null
    local cpu0
    cpu0="$(redis_cpu_us)"
    redis_cpu0="$(cpu_ticks "$rpid")"
    nginx_cpu0="$(cpu_ticks "$npid")"
    he_cpu0=0
    t0="$(now)"
    INTERAKT_API_KEY=bench INTERAKT_BASE_URL="http://127.0.0.1:$hport/v1/public" \
        RUST_LOG=warn "$bin/herald-worker" run --rate 100000000/1s --concurrency "$CONCURRENCY" \
        >"$work/worker.log" 2>&1 &
    pid=$!
    pids+=($pid)
    # Done when the stats say every job was sent. One redis-cli asks every 10 ms: a new
    # redis-cli for each look (as this script once did) forks a hundred processes a second,
    # whose CPU the run being measured loses (BullMQ's worker counts its own completions).
    polls=0
    exec {poll}< <(redis-cli -p "$rport" -r -1 -i 0.01 hget '{herald}:stats' sent:otp)
    poller=$!
    while read -r sent <&"$poll"; do
        polls=$((polls + 1))
        [ "${sent:-0}" -ge "$JOBS" ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$work/worker.log" >&2; exit 1; }
    done
    kill "$poller" 2>/dev/null || true
    exec {poll}<&-
    t1="$(now)"
    he_cpu=$(( ($(redis_cpu_us) - cpu0) / JOBS ))
    he_script=$(( $(script_us) / JOBS ))
    he_rss="$(peak_rss_kib "$pid")"
    he_cmds="$(commands $((polls + 3)))"
    he_trips="$(round_trips $((polls + 6)))"
    if [ -n "$COMMANDSTATS" ]; then
        command_table
        awk '/^(Rss|Anonymous|Pss_File):/ { printf "  worker at the end: %s %.1f MiB\n", $1, $2 / 1024 }' "/proc/$pid/smaps_rollup" >&2
        echo "  cpu per job (us): worker $(cpu_us_per_job "$pid" "$he_cpu0"), redis $(cpu_us_per_job "$rpid" "$redis_cpu0"), nginx $(cpu_us_per_job "$npid" "$nginx_cpu0")" >&2
    fi
    kill -TERM "$pid"
    wait "$pid" || true
    he_rate="$(python3 -c "print(round($JOBS/($t1-$t0)))")"
    # The same jobs through the API's batch endpoint.
    R flushall >/dev/null
    he_api_rate="$(api_enqueue_rate)"
}

echo "jobs $JOBS, concurrency $CONCURRENCY, $(nproc) cores; redis $(redis-server --version | awk '{print $3}'), nginx $("$NGINX" -v 2>&1 | awk -F/ '{print $2}'), node $(node --version), bullmq $(node -p "require('$here/bullmq/node_modules/bullmq/package.json').version")"
printf '%-6s %-7s %14s %14s %14s %9s %13s %14s %14s %14s %14s\n' round side "end to end/s" "enqueue/s" "api batch/s" "RSS MiB" "cmds per job" "trips per job" "redis us/job" "scripts us/job" "bytes per job"
has() { [[ " $SIDES " == *" $1 "* ]]; }
ratios=()
enqueue_ratios=()
api_ratios=()
for round in $(seq 1 "$ROUNDS"); do
    if has bullmq; then
        bullmq_round
        printf '%-6s %-7s %14s %14s %14s %9.1f %13.2f %14.2f %14s %14s %14s\n' "$round" bullmq "$bq_rate" "$bq_enqueue_rate" - \
            "$(echo "$bq_rss / 1024" | bc -l)" "$(echo "$bq_cmds / $JOBS" | bc -l)" "$(echo "$bq_trips / $JOBS" | bc -l)" \
            "$bq_cpu" "$bq_script" "$bq_bytes"
    fi
    if has herald; then
        herald_round
        printf '%-6s %-7s %14s %14s %14s %9.1f %13.2f %14.2f %14s %14s %14s\n' "$round" herald "$he_rate" "$he_enqueue_rate" "$he_api_rate" \
            "$(echo "$he_rss / 1024" | bc -l)" "$(echo "$he_cmds / $JOBS" | bc -l)" "$(echo "$he_trips / $JOBS" | bc -l)" \
            "$he_cpu" "$he_script" "$he_bytes (keyed $he_bytes_keyed)"
    fi
    if has bullmq && has herald; then
        printf '%-6s ratio   %14.2f %14.2f %14.2f\n' "$round" "$(echo "$he_rate / $bq_rate" | bc -l)" \
            "$(echo "$he_enqueue_rate / $bq_enqueue_rate" | bc -l)" "$(echo "$he_api_rate / $bq_enqueue_rate" | bc -l)"
        ratios+=("$(echo "$he_rate / $bq_rate" | bc -l)")
        enqueue_ratios+=("$(echo "$he_enqueue_rate / $bq_enqueue_rate" | bc -l)")
        api_ratios+=("$(echo "$he_api_rate / $bq_enqueue_rate" | bc -l)")
    fi
done
# The machine's speed drifts between rounds (each side's rounds are seconds apart), so the
# summary is the median of the rounds' ratios.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
if [ "${#ratios[@]}" -gt 0 ]; then
    printf '%-6s ratio   %14.2f %14.2f %14.2f   (median of %d rounds; lowest end to end %.2f, enqueue %.2f, api %.2f)\n' \
        median "$(median "${ratios[@]}")" "$(median "${enqueue_ratios[@]}")" "$(median "${api_ratios[@]}")" "${#ratios[@]}" \
        "$(printf '%s\n' "${ratios[@]}" | sort -g | head -1)" "$(printf '%s\n' "${enqueue_ratios[@]}" | sort -g | head -1)" \
        "$(printf '%s\n' "${api_ratios[@]}" | sort -g | head -1)"
fi
