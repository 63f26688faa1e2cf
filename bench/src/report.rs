//! The one-line JSON report `zkbench` prints per run.

use crate::driver::Outcome;
use serde_json::{json, Value};
use std::time::Duration;

/// Run parameters echoed into the report.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub label: Option<String>,
    pub server: String,
    pub workload: String,
    pub sessions: usize,
    pub inflight: usize,
    pub value_size: usize,
}

/// Resource usage sampled around the measured phase.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    pub client_cpu: Option<Duration>,
    pub server_cpu: Option<Duration>,
    /// Busy CPU time of the whole host (all processes, all cores).
    pub host_cpu: Option<Duration>,
    pub server_rss_kib: Option<u64>,
}

impl Resources {
    /// Host CPU not used by this client or the server: other load that disturbs the run.
    fn other_cpu(&self) -> Option<Duration> {
        let used = self.client_cpu.unwrap_or_default() + self.server_cpu?;
        Some(self.host_cpu?.saturating_sub(used))
    }
}

fn ms(us: u64) -> f64 {
    round3(us as f64 / 1000.0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn pct(cpu: Option<Duration>, wall: Duration) -> Value {
    match cpu {
        Some(c) if !wall.is_zero() => {
            json!((c.as_secs_f64() / wall.as_secs_f64() * 1000.0).round() / 10.0)
        }
        _ => Value::Null,
    }
}

/// Builds the report object for a measured phase lasting `elapsed`.
pub fn report(info: &RunInfo, out: &Outcome, elapsed: Duration, res: &Resources) -> Value {
    let h = &out.latency_us;
    let secs = elapsed.as_secs_f64();
    let ops = out.ops();
    let ops_per_s = if secs > 0.0 {
        (ops as f64 / secs).round()
    } else {
        0.0
    };
    let have = ops > 0;
    let q = |quantile: f64| {
        if have {
            json!(ms(h.value_at_quantile(quantile)))
        } else {
            Value::Null
        }
    };
    json!({
        "label": info.label,
        "server": info.server,
        "workload": info.workload,
        "sessions": info.sessions,
        "inflight": info.inflight,
        "value_size": info.value_size,
        "ops": ops,
        "creates": out.creates,
        "sets": out.sets,
        "gets": out.gets,
        "errors": out.errors,
        "first_error": out.first_error,
        "duration_s": round3(secs),
        "ops_per_s": ops_per_s,
        "mean_ms": if have { json!(round3(h.mean() / 1000.0)) } else { Value::Null },
        "p50_ms": q(0.50),
        "p99_ms": q(0.99),
        "p999_ms": q(0.999),
        "max_ms": if have { json!(ms(h.max())) } else { Value::Null },
        "client_cpu_pct": pct(res.client_cpu, elapsed),
        "server_cpu_pct": pct(res.server_cpu, elapsed),
        "host_cpu_pct": pct(res.host_cpu, elapsed),
        "other_cpu_pct": pct(res.other_cpu(), elapsed),
        "server_rss_kib": res.server_rss_kib,
    })
}
