//! Znode path rules (ZooKeeper's `PathUtils.validatePath`) and path arithmetic.

/// Checks a path as ZooKeeper does: absolute, no trailing `/` (except the
/// root), no empty, `.` or `..` segments, no control or reserved characters.
pub fn validate(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') {
        return Err("path must start with /");
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("path must not end with /");
    }
    for segment in path[1..].split('/') {
        match segment {
            "" => return Err("empty node name"),
            "." | ".." => return Err("relative paths not allowed"),
            _ => {}
        }
    }
    let invalid =
        |c: char| matches!(c as u32, 0x00..=0x1f | 0x7f..=0x9f | 0xd800..=0xf8ff | 0xfff0..);
    if path.chars().any(invalid) {
        return Err("invalid character");
    }
    Ok(())
}

/// Splits a non-root path into its parent and its last name.
pub fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// `path` itself, then each ancestor up to and including `/`.
pub fn self_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = (current != "/").then(|| split(current).0);
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_zookeeper_accepts() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a.b/..c/.d",
            "/ünïcode",
            "/a-b_c:0000000001",
        ] {
            assert_eq!(validate(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn rejects_what_zookeeper_rejects() {
        for p in [
            "",
            "a",
            "a/b",
            "/a/",
            "//",
            "/a//b",
            "/a/./b",
            "/a/..",
            "/.",
            "/a\u{0}b",
            "/a\u{1}",
            "/\u{fffe}",
            "/\u{1F600}",
        ] {
            assert!(validate(p).is_err(), "{p:?}");
        }
    }

    #[test]
    fn splits_and_joins() {
        assert_eq!(split("/a"), ("/", "a"));
        assert_eq!(split("/a/b/c"), ("/a/b", "c"));
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        let chain: Vec<_> = self_and_ancestors("/a/b/c").collect();
        assert_eq!(chain, ["/a/b/c", "/a/b", "/a", "/"]);
        assert_eq!(self_and_ancestors("/").collect::<Vec<_>>(), ["/"]);
    }
}
