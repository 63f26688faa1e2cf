#!/usr/bin/env bash
# zk-compare.sh: run the same zkbench workloads against Apache ZooKeeper 3.8 (Debian package)
# and against our `coord` server, print a comparison table, save it under bench/results/.
#
# Usage: bench/zk-compare.sh [--memory] [--zk-only] [--no-build] [-h]
# See bench/README.md for what it measures and the environment knobs.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/zk-compare.sh [--memory] [--zk-only] [--no-build] [-h|--help]

  --memory     also fill fresh servers with MEMORY_ZNODES (default 1,000,000) znodes of
               VALUE_SIZE bytes and report RSS afterwards
  --zk-only    benchmark only ZooKeeper (builds only the bench crate)
  --no-build   do not run cargo; use the binaries already in the target dir
  -h, --help   this text

Environment (defaults in brackets):
  DURATION [10]            measured seconds per run
  WARMUP [2]               unmeasured warm-up seconds per run
  WORKLOADS ["create set get mix"]  (set to "" with --memory for the memory test only)
  SHAPES ["1x1 16x8"]      sessions x in-flight requests per session
  VALUE_SIZE [100]         bytes per znode value
  NODES [1000]             node-set size for set/get/mix
  CLIENT_THREADS [1]       zkbench runtime threads
  MEMORY_ZNODES [1000000]  znodes created with --memory
  ZK_HEAP_MB [1000]        ZooKeeper -Xmx (upstream zkEnv.sh default)
  ZK_JAVA [java]           java binary for ZooKeeper
  BENCH_TMPDIR [$TMPDIR or /tmp]  where both servers keep their data (same disk for both)
  KEEP_TMP [0]             1 = keep the data/log directory after the run
  COORD_BIN, ZKBENCH       override the binaries (default: target/release/{coord,zkbench})
EOF
}

MEMORY=0
ZK_ONLY=0
BUILD=1
while (($#)); do
    case "$1" in
        --memory) MEMORY=1 ;;
        --zk-only) ZK_ONLY=1 ;;
        --no-build) BUILD=0 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
COORD_BIN=${COORD_BIN:-$TARGET_DIR/release/coord}
ZKBENCH=${ZKBENCH:-$TARGET_DIR/release/zkbench}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
WORKLOADS=${WORKLOADS-create set get mix}
SHAPES=${SHAPES:-1x1 16x8}
VALUE_SIZE=${VALUE_SIZE:-100}
NODES=${NODES:-1000}
CLIENT_THREADS=${CLIENT_THREADS:-1}
MEMORY_ZNODES=${MEMORY_ZNODES:-1000000}
ZK_HEAP_MB=${ZK_HEAP_MB:-1000}
ZK_JAVA=${ZK_JAVA:-java}
ZK_JARS=${ZK_JARS:-/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar}
ZK_START_TIMEOUT=${ZK_START_TIMEOUT:-60}
COORD_START_TIMEOUT=${COORD_START_TIMEOUT:-30}
BASE_TMP=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
KEEP_TMP=${KEEP_TMP:-0}

RESULTS_DIR=$REPO/bench/results
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS_DIR"
REPORT=$RESULTS_DIR/zk-compare-$STAMP.txt
JSONL=$RESULTS_DIR/zk-compare-$STAMP.jsonl
: >"$REPORT"
: >"$JSONL"

say() { printf '%s\n' "$*" | tee -a "$REPORT"; }
die() { echo "zk-compare: $*" >&2; exit 1; }

for tool in jq "$ZK_JAVA"; do
    command -v "$tool" >/dev/null || die "'$tool' not found (apt-get install jq default-jre-headless)"
done
[[ -f /usr/share/java/zookeeper.jar ]] ||
    die "ZooKeeper jars missing: apt-get install zookeeper (Debian's ZooKeeper 3.8)"

# ---------------------------------------------------------------- build
if ((BUILD)); then
    if ((ZK_ONLY)); then
        (cd "$REPO" && cargo build --release -p bench) >&2
    else
        (cd "$REPO" && cargo build --release -p coordinator -p bench) >&2
    fi
