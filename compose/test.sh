#!/usr/bin/env bash
# The compose test (issue: docker compose). Builds the registry-free images,
# then with docker-compose.yml: up (healthchecks), produce with kcat from the
# host to localhost:9092 and consume it back, a container client through
# kafka1:29092, brokers registering and leaving seen by `coord watch` inside
# zoo1, a SIGTERM stop within 10 s with exit code 0, down and up again on the
# same storage and the data still there. With docker-compose.cluster.yml:
# acks=all from the host while one broker is killed (and restarted) and
# another is cut off the network (and reconnected); every acknowledged message
# is then read back. Tears everything down: no containers, networks or volumes
# are left, nor the storage it used (a temporary directory).
#
# Skipped, with a message, only where no Docker engine answers.
#   compose/test.sh                  # after, or including, the release build
#   EDDY_COMPOSE_NO_CARGO=1 compose/test.sh   # use target/release as it is
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

say() { printf 'compose test: %s\n' "$*"; }
fail() {
    say "FAILED: $*"
    exit 1
}

if ! docker info >/dev/null 2>&1; then
    say "SKIPPED: no Docker engine answers (docker info failed)"
    exit 0
fi
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
    v2=1
elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose) # 1.x: no --wait, the health is polled below
    v2=0
else
    fail "a Docker engine answers but neither 'docker compose' nor 'docker-compose' is installed"
fi
command -v kcat >/dev/null || fail "kcat is not installed"
python="$root/.venv-clients/bin/python"
[ -x "$python" ] || python=python3
"$python" -c 'import confluent_kafka' 2>/dev/null || fail "$python has no confluent_kafka"

start_time=$(date +%s)
if [ "${EDDY_COMPOSE_NO_CARGO:-0}" != 1 ]; then
    cargo build --release --locked -p broker -p coordinator
fi
coord="$root/target/release/coord"
broker="$root/target/release/broker"
"$here/build-images.sh"

work="$(mktemp -d /tmp/eddy-compose-test.XXXXXX)"
export EDDY_STORAGE="$work/storage"
# The storage must end up owned by the owner of $EDDY_OWNER (default: the
# compose file, i.e. whoever checked it out). As root, a stand-in user shows
# it; as anyone else, the compose file is theirs.
if [ "$(id -u)" = 0 ]; then
    export EDDY_OWNER="$work/owner"
    touch "$EDDY_OWNER"
    chown 4242:4242 "$EDDY_OWNER"
    storage_uid=4242
else
    storage_uid=$(id -u)
fi
single=eddy-test-single
cluster=eddy-test-cluster
pids=()

dc() { # dc PROJECT FILE ARGS...
    local project=$1 file=$2
    shift 2
    "${compose[@]}" -p "$project" -f "$here/$file" "$@"
}

leftovers() {
    local p=$1
    {
        docker ps -aq --filter "label=com.docker.compose.project=$p"
        docker network ls -q --filter "label=com.docker.compose.project=$p"
        docker volume ls -q --filter "label=com.docker.compose.project=$p"
    } | wc -l
}

cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ "$rc" != 0 ]; then
        for spec in "$single docker-compose.yml" "$cluster docker-compose.cluster.yml"; do
            set -- $spec
            [ "$(docker ps -aq --filter "label=com.docker.compose.project=$1" | wc -l)" = 0 ] ||
                dc "$1" "$2" logs --no-color --tail=40 2>&1 | sed 's/^/  | /' || true
        done
    fi
    dc "$single" docker-compose.yml down -v --remove-orphans -t 10 >/dev/null 2>&1 || true
    dc "$cluster" docker-compose.cluster.yml down -v --remove-orphans -t 10 >/dev/null 2>&1 || true
    rm -rf "$work"
    local left=$(($(leftovers "$single") + $(leftovers "$cluster")))
    if [ "$left" != 0 ]; then
        say "FAILED: $left containers/networks/volumes left behind"
        rc=1
    fi
    exit "$rc"
}
trap cleanup EXIT

# Brings a project up and waits until every container is healthy.
up() { # up PROJECT FILE [ARGS...]
    local project=$1 file=$2
    shift 2
    local wait=()
    [ "$v2" = 1 ] && wait=(--wait)
    dc "$project" "$file" up -d "${wait[@]}" "$@" >"$work/up.log" 2>&1 ||
        fail "up failed: $(tail -n 20 "$work/up.log")"
    [ "$v2" = 1 ] || wait_healthy "$project" "$file" 120
}

