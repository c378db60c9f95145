//! Principal / NotPrincipal matching.
//!
//! AWS evaluates a request as coming from several identities at once: the account, then the IAM user
//! (or the role, then the role session, or the federated-user session). A `Principal` entry matches when
//! it names any of them; the strongest identity named decides how a resource policy's allow combines
//! with identity policies (see [`Grant`]). `NotPrincipal` excludes a principal only when *every* one of
//! its identities is listed — which is why AWS tells you to list the account ARN (and for a session, the
//! role ARN) next to the user or session you mean to exclude.

use serde::{Deserialize, Serialize};

use crate::ast::{PrincipalSpec, PrincipalType};
use crate::{Principal, PrincipalKind};

/// How a resource policy's Principal element named the requester; ordered from weakest to strongest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Grant {
    /// The requester's account (`"123456789012"` or `arn:aws:iam::123456789012:root`): delegation — the
    /// account's identity policies must allow too.
    Account,
    /// The IAM role of a role session: limited by the session's permissions boundary and session policy.
    Role,
    /// The principal itself (IAM user ARN, role-session ARN, federated-user ARN, service, …), or `"*"`.
    Principal,
}

/// A compiled Principal/NotPrincipal element.
#[derive(Clone, Debug, Default)]
pub struct Matcher {
    pub negated: bool,
    /// `"*"`: everyone (anonymous and services included).
    everyone: bool,
    /// `{"AWS": "*"}`: every AWS principal (not services).
    any_aws: bool,
    accounts: Vec<Box<str>>,
    arns: Vec<Box<str>>,
    services: Vec<Box<str>>,
    other: Vec<Box<str>>,
}

/// The account named by an AWS principal value (`123456789012` or `arn:PARTITION:iam::123456789012:root`).
fn account_of(v: &str) -> Option<&str> {
    if v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(v);
    }
    let rest = v.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let (_partition, service, region, account, resource) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (service == "iam" && region.is_empty() && resource == "root").then_some(account)
}

impl Matcher {
    pub fn new(spec: &PrincipalSpec) -> Matcher {
        let mut m = Matcher { negated: spec.negated, everyone: spec.wildcard, ..Matcher::default() };
        for (ty, values) in &spec.entries {
            for v in values {
                match ty {
                    PrincipalType::Aws if v == "*" => m.any_aws = true,
                    PrincipalType::Aws => match account_of(v) {
                        Some(a) => m.accounts.push(a.into()),
                        None => m.arns.push(v.as_str().into()),
                    },
                    PrincipalType::Service if v == "*" => m.everyone = true,
                    PrincipalType::Service => m.services.push(v.to_ascii_lowercase().into()),
                    PrincipalType::Federated | PrincipalType::CanonicalUser => m.other.push(v.as_str().into()),
                }
            }
        }
        m
    }

    /// For `Principal`: the strongest identity of `p` this element names, if any.
    pub fn grant(&self, p: &Principal) -> Option<Grant> {
        if self.everyone {
            return Some(Grant::Principal);
        }
        let aws = !matches!(p.kind, PrincipalKind::Service);
        if self.any_aws && aws {
            return Some(Grant::Principal);
        }
        let own = self.arns.iter().chain(&self.other).any(|a| **a == *p.arn);
        let named = |arn: &str| self.arns.iter().any(|a| **a == *arn);
        let account = || !p.account.is_empty() && self.accounts.iter().any(|a| **a == *p.account);
        match &p.kind {
            PrincipalKind::Service => {
                self.services.iter().any(|s| s.eq_ignore_ascii_case(&p.arn)).then_some(Grant::Principal)
            }
            PrincipalKind::Anonymous => None,
            // The root user is the account itself.
            PrincipalKind::Root => account().then_some(Grant::Principal),
            PrincipalKind::User | PrincipalKind::FederatedUser => {
                if own {
                    Some(Grant::Principal)
                } else {
                    account().then_some(Grant::Account)
                }
            }
            PrincipalKind::AssumedRole { role_arn } => {
                // A bare role ARN as the principal (the simulator's view of a role) is the role, not a session.
                let bare = p.arn == *role_arn;
                if own && !bare {
                    Some(Grant::Principal)
                } else if named(role_arn) || (bare && own) {
                    Some(Grant::Role)
                } else {
                    account().then_some(Grant::Account)
                }
            }
        }
    }

