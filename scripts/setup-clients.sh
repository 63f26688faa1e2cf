#!/usr/bin/env bash
# Installs the real clients the test suite drives, once: Debian's packages
# (kcat, kazoo, zkCli.sh, confluent-kafka-python, kafka-python, Go with
# confluent-kafka-go) and PyPI's current clients into `.venv-clients`.
# Idempotent and quiet when everything is there; both `scripts/test.sh` and
# `.ci/run` call it, so a first run on a fresh machine has what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    python3-kazoo      # kazoo, the Python ZooKeeper client
    zookeeper          # zkCli.sh and Apache ZooKeeper itself (with a JRE)
    zookeeper-bin      # cli_mt, the ZooKeeper C client's shell
    netcat-openbsd     # four-letter words from the shell
    kcat               # the Kafka CLI client (librdkafka 2.0.2)
    python3-confluent-kafka  # confluent-kafka-python 1.7 on librdkafka 2.0.2
    python3-kafka      # kafka-python 2.0.2
    python3-venv       # for PyPI's current clients below
    golang-go          # builds the seed article's Go consumer (kafka_groups.rs)
    golang-github-confluentinc-confluent-kafka-go-dev  # its confluent-kafka-go (GOPATH mode)
)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing the test clients from Debian: ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# PyPI's current Kafka clients, beside Debian's older ones: confluent-kafka
# 2.x (its own newer librdkafka) and kafka-python 3.x (idempotence on by
# default, standing in for the Java client).
if ! .venv-clients/bin/python -c "import confluent_kafka, kafka" 2>/dev/null; then
    echo "installing PyPI's confluent-kafka and kafka-python into .venv-clients" >&2
    # --clear: a half-made venv from an interrupted run is rebuilt whole.
    python3 -m venv --clear .venv-clients
    .venv-clients/bin/python -m pip install --quiet "confluent-kafka==2.16.1" "kafka-python==3.0.12"
fi
