//! Multi-broker phases for `kafkabench`: creating replicated topics, and timing a leader failover
//! (SIGKILL of a partition leader) split into coordinator session expiry, election, client
//! metadata and the first acks=all delivery that succeeds afterwards.

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const META_TIMEOUT: Duration = Duration::from_secs(10);

fn base_config(brokers: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers)
        .set("client.id", "kafkabench")
        .set("log_level", "3");
    cfg
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// Creates `topic` with `partitions` x `rf` replicas (and topic `configs`), then waits until
/// metadata shows every partition with a leader and a full ISR.
pub fn create_replicated(
    brokers: &str,
    topic: &str,
    partitions: i32,
    rf: i32,
    configs: &[(String, String)],
) -> Result<Value> {
    let admin: AdminClient<DefaultClientContext> = base_config(brokers).create()?;
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(rf));
    for (k, v) in configs {
        new = new.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(META_TIMEOUT));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    loop {
        let results = futures::executor::block_on(admin.create_topics([&new], &opts))
            .context("CreateTopics")?;
        match results.into_iter().next() {
            Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => break,
            Some(Err((_, code))) if Instant::now() < deadline => {
                eprintln!("kafkabench: creating {topic}: {code}; retrying");
                std::thread::sleep(Duration::from_millis(300));
            }
            Some(Err((_, code))) => bail!("creating {topic}: {code}"),
            None => bail!("creating {topic}: empty CreateTopics response"),
        }
    }
    let mut leaders = BTreeMap::new();
    loop {
        let md = admin.inner().fetch_metadata(Some(topic), META_TIMEOUT)?;
        let ok = md.topics().iter().any(|t| {
            t.name() == topic
                && t.error().is_none()
                && t.partitions().len() == partitions as usize
                && t.partitions()
                    .iter()
                    .all(|p| p.leader() >= 0 && p.error().is_none() && p.isr().len() == rf as usize)
        });
        if ok {
            for t in md.topics().iter().filter(|t| t.name() == topic) {
                for p in t.partitions() {
                    leaders.insert(p.id().to_string(), p.leader());
                }
            }
            break;
        }
        if Instant::now() >= deadline {
            bail!("{topic}: metadata never showed {partitions} partitions with leader and {rf} in-sync replicas");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(
        json!({"phase": "create", "topic": topic, "partitions": partitions,
              "replication_factor": rf, "leaders": leaders, "ready_ms": ms(start.elapsed())}),
    )
}

// ------------------------------------------------------------------ failover

/// Records, for the failover producer, when deliveries succeeded relative to the kill.
struct FailoverCtx {
    base: Instant,
    /// Nanoseconds since `base` of the kill; u64::MAX before it.
    kill_ns: AtomicU64,
    /// First successful delivery of a record enqueued after the kill (ns since base).
    first_ok_after: AtomicU64,
    /// Last successful delivery of a record enqueued before the kill.
    last_ok_before: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for FailoverCtx {}

impl ProducerContext for FailoverCtx {
    /// Nanoseconds since `base` when the record was enqueued.
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Self::DeliveryOpaque) {
        let now = self.base.elapsed().as_nanos() as u64;
        match result {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                if *sent >= self.kill_ns.load(Ordering::Relaxed) {
                    self.first_ok_after.fetch_min(now, Ordering::Relaxed);
                } else {
                    self.last_ok_before.fetch_max(now, Ordering::Relaxed);
                }
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut g) = self.first_error.lock() {
                    g.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

/// Settings of one failover round.
#[derive(Debug, Clone)]
pub struct FailoverOpts {
    pub brokers: String,
    /// The coordinator (ZooKeeper protocol) the brokers register with.
    pub coord: String,
    pub topic: String,
    pub partition: i32,
    /// broker id -> pid, to SIGKILL the leader.
    pub pids: BTreeMap<i32, u32>,
    /// Records per second produced to the partition (acks=all) before and after the kill.
    pub rate: u64,
    /// Seconds of producing before the kill.
    pub before: Duration,
    pub max_wait: Duration,
    pub size: usize,
}

/// The partition's state znode: (leader, leader_epoch).
fn parse_state(data: &[u8]) -> Option<(i32, i32)> {
    let v: Value = serde_json::from_slice(data).ok()?;
    Some((
        v["leader"].as_i64()? as i32,
        v["leader_epoch"].as_i64()? as i32,
    ))
}

/// Produces acks=all records to one partition at a fixed rate, SIGKILLs the partition's
/// leader, and times: the victim's `/brokers/ids/<id>` disappearing (session expiry), the state
/// znode naming another leader with a higher epoch (election), a fresh metadata request showing
/// the new leader (metadata), and the first successful delivery of a record enqueued after the
/// kill (recovered). All from the moment just before `kill -KILL`.
pub fn failover(o: &FailoverOpts) -> Result<Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let zk = rt
        .block_on(
            zookeeper_client::Client::connector()
                .with_session_timeout(Duration::from_secs(10))
                .with_connection_timeout(Duration::from_secs(10))
                .connect(&o.coord),
        )
        .with_context(|| format!("connecting to the coordinator at {}", o.coord))?;
    let state_path = format!(
        "/brokers/topics/{}/partitions/{}/state",
        o.topic, o.partition
    );
    let read_state = |zk: &zookeeper_client::Client| -> Result<Option<(i32, i32)>> {
        match rt.block_on(zk.get_data(&state_path)) {
            Ok((d, _)) => Ok(parse_state(&d)),
            Err(zookeeper_client::Error::NoNode) => Ok(None),
            Err(e) => Err(anyhow!("get {state_path}: {e}")),
        }
    };
    let (victim, epoch0) = read_state(&zk)?.ok_or_else(|| anyhow!("no {state_path}"))?;
    let victim_pid = *o.pids.get(&victim).ok_or_else(|| {
        anyhow!(
            "leader {victim} of {}-{} has no --pid",
            o.topic,
            o.partition
        )
    })?;
    let id_path = format!("/brokers/ids/{victim}");

    let ctx = FailoverCtx {
        base: Instant::now(),
        kill_ns: AtomicU64::new(u64::MAX),
        first_ok_after: AtomicU64::new(u64::MAX),
        last_ok_before: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_error: Mutex::new(None),
    };
    let base = ctx.base;
    let p: BaseProducer<FailoverCtx> = base_config(&o.brokers)
        .set("acks", "all")
        .set("linger.ms", "0")
        .create_with_context(ctx)?;
    p.client()
        .fetch_metadata(Some(&o.topic), META_TIMEOUT)
        .context("producer metadata")?;

    // Fresh-metadata watcher: a separate client asking every 50 ms who leads the partition.
    let metadata_at: Arc<Mutex<Option<(Duration, i32)>>> = Arc::default();
    let watch_from = Arc::new(Mutex::new(None::<Instant>));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (metadata_at, watch_from, stop) = (
            Arc::clone(&metadata_at),
            Arc::clone(&watch_from),
            Arc::clone(&stop),
        );
        let mut cfg = base_config(&o.brokers);
        cfg.set("group.id", "kafkabench-failover-md");
        let c: BaseConsumer = cfg.create()?;
        let (topic, part) = (o.topic.clone(), o.partition);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t0 = *watch_from.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(t0) = t0 {
                    if let Ok(md) = c.fetch_metadata(Some(&topic), Duration::from_millis(500)) {
                        let leader = md
                            .topics()
                            .iter()
                            .filter(|t| t.name() == topic)
                            .flat_map(|t| t.partitions())
                            .find(|pp| pp.id() == part)
                            .map(|pp| pp.leader());
                        if let Some(l) = leader.filter(|l| *l >= 0 && *l != victim) {
                            *metadata_at.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some((t0.elapsed(), l));
                            return;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let payload = vec![b'f'; o.size.max(1)];
    let interval = Duration::from_secs_f64(1.0 / o.rate.max(1) as f64);
    let mut i = 0u64;
    let start = Instant::now();
    let send = |i: &mut u64| -> Result<()> {
        let at = start + interval.mul_f64(*i as f64);
        if let Some(w) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        *i += 1;
        let now_ns = base.elapsed().as_nanos() as u64;
        let rec = BaseRecord::<(), [u8], Box<u64>>::with_opaque_to(&o.topic, Box::new(now_ns))
            .partition(o.partition)
            .payload(&payload[..]);
        if let Err((e, _)) = p.send(rec) {
            bail!("enqueueing: {e}");
        }
        p.poll(Duration::ZERO);
        Ok(())
    };
    while start.elapsed() < o.before {
        send(&mut i)?;
    }
    let acked_before = p.context().ok.load(Ordering::Relaxed);

    // The kill.
    let t0 = Instant::now();
    p.context()
        .kill_ns
        .store((t0 - base).as_nanos() as u64, Ordering::Relaxed);
    let st = std::process::Command::new("kill")
        .args(["-KILL", &victim_pid.to_string()])
        .status()
        .context("kill")?;
    if !st.success() {
        bail!("kill -KILL {victim_pid}: {st}");
    }
    let kill_ms = ms(t0.elapsed());
    *watch_from.lock().unwrap_or_else(|p| p.into_inner()) = Some(t0);

    let (mut expired, mut elected, mut new_leader, mut new_epoch) = (None, None, -1, -1);
    let mut last_zk = Instant::now() - Duration::from_secs(1);
    loop {
        send(&mut i)?;
        if last_zk.elapsed() >= Duration::from_millis(10) {
            last_zk = Instant::now();
            if expired.is_none() {
                match rt.block_on(zk.check_stat(&id_path)) {
                    Ok(None) => expired = Some(t0.elapsed()),
                    Ok(Some(_)) => {}
                    Err(e) => bail!("stat {id_path}: {e}"),
                }
            }
            if elected.is_none() {
                if let Some((l, e)) = read_state(&zk)? {
                    if l != victim && l >= 0 && e > epoch0 {
                        elected = Some(t0.elapsed());
                        (new_leader, new_epoch) = (l, e);
                    }
                }
            }
        }
        let ok_after = p.context().first_ok_after.load(Ordering::Relaxed);
        let md_done = metadata_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if expired.is_some() && elected.is_some() && md_done && ok_after != u64::MAX {
            break;
        }
        if t0.elapsed() > o.max_wait {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = p.flush(Duration::from_secs(30));
    let _ = watcher.join();
    let ctx = p.context();
    let kill_ns = (t0 - base).as_nanos() as u64;
    let rel = |ns: u64| {
        if ns == u64::MAX || ns == 0 {
            Value::Null
        } else {
            json!(((ns as f64 - kill_ns as f64) / 1e5).round() / 10.0)
        }
    };
    let md = *metadata_at.lock().unwrap_or_else(|p| p.into_inner());
    Ok(json!({
        "phase": "failover",
        "topic": o.topic,
        "partition": o.partition,
        "victim": victim,
        "victim_pid": victim_pid,
        "old_epoch": epoch0,
        "new_leader": new_leader,
        "new_epoch": new_epoch,
        "kill_cmd_ms": kill_ms,
        "session_expired_ms": expired.map(ms),
        "elected_ms": elected.map(ms),
        "metadata_ms": md.map(|(d, _)| ms(d)),
        "metadata_leader": md.map(|(_, l)| l),
        "recovered_ms": rel(ctx.first_ok_after.load(Ordering::Relaxed)),
        "last_ack_of_earlier_record_ms": rel(ctx.last_ok_before.load(Ordering::Relaxed)),
        "rate": o.rate,
        "acked_before_kill": acked_before,
        "acked": ctx.ok.load(Ordering::Relaxed),
        "failed": ctx.failed.load(Ordering::Relaxed),
        "first_error": ctx.first_error.lock().ok().and_then(|e| e.clone()),
        "sent": i,
    }))
}
