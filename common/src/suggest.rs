//! "Did you mean ...?" for configuration keys: the closest known key to a
//! misspelt one, shared by the broker's and the coordinator's config loaders.

/// The candidate closest to `key` by edit distance (a swap of two neighbours
/// counts as one edit, case is ignored), if it is close enough to be a likely
/// typo rather than a different key: at most 2 edits, or a fifth of the
/// key's length for long keys.
pub fn closest<'a>(key: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let key = key.to_ascii_lowercase();
    let limit = (key.chars().count() / 5).max(2);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let d = distance(&key, &candidate.to_ascii_lowercase());
        // Strictly better only: the first of equals (candidate order) wins.
        if d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions
/// and transpositions of adjacent characters each cost 1.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows are enough: the transposition looks two rows back.
    let mut before = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits_and_swaps() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("tickTime", "tikcTime"), 1);
        assert_eq!(distance("num.partiton", "num.partitions"), 2);
    }

    #[test]
    fn closest_finds_typos_only() {
        let keys = ["num.partitions", "num.io.threads", "broker.id", "log.dirs"];
        assert_eq!(closest("num.partiton", keys), Some("num.partitions"));
        assert_eq!(closest("NUM.PARTITIONS", keys), Some("num.partitions"));
        assert_eq!(closest("brokr.id", keys), Some("broker.id"));
        assert_eq!(closest("log.dir", keys), Some("log.dirs"));
        assert_eq!(closest("completely.different", keys), None);
        assert_eq!(closest("x", ["y"]), Some("y"));
        assert_eq!(closest("abc", []), None);
    }

    #[test]
    fn ties_go_to_the_first_candidate() {
        assert_eq!(closest("ab", ["aa", "bb"]), Some("aa"));
    }
}
