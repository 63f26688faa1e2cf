#!/usr/bin/env bash
# kafka-cluster.sh: consumer-group and replication benchmarks of our broker, driven by
# `kafkabench` (librdkafka):
#   groups  (one dev-mode broker): rebalance time after a member leaves (clean close, SIGKILL),
#           offset commits/s of one group coordinator, produce/consume throughput with and
#           without a group committing every second;
#   cluster (3 brokers on one `coord server`): acks=all throughput at RF=3 vs RF=1, and leader
#           failover time split into session expiry, election, metadata and first delivery.
# Saves everything under bench/results/kafka-cluster-<timestamp>.{txt,jsonl}.
#
# Usage: bench/kafka-cluster.sh [--groups-only|--cluster-only] [--no-build] [-h]
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/kafka-cluster.sh [--groups-only | --cluster-only] [--no-build] [-h|--help]

Environment (defaults in brackets):
  REBALANCE_ROUNDS [5]       rounds of each clean-leave rebalance test
  VANISH_ROUNDS [2]          rounds of the SIGKILL-member test (0 skips it)
  VANISH_SESSION_MS [6000]   session.timeout.ms of the members in the SIGKILL test
  COMMIT_GROUPS [8]          concurrent committers (one group each) in the commit test
  COMMIT_SECS [10]           measured seconds of the commit test
  DURATION [5]               seconds of producing per throughput run
  PAIRS [3]                  baseline/with-committer (and RF=1/RF=3) run pairs, interleaved
  SIZE [100]                 record size of the group throughput runs
  REPL_SIZES ["100 1024"]    record sizes of the replication runs
  FAILOVER_ROUNDS [3]        leader kills (each followed by a restart of the victim)
  SESSION_MS [4000]          brokers' zookeeper.session.timeout.ms
  TICK_MS [500]              coord --tick-time
  BENCH_TMPDIR [$TMPDIR or /tmp], KEEP_TMP [0]
  BROKER_BIN, COORD_BIN, KAFKABENCH  (default: target/release/{broker,coord,kafkabench})
EOF
}

DO_GROUPS=1
DO_CLUSTER=1
BUILD=1
while (($#)); do
    case "$1" in
        --groups-only) DO_CLUSTER=0 ;;
        --cluster-only) DO_GROUPS=0 ;;
        --no-build) BUILD=0 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BROKER_BIN=${BROKER_BIN:-$TARGET_DIR/release/broker}
COORD_BIN=${COORD_BIN:-$TARGET_DIR/release/coord}
KAFKABENCH=${KAFKABENCH:-$TARGET_DIR/release/kafkabench}
REBALANCE_ROUNDS=${REBALANCE_ROUNDS:-5}
VANISH_ROUNDS=${VANISH_ROUNDS:-2}
VANISH_SESSION_MS=${VANISH_SESSION_MS:-6000}
COMMIT_GROUPS=${COMMIT_GROUPS:-8}
COMMIT_SECS=${COMMIT_SECS:-10}
DURATION=${DURATION:-5}
PAIRS=${PAIRS:-3}
SIZE=${SIZE:-100}
REPL_SIZES=${REPL_SIZES:-100 1024}
FAILOVER_ROUNDS=${FAILOVER_ROUNDS:-3}
SESSION_MS=${SESSION_MS:-4000}
TICK_MS=${TICK_MS:-500}
BASE_TMP=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
KEEP_TMP=${KEEP_TMP:-0}

RESULTS_DIR=$REPO/bench/results
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS_DIR"
REPORT=$RESULTS_DIR/kafka-cluster-$STAMP.txt
JSONL=$RESULTS_DIR/kafka-cluster-$STAMP.jsonl
: >"$REPORT"
: >"$JSONL"

say() { printf '%s\n' "$*" | tee -a "$REPORT"; }
die() { echo "kafka-cluster: $*" >&2; exit 1; }
command -v jq >/dev/null || die "'jq' not found (apt-get install jq)"

if ((BUILD)); then
    (cd "$REPO" && cargo build --release -p bench -p broker -p coordinator) >&2
fi
for b in "$KAFKABENCH" "$BROKER_BIN"; do [[ -x "$b" ]] || die "no binary at $b"; done
((DO_CLUSTER)) && { [[ -x "$COORD_BIN" ]] || die "no coord binary at $COORD_BIN"; }

# ---------------------------------------------------------------- processes
WORK=$(mktemp -d "$BASE_TMP/kafka-cluster.XXXXXX")
PIDS=()  # every server we started

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
    local p
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    if [[ "$KEEP_TMP" == 1 ]]; then echo "kafka-cluster: kept $WORK" >&2; else rm -rf "$WORK"; fi
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

