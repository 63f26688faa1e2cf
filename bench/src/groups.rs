//! Consumer-group phases for `kafkabench` (librdkafka via the `rdkafka` crate): rebalance time
//! after a member leaves (clean `close()`, i.e. LeaveGroup) or vanishes (SIGKILL of a member
//! process, so only the session timeout removes it), and offset-commit throughput of a group
//! coordinator (also used at a low rate as a background committer).

use crate::sampler::Sampler;
use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const META_TIMEOUT: Duration = Duration::from_secs(10);

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn ms(d: Duration) -> f64 {
    round1(d.as_secs_f64() * 1000.0)
}

fn merge(out: &mut Value, extra: Value) {
    if let (Some(o), Value::Object(e)) = (out.as_object_mut(), extra) {
        o.extend(e);
    }
}

/// Base settings of every group client here; `extra` (`key=value`) last.
fn group_config(brokers: &str, group: &str, extra: &[(String, String)]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers)
        .set("client.id", "kafkabench")
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "latest")
        .set("log_level", "3");
    for (k, v) in extra {
        cfg.set(k, v);
    }
    cfg
}

/// Partition ids of `topic` per the metadata of `c`.
fn partitions(c: &BaseConsumer, topic: &str) -> Result<Vec<i32>> {
    let md = c
        .fetch_metadata(Some(topic), META_TIMEOUT)
        .context("metadata")?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| anyhow!("no metadata for {topic}"))?;
    if let Some(e) = t.error() {
        bail!("metadata of {topic}: {e:?}");
    }
    let mut ps: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ps.sort();
    if ps.is_empty() {
        bail!("{topic} has no partitions");
    }
    Ok(ps)
}