wait_healthy() { # wait_healthy PROJECT FILE SECONDS
    local deadline=$(($(date +%s) + $3)) id state bad
    while :; do
        bad=0
        for id in $(dc "$1" "$2" ps -q); do
            state=$(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")
            case "$state" in
                running/healthy) ;;
                exited/* | dead/*) fail "container $(docker inspect -f '{{.Name}}' "$id") is $state" ;;
                *) bad=1 ;;
            esac
        done
        [ "$bad" = 0 ] && return 0
        [ "$(date +%s)" -lt "$deadline" ] || fail "$1 not healthy within $3 s"
        sleep 0.5
    done
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local deadline=$(($(date +%s) + $1)) what=$2
    shift 2
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $what"
        sleep 0.5
    done
}

stats() { # stats PROJECT FILE
    docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' $(dc "$1" "$2" ps -q) |
        sed 's/ \/ .*//; s/^/  RSS /'
}

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^eddy/' | sed 's/^/  image /'

# ---- the seed's topology: zoo1 + kafka1 ------------------------------------
S() { dc "$single" docker-compose.yml "$@"; }
t0=$(now)
up "$single" docker-compose.yml --build
say "docker-compose.yml: up to healthy in $(secs "$t0" "$(now)") s"
stats "$single" docker-compose.yml
foreign=$(find "$EDDY_STORAGE" ! -uid "$storage_uid" | head -n 3)
[ -z "$foreign" ] || fail "storage not owned by uid $storage_uid: $foreign"
say "storage owned by uid $storage_uid, the compose file's owner"

zoo1=$(S ps -q zoo1)
kafka1=$(S ps -q kafka1)
[ "$("$coord" --server 127.0.0.1:2181 ls /brokers/ids)" = 1 ] || fail "kafka1 is not registered in zoo1"
docker exec "$zoo1" /usr/local/bin/coord watch -r /brokers >"$work/watch.log" 2>&1 &
pids+=($!)
wait_for 10 "coord watch to start" grep -q watching "$work/watch.log"

seq 1 200 | sed 's/^/hello-/' >"$work/sent.txt"
kcat -b localhost:9092 -P -t users.notification -X acks=all <"$work/sent.txt"
kcat -b localhost:9092 -C -t users.notification -o beginning -e -q >"$work/got.txt" 2>/dev/null
cmp -s <(sort "$work/sent.txt") <(sort "$work/got.txt") ||
    fail "kcat read back $(wc -l <"$work/got.txt") of 200 messages"
say "kcat: 200 messages to localhost:9092 and back"

# A client in another container reaches the broker at kafka1:29092.
network=$(docker inspect -f '{{range $n, $_ := .NetworkSettings.Networks}}{{$n}}{{end}}' "$kafka1")
n=$(docker run --rm --network "$network" eddy/broker:local /usr/local/bin/broker consume users.notification \
    -b kafka1:29092 --from-beginning --max-messages 200 | wc -l)
[ "$n" = 200 ] || fail "a container client read $n of 200 messages through kafka1:29092"
say "container client: 200 messages through kafka1:29092"

t0=$(now)
S stop -t 10
stop_s=$(secs "$t0" "$(now)")
for id in "$kafka1" "$zoo1"; do
    code=$(docker inspect -f '{{.State.ExitCode}}' "$id")
    [ "$code" = 0 ] || fail "$(docker inspect -f '{{.Name}}' "$id") exited with $code on SIGTERM"
done
say "SIGTERM: both stopped with exit code 0 in $stop_s s"
S logs --no-color kafka1 | tail -n 3 | sed 's/^/  | /'
grep -q '/brokers/ids/1' "$work/watch.log" || fail "coord watch saw no /brokers/ids/1 event"
S down -v

up "$single" docker-compose.yml
kcat -b localhost:9092 -C -t users.notification -o beginning -e -q >"$work/got2.txt"
cmp -s <(sort "$work/sent.txt") <(sort "$work/got2.txt") ||
    fail "after down and up, $(wc -l <"$work/got2.txt") of 200 messages"
[ "$("$coord" --server 127.0.0.1:2181 ls /brokers/ids)" = 1 ] || fail "kafka1 did not register again"
say "down + up on the same storage: 200 of 200 messages, kafka1 registered again"
echo "  watch inside zoo1 (first run):"
sed 's/^/  | /' "$work/watch.log" | head -n 8
S down -v --remove-orphans
[ "$(leftovers "$single")" = 0 ] || fail "docker-compose.yml left containers, networks or volumes"

# ---- three brokers: acks=all through a kill and a partition ----------------
C() { dc "$cluster" docker-compose.cluster.yml "$@"; }
export EDDY_ZK_SESSION_TIMEOUT_MS=6000 EDDY_REPLICA_LAG_TIME_MAX_MS=6000
t0=$(now)
up "$cluster" docker-compose.cluster.yml
say "docker-compose.cluster.yml: up to healthy in $(secs "$t0" "$(now)") s"
stats "$cluster" docker-compose.cluster.yml
[ "$("$coord" --server 127.0.0.1:2181 ls /brokers/ids | sort | tr '\n' ' ')" = "1 2 3 " ] ||
    fail "not all three brokers registered"