# kb LIMIT_S ARGS...: one kafkabench run; prints its JSON line (also appended to JSONL), or
# {"failed": true, ...} when it produced none.
kb() {
    local limit=$1 out rc=0
    shift
    out=$(timeout "$limit" "$KAFKABENCH" "$@" 2>>"$WORK/kafkabench.err") || rc=$?
    if [[ -z "$out" ]]; then
        echo "kafka-cluster: kafkabench $* failed with status $rc; last errors:" >&2
        tail -n 5 "$WORK/kafkabench.err" >&2 || true
        out=$(jq -cn --arg a "$*" --argjson rc "$rc" '{args: $a, failed: true, status: $rc}')
    fi
    printf '%s\n' "$out" >>"$JSONL"
    printf '%s\n' "$out"
}

f() { jq -r "$1 // \"-\"" <<<"$2"; }

# CPU accounting for several processes (the 3 brokers): clock ticks of PIDs, and busy ticks of
# the host (all of /proc/stat's cpu line except idle and iowait).
CLK_TCK=$(getconf CLK_TCK)
proc_ticks() {
    local t=0 p v
    for p in "$@"; do
        v=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)
        t=$((t + v))
    done
    echo "$t"
}
host_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# median of the numbers on stdin
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
pct_change() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%+.1f", (a / b - 1) * 100; else print "-"}'; }

say "# kafka-cluster $STAMP"
say "host: $(uname -r), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
say "git: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" diff --quiet 2>/dev/null || echo ' (dirty)')"
say "broker: $BROKER_BIN (built $(date -r "$BROKER_BIN" '+%F %T')); data in $WORK ($(df -T "$WORK" | awk 'NR==2 {print $2 " on " $1}'))"
say "client: kafkabench (librdkafka 2.12 via rdkafka 0.39)"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (broker(s) and client share $(nproc) cores)"
say "other CPU% = host CPU used by neither the client nor the broker(s) under test, in % of one core;"
say "more than a few % means something else was competing and the row is noisy."

