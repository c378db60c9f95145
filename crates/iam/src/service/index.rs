//! The managed-policy usage indexes (attachments and permissions boundaries), kept in the same
//! transaction as the entities they describe.

use crate::db::Tx;
use crate::error::Result;
use crate::model::{attachment_key, tables, AttachmentRec, EntityKind};

/// An entity a policy can be attached to.
pub struct EntityRef<'a> {
    pub kind: EntityKind,
    pub name: &'a str,
    pub id: &'a str,
    pub path: &'a str,
}

impl EntityRef<'_> {
    fn rec(&self) -> AttachmentRec {
        AttachmentRec { kind: self.kind, name: self.name.into(), id: self.id.into(), path: self.path.into() }
    }
}

pub fn attach(tx: &mut Tx<'_>, account: &str, policy_arn: &str, e: &EntityRef<'_>) -> Result<()> {
    tx.put(tables::ATTACHMENTS, &attachment_key(account, policy_arn, e.kind, e.name), &e.rec())
}

pub fn detach(tx: &mut Tx<'_>, account: &str, policy_arn: &str, kind: EntityKind, name: &str) -> Result<()> {
    tx.delete(tables::ATTACHMENTS, &attachment_key(account, policy_arn, kind, name))?;
    Ok(())
}

/// Move the boundary-use entry of an entity from `old` to `new`.
pub fn set_boundary(
    tx: &mut Tx<'_>,
    account: &str,
    old: Option<&str>,
    new: Option<&str>,
    e: &EntityRef<'_>,
) -> Result<()> {
    if let Some(old) = old {
        tx.delete(tables::BOUNDARY_USES, &attachment_key(account, old, e.kind, e.name))?;
    }
    if let Some(new) = new {
        tx.put(tables::BOUNDARY_USES, &attachment_key(account, new, e.kind, e.name), &e.rec())?;
    }
    Ok(())
}

/// Re-key an entity's index entries after a rename or path change.
pub fn rename(
    tx: &mut Tx<'_>,
    account: &str,
    attached: &[String],
    boundary: Option<&str>,
    old_name: &str,
    new: &EntityRef<'_>,
) -> Result<()> {
    for arn in attached {
        detach(tx, account, arn, new.kind, old_name)?;
        attach(tx, account, arn, new)?;
    }
    if let Some(b) = boundary {
        tx.delete(tables::BOUNDARY_USES, &attachment_key(account, b, new.kind, old_name))?;
        set_boundary(tx, account, None, Some(b), new)?;
    }
    Ok(())
}