bootstrap=localhost:9092,localhost:9093,localhost:9094
"$broker" topic create acks --partitions 3 -b localhost:9092 >/dev/null

full_isr() { # every partition of `acks` has 3 in-sync replicas
    local n
    n=$(kcat -b "$bootstrap" -L -t acks 2>/dev/null | grep -cE 'isrs: [0-9]+,[0-9]+,[0-9]+$' || true)
    [ "$n" = 3 ]
}
wait_for 60 "3 in-sync replicas on every partition" full_isr
"$broker" topic describe acks -b localhost:9092 | sed 's/^/  | /'

acked="$work/acked.txt"
"$python" "$here/acks_producer.py" "$bootstrap" acks "$acked" "$work/stop" >"$work/producer.log" 2>&1 &
producer=$!
pids+=("$producer")
count() { if [ -f "$acked" ]; then wc -l <"$acked"; else echo 0; fi; }
grows() { # grows BY: waits until `by` more acknowledgements arrive
    local target=$(($(count) + $1))
    wait_for 90 "$1 more acknowledgements (at $(count))" test_ge "$target"
}
test_ge() { [ "$(count)" -ge "$1" ]; }

# Registrations come and go live, as `coord watch` inside zoo1 shows them.
zoo1=$(C ps -q zoo1)
docker exec "$zoo1" /usr/local/bin/coord watch -r /brokers/ids >"$work/watch-ids.log" 2>&1 &
pids+=($!)
wait_for 10 "coord watch to start" grep -q watching "$work/watch-ids.log"

grows 300
C kill kafka2
say "killed kafka2 at $(count) acknowledged"
grows 300
wait_for 30 "zoo1 to drop kafka2's registration" grep -q 'deleted /brokers/ids/2' "$work/watch-ids.log"
C up -d kafka2 >"$work/up.log" 2>&1
wait_healthy "$cluster" docker-compose.cluster.yml 60
wait_for 10 "kafka2 to register again" grep -q 'created /brokers/ids/2' "$work/watch-ids.log"
wait_for 90 "kafka2 back in every ISR" full_isr
say "kafka2 restarted and back in sync at $(count) acknowledged"

kafka3=$(C ps -q kafka3)
network=$(docker inspect -f '{{range $n, $_ := .NetworkSettings.Networks}}{{$n}}{{end}}' "$kafka3")
docker network disconnect "$network" "$kafka3"
say "kafka3 cut off the network at $(count) acknowledged"
grows 300
docker network connect --alias kafka3 "$network" "$kafka3"
say "kafka3 reconnected at $(count) acknowledged"
wait_for 90 "kafka3 back in every ISR" full_isr
grows 300
touch "$work/stop"
wait "$producer" || fail "the producer failed: $(cat "$work/producer.log")"
sed 's/^/  /' "$work/producer.log"

kcat -b "$bootstrap" -C -t acks -o beginning -e -q -f '%p %o %s\n' >"$work/all.txt"
# librdkafka's idempotent producer can report a delivery whose offset it did
# not learn (a retried batch the broker had already written): the client
# prints `None`. Those are checked by partition and value, the rest exactly.
{ grep -v ' None ' "$acked" || true; } | sort -u | comm -23 - <(sort -u "$work/all.txt") >"$work/missing.txt"
{ grep ' None ' "$acked" || true; } | while read -r p _ v; do
    grep -qE "^$p [0-9]+ $v\$" "$work/all.txt" || echo "$p None $v"
done >>"$work/missing.txt"
missing=$(wc -l <"$work/missing.txt")
if [ "$missing" != 0 ]; then
    # What was acknowledged, what the topic holds at that offset, and where
    # (if anywhere) the value is: tells loss from a moved or duplicated write.
    head -5 "$work/missing.txt" | while read -r p o v; do
        echo "  acked: $p $o $v | at $p $o: $(grep -E "^$p $o " "$work/all.txt" || echo nothing)" \
            "| value found at: $(grep -E " $v\$" "$work/all.txt" | tr '\n' ';' || true)"
    done
    fail "$missing of $(count) acknowledged messages are missing"
fi
say "every one of $(count) acknowledged messages read back ($(wc -l <"$work/all.txt") in the topic)"
echo "  coord watch -r /brokers/ids inside zoo1 during the run:"
sed 's/^/  | /' "$work/watch-ids.log"
stats "$cluster" docker-compose.cluster.yml

C down -v --remove-orphans
[ "$(leftovers "$cluster")" = 0 ] || fail "docker-compose.cluster.yml left containers, networks or volumes"
say "OK in $(($(date +%s) - start_time)) s; nothing left behind"
