//! Kafka load phases for `kafkabench`, driven through librdkafka (the `rdkafka` crate):
//! readiness probe, topic set-up, produce throughput, consume throughput and end-to-end latency.
//!
//! Every phase returns one JSON object. Client settings are librdkafka's defaults except where a
//! phase says otherwise (acks, and linger.ms for the latency phase).

use crate::sampler::Sampler;
use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Timeout for metadata, watermark and admin requests.
const META_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes in a megabyte for every MB/s figure.
pub const MB: f64 = 1_000_000.0;

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// librdkafka properties applied to every client after the benchmark's own (`--config k=v`);
/// set once by `main` before any phase runs. For experiments: the comparison uses none.
static EXTRA_CONFIG: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// Sets the extra librdkafka properties (`key=value`); fails on malformed ones or a second call.
pub fn set_extra_config(pairs: &[String]) -> Result<()> {
    let parsed = pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| anyhow!("--config wants key=value, got {p:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    EXTRA_CONFIG
        .set(parsed)
        .map_err(|_| anyhow!("extra config already set"))
}

fn client_config(brokers: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers)
        .set("client.id", "kafkabench")
        // librdkafka logs through the `log` crate, which nobody initialises here; errors that
        // matter surface as delivery or poll errors instead.
        .set("log_level", "3");
    for (k, v) in EXTRA_CONFIG.get().into_iter().flatten() {
        cfg.set(k, v);
    }
    cfg
}

// ------------------------------------------------------------------ readiness

/// A Kafka ApiVersions v0 request with correlation id 1 and client id "kafkabench".
fn api_versions_request() -> Vec<u8> {
    let client_id = b"kafkabench";
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes()); // api key: ApiVersions
    body.extend_from_slice(&0i16.to_be_bytes()); // version 0
    body.extend_from_slice(&1i32.to_be_bytes()); // correlation id
    body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    body.extend_from_slice(client_id);
    let mut req = (body.len() as i32).to_be_bytes().to_vec();
    req.extend_from_slice(&body);
    req
}

/// One ApiVersions round trip; Ok when the broker answers with error code 0.
fn api_versions_ok(addr: SocketAddr) -> Result<()> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    conn.set_read_timeout(Some(Duration::from_millis(500)))?;
    conn.set_nodelay(true)?;
    conn.write_all(&api_versions_request())?;
    let mut head = [0u8; 10]; // size, correlation id, error code
    conn.read_exact(&mut head)?;
    let correlation = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let error = i16::from_be_bytes([head[8], head[9]]);
    if correlation != 1 || error != 0 {
        bail!("ApiVersions answered correlation {correlation}, error {error}");
    }
    Ok(())
}

