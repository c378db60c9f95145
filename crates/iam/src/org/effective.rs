//! Effective management policies.

use rampart_service::Entry;

use super::*;

/// The operations of this family, each listed once.
pub const OPS: &[Entry<OrgService>] = &[];