fn assignment_of(c: &BaseConsumer, topic: &str) -> BTreeSet<i32> {
    c.assignment()
        .map(|tpl| {
            tpl.elements()
                .iter()
                .filter(|e| e.topic() == topic)
                .map(|e| e.partition())
                .collect()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------------ group members

/// What the bench knows about one member: its latest assignment (`None` before the first) and,
/// for an in-process member, when its close started and how long `close()` took.
#[derive(Default)]
struct MemberState {
    assigned: Option<BTreeSet<i32>>,
    close_start: Option<Instant>,
    close_took: Option<Duration>,
    error: Option<String>,
}

type Shared = Arc<Mutex<MemberState>>;

enum Member {
    Thread {
        stop: Arc<AtomicBool>,
        state: Shared,
        handle: JoinHandle<()>,
    },
    Process {
        child: Child,
        state: Shared,
    },
}

impl Member {
    fn state(&self) -> &Shared {
        match self {
            Member::Thread { state, .. } | Member::Process { state, .. } => state,
        }
    }

    /// A member in this process: subscribes and polls every 5 ms until stopped, then closes
    /// (dropping a `BaseConsumer` with a group id runs `rd_kafka_consumer_close`, which sends
    /// LeaveGroup) and records when the close started and how long it took.
    fn thread(brokers: &str, topic: &str, group: &str, extra: &[(String, String)]) -> Result<Self> {
        let c: BaseConsumer = group_config(brokers, group, extra).create()?;
        c.subscribe(&[topic]).context("subscribe")?;
        let stop = Arc::new(AtomicBool::new(false));
        let state: Shared = Arc::default();
        let handle = {
            let (stop, state, topic) = (Arc::clone(&stop), Arc::clone(&state), topic.to_owned());
            std::thread::spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    state.lock().unwrap_or_else(|p| p.into_inner()).close_start = Some(t);
                    drop(c);
                    state.lock().unwrap_or_else(|p| p.into_inner()).close_took = Some(t.elapsed());
                    return;
                }
                if let Some(Err(e)) = c.poll(Duration::from_millis(5)) {
                    state
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .error
                        .get_or_insert(e.to_string());
                }
                let a = assignment_of(&c, &topic);
                state.lock().unwrap_or_else(|p| p.into_inner()).assigned = Some(a);
            })
        };
        Ok(Member::Thread {
            stop,
            state,
            handle,
        })
    }

    /// A member in a child `kafkabench group-member` process (so it can vanish by SIGKILL);
    /// it prints its assignment whenever it changes.
    fn process(
        brokers: &str,
        topic: &str,
        group: &str,
        extra: &[(String, String)],
    ) -> Result<Self> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args([
            "group-member",
            "--brokers",
            brokers,
            "--topic",
            topic,
            "--group",
            group,
        ]);
        for (k, v) in extra {
            cmd.args(["--set", &format!("{k}={v}")]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning group-member")?;
        let out = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let state: Shared = Arc::default();
        let s = Arc::clone(&state);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(list) = line.strip_prefix("assigned ") {
                    let set = list
                        .split(',')
                        .filter_map(|p| p.trim().parse().ok())
                        .collect();
                    s.lock().unwrap_or_else(|p| p.into_inner()).assigned = Some(set);
                }
            }
        });
        Ok(Member::Process { child, state })
    }

    /// Clean leave (thread) or SIGKILL (process); returns when the leave started.
    fn leave(&mut self) -> Result<Instant> {
        match self {
            Member::Thread { stop, state, .. } => {
                stop.store(true, Ordering::Relaxed);
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    if let Some(t) = state.lock().unwrap_or_else(|p| p.into_inner()).close_start {
                        return Ok(t);
                    }
                    if Instant::now() > deadline {
                        bail!("member thread did not start closing");
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            Member::Process { child, .. } => {
                let t = Instant::now();
                child.kill().context("SIGKILL member")?;
                let _ = child.wait();
                Ok(t)
            }
        }
    }

    /// Stops the member (close for a thread, SIGKILL for a process) and waits for it.
    fn finish(self) -> Option<Duration> {
        match self {
            Member::Thread {
                stop,
                state,
                handle,
            } => {
                stop.store(true, Ordering::Relaxed);
                let _ = handle.join();
                let took = state.lock().unwrap_or_else(|p| p.into_inner()).close_took;
                took
            }
            Member::Process { mut child, .. } => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }
}

/// `kafkabench group-member`: subscribe and poll forever, printing `assigned p,p,...` on every
/// change of the assignment (the child side of [`Member::process`]).
pub fn run_member(
    brokers: &str,
    topic: &str,
    group: &str,
    extra: &[(String, String)],
) -> Result<()> {
    let c: BaseConsumer = group_config(brokers, group, extra).create()?;
    c.subscribe(&[topic]).context("subscribe")?;
    let mut last: Option<BTreeSet<i32>> = None;
    let stdout = std::io::stdout();
    loop {
        let _ = c.poll(Duration::from_millis(5));
        let a = assignment_of(&c, topic);
        if last.as_ref() != Some(&a) {
            let list: Vec<String> = a.iter().map(|p| p.to_string()).collect();
            let mut out = stdout.lock();
            writeln!(out, "assigned {}", list.join(","))?;
            out.flush()?;
            last = Some(a);
        }
    }
}

/// True when the members' assignments are all known, pairwise disjoint and cover `all`, and
/// (while there are at least as many partitions as members) none is empty: a member that has
/// not joined yet shows an empty assignment while the others briefly cover everything.
fn covers(states: &[&Shared], all: &BTreeSet<i32>) -> bool {
    let mut seen = BTreeSet::new();
    for s in states {
        let g = s.lock().unwrap_or_else(|p| p.into_inner());
        let Some(a) = &g.assigned else { return false };
        if a.is_empty() && all.len() >= states.len() {
            return false;
        }
        for p in a {
            if !seen.insert(*p) {
                return false;
            }
        }
    }
    &seen == all
}

/// Settings of a rebalance run.
#[derive(Debug, Clone)]
pub struct RebalanceOpts {
    pub brokers: String,
    pub topic: String,
    pub members: usize,
    pub rounds: usize,
    /// SIGKILL a member process instead of closing an in-process member.
    pub vanish: bool,
    /// librdkafka settings of every member (session.timeout.ms, heartbeat.interval.ms, ...).
    pub extra: Vec<(String, String)>,
    pub pid: Option<u32>,
}

/// For each round: a fresh group of `members` consumers subscribes to the topic; once their
/// assignments are disjoint and cover every partition (and have stayed so for 500 ms), one
/// member leaves; measured is the time from the start of its leave (`close()` or SIGKILL) until
/// the remaining members again hold disjoint assignments covering every partition.
pub fn rebalance(o: &RebalanceOpts) -> Result<Value> {
    if o.members < 2 {
        bail!("--members must be at least 2");
    }
    let probe: BaseConsumer = group_config(&o.brokers, "kafkabench-probe", &[]).create()?;
    let all: BTreeSet<i32> = partitions(&probe, &o.topic)?.into_iter().collect();
    drop(probe);
    let run = std::process::id();
    let sampler = Sampler::start(o.pid)?;
    let mut rounds = Vec::new();
    for r in 0..o.rounds {
        let group = format!("kafkabench-rebalance-{run}-{r}");
        let t_join = Instant::now();
        let mut members = Vec::new();
        for i in 0..o.members {
            members.push(if i == 0 && o.vanish {
                Member::process(&o.brokers, &o.topic, &group, &o.extra)?
            } else {
                Member::thread(&o.brokers, &o.topic, &group, &o.extra)?
            });
        }
        // Stable initial assignment.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut stable_since: Option<Instant> = None;
        let join_ms = loop {
            let states: Vec<&Shared> = members.iter().map(Member::state).collect();
            if covers(&states, &all) {
                let s = *stable_since.get_or_insert_with(Instant::now);
                if s.elapsed() >= Duration::from_millis(500) {
                    break ms(s - t_join);
                }
            } else {
                stable_since = None;
            }
            if Instant::now() > deadline {
                let a: Vec<_> = states
                    .iter()
                    .map(|s| format!("{:?}", s.lock().unwrap_or_else(|p| p.into_inner()).assigned))
                    .collect();
                bail!("round {r}: no stable assignment within 60 s: {a:?}");
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let mut leaver = members.remove(0);
        let t0 = leaver.leave()?;
        let deadline = t0 + Duration::from_secs(120);
        let done = loop {
            let states: Vec<&Shared> = members.iter().map(Member::state).collect();
            if covers(&states, &all) {
                break Some(t0.elapsed());
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_micros(500));
        };
        let close_took = leaver.finish();
        let errors: Vec<String> = members
            .iter()
            .filter_map(|m| {
                m.state()
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .error
                    .clone()
            })
            .collect();
        for m in members {
            m.finish();
        }
        rounds.push(json!({
            "round": r,
            "initial_join_ms": join_ms,
            "close_ms": close_took.map(ms),
            "rebalance_ms": done.map(ms),
            "member_errors": errors,
        }));
    }
    let usage = sampler.finish()?;
    let mut times: Vec<f64> = rounds
        .iter()
        .filter_map(|r| r["rebalance_ms"].as_f64())
        .collect();
    times.sort_by(f64::total_cmp);
    let median = if times.is_empty() {
        Value::Null
    } else {
        json!(times[times.len() / 2])
    };
    let extra: serde_json::Map<String, Value> =
        o.extra.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let mut out = json!({
        "phase": "rebalance",
        "topic": o.topic,
        "partitions": all.len(),
        "members": o.members,
        "leave": if o.vanish { "sigkill" } else { "close" },
        "client_settings": extra,
        "rounds": rounds,
        "completed": times.len(),
        "median_ms": median,
        "max_ms": times.last(),
        "min_ms": times.first(),
    });
    merge(&mut out, usage.to_json());
    Ok(out)
}

// ------------------------------------------------------------------ offset commits

/// Settings of a commit run.
#[derive(Debug, Clone)]
pub struct CommitOpts {
    pub brokers: String,
    pub topic: String,
    /// Concurrent committers, each with its own group id (`<prefix>-<i>`).
    pub groups: usize,
    pub group_prefix: String,
    pub duration: Duration,
    pub warmup: Duration,
    /// None: commit back to back; Some: one commit per interval (background committer).
    pub interval: Option<Duration>,
    pub pid: Option<u32>,
}

/// Each committer thread synchronously commits explicit offsets for every partition of the
/// topic (simple-consumer commits: no subscription, generation -1), offsets increasing by one
/// per commit. Counts commit requests and partition offsets per second and times each commit.
pub fn commits(o: &CommitOpts) -> Result<Value> {
    if o.groups == 0 {
        bail!("--groups must be at least 1");
    }
    let probe: BaseConsumer = group_config(&o.brokers, "kafkabench-probe", &[]).create()?;
    let parts = partitions(&probe, &o.topic)?;
    drop(probe);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let mut handles = Vec::new();
    for i in 0..o.groups {
        let c: BaseConsumer =
            group_config(&o.brokers, &format!("{}-{i}", o.group_prefix), &[]).create()?;
        let (measuring, stop, failed, first_error) = (
            Arc::clone(&measuring),
            Arc::clone(&stop),
            Arc::clone(&failed),
            Arc::clone(&first_error),
        );
        let (topic, parts, interval) = (o.topic.clone(), parts.clone(), o.interval);
        handles.push(std::thread::spawn(
            move || -> Result<(Histogram<u64>, u64)> {
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
                let mut n = 0u64;
                let mut offset = 0i64;
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    if let Some(iv) = interval {
                        if let Some(w) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(w.min(Duration::from_millis(50)));
                            continue;
                        }
                        next += iv;
                    }
                    offset += 1;
                    let mut tpl = TopicPartitionList::new();
                    for p in &parts {
                        tpl.add_partition_offset(&topic, *p, Offset::Offset(offset))?;
                    }
                    let t = Instant::now();
                    let r = c.commit(&tpl, CommitMode::Sync);
                    let took = t.elapsed();
                    // Serves the consumer's queue (errors, logs); commits are synchronous anyway.
                    let _ = c.poll(Duration::ZERO);
                    match r {
                        Ok(()) if measuring.load(Ordering::Relaxed) => {
                            n += 1;
                            hist.saturating_record((took.as_micros() as u64).max(1));
                        }
                        Ok(()) => {}
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e.to_string());
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
                Ok((hist, n))
            },
        ));
    }
    std::thread::sleep(o.warmup);
    let sampler = Sampler::start(o.pid)?;
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(o.duration);
    measuring.store(false, Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    let usage = sampler.finish()?;
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut total = 0u64;
    for h in handles {
        let (hh, n) = h.join().map_err(|_| anyhow!("committer panicked"))??;
        hist.add(hh)?;
        total += n;
    }
    let q = |x: f64| {
        if total > 0 {
            json!(round1(hist.value_at_quantile(x) as f64 / 100.0) / 10.0)
        } else {
            Value::Null
        }
    };
    let mut out = json!({
        "phase": "commits",
        "topic": o.topic,
        "partitions": parts.len(),
        "groups": o.groups,
        "interval_ms": o.interval.map(|d| d.as_millis() as u64),
        "duration_s": round1(secs * 10.0) / 10.0,
        "commits": total,
        "commits_per_s": (total as f64 / secs).round(),
        "partition_offsets_per_s": (total as f64 * parts.len() as f64 / secs).round(),
        "failed": failed.load(Ordering::Relaxed),
        "first_error": first_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        "p50_ms": q(0.5),
        "p99_ms": q(0.99),
        "max_ms": if total > 0 { json!(hist.max() as f64 / 1000.0) } else { Value::Null },
    });
    merge(&mut out, usage.to_json());
    Ok(out)
}
