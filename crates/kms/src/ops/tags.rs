//! Key tags: TagResource, UntagResource, ListResourceTags.

use rampart_service::{op, AuthzPlan, ContextValue, Entry, Input, Operation, Output, RequestContext};
use serde_json::{json, Value};

use super::{empty, key_id_or_arn_only, tag_context, tags_input, too_many_tags, KeyRef, Later, Page, MAX_TAGS};
use crate::core::Kms;
use crate::error::{KmsError, Result};
use crate::input::{missing, In};
use crate::model::Tag;

/// The operations of this family, each listed once.
pub(super) const OPS: &[Entry<Kms>] =
    &[op::<Kms, TagResource>(), op::<Kms, UntagResource>(), op::<Kms, ListResourceTags>()];

/// A required list member that is absent: AWS reports it after authorization.
fn required(i: &In<'_>, member: &str) -> Later<()> {
    if i.has(member) {
        Ok(())
    } else {
        Err(missing(member))
    }
}

pub(super) struct TagResource {
    key: KeyRef,
    tags: Vec<Tag>,
    present: Later<()>,
}

impl Operation<Kms> for TagResource {
    const NAME: &'static str = "TagResource";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let tags = tags_input(&i)?;
        let key = KeyRef::parse(&i, "KeyId")?;
        Ok(TagResource { key, tags, present: required(&i, "Tags") })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, tag_context(&self.tags))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        self.present?;
        k.require_not_pending()?;
        let tags = self.tags;
        kms.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
            // A re-tagged key keeps its place; new keys go last (AWS keeps the original order).
            for t in tags {
                match r.tags.iter_mut().find(|x| x.key == t.key) {
                    Some(x) => x.value = t.value,
                    None => r.tags.push(t),
                }
            }
            if r.tags.len() > MAX_TAGS {
                return Err(too_many_tags());
            }
            Ok(())
        })?;
        Ok(empty())
    }
}

pub(super) struct UntagResource {
    key: KeyRef,
    tag_keys: Vec<String>,
    present: Later<()>,
}

impl Operation<Kms> for UntagResource {
    const NAME: &'static str = "UntagResource";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let tag_keys = i.str_list("TagKeys")?;
        let key = KeyRef::parse(&i, "KeyId")?;
        Ok(UntagResource { key, tag_keys, present: required(&i, "TagKeys") })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let extra = vec![("aws:TagKeys".into(), ContextValue::List(self.tag_keys.clone()))];
        self.key.plan(kms, ctx, Self::NAME, extra)
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        self.present?;
        k.require_not_pending()?;
        let keys = self.tag_keys;
        kms.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
            r.tags.retain(|t| !keys.contains(&t.key));
            Ok(())
        })?;
        Ok(empty())
    }
}

pub(super) struct ListResourceTags {
    key: KeyRef,
    page: Later<Page>,
}

impl Operation<Kms> for ListResourceTags {
    const NAME: &'static str = "ListResourceTags";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let key = KeyRef::parse(&i, "KeyId")?;
        Ok(ListResourceTags { key, page: Page::parse(&i, 50) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let page = self.page?;
        let tags: Vec<Value> = k.rec.tags.iter().map(|t| json!({"TagKey": t.key, "TagValue": t.value})).collect();
        page.answer("Tags", tags)
    }
}