fi
[[ -x "$ZKBENCH" ]] || die "no zkbench binary at $ZKBENCH"
((ZK_ONLY)) || [[ -x "$COORD_BIN" ]] || die "no coord binary at $COORD_BIN (use --zk-only to skip ours)"

# ---------------------------------------------------------------- process bookkeeping
WORK=$(mktemp -d "$BASE_TMP/zk-compare.XXXXXX")
ZK_PID=
COORD_PID=

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

stop_servers() {
    stop_pid "$ZK_PID"
    ZK_PID=
    stop_pid "$COORD_PID"
    COORD_PID=
}

cleanup() {
    stop_servers
    if [[ "$KEEP_TMP" == 1 ]]; then
        echo "zk-compare: kept $WORK" >&2
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

# Four-letter-word command to ZooKeeper; prints the reply.
zk_4lw() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "%s" "$2" >&3 && cat <&3' _ "$1" "$2" 2>/dev/null || true
}

# ---------------------------------------------------------------- servers
# start_zk DIR: standalone ZooKeeper, fsync on (forceSync default), admin server off.
# Ready when `ruok` answers `imok` and `srvr` reports a serving standalone server.
start_zk() {
    local dir=$1 deadline
    mkdir -p "$dir/data" "$dir/log"
    ZK_PORT=$(free_port)
    cat >"$dir/zoo.cfg" <<EOF
tickTime=2000
dataDir=$dir/data
dataLogDir=$dir/log
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr
EOF
    "$ZK_JAVA" "-Xmx${ZK_HEAP_MB}m" -XX:+HeapDumpOnOutOfMemoryError -XX:OnOutOfMemoryError='kill -9 %p' \
        "-Dzookeeper.log.dir=$dir" -cp "$ZK_JARS" \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" >"$dir/zookeeper.log" 2>&1 &
    ZK_PID=$!
    deadline=$((SECONDS + ZK_START_TIMEOUT))
    # `imok` can come a moment before sessions are accepted; `srvr` tells when it is serving.
    until [[ "$(zk_4lw "$ZK_PORT" ruok)" == imok && "$(zk_4lw "$ZK_PORT" srvr)" == *"Mode: standalone"* ]]; do
        if ! kill -0 "$ZK_PID" 2>/dev/null; then
            tail -n 30 "$dir/zookeeper.log" >&2
            die "ZooKeeper exited during startup"
        fi
        ((SECONDS < deadline)) || { tail -n 30 "$dir/zookeeper.log" >&2; die "ZooKeeper not ready in ${ZK_START_TIMEOUT}s"; }
        sleep 0.2
    done
    ZK_ADDR=127.0.0.1:$ZK_PORT
}

