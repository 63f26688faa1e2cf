#!/usr/bin/env bash
# kafka-compare.sh: produce/consume/end-to-end-latency benchmark of our broker against the
# Kafka-API peer Tansu 0.6 (in-memory storage), driven by `kafkabench` (librdkafka). Prints the
# machine's physical limits, a table per workload and the targets; saves everything under
# bench/results/.
#
# Usage: bench/kafka-compare.sh [--ours-only] [--no-build] [-h]
# See bench/README.md for what it measures and the environment knobs.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/kafka-compare.sh [--ours-only] [--no-build] [-h|--help]

  --ours-only  do not start Tansu even if it is installed
  --no-build   do not run cargo; use the binaries already in the target dir
  -h, --help   this text

Environment (defaults in brackets):
  SIZES ["100 1024"]         record value sizes in bytes
  PARTITIONS ["1 6"]         partition counts
  ACKS ["1 all"]             producer acks settings
  DURATION [5]               seconds of producing per produce run (then flush)
  MAX_MB [1000]              ...or stop enqueueing after this many MB (10^6 B) of values
  CONSUME_MAX_SECS [20]      cap on one read-back run
  LAT_RATE [1000]            records/s of the end-to-end latency runs
  LAT_SECS [5]               measured seconds of each latency run (after 1 s warm-up)
  LAT_LINGER_MS [0]          producer linger.ms for latency runs ("" = librdkafka default, 5)
  PHYS_TCP_SECS [3]          seconds of the loopback TCP probe
  PHYS_WRITE_MB [2000]       MB written (then fdatasync) by the sequential-write probe
  PERF [0]                   1 = `perf record -g` our broker during its first produce run
  BENCH_TMPDIR [$TMPDIR or /tmp]  where our broker keeps its log (on disk)
  KEEP_TMP [0]               1 = keep the data directory and the broker logs
  TANSU_BIN [/work/tools/tansu/bin/tansu]  the peer; skipped with a message if absent
  BROKER_BIN, KAFKABENCH     override our binaries (default: target/release/{broker,kafkabench})
EOF
}

OURS_ONLY=0
BUILD=1
while (($#)); do
    case "$1" in
        --ours-only) OURS_ONLY=1 ;;
        --no-build) BUILD=0 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BROKER_BIN=${BROKER_BIN:-$TARGET_DIR/release/broker}
KAFKABENCH=${KAFKABENCH:-$TARGET_DIR/release/kafkabench}
TANSU_BIN=${TANSU_BIN:-/work/tools/tansu/bin/tansu}
SIZES=${SIZES:-100 1024}
PARTITIONS=${PARTITIONS:-1 6}
ACKS=${ACKS:-1 all}
DURATION=${DURATION:-5}
MAX_MB=${MAX_MB:-1000}
CONSUME_MAX_SECS=${CONSUME_MAX_SECS:-20}
LAT_RATE=${LAT_RATE:-1000}
LAT_SECS=${LAT_SECS:-5}
LAT_LINGER_MS=${LAT_LINGER_MS-0}
PHYS_TCP_SECS=${PHYS_TCP_SECS:-3}
PHYS_WRITE_MB=${PHYS_WRITE_MB:-2000}
PERF=${PERF:-0}
START_TIMEOUT=${START_TIMEOUT:-60}
BASE_TMP=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
KEEP_TMP=${KEEP_TMP:-0}

RESULTS_DIR=$REPO/bench/results
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS_DIR"
REPORT=$RESULTS_DIR/kafka-compare-$STAMP.txt
JSONL=$RESULTS_DIR/kafka-compare-$STAMP.jsonl
SUMMARY=$RESULTS_DIR/kafka-compare-$STAMP.json
: >"$REPORT"
: >"$JSONL"

say() { printf '%s\n' "$*" | tee -a "$REPORT"; }
die() { echo "kafka-compare: $*" >&2; exit 1; }

command -v jq >/dev/null || die "'jq' not found (apt-get install jq)"

# ---------------------------------------------------------------- build
if ((BUILD)); then
    (cd "$REPO" && cargo build --release -p bench -p broker) >&2