# ================================================================ groups
if ((DO_GROUPS)); then
    say ""
    say "== consumer groups (one dev-mode broker, group.initial.rebalance.delay.ms=0) =="
    dir=$WORK/groups
    mkdir -p "$dir"
    port=$(free_port)
    t0=$EPOCHREALTIME
    "$BROKER_BIN" start --data-dir "$dir/data" --coordinator-port 0 \
        --override "listeners=PLAINTEXT://127.0.0.1:$port" \
        --override group.initial.rebalance.delay.ms=0 >"$dir/broker.out" 2>"$dir/broker.err" &
    GPID=$!
    PIDS+=("$GPID")
    ADDR=127.0.0.1:$port
    r=$(kb 70 ready --addr "$ADDR" --since "$t0" --timeout 60)
    [[ "$(f .failed "$r")" == true ]] && { tail -n 30 "$dir/broker.err" >&2; die "broker did not come up"; }
    kb 60 create --brokers "$ADDR" --topic groups-6p --partitions 6 >/dev/null

    # -- 1a rebalance
    reb_row() { # LABEL JSON
        local j=$2
        say "$(printf '%-44s %8s %8s %8s %6s %9s %9s %s' "$1" "$(f .median_ms "$j")" "$(f .min_ms "$j")" \
            "$(f .max_ms "$j")" "$(f .completed "$j")/$(jq -r '(.rounds // []) | length' <<<"$j")" \
            "$(jq -r '[.rounds[]?.close_ms // empty] | if length == 0 then "-" else (sort | .[length/2|floor] | tostring) end' <<<"$j")" \
            "$(f .server_cpu_pct "$j")" "$(f .other_cpu_pct "$j")")"
    }
    say ""
    say "1a. rebalance of a 3-member group on 6 partitions after one member leaves: from the start"
    say "    of its leave until the other two hold disjoint assignments covering all 6 partitions"
    say "    (eager protocol, librdkafka default range,roundrobin). close = rd_kafka_consumer_close."
    say "$(printf '%-44s %8s %8s %8s %6s %9s %9s %s' "leave / member settings" "med ms" "min ms" "max ms" "ok" "close ms" "brk CPU%" "other CPU%")"
    j=$(kb 600 rebalance --brokers "$ADDR" --topic groups-6p --pid "$GPID" --rounds "$REBALANCE_ROUNDS")
    reb_row "close, librdkafka defaults (heartbeat 3 s)" "$j"
    j=$(kb 600 rebalance --brokers "$ADDR" --topic groups-6p --pid "$GPID" --rounds "$REBALANCE_ROUNDS" \
        --set heartbeat.interval.ms=100)
    reb_row "close, heartbeat.interval.ms=100" "$j"
    if ((VANISH_ROUNDS > 0)); then
        j=$(kb 900 rebalance --brokers "$ADDR" --topic groups-6p --pid "$GPID" --rounds "$VANISH_ROUNDS" \
            --vanish --set "session.timeout.ms=$VANISH_SESSION_MS" --set heartbeat.interval.ms=500)
        reb_row "SIGKILL, session ${VANISH_SESSION_MS} ms, heartbeat 500 ms" "$j"
    fi

    # -- 1b commits
    say ""
    say "1b. offset commits: $COMMIT_GROUPS committers (one group each, simple-consumer commits), each a"
    say "    synchronous OffsetCommit of all 6 partitions back to back, ${COMMIT_SECS} s"
    j=$(kb $((COMMIT_SECS + 120)) commits --brokers "$ADDR" --topic groups-6p --pid "$GPID" \
        --groups "$COMMIT_GROUPS" --duration "$COMMIT_SECS")
    say "    commits/s $(f .commits_per_s "$j"), partition offsets/s $(f .partition_offsets_per_s "$j"), p50/p99 $(f .p50_ms "$j")/$(f .p99_ms "$j") ms, failed $(f .failed "$j") $(f .first_error "$j")"
    say "    broker CPU $(f .server_cpu_pct "$j")%, client CPU $(f .client_cpu_pct "$j")%, other CPU $(f .other_cpu_pct "$j")%, broker RSS peak $(f .server_rss_peak_kib "$j") KiB"

    # -- 1c produce/consume with and without a background committer
    say ""
    say "1c. produce ($SIZE B, 6 partitions, acks=1, ${DURATION} s) and consume (whole topic) with and"
    say "    without one group committing 6 partition offsets every second; runs interleaved"
    kb 60 create --brokers "$ADDR" --topic groups-tput-6p --partitions 6 >/dev/null
    with_committer() { # SECONDS CMD...: run CMD while a committer runs
        local secs=$1 cpid
        shift
        "$KAFKABENCH" commits --brokers "$ADDR" --topic groups-6p --groups 1 --interval-ms 1000 \
            --warmup 0 --duration "$secs" --group-prefix kafkabench-bg >>"$JSONL" 2>>"$WORK/kafkabench.err" &
        cpid=$!
        sleep 0.5
        "$@"
        wait "$cpid" || true
    }
    say "$(printf '%-10s %-14s %12s %9s %9s %12s %11s' run committer msgs/s MB/s "brk CPU%" "client CPU%" "other CPU%")"
    base=() with=()
    for ((k = 0; k < PAIRS; k++)); do
        if ((k % 2)); then order="with base"; else order="base with"; fi
        for mode in $order; do
            if [[ $mode == with ]]; then
                j=$(with_committer $((DURATION + 2)) kb $((DURATION + 120)) produce --brokers "$ADDR" --topic groups-tput-6p \
                    --pid "$GPID" --size "$SIZE" --acks 1 --duration "$DURATION" --label with-committer)
                with+=("$(f .mb_per_s "$j")")
            else
                j=$(kb $((DURATION + 120)) produce --brokers "$ADDR" --topic groups-tput-6p \
                    --pid "$GPID" --size "$SIZE" --acks 1 --duration "$DURATION" --label baseline)
                base+=("$(f .mb_per_s "$j")")
            fi
            say "$(printf '%-10s %-14s %12s %9s %9s %12s %11s' "produce" "$mode" "$(f .msgs_per_s "$j")" "$(f .mb_per_s "$j")" \
                "$(f .server_cpu_pct "$j")" "$(f .client_cpu_pct "$j")" "$(f .other_cpu_pct "$j")")"
        done
    done
    pb=$(printf '%s\n' "${base[@]}" | median)
    pw=$(printf '%s\n' "${with[@]}" | median)
    cbase=() cwith=()
    for mode in base with with base; do
        if [[ $mode == with ]]; then
            j=$(with_committer 25 kb 90 consume --brokers "$ADDR" --topic groups-tput-6p --pid "$GPID" --max-secs 20 --label with-committer)
            cwith+=("$(f .mb_per_s "$j")")
        else
            j=$(kb 90 consume --brokers "$ADDR" --topic groups-tput-6p --pid "$GPID" --max-secs 20 --label baseline)
            cbase+=("$(f .mb_per_s "$j")")
        fi
        say "$(printf '%-10s %-14s %12s %9s %9s %12s %11s' "consume" "$mode" "$(f .msgs_per_s "$j")" "$(f .mb_per_s "$j")$([[ $(f .complete "$j") == false ]] && echo '*')" \
            "$(f .server_cpu_pct "$j")" "$(f .client_cpu_pct "$j")" "$(f .other_cpu_pct "$j")")"
    done
    cb=$(printf '%s\n' "${cbase[@]}" | median)
    cw=$(printf '%s\n' "${cwith[@]}" | median)
    say "    median MB/s produce: baseline $pb, with committer $pw ($(pct_change "$pw" "$pb")%);"
    say "    consume: baseline $cb, with committer $cw ($(pct_change "$cw" "$cb")%)  [target: slowdown < 5%]"
    stop_pid "$GPID"