    /// For `NotPrincipal`: whether every identity of `p` is listed (then the statement does not apply).
    pub fn lists_all_identities(&self, p: &Principal) -> bool {
        if self.everyone {
            return true;
        }
        let account_listed = || !p.account.is_empty() && self.accounts.iter().any(|a| **a == *p.account);
        let arn_listed = |arn: &str| self.arns.iter().any(|a| **a == *arn) || self.other.iter().any(|a| **a == *arn);
        match &p.kind {
            PrincipalKind::Service => self.services.iter().any(|s| s.eq_ignore_ascii_case(&p.arn)),
            _ if self.any_aws => true,
            PrincipalKind::Anonymous => false,
            PrincipalKind::Root => account_listed(),
            PrincipalKind::User | PrincipalKind::FederatedUser => account_listed() && arn_listed(&p.arn),
            PrincipalKind::AssumedRole { role_arn } if *role_arn == p.arn => account_listed() && arn_listed(&p.arn),
            PrincipalKind::AssumedRole { role_arn } => {
                account_listed() && self.arns.iter().any(|a| **a == **role_arn) && arn_listed(&p.arn)
            }
        }
    }

    /// Whether the statement applies to `p`, and with what grant (for Allow statements of resource policies).
    /// `NotPrincipal` statements that apply grant [`Grant::Principal`].
    pub fn applies(&self, p: &Principal) -> Option<Grant> {
        if self.negated {
            (!self.lists_all_identities(p)).then_some(Grant::Principal)
        } else {
            self.grant(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(negated: bool, aws: &[&str]) -> Matcher {
        Matcher::new(&PrincipalSpec {
            negated,
            wildcard: false,
            entries: vec![(PrincipalType::Aws, aws.iter().map(|s| s.to_string()).collect())],
        })
    }

    fn session() -> Principal {
        Principal {
            arn: "arn:aws:sts::111122223333:assumed-role/R/s".into(),
            account: "111122223333".into(),
            kind: PrincipalKind::AssumedRole { role_arn: "arn:aws:iam::111122223333:role/R".into() },
        }
    }

    #[test]
    fn grants() {
        let user = Principal::iam_user("arn:aws:iam::111122223333:user/alice", "111122223333");
        assert_eq!(spec(false, &["111122223333"]).grant(&user), Some(Grant::Account));
        assert_eq!(spec(false, &["arn:aws:iam::111122223333:root"]).grant(&user), Some(Grant::Account));
        assert_eq!(spec(false, &["arn:aws:iam::111122223333:user/alice"]).grant(&user), Some(Grant::Principal));
        assert_eq!(spec(false, &["arn:aws:iam::111122223333:user/bob"]).grant(&user), None);
        assert_eq!(spec(false, &["arn:aws:iam::111122223333:role/R"]).grant(&session()), Some(Grant::Role));
        assert_eq!(
            spec(false, &["arn:aws:sts::111122223333:assumed-role/R/s"]).grant(&session()),
            Some(Grant::Principal)
        );
        assert_eq!(spec(false, &["*"]).grant(&session()), Some(Grant::Principal));
    }

    #[test]
    fn not_principal_needs_every_identity() {
        let user = Principal::iam_user("arn:aws:iam::111122223333:user/alice", "111122223333");
        assert!(!spec(true, &["arn:aws:iam::111122223333:user/alice"]).lists_all_identities(&user));
        assert!(spec(true, &["arn:aws:iam::111122223333:user/alice", "111122223333"]).lists_all_identities(&user));
        let s = session();
        assert!(!spec(true, &["arn:aws:sts::111122223333:assumed-role/R/s", "111122223333"]).lists_all_identities(&s));
        assert!(spec(
            true,
            &["arn:aws:sts::111122223333:assumed-role/R/s", "arn:aws:iam::111122223333:role/R", "111122223333"]
        )
        .lists_all_identities(&s));
    }
}