fi
[[ -x "$KAFKABENCH" ]] || die "no kafkabench binary at $KAFKABENCH"
[[ -x "$BROKER_BIN" ]] || die "no broker binary at $BROKER_BIN"

PEER=1
PEER_NOTE=
if ((OURS_ONLY)); then
    PEER=0
    PEER_NOTE="Tansu skipped (--ours-only)"
elif [[ ! -x "$TANSU_BIN" ]]; then
    PEER=0
    PEER_NOTE="Tansu skipped: no executable at TANSU_BIN=$TANSU_BIN (cargo install tansu --version 0.6.0 --locked, then point TANSU_BIN at it)"
fi

# ---------------------------------------------------------------- process bookkeeping
WORK=$(mktemp -d "$BASE_TMP/kafka-compare.XXXXXX")
OURS_PID=
TANSU_PID=

stop_pid() {
    local pid=$1 i
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    stop_pid "$OURS_PID"
    OURS_PID=
    stop_pid "$TANSU_PID"
    TANSU_PID=
    if [[ "$KEEP_TMP" == 1 ]]; then
        echo "kafka-compare: kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local p i
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + RANDOM % 40000))
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    die "no free port found"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { awk -v k="${1:-0}" 'BEGIN {printf "%.1f", k / 1024}'; }

# kb LIMIT_S ARGS...: one kafkabench run; prints its JSON line (also appended to JSONL). A failed
# run prints {"failed": true, ...} instead, so one broker's failure does not end the comparison.
kb() {
    local limit=$1 out rc=0
    shift
    out=$(timeout "$limit" "$KAFKABENCH" "$@" 2>>"$WORK/kafkabench.err") || rc=$?
    if [[ -z "$out" ]]; then
        echo "kafka-compare: kafkabench $* failed with status $rc; last errors:" >&2
        tail -n 5 "$WORK/kafkabench.err" >&2 || true
        out=$(jq -cn --arg a "$*" --argjson rc "$rc" '{args: $a, failed: true, status: $rc}')
    fi
    printf '%s\n' "$out" >>"$JSONL"
    printf '%s\n' "$out"
}

# ---------------------------------------------------------------- servers
# Each start_* sets <NAME>_PID, <NAME>_ADDR, <NAME>_START (JSON of the readiness probe: time
# from spawn to the first good ApiVersions answer) and <NAME>_IDLE_RSS (KiB, 1 s after ready).

start_ours() {
    local dir=$WORK/ours port t0
    mkdir -p "$dir"
    port=$(free_port)
    t0=$EPOCHREALTIME
    "$BROKER_BIN" start --data-dir "$dir/data" --coordinator-port 0 \
        --override "listeners=PLAINTEXT://127.0.0.1:$port" >"$dir/broker.out" 2>"$dir/broker.err" &
    OURS_PID=$!
    OURS_ADDR=127.0.0.1:$port
    OURS_START=$(kb "$((START_TIMEOUT + 10))" ready --label ours --addr "$OURS_ADDR" --since "$t0" --timeout "$START_TIMEOUT")
    if [[ "$(jq -r '.failed // false' <<<"$OURS_START")" == true ]] || ! kill -0 "$OURS_PID" 2>/dev/null; then
        tail -n 30 "$dir/broker.err" >&2
        die "our broker did not come up"
    fi
    sleep 1
    OURS_IDLE_RSS=$(rss_kib "$OURS_PID")
}

start_tansu() {
    local dir=$WORK/tansu port t0
    mkdir -p "$dir"
    port=$(free_port)
    t0=$EPOCHREALTIME
    # Explicit flags win over STORAGE_ENGINE & co. in the environment.
    "$TANSU_BIN" broker --storage-engine memory://tansu/ \
        --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
        >"$dir/tansu.out" 2>"$dir/tansu.err" &
    TANSU_PID=$!
    TANSU_ADDR=127.0.0.1:$port
    TANSU_START=$(kb "$((START_TIMEOUT + 10))" ready --label tansu --addr "$TANSU_ADDR" --since "$t0" --timeout "$START_TIMEOUT")
    if [[ "$(jq -r '.failed // false' <<<"$TANSU_START")" == true ]] || ! kill -0 "$TANSU_PID" 2>/dev/null; then
        tail -n 30 "$dir/tansu.err" "$dir/tansu.out" >&2
        echo "kafka-compare: Tansu did not come up; continuing without it" >&2
        stop_pid "$TANSU_PID"
        TANSU_PID=
        PEER=0
        PEER_NOTE="Tansu failed to start (see above)"
        return 0
    fi
    sleep 1
    TANSU_IDLE_RSS=$(rss_kib "$TANSU_PID")
}