fi

# ================================================================ cluster
if ((DO_CLUSTER)); then
    say ""
    say "== replication: 3 brokers on one coord server (tick ${TICK_MS} ms, zookeeper.session.timeout.ms=$SESSION_MS) =="
    cdir=$WORK/coord
    mkdir -p "$cdir"
    CPORT=$(free_port)
    "$COORD_BIN" server --port "$CPORT" --data-dir "$cdir" --data-log-dir "$cdir" --tick-time "$TICK_MS" \
        >"$cdir/coord.out" 2>"$cdir/coord.err" &
    COORD_PID=$!
    PIDS+=("$COORD_PID")
    for ((i = 0; i < 300; i++)); do port_in_use "$CPORT" && break; sleep 0.1; done
    port_in_use "$CPORT" || { tail -n 20 "$cdir/coord.err" >&2; die "coord did not come up"; }
    COORD=127.0.0.1:$CPORT
    declare -A BPORT BPID
    start_broker() { # ID
        local id=$1 d=$WORK/b$1 t0
        mkdir -p "$d"
        t0=$EPOCHREALTIME
        "$BROKER_BIN" start --override "zookeeper.connect=$COORD" --override "broker.id=$id" \
            --override "listeners=PLAINTEXT://127.0.0.1:${BPORT[$id]}" \
            --override "zookeeper.session.timeout.ms=$SESSION_MS" --override "log.dirs=$d/logs" \
            --override group.initial.rebalance.delay.ms=0 >>"$d/broker.out" 2>>"$d/broker.err" &
        BPID[$id]=$!
        PIDS+=("${BPID[$id]}")
        r=$(kb 70 ready --addr "127.0.0.1:${BPORT[$id]}" --since "$t0" --timeout 60)
        [[ "$(f .failed "$r")" == true ]] && { tail -n 30 "$d/broker.err" >&2; die "broker $id did not come up"; }
        return 0
    }
    for id in 1 2 3; do BPORT[$id]=$(free_port); start_broker "$id"; done
    BOOT=127.0.0.1:${BPORT[1]},127.0.0.1:${BPORT[2]},127.0.0.1:${BPORT[3]}
    all_pids() { echo "${BPID[1]} ${BPID[2]} ${BPID[3]}"; }

    # -- 2a RF=3 vs RF=1
    kb 120 create-replicated --brokers "$BOOT" --topic rf1-6p --partitions 6 --replication-factor 1 >/dev/null
    kb 120 create-replicated --brokers "$BOOT" --topic rf3-6p --partitions 6 --replication-factor 3 \
        --topic-config min.insync.replicas=2 >/dev/null
    say ""
    say "2a. produce acks=all, 6 partitions (leaders spread over the 3 brokers), ${DURATION} s per run,"
    say "    RF=1 and RF=3 (min.insync.replicas=2) runs interleaved; CPU% = the 3 brokers together"
    say "$(printf '%-6s %-5s %12s %9s %10s %12s %11s %7s' size RF msgs/s MB/s "brk CPU%" "client CPU%" "other CPU%" failed)"
    RATIOS=()
    for size in $REPL_SIZES; do
        r1=() r3=()
        for ((k = 0; k < PAIRS; k++)); do
            if ((k % 2)); then order="3 1"; else order="1 3"; fi
            for rf in $order; do
                # shellcheck disable=SC2046
                b0=$(proc_ticks $(all_pids)); h0=$(host_ticks); w0=$EPOCHREALTIME
                j=$(kb $((DURATION + 180)) produce --brokers "$BOOT" --topic "rf$rf-6p" --size "$size" --acks all \
                    --duration "$DURATION" --label "rf$rf")
                # shellcheck disable=SC2046
                b1=$(proc_ticks $(all_pids)); h1=$(host_ticks); w1=$EPOCHREALTIME
                read -r bcpu ocpu < <(awk -v b="$((b1 - b0))" -v h="$((h1 - h0))" -v t="$CLK_TCK" -v w0="$w0" -v w1="$w1" \
                    -v c="$(f .client_cpu_pct "$j")" -v d="$(f .duration_s "$j")" 'BEGIN {
                        w = w1 - w0; bc = b / t / w * 100; hc = h / t / w * 100;
                        # the client ran for roughly the whole window
                        oc = hc - bc - (c + 0); if (oc < 0) oc = 0;
                        printf "%.1f %.1f\n", bc, oc }')
                mb=$(f .mb_per_s "$j")
                if [[ $rf == 1 ]]; then r1+=("$mb"); else r3+=("$mb"); fi
                say "$(printf '%-6s %-5s %12s %9s %10s %12s %11s %7s' "$size" "$rf" "$(f .msgs_per_s "$j")" "$mb" "$bcpu" \
                    "$(f .client_cpu_pct "$j")" "$ocpu" "$(f .failed "$j")")"
                jq -c --arg b "$bcpu" --arg o "$ocpu" --argjson s "$size" --argjson rf "$rf" \
                    '{phase: "repl-cpu", size: $s, rf: $rf, brokers_cpu_pct: ($b|tonumber), other_cpu_pct: ($o|tonumber)}' -n >>"$JSONL"
            done
        done
        m1=$(printf '%s\n' "${r1[@]}" | median)
        m3=$(printf '%s\n' "${r3[@]}" | median)
        ratio=$(awk -v a="$m3" -v b="$m1" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')
        RATIOS+=("$size B: RF3/RF1 = $m3 / $m1 MB/s = $ratio")
    done
    for r in "${RATIOS[@]}"; do say "    median $r  [target >= 0.5]"; done

    # -- 2b failover
    kb 120 create-replicated --brokers "$BOOT" --topic failover --partitions 6 --replication-factor 3 \
        --topic-config min.insync.replicas=2 >/dev/null
    say ""
    say "2b. failover: acks=all producer (retries on, linger 0) at 1000 msgs/s to one partition;"
    say "    SIGKILL its leader; ms after the kill: victim's /brokers/ids/<id> gone (session expiry),"
    say "    state znode names a new leader (election), a fresh Metadata shows it, first acks=all"
    say "    delivery of a record sent after the kill. Target: recovered < 2 x ${SESSION_MS} ms."
    say "$(printf '%-5s %-6s %-7s %9s %9s %9s %10s %8s %11s' round part victim expired elected metadata recovered failed "other CPU%")"
    rec=()
    for ((k = 0; k < FAILOVER_ROUNDS; k++)); do
        part=$((k % 6))
        h0=$(host_ticks); w0=$EPOCHREALTIME
        j=$(kb 150 failover --brokers "$BOOT" --topic failover --coord "$COORD" --partition "$part" \
            --broker-pid "1=${BPID[1]}" --broker-pid "2=${BPID[2]}" --broker-pid "3=${BPID[3]}" --max-wait 60)
        h1=$(host_ticks); w1=$EPOCHREALTIME
        victim=$(f .victim "$j")
        ocpu="-"
        say "$(printf '%-5s %-6s %-7s %9s %9s %9s %10s %8s %11s' "$k" "$part" "$victim" "$(f .session_expired_ms "$j")" \
            "$(f .elected_ms "$j")" "$(f .metadata_ms "$j")" "$(f .recovered_ms "$j")" "$(f .failed "$j")" \
            "$(awk -v h="$((h1 - h0))" -v t="$CLK_TCK" -v w="$(awk -v a="$w0" -v b="$w1" 'BEGIN{print b-a}')" 'BEGIN {printf "%.0f(host)", h / t / w * 100}')")"
        rec+=("$(f .recovered_ms "$j")")
        if [[ "$victim" =~ ^[0-9]+$ ]]; then
            wait "${BPID[$victim]}" 2>/dev/null || true
            start_broker "$victim"
            # wait until the restarted broker is back in every ISR
            kb 120 create-replicated --brokers "$BOOT" --topic failover --partitions 6 --replication-factor 3 >/dev/null
        fi
    done
    say "    recovered median $(printf '%s\n' "${rec[@]}" | median) ms, max $(printf '%s\n' "${rec[@]}" | sort -g | tail -n1) ms  [target < $((2 * SESSION_MS)) ms]"
    say "    (other CPU% column here is total host CPU, 3 brokers + coord + client included)"
fi

say ""
say "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
say "saved: $REPORT"
say "raw:   $JSONL"