/// Waits until `addr` answers ApiVersions; returns the time since `since` (a Unix time, e.g.
/// bash's `$EPOCHREALTIME` taken just before the server was spawned).
pub fn wait_ready(addr: SocketAddr, since: Duration, timeout: Duration) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    let mut attempts = 0u64;
    loop {
        attempts += 1;
        match api_versions_ok(addr) {
            Ok(()) => break,
            Err(e) if Instant::now() >= deadline => {
                bail!("{addr} not answering ApiVersions after {timeout:?}: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let start_ms = now.saturating_sub(since).as_secs_f64() * 1000.0;
    Ok(
        json!({"phase": "ready", "addr": addr.to_string(), "start_ms": round1(start_ms), "attempts": attempts}),
    )
}

// ------------------------------------------------------------------ topics

/// Creates `topic` with `partitions` partitions (replication 1), retrying while the broker is
/// still settling; then waits until metadata shows every partition with a leader.
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<Value> {
    let admin: AdminClient<DefaultClientContext> = client_config(brokers)
        .create()
        .context("creating admin client")?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(META_TIMEOUT));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let results = futures::executor::block_on(admin.create_topics([&new], &opts))
            .context("CreateTopics")?;
        match results.into_iter().next() {
            Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => break,
            Some(Err((_, code))) if Instant::now() < deadline => {
                eprintln!("kafkabench: creating {topic}: {code}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Some(Err((_, code))) => bail!("creating {topic}: {code}"),
            None => bail!("creating {topic}: empty CreateTopics response"),
        }
    }
    loop {
        let md = admin.inner().fetch_metadata(Some(topic), META_TIMEOUT)?;
        let ready = md.topics().iter().any(|t| {
            t.name() == topic
                && t.error().is_none()
                && t.partitions().len() == partitions as usize
                && t.partitions()
                    .iter()
                    .all(|p| p.leader() >= 0 && p.error().is_none())
        });
        if ready {
            break;
        }
        if Instant::now() >= deadline {
            bail!("{topic}: metadata never showed {partitions} partitions with leaders");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(json!({"phase": "create", "topic": topic, "partitions": partitions}))
}

/// Deletes `topic` (best effort: frees the memory of an in-memory peer between workloads).
pub fn delete_topic(brokers: &str, topic: &str) -> Result<Value> {
    let admin: AdminClient<DefaultClientContext> = client_config(brokers)
        .create()
        .context("creating admin client")?;
    let opts = AdminOptions::new().operation_timeout(Some(META_TIMEOUT));
    let results = futures::executor::block_on(admin.delete_topics(&[topic], &opts))
        .context("DeleteTopics")?;
    let error = results
        .into_iter()
        .find_map(|r| r.err())
        .map(|(_, code)| code.to_string());
    Ok(json!({"phase": "delete", "topic": topic, "error": error}))
}

// ------------------------------------------------------------------ produce

/// Counts delivery reports. librdkafka calls it from `poll`/`flush` in the producing thread.
#[derive(Debug, Default)]
struct Deliveries {
    ok: AtomicU64,
    bytes: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.bytes
                    .fetch_add(m.payload_len() as u64, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

fn producer(brokers: &str, acks: &str, linger_ms: Option<u32>) -> Result<BaseProducer<Deliveries>> {
    let mut cfg = client_config(brokers);
    cfg.set("acks", acks);
    if let Some(l) = linger_ms {
        cfg.set("linger.ms", l.to_string());
    }
    cfg.create_with_context(Deliveries::default())
        .context("creating producer")
}

fn is_queue_full(e: &KafkaError) -> bool {
    matches!(
        e,
        KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
    )
}

/// Settings of a produce-throughput run.
#[derive(Debug, Clone)]
pub struct ProduceOpts {
    pub brokers: String,
    pub topic: String,
    pub size: usize,
    pub acks: String,
    /// Stop enqueueing after this long (then flush)...
    pub duration: Duration,
    /// ...or after this many payload bytes, whichever comes first.
    pub max_bytes: u64,
    pub linger_ms: Option<u32>,
    pub pid: Option<u32>,
}

/// Produces keyless `size`-byte records as fast as the client's queue allows, for `duration`
/// or `max_bytes`, then flushes. Throughput counts acknowledged records over the time from the
/// first send to the end of the flush.
pub fn produce(o: &ProduceOpts) -> Result<Value> {
    let p = producer(&o.brokers, &o.acks, o.linger_ms)?;
    // Connect and learn the leaders before the clock starts.
    p.client()
        .fetch_metadata(Some(&o.topic), META_TIMEOUT)
        .context("producer metadata")?;
    let payload: Vec<u8> = (0..o.size).map(|i| b'a' + (i % 26) as u8).collect();
    let max_msgs = (o.max_bytes / o.size.max(1) as u64).max(1);

    let sampler = Sampler::start(o.pid)?;
    let start = Instant::now();
    let deadline = start + o.duration;
    let mut sent = 0u64;
    let mut queue_full = 0u64;
    while sent < max_msgs {
        if sent.is_multiple_of(256) {
            if Instant::now() >= deadline {
                break;
            }
            p.poll(Duration::ZERO);
        }
        match p.send(BaseRecord::<(), [u8], ()>::to(&o.topic).payload(&payload[..])) {
            Ok(()) => sent += 1,
            Err((e, _)) if is_queue_full(&e) => {
                queue_full += 1;
                p.poll(Duration::from_millis(1));
            }
            Err((e, _)) => bail!("enqueueing a record: {e}"),
        }
    }
    let enqueue_s = start.elapsed().as_secs_f64();
    let flushed = p.flush(Duration::from_secs(120));
    let elapsed = start.elapsed();
    let usage = sampler.finish()?;
    flushed.context("flushing the producer")?;

    let ctx = p.context();
    let ok = ctx.ok.load(Ordering::Relaxed);
    let bytes = ctx.bytes.load(Ordering::Relaxed);
    let secs = elapsed.as_secs_f64();
    let mut out = json!({
        "phase": "produce",
        "topic": o.topic,
        "size": o.size,
        "acks": o.acks,
        "linger_ms": o.linger_ms,
        "sent": sent,
        "acked": ok,
        "failed": ctx.failed.load(Ordering::Relaxed),
        "first_error": ctx.first_error.lock().ok().and_then(|e| e.clone()),
        "queue_full": queue_full,
        "enqueue_s": round3(enqueue_s),
        "duration_s": round3(secs),
        "msgs_per_s": (ok as f64 / secs).round(),
        "mb_per_s": round1(bytes as f64 / MB / secs),
        "server_cpu_s_per_gb": usage.server_cpu_s_per_gb(bytes),
    });
    merge(&mut out, usage.to_json());
    Ok(out)
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

// ------------------------------------------------------------------ consume

fn consumer(brokers: &str) -> Result<BaseConsumer> {
    // librdkafka's assign() needs a group.id, but partitions are assigned explicitly from
    // logical offsets (beginning/end) and nothing is committed, so the group is never joined
    // and its coordinator is never needed. Fetch settings are librdkafka's defaults.
    client_config(brokers)
        .set("group.id", format!("kafkabench-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()
        .context("creating consumer")
}

/// Partition ids of `topic` from metadata.
fn partitions_of(c: &BaseConsumer, topic: &str) -> Result<Vec<i32>> {
    let md = c
        .client()
        .fetch_metadata(Some(topic), META_TIMEOUT)
        .context("consumer metadata")?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| anyhow!("{topic} not in metadata"))?;
    if let Some(e) = t.error() {
        bail!("{topic}: metadata error {:?}", RDKafkaErrorCode::from(e));
    }
    Ok(t.partitions().iter().map(|p| p.id()).collect())
}

fn assign(c: &BaseConsumer, topic: &str, parts: &[i32], offset: Offset) -> Result<()> {
    let mut tpl = TopicPartitionList::new();
    for &p in parts {
        tpl.add_partition_offset(topic, p, offset)?;
    }
    c.assign(&tpl).context("assign")
}

/// Reads `topic` from the beginning until every record that was in it when the run started has
/// arrived, or `max` has passed. Throughput is over the time from assign() to the last record.
pub fn consume(brokers: &str, topic: &str, max: Duration, pid: Option<u32>) -> Result<Value> {
    let c = consumer(brokers)?;
    let parts = partitions_of(&c, topic)?;
    let mut expected = 0u64;
    for &p in &parts {
        let (lo, hi) = c.client().fetch_watermarks(topic, p, META_TIMEOUT)?;
        expected += (hi - lo).max(0) as u64;
    }
    let sampler = Sampler::start(pid)?;
    let start = Instant::now();
    assign(&c, topic, &parts, Offset::Beginning)?;
    let deadline = start + max;
    let (mut got, mut bytes, mut errors) = (0u64, 0u64, 0u64);
    let mut first_error = None;
    let mut last = start;
    while got < expected {
        let polled = c.poll(Duration::from_millis(100));
        let now = Instant::now();
        match polled {
            Some(Ok(m)) => {
                got += 1;
                bytes += m.payload_len() as u64;
                last = now;
            }
            Some(Err(e)) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
            None => {}
        }
        if now >= deadline {
            break;
        }
    }
    let usage = sampler.finish()?;
    let secs = last
        .saturating_duration_since(start)
        .as_secs_f64()
        .max(1e-9);
    let mut out = json!({
        "phase": "consume",
        "topic": topic,
        "partitions": parts.len(),
        "expected": expected,
        "consumed": got,
        "complete": got >= expected,
        "errors": errors,
        "first_error": first_error,
        "duration_s": round3(secs),
        "msgs_per_s": (got as f64 / secs).round(),
        "mb_per_s": round1(bytes as f64 / MB / secs),
        "server_cpu_s_per_gb": usage.server_cpu_s_per_gb(bytes),
    });
    merge(&mut out, usage.to_json());
    Ok(out)
}

// ------------------------------------------------------------------ end-to-end latency

/// Settings of an end-to-end latency run.
#[derive(Debug, Clone)]
pub struct LatencyOpts {
    pub brokers: String,
    pub topic: String,
    pub size: usize,
    pub acks: String,
    pub rate: u64,
    pub duration: Duration,
    pub warmup: Duration,
    pub linger_ms: Option<u32>,
    pub pid: Option<u32>,
}

const KIND_WARMUP: u8 = 0;
const KIND_MEASURED: u8 = 1;
/// Marker byte + send time in nanoseconds.
const STAMP_LEN: usize = 9;

/// Produces at a fixed `rate` with the send time in every payload while a consumer in this
/// process (assigned to all partitions, default fetch settings) records receive - send time.
pub fn latency(o: &LatencyOpts) -> Result<Value> {
    if o.size < STAMP_LEN {
        bail!("latency records need at least {STAMP_LEN} bytes");
    }
    if o.rate == 0 {
        bail!("--rate must be at least 1");
    }
    let base = Instant::now();
    let total = (o.rate as f64 * o.duration.as_secs_f64()).round() as u64;
    let c = consumer(&o.brokers)?;
    let parts = partitions_of(&c, &o.topic)?;
    assign(&c, &o.topic, &parts, Offset::End)?;

    let saw_warmup = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (saw_warmup, stop) = (Arc::clone(&saw_warmup), Arc::clone(&stop));
        std::thread::spawn(move || -> Result<(Histogram<u64>, u64, u64)> {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
            let (mut measured, mut errors) = (0u64, 0u64);
            while !(stop.load(Ordering::Relaxed) || measured >= total) {
                match c.poll(Duration::from_millis(20)) {
                    Some(Ok(m)) => {
                        let now = base.elapsed().as_nanos() as u64;
                        let Some(p) = m.payload().filter(|p| p.len() >= STAMP_LEN) else {
                            continue;
                        };
                        let mut ns = [0u8; 8];
                        ns.copy_from_slice(&p[1..STAMP_LEN]);
                        let sent = u64::from_le_bytes(ns);
                        if p[0] == KIND_MEASURED {
                            measured += 1;
                            hist.saturating_record((now.saturating_sub(sent) / 1000).max(1));
                        } else {
                            saw_warmup.store(true, Ordering::Relaxed);
                        }
                    }
                    Some(Err(_)) => errors += 1,
                    None => {}
                }
            }
            Ok((hist, measured, errors))
        })
    };

    let p = producer(&o.brokers, &o.acks, o.linger_ms)?;
    p.client()
        .fetch_metadata(Some(&o.topic), META_TIMEOUT)
        .context("producer metadata")?;
    let mut payload = vec![b'x'; o.size];
    let interval = Duration::from_secs_f64(1.0 / o.rate as f64);
    let mut send = |kind: u8, at: Instant| -> Result<()> {
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        payload[0] = kind;
        payload[1..STAMP_LEN].copy_from_slice(&(base.elapsed().as_nanos() as u64).to_le_bytes());
        loop {
            match p.send(BaseRecord::<(), [u8], ()>::to(&o.topic).payload(&payload[..])) {
                Ok(()) => break,
                Err((e, _)) if is_queue_full(&e) => p.poll(Duration::from_millis(1)),
                Err((e, _)) => bail!("enqueueing a record: {e}"),
            }
        }
        p.poll(Duration::ZERO);
        Ok(())
    };

    // Warm-up at the same rate until the consumer has seen a record (and at least `warmup`).
    let warm_start = Instant::now();
    let mut i = 0u64;
    while warm_start.elapsed() < o.warmup || !saw_warmup.load(Ordering::Relaxed) {
        if warm_start.elapsed() > o.warmup + Duration::from_secs(30) {
            stop.store(true, Ordering::Relaxed);
            bail!("the consumer saw no record within 30 s of producing");
        }
        send(KIND_WARMUP, warm_start + interval * i as u32)?;
        i += 1;
    }

    let sampler = Sampler::start(o.pid)?;
    let start = Instant::now();
    for i in 0..total {
        send(KIND_MEASURED, start + interval.mul_f64(i as f64))?;
    }
    let send_s = start.elapsed().as_secs_f64();
    p.flush(Duration::from_secs(30)).context("flushing")?;
    let wait_until = Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() && Instant::now() < wait_until {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let usage = sampler.finish()?;
    let (hist, measured, errors) = reader
        .join()
        .map_err(|_| anyhow!("latency consumer panicked"))??;

    let ctx = p.context();
    let ms = |q: f64| {
        if measured > 0 {
            json!(round3(hist.value_at_quantile(q) as f64 / 1000.0))
        } else {
            Value::Null
        }
    };
    let mut out = json!({
        "phase": "latency",
        "topic": o.topic,
        "size": o.size,
        "acks": o.acks,
        "linger_ms": o.linger_ms,
        "rate": o.rate,
        "sent": total,
        "send_s": round3(send_s),
        "acked": ctx.ok.load(Ordering::Relaxed),
        "failed": ctx.failed.load(Ordering::Relaxed),
        "first_error": ctx.first_error.lock().ok().and_then(|e| e.clone()),
        "received": measured,
        "consumer_errors": errors,
        "p50_ms": ms(0.5),
        "p99_ms": ms(0.99),
        "p999_ms": ms(0.999),
        "max_ms": if measured > 0 { json!(round3(hist.max() as f64 / 1000.0)) } else { Value::Null },
    });
    merge(&mut out, usage.to_json());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_request_is_framed() {
        let r = api_versions_request();
        let len = i32::from_be_bytes([r[0], r[1], r[2], r[3]]) as usize;
        assert_eq!(len, r.len() - 4);
        assert_eq!(&r[4..6], &18i16.to_be_bytes());
        assert_eq!(&r[r.len() - 10..], b"kafkabench");
    }
}