# ---------------------------------------------------------------- table helpers
field() { jq -r "$1 // \"-\"" <<<"$2"; }

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else printf "-" }'
}

# thr JSON FIELD: the throughput figure, "FAILED", or the figure with "*" when a consume run
# stopped at CONSUME_MAX_SECS before reading everything.
thr() {
    local j=$1 f=$2 v
    if [[ "$(field '.failed' "$j")" == true ]]; then printf 'FAILED'; return; fi
    v=$(field "$f" "$j")
    [[ "$(jq -r '.complete' <<<"$j")" == false ]] && v="$v*"
    [[ "$(field '.failed' "$j")" =~ ^[1-9] ]] && v="$v!"
    printf '%s' "$v"
}

# rss JSON: peak RSS of the phase in MiB, "-" when there is none.
rss() {
    local k
    k=$(field .server_rss_peak_kib "$1")
    [[ "$k" == - ]] && { printf -- '-'; return; }
    mib "$k"
}

lat() {
    local j=$1
    [[ "$j" == '{}' ]] && { printf -- '-'; return; }
    if [[ "$(field '.failed' "$j")" == true ]]; then printf 'FAILED'; return; fi
    local lost
    lost=$(jq -r '(.sent // 0) - (.received // 0)' <<<"$j")
    printf '%s/%s' "$(field '.p50_ms' "$j")" "$(field '.p99_ms' "$j")"
    ((lost > 0)) && printf ' (%s lost)' "$lost"
    return 0
}

THR_FMT='%-16s %12s %9s %12s %9s %6s %12s %13s %15s %13s %11s'
LAT_FMT='%-16s %22s %22s %6s %12s %13s %15s %13s %11s'

# ---------------------------------------------------------------- header
say "# kafka-compare $STAMP"
say "host: $(uname -r), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
say "git: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" diff --quiet 2>/dev/null || echo ' (dirty)')"
say "ours: $BROKER_BIN (built $(date -r "$BROKER_BIN" '+%F %T')), log dir $WORK/ours ($(df -T "$WORK" | awk 'NR==2 {print $2 " on " $1}'))"
if ((PEER)); then
    say "peer: $("$TANSU_BIN" --version 2>/dev/null | head -n1 || echo tansu) ($TANSU_BIN), --storage-engine memory://tansu/"
else
    say "peer: $PEER_NOTE"
fi
say "client: kafkabench (librdkafka via the rdkafka crate), default settings except acks; linger.ms default (5) for throughput runs, ${LAT_LINGER_MS:-default} for latency runs"
say "runs: produce ${DURATION}s or ${MAX_MB} MB per run; consume everything produced (cap ${CONSUME_MAX_SECS}s); latency ${LAT_RATE}/s for ${LAT_SECS}s; MB = 10^6 bytes"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (should be ~0: broker and client share $(nproc) cores)"
say ""

phys=$(kb 300 physical --dir "$WORK" --tcp-secs "$PHYS_TCP_SECS" --write-mb "$PHYS_WRITE_MB")
say "physical limits: loopback TCP (1 stream) $(field '.loopback_tcp_mb_per_s' "$phys") MB/s; sequential write + fdatasync $(field '.seq_write_fdatasync_mb_per_s' "$phys") MB/s ($PHYS_WRITE_MB MB in $WORK)"