# start_coord DIR: our server on an ephemeral port; ready when it prints `listening addr=...`.
start_coord() {
    local dir=$1 deadline line
    mkdir -p "$dir/data" "$dir/log"
    "$COORD_BIN" server --port 0 --data-dir "$dir/data" --data-log-dir "$dir/log" \
        >"$dir/coord.out" 2>"$dir/coord.err" &
    COORD_PID=$!
    deadline=$((SECONDS + COORD_START_TIMEOUT))
    while :; do
        line=$(grep -m1 -oE 'listening addr=[^[:space:]]+' "$dir/coord.out" 2>/dev/null || true)
        [[ -n "$line" ]] && break
        if ! kill -0 "$COORD_PID" 2>/dev/null; then
            tail -n 30 "$dir/coord.err" >&2
            die "coord exited during startup"
        fi
        ((SECONDS < deadline)) || { tail -n 30 "$dir/coord.err" >&2; die "coord not ready in ${COORD_START_TIMEOUT}s"; }
        sleep 0.1
    done
    COORD_ADDR=${line#listening addr=}
    # A wildcard bind address is reached through loopback.
    case "$COORD_ADDR" in
        0.0.0.0:*) COORD_ADDR=127.0.0.1:${COORD_ADDR##*:} ;;
        "[::]":*) COORD_ADDR=[::1]:${COORD_ADDR##*:} ;;
    esac
}

start_servers() {
    local gen=$1
    start_zk "$WORK/$gen/zookeeper"
    ((ZK_ONLY)) || start_coord "$WORK/$gen/coord"
    sleep 2 # let both settle before idle RSS is read
    ZK_IDLE_RSS=$(rss_kib "$ZK_PID")
    COORD_IDLE_RSS=
    ((ZK_ONLY)) || COORD_IDLE_RSS=$(rss_kib "$COORD_PID")
}

# ---------------------------------------------------------------- bench runs
# bench LABEL ADDR PID TIMEOUT ARGS...: one zkbench run; prints its JSON line (also saved to JSONL).
bench() {
    local label=$1 addr=$2 pid=$3 limit=$4 out rc=0
    shift 4
    out=$(timeout "$limit" "$ZKBENCH" --server "$addr" --pid "$pid" --label "$label" \
        --threads "$CLIENT_THREADS" --value-size "$VALUE_SIZE" "$@" 2>>"$WORK/zkbench.err") || rc=$?
    if [[ -z "$out" ]]; then
        echo "zk-compare: zkbench ($label $*) failed with status $rc; see below" >&2
        tail -n 5 "$WORK/zkbench.err" >&2 || true
        out=$(jq -cn --arg l "$label" --arg a "$*" --argjson rc "$rc" \
            '{label: $l, args: $a, failed: true, status: $rc, ops_per_s: null, p50_ms: null, p99_ms: null}')
    fi
    printf '%s\n' "$out" >>"$JSONL"
    printf '%s\n' "$out"
}

field() { jq -r "$1 // \"-\"" <<<"$2"; }

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && a > 0) printf "%.2f", b / a; else printf "-" }'
}

lat() {
    local j=$1 errors
    errors=$(field '.errors' "$j")
    if [[ "$(field '.failed' "$j")" == true ]]; then
        printf 'FAILED'
    elif [[ "$errors" != 0 && "$errors" != - ]]; then
        printf 'ERR(%s)' "$errors"
    else
        printf '%s/%s' "$(field '.p50_ms' "$j")" "$(field '.p99_ms' "$j")"
    fi
}

fsync_probe() {
    # 500 synchronous 4 KiB writes on the data disk: average latency of one durable write.
    local f=$WORK/fsync-probe t0 t1
    t0=$(date +%s%N)
    dd if=/dev/zero of="$f" bs=4096 count=500 oflag=dsync status=none 2>/dev/null || { echo unknown; return 0; }
    t1=$(date +%s%N)
    rm -f "$f"
    echo "$(((t1 - t0) / 500000)) us per 4 KiB O_DSYNC write"
}

# ---------------------------------------------------------------- header
say "# zk-compare $STAMP"
say "host: $(uname -r), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
say "git: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" diff --quiet 2>/dev/null || echo ' (dirty)')"
say "zookeeper: $(dpkg-query -W -f '${Version}' zookeeper 2>/dev/null || echo '?'), $("$ZK_JAVA" -version 2>&1 | head -n1), -Xmx${ZK_HEAP_MB}m"
((ZK_ONLY)) || say "coord: $COORD_BIN ($("$COORD_BIN" --version 2>/dev/null | head -n1 || true), built $(date -r "$COORD_BIN" '+%F %T'))"
say "data dirs: $WORK ($(df -T "$WORK" | awk 'NR==2 {print $2 " on " $1}')); fsync probe: $(fsync_probe)"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (should be ~0: both servers and the client share $(nproc) cores)"
say "runs: ${DURATION}s measured after ${WARMUP}s warm-up; value ${VALUE_SIZE} B; node set ${NODES}; zkbench threads ${CLIENT_THREADS}"
say ""

