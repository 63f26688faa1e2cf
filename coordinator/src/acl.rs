//! Access control as ZooKeeper does it: the identities a session holds
//! (`ip` always, `digest` after `addauth`), the rewriting of a new ACL
//! (`fixupACL`), and the permission check every operation makes.

use std::net::IpAddr;

use base64::Engine;

use crate::proto::acl::perms;
use crate::proto::records::ClientInfo;
use crate::proto::{Acl, ErrorCode};

/// The digest id ZooKeeper derives from `user:password`: `user:base64(sha1)`.
pub fn digest_id(user_password: &str) -> Option<String> {
    let (user, _) = user_password.split_once(':')?;
    let hash = sha1_smol::Sha1::from(user_password).digest().bytes();
    Some(format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    ))
}

/// Checks a new ACL as ZooKeeper's `fixupACL` does; the `auth` scheme becomes
/// the session's digest identities.
pub fn fixup_acl(acl: &[Acl], auth: &[ClientInfo]) -> Result<Vec<Acl>, ErrorCode> {
    if acl.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(acl.len());
    for a in acl {
        if a.perms & !perms::ALL != 0 {
            return Err(ErrorCode::InvalidAcl);
        }
        match a.scheme.as_str() {
            "world" if a.id == "anyone" => out.push(a.clone()),
            "auth" => {
                let mut any = false;
                for info in auth.iter().filter(|i| i.auth_scheme == "digest") {
                    any = true;
                    out.push(Acl {
                        perms: a.perms,
                        scheme: "digest".into(),
                        id: info.user.clone(),
                    });
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" if a.id.contains(':') => out.push(a.clone()),
            "ip" if parse_ip_id(&a.id).is_some() => out.push(a.clone()),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

/// `addr` or `addr/bits`.
fn parse_ip_id(id: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match id.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (id, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b.parse().ok().filter(|b| *b <= max)?,
        None => max,
    };
    Some((addr, bits))
}

fn ip_matches(acl_id: &str, client: &str) -> bool {
    let (Some((net, bits)), Ok(client)) = (parse_ip_id(acl_id), client.parse::<IpAddr>()) else {
        return false;
    };
    let (net, client, width) = match (net, client) {
        (IpAddr::V4(n), IpAddr::V4(c)) => (u128::from(u32::from(n)), u128::from(u32::from(c)), 32),
        (IpAddr::V6(n), IpAddr::V6(c)) => (u128::from(n), u128::from(c), 128),
        _ => return false,
    };
    let mask = if bits == 0 {
        0
    } else {
        (!0u128 << (width - bits)) & (!0u128 >> (128 - width))
    };
    net & mask == client & mask
}

/// True when some entry of `acl` grants any of `perm` to one of the
/// session's identities. An empty ACL allows everything, as in ZooKeeper.
pub fn check_acl(acl: &[Acl], perm: i32, auth: &[ClientInfo]) -> Result<(), ErrorCode> {
    if acl.is_empty() {
        return Ok(());
    }
    let granted = acl
        .iter()
        .filter(|a| a.perms & perm != 0)
        .any(|a| match a.scheme.as_str() {
            "world" => a.id == "anyone",
            "digest" => auth
                .iter()
                .any(|i| i.auth_scheme == "digest" && i.user == a.id),
            "ip" => auth
                .iter()
                .any(|i| i.auth_scheme == "ip" && ip_matches(&a.id, &i.user)),
            _ => false,
        });
    if granted {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

/// getACL without ADMIN shows digest ids as `user:x`, hiding the hash.
pub fn redact(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| match (a.scheme.as_str(), a.id.split_once(':')) {
            ("digest", Some((user, _))) => Acl {
                id: format!("{user}:x"),
                ..a.clone()
            },
            _ => a.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(addr: &str) -> ClientInfo {
        ClientInfo {
            auth_scheme: "ip".into(),
            user: addr.into(),
        }
    }

    #[test]
    fn digest_matches_zookeeper() {
        // As printed by ZooKeeper 3.8's DigestAuthenticationProvider for super:zookeeper.
        assert_eq!(
            digest_id("super:zookeeper").as_deref(),
            Some("super:yyuhPKumRtNj4r8GnSbbwuq1vhE=")
        );
        assert_eq!(digest_id("nocolon"), None);
    }

    #[test]
    fn auth_acl_becomes_the_session_digest() {
        let id = digest_id("user:secret").expect("has a colon");
        let auth = [ClientInfo {
            auth_scheme: "digest".into(),
            user: id.clone(),
        }];
        let acl = [Acl {
            perms: 31,
            scheme: "auth".into(),
            id: String::new(),
        }];
        assert_eq!(fixup_acl(&acl, &[]), Err(ErrorCode::InvalidAcl));
        let fixed = fixup_acl(&acl, &auth).expect("with auth");
        assert_eq!(
            fixed,
            vec![Acl {
                perms: 31,
                scheme: "digest".into(),
                id
            }]
        );
        assert!(fixup_acl(
            &[Acl {
                perms: 1,
                scheme: "ip".into(),
                id: "10.0.0.0/8".into()
            }],
            &[]
        )
        .is_ok());
        assert!(fixup_acl(
            &[Acl {
                perms: 1,
                scheme: "ip".into(),
                id: "10.0.0.0/99".into()
            }],
            &[]
        )
        .is_err());
        assert!(fixup_acl(
            &[Acl {
                perms: 64,
                scheme: "world".into(),
                id: "anyone".into()
            }],
            &[]
        )
        .is_err());
    }

    #[test]
    fn permission_checks() {
        let alice = ClientInfo {
            auth_scheme: "digest".into(),
            user: "alice:h".into(),
        };
        let acl = [
            Acl {
                perms: perms::READ,
                scheme: "world".into(),
                id: "anyone".into(),
            },
            Acl {
                perms: perms::ALL,
                scheme: "digest".into(),
                id: "alice:h".into(),
            },
            Acl {
                perms: perms::WRITE,
                scheme: "ip".into(),
                id: "10.1.0.0/16".into(),
            },
        ];
        assert_eq!(check_acl(&acl, perms::READ, &[]), Ok(()));
        assert_eq!(
            check_acl(&acl, perms::DELETE, &[ip("127.0.0.1")]),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(check_acl(&acl, perms::DELETE, &[alice]), Ok(()));
        assert_eq!(check_acl(&acl, perms::WRITE, &[ip("10.1.200.3")]), Ok(()));
        assert_eq!(
            check_acl(&acl, perms::WRITE, &[ip("10.2.0.1")]),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(check_acl(&[], perms::ADMIN, &[]), Ok(()));
    }

    #[test]
    fn redaction_hides_digest_hashes() {
        let acl = [Acl {
            perms: 31,
            scheme: "digest".into(),
            id: "bob:HASH".into(),
        }];
        assert_eq!(redact(&acl)[0].id, "bob:x");
    }
}