# ---------------------------------------------------------------- start
start_ours
((PEER)) && start_tansu
say "start (spawn -> first ApiVersions answer): ours $(field '.start_ms' "$OURS_START") ms$( ((PEER)) && printf ', tansu %s ms' "$(field '.start_ms' "$TANSU_START")")"
say "idle RSS (1 s after ready): ours $(mib "$OURS_IDLE_RSS") MiB$( ((PEER)) && printf ', tansu %s MiB' "$(mib "$TANSU_IDLE_RSS")")"
say ""
say "Throughput: msgs/s and MB/s of record values; ratio = ours / tansu MB/s; CPU% (of one core),"
say "CPU seconds per GB moved, and peak RSS MiB of the broker during the phase; other CPU% = host"
say "CPU used by neither client nor broker (ours/tansu; more than a few % means something else was"
say "competing). client CPU% = kafkabench itself (librdkafka threads included), which shares the cores."
say "* = consume hit CONSUME_MAX_SECS before reading everything (rate over what it read);"
say "! = failed deliveries."
say "Latency: end-to-end p50/p99 ms (send -> consumer poll), ratio = tansu p99 / ours p99."

PRODUCE_LIMIT=$(awk -v d="$DURATION" 'BEGIN {printf "%d", d + 180}')
CONSUME_LIMIT=$(awk -v d="$CONSUME_MAX_SECS" 'BEGIN {printf "%d", d + 60}')
LAT_LIMIT=$(awk -v d="$LAT_SECS" 'BEGIN {printf "%d", d + 90}')
lat_linger=()
[[ -n "$LAT_LINGER_MS" ]] && lat_linger=(--linger-ms "$LAT_LINGER_MS")
PERF_DONE=0

# run_workload SERVER ADDR PID SIZE PARTS: all phases of one workload on one server; prints
# one JSON object {produce: {acks: run}, consume: run, latency: {acks: run}}.
run_workload() {
    local server=$1 addr=$2 pid=$3 size=$4 parts=$5 topic lt acks j out='{}' perf_pid=
    topic=bench-$size-${parts}p
    lt=latency-$size-${parts}p
    kb 120 create --label "$server" --brokers "$addr" --topic "$topic" --partitions "$parts" >/dev/null
    kb 120 create --label "$server" --brokers "$addr" --topic "$lt" --partitions "$parts" >/dev/null
    for acks in $ACKS; do
        if [[ "$PERF" == 1 && "$server" == ours && "$PERF_DONE" == 0 ]] && command -v perf >/dev/null; then
            PERF_DONE=1
            PERF_DATA=$RESULTS_DIR/kafka-compare-$STAMP.perf.data
            perf record -g -p "$pid" -o "$PERF_DATA" -- sleep "$DURATION" >"$WORK/perf.log" 2>&1 &
            perf_pid=$!
            PERF_WHAT="$size B, $parts partition(s), acks=$acks"
        fi
        j=$(kb "$PRODUCE_LIMIT" produce --label "$server" --brokers "$addr" --pid "$pid" --topic "$topic" \
            --size "$size" --acks "$acks" --duration "$DURATION" --max-mb "$MAX_MB")
        if [[ -n "$perf_pid" ]]; then
            wait "$perf_pid" 2>/dev/null || true
            perf_pid=
        fi
        out=$(jq -c --arg a "$acks" --argjson j "$j" '.produce[$a] = $j' <<<"$out")
    done
    j=$(kb "$CONSUME_LIMIT" consume --label "$server" --brokers "$addr" --pid "$pid" --topic "$topic" \
        --max-secs "$CONSUME_MAX_SECS")
    out=$(jq -c --argjson j "$j" '.consume = $j' <<<"$out")
    for acks in $ACKS; do
        j=$(kb "$LAT_LIMIT" latency --label "$server" --brokers "$addr" --pid "$pid" --topic "$lt" \
            --size "$size" --acks "$acks" --rate "$LAT_RATE" --duration "$LAT_SECS" "${lat_linger[@]}")
        out=$(jq -c --arg a "$acks" --argjson j "$j" '.latency[$a] = $j' <<<"$out")
    done
    # Frees the in-memory peer's memory (and our disk) before the next workload.
    kb 60 delete --label "$server" --brokers "$addr" --topic "$topic" >/dev/null
    kb 60 delete --label "$server" --brokers "$addr" --topic "$lt" >/dev/null
    printf '%s\n' "$out"
}