# ---------------------------------------------------------------- throughput / latency
if [[ -n "${WORKLOADS// /}" ]]; then
    start_servers gen1
    say "idle RSS: zookeeper $(mib "$ZK_IDLE_RSS") MiB$( ((ZK_ONLY)) || printf ', coord %s MiB' "$(mib "$COORD_IDLE_RSS")")"
    say ""

    RUN_LIMIT=$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN {printf "%d", d + w + 120}')
    header=$(printf '%-8s %-9s %12s %12s %7s %18s %18s %14s' workload sessxinf "ZK ops/s" "ours ops/s" ratio \
        "ZK p50/p99 ms" "ours p50/p99 ms" "other CPU %")
    say "$header"
    say "$(printf '%*s' ${#header} '' | tr ' ' '-')"
    for workload in $WORKLOADS; do
        for shape in $SHAPES; do
            sessions=${shape%x*}
            inflight=${shape#*x}
            args=(--workload "$workload" --sessions "$sessions" --inflight "$inflight"
                --duration "$DURATION" --warmup "$WARMUP" --nodes "$NODES")
            zk=$(bench zookeeper "$ZK_ADDR" "$ZK_PID" "$RUN_LIMIT" "${args[@]}")
            ours='{}'
            ((ZK_ONLY)) || ours=$(bench coord "$COORD_ADDR" "$COORD_PID" "$RUN_LIMIT" "${args[@]}")
            zk_ops=$(field '.ops_per_s' "$zk")
            our_ops=$(field '.ops_per_s' "$ours")
            say "$(printf '%-8s %-9s %12s %12s %7s %18s %18s %14s' "$workload" "${sessions}x${inflight}" \
                "$zk_ops" "$our_ops" "$(ratio "$zk_ops" "$our_ops")" "$(lat "$zk")" "$(lat "$ours")" \
                "$(field '.other_cpu_pct' "$zk")/$(field '.other_cpu_pct' "$ours")")"
        done
    done
    say ""
    say "RSS after runs: zookeeper $(mib "$(rss_kib "$ZK_PID")") MiB$( ((ZK_ONLY)) || printf ', coord %s MiB' "$(mib "$(rss_kib "$COORD_PID")")")"
    stop_servers
fi

# ---------------------------------------------------------------- memory
if ((MEMORY)); then
    say ""
    say "## memory: ${MEMORY_ZNODES} znodes x ${VALUE_SIZE} B on fresh servers (16 sessions x 8 in flight)"
    start_servers gen2
    mem_limit=$((MEMORY_ZNODES / 500 + 600))
    mem_args=(--workload create --ops "$MEMORY_ZNODES" --sessions 16 --inflight 8 --warmup 0 --root /zkmem)
    fill_one() {
        local label=$1 addr=$2 pid=$3 dir=$4 idle=$5 j
        j=$(bench "$label" "$addr" "$pid" "$mem_limit" "${mem_args[@]}")
        sleep 2
        say "$(printf '%-10s idle %8s MiB -> %8s MiB after %s creates (%s errors, %s creates/s); data on disk %s' \
            "$label" "$(mib "$idle")" "$(mib "$(rss_kib "$pid")")" "$(field '.creates' "$j")" \
            "$(field '.errors' "$j")" "$(field '.ops_per_s' "$j")" "$(du -sh "$dir" | cut -f1)")"
    }
    fill_one zookeeper "$ZK_ADDR" "$ZK_PID" "$WORK/gen2/zookeeper" "$ZK_IDLE_RSS"
    say "$(printf '%-10s %s' '' "$(zk_4lw "$ZK_PORT" mntr | awk '/zk_znode_count|zk_approximate_data_size/ {printf "%s=%s ", $1, $2}')")"
    if command -v jcmd >/dev/null; then
        # RSS of a JVM includes uncollected garbage; also show it after a full GC.
        jcmd "$ZK_PID" GC.run >/dev/null 2>&1 || true
        sleep 2
        heap=$(jcmd "$ZK_PID" GC.heap_info 2>/dev/null | awk '/heap.*total/ {sub(/^[ \t]+/, ""); sub(/ *\[0x.*$/, ""); gsub(/ +/, " "); print; exit}')
        say "$(printf '%-10s after full GC: RSS %s MiB; %s' '' "$(mib "$(rss_kib "$ZK_PID")")" "${heap:-heap info unavailable}")"
    fi
    ((ZK_ONLY)) || fill_one coord "$COORD_ADDR" "$COORD_PID" "$WORK/gen2/coord" "$COORD_IDLE_RSS"
    stop_servers
fi

say ""
say "saved: $REPORT"
say "raw:   $JSONL"
