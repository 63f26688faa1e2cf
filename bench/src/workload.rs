//! Workload kinds (create/set/get/mix), per-op choice and the znode paths they touch.

use std::fmt;

/// What a run does to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Create new persistent znodes (unique paths) carrying a value.
    Create,
    /// Overwrite the data of znodes from a pre-created node set.
    Set,
    /// Read znodes from a pre-created node set.
    Get,
    /// 90% get / 10% set over the node set.
    Mix,
}

impl Workload {
    /// Lower-case name, as used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::Set => "set",
            Workload::Get => "get",
            Workload::Mix => "mix",
        }
    }

    /// Whether the workload reads/writes a pre-created node set.
    pub fn needs_node_set(self) -> bool {
        !matches!(self, Workload::Create)
    }

    /// Picks the next operation. `nodes` is the node-set size (ignored for create).
    pub fn next_op(self, rng: &mut Rng, nodes: usize) -> Op {
        match self {
            Workload::Create => Op::Create,
            Workload::Set => Op::Set(rng.below(nodes)),
            Workload::Get => Op::Get(rng.below(nodes)),
            Workload::Mix => {
                if rng.below(10) == 0 {
                    Op::Set(rng.below(nodes))
                } else {
                    Op::Get(rng.below(nodes))
                }
            }
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One request to issue; `Set`/`Get` carry an index into the node set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create,
    Set(usize),
    Get(usize),
}

/// Kind of a completed op, for per-kind counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Create,
    Set,
    Get,
}

impl Op {
    pub fn kind(self) -> OpKind {
        match self {
            Op::Create => OpKind::Create,
            Op::Set(_) => OpKind::Set,
            Op::Get(_) => OpKind::Get,
        }
    }
}

/// Paths of the `count` znodes of the shared node set under `dir`.
pub fn node_set_paths(dir: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{dir}/n{i}")).collect()
}

/// Path of the `seq`-th znode created by session `session` under `dir`.
pub fn create_path(dir: &str, session: usize, seq: u64) -> String {
    format!("{dir}/s{session}-{seq}")
}

/// SplitMix64: tiny, fast and good enough to spread ops over the node set.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish value in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // Multiply-shift range reduction; bias is negligible for bench purposes.
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_about_ten_percent_sets() {
        let mut rng = Rng::new(7);
        let n = 100_000;
        let sets = (0..n)
            .filter(|_| matches!(Workload::Mix.next_op(&mut rng, 1000), Op::Set(_)))
            .count();
        assert!((9_000..11_000).contains(&sets), "sets = {sets}");
    }

    #[test]
    fn ops_stay_inside_node_set() {
        let mut rng = Rng::new(1);
        for _ in 0..10_000 {
            match Workload::Get.next_op(&mut rng, 3) {
                Op::Get(i) => assert!(i < 3),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(Workload::Create.next_op(&mut rng, 0), Op::Create);
    }

    #[test]
    fn paths() {
        assert_eq!(node_set_paths("/b/d", 2), vec!["/b/d/n0", "/b/d/n1"]);
        assert_eq!(create_path("/b/c1", 3, 9), "/b/c1/s3-9");
    }
}