ALL='[]'
for size in $SIZES; do
    for parts in $PARTITIONS; do
        ours=$(run_workload ours "$OURS_ADDR" "$OURS_PID" "$size" "$parts")
        tansu='{}'
        ((PEER)) && tansu=$(run_workload tansu "$TANSU_ADDR" "$TANSU_PID" "$size" "$parts")
        ALL=$(jq -c --argjson s "$size" --argjson p "$parts" --argjson o "$ours" --argjson t "$tansu" \
            '. + [{size: $s, partitions: $p, ours: $o, tansu: $t}]' <<<"$ALL")

        say ""
        say "== $size B records, $parts partition(s) =="
        header=$(printf "$THR_FMT" phase "ours msgs/s" "ours MB/s" "tansu msgs/s" "tansu MB/s" ratio \
            "CPU% ours/t" "CPU s/GB o/t" "RSS MiB ours/t" "client CPU%" "other CPU%")
        say "$header"
        say "$(printf '%*s' ${#header} '' | tr ' ' '-')"
        rows=()
        for acks in $ACKS; do rows+=("produce:$acks"); done
        rows+=(consume)
        for row in "${rows[@]}"; do
            if [[ "$row" == consume ]]; then
                name=consume q='.consume'
            else
                name="produce acks=${row#produce:}" q=".produce[\"${row#produce:}\"]"
            fi
            o=$(jq -c "$q // {}" <<<"$ours")
            t=$(jq -c "$q // {}" <<<"$tansu")
            say "$(printf "$THR_FMT" "$name" "$(thr "$o" .msgs_per_s)" "$(thr "$o" .mb_per_s)" \
                "$( ((PEER)) && thr "$t" .msgs_per_s || echo -)" "$( ((PEER)) && thr "$t" .mb_per_s || echo -)" \
                "$(ratio "$(field .mb_per_s "$o")" "$(field .mb_per_s "$t")")" \
                "$(field .server_cpu_pct "$o")/$(field .server_cpu_pct "$t")" \
                "$(field .server_cpu_s_per_gb "$o")/$(field .server_cpu_s_per_gb "$t")" \
                "$(rss "$o")/$(rss "$t")" \
                "$(field .client_cpu_pct "$o")/$(field .client_cpu_pct "$t")" \
                "$(field .other_cpu_pct "$o")/$(field .other_cpu_pct "$t")")"
        done
        say "$(printf "$LAT_FMT" "" "ours p50/p99 ms" "tansu p50/p99 ms" ratio "" "" "" "" "")"
        for acks in $ACKS; do
            o=$(jq -c ".latency[\"$acks\"] // {}" <<<"$ours")
            t=$(jq -c ".latency[\"$acks\"] // {}" <<<"$tansu")
            say "$(printf "$LAT_FMT" "e2e acks=$acks" "$(lat "$o")" "$(lat "$t")" \
                "$(ratio "$(field .p99_ms "$t")" "$(field .p99_ms "$o")")" \
                "$(field .server_cpu_pct "$o")/$(field .server_cpu_pct "$t")" "" \
                "$(rss "$o")/$(rss "$t")" \
                "$(field .client_cpu_pct "$o")/$(field .client_cpu_pct "$t")" \
                "$(field .other_cpu_pct "$o")/$(field .other_cpu_pct "$t")")"
        done
    done
done

say ""
say "RSS after runs: ours $(mib "$(rss_kib "$OURS_PID")") MiB$( ((PEER)) && printf ', tansu %s MiB' "$(mib "$(rss_kib "$TANSU_PID")")")"

# ---------------------------------------------------------------- targets
SUMMARY_JSON=$(jq -n --argjson phys "$phys" --argjson os "$OURS_START" --argjson ts "${TANSU_START:-null}" \
    --argjson orss "$OURS_IDLE_RSS" --argjson trss "${TANSU_IDLE_RSS:-null}" --argjson w "$ALL" \
    --arg stamp "$STAMP" --argjson peer "$PEER" '{
    stamp: $stamp, physical: $phys,
    start_ms: {ours: $os.start_ms, tansu: (if $peer == 1 then $ts.start_ms else null end)},
    idle_rss_kib: {ours: $orss, tansu: (if $peer == 1 then $trss else null end)},
    workloads: $w}')
TARGETS=$(jq '
    def num: if type == "number" then . else null end;
    def prod: [.workloads[] | . as $w | (.ours.produce // {}) | to_entries[] |
        {size: $w.size, partitions: $w.partitions, acks: .key, ours: (.value.mb_per_s | num),
         ours_msgs: (.value.msgs_per_s | num),
         tansu: ($w.tansu.produce[.key].mb_per_s? | num)}];
    (prod) as $p
    | ([.workloads[].tansu.consume.mb_per_s? | num] | max) as $tansu_best_consume
    | {
        produce_min_ratio: ([$p[] | select(.ours != null and .tansu != null and .tansu > 0) | .ours / .tansu] | min),
        produce_ratios: [$p[] | select(.tansu != null and .tansu > 0) | {size, partitions, acks, ratio: ((.ours // 0) / .tansu)}],
        consume_ours_mb_per_s: [.workloads[] | {size, partitions, mb_per_s: (.ours.consume.mb_per_s | num)}],
        consume_tansu_best_mb_per_s: $tansu_best_consume,
        consume_min_ratio_vs_tansu_best: (if $tansu_best_consume == null then null else
            ([.workloads[].ours.consume.mb_per_s | num | select(. != null) | . / $tansu_best_consume] | min) end),
        best_100b_msgs_per_s: ([$p[] | select(.size == 100) | .ours_msgs | select(. != null)] | max),
        worst_e2e_p99_ms: ([.workloads[].ours.latency[]?.p99_ms | num | select(. != null)] | max),
        lost_e2e: ([.workloads[].ours.latency[]? | ((.sent // 0) - (.received // 0))] | add),
        idle_rss_mib: (.idle_rss_kib.ours / 1024),
        start_ms: .start_ms.ours
    }' <<<"$SUMMARY_JSON")
SUMMARY_JSON=$(jq --argjson t "$TARGETS" '.targets = $t' <<<"$SUMMARY_JSON")
printf '%s\n' "$SUMMARY_JSON" >"$SUMMARY"

verdict() { # verdict OK? TEXT
    if [[ "$1" == true ]]; then say "  PASS  $2"; elif [[ "$1" == false ]]; then say "  MISS  $2"; else say "  n/a   $2"; fi
}
t() { jq -r "$1" <<<"$TARGETS"; }
cmp() { jq -r "if ($1) == null then \"n/a\" else (($1) $2) end" <<<"$TARGETS"; }
fmt2() { jq -r "if ($1) == null then \"-\" else (($1) * 100 | round / 100) end" <<<"$TARGETS"; }
say ""
say "targets (ours, log on disk):"
verdict "$(cmp .produce_min_ratio '>= 1.5')" "produce >= 1.5x Tansu-in-memory MB/s in every produce run: worst ratio $(fmt2 .produce_min_ratio)"
verdict "$(cmp .consume_min_ratio_vs_tansu_best '>= 3')" "consume >= 3x Tansu's best consume ($(fmt2 .consume_tansu_best_mb_per_s) MB/s) in every workload: worst $(fmt2 .consume_min_ratio_vs_tansu_best)x"
verdict "$(cmp .best_100b_msgs_per_s '>= 2000000')" "2,000,000 100-byte msgs/s produced: best $(t '.best_100b_msgs_per_s // "-"') msgs/s"
verdict "$(cmp .worst_e2e_p99_ms '< 5')" "p99 end-to-end < 5 ms at ${LAT_RATE} msg/s: worst $(t '.worst_e2e_p99_ms // "-"') ms ($(t '.lost_e2e // 0') records never arrived)"
verdict "$(cmp .idle_rss_mib '< 30')" "idle RSS < 30 MiB: $(fmt2 .idle_rss_mib) MiB"
verdict "$(cmp .start_ms '< 200')" "start < 200 ms: $(t '.start_ms // "-"') ms"

if [[ -n "${PERF_DATA:-}" && -f "${PERF_DATA:-}" ]]; then
    perf report --stdio -i "$PERF_DATA" 2>/dev/null | head -n 80 >"$RESULTS_DIR/kafka-compare-$STAMP.perf.txt" || true
    say ""
    say "perf profile of our broker during produce ($PERF_WHAT): $RESULTS_DIR/kafka-compare-$STAMP.perf.txt"
fi

say ""
say "saved: $REPORT"
say "json:  $SUMMARY"
say "raw:   $JSONL"
