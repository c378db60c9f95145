//! SearchSampleQueries over Rampart's own library of sample queries (written for the events
//! Rampart records), ranked by how many of the search phrase's words a sample's name,
//! description and SQL contain. `$EDS_ID` stands for an event data store ID, as in AWS's samples.

/// (name, description, SQL).
pub const SAMPLES: &[(&str, &str, &str)] = &[
    (
        "Most frequent API calls",
        "The ten API calls made most often, with how many times each was called.",
        "SELECT eventSource, eventName, count(*) AS calls FROM $EDS_ID GROUP BY 1, 2 ORDER BY calls DESC LIMIT 10",
    ),
    (
        "Failed calls by error code",
        "How many calls failed, by error code and API call.",
        "SELECT errorCode, eventName, count(*) AS failures FROM $EDS_ID WHERE errorCode IS NOT NULL GROUP BY 1, 2 ORDER BY failures DESC",
    ),
    (
        "Access denied calls by principal",
        "The principals whose calls were denied (AccessDenied errors), with the denied API calls.",
        "SELECT userIdentity.arn AS principal, eventName, count(*) AS denied FROM $EDS_ID WHERE errorCode IN ('AccessDenied', 'AccessDeniedException') GROUP BY 1, 2 ORDER BY denied DESC",
    ),
    (
        "Activity of the root user",
        "Every call made with the account's root user credentials, newest first.",
        "SELECT eventTime, eventSource, eventName, sourceIPAddress FROM $EDS_ID WHERE userIdentity.type = 'Root' ORDER BY eventTime DESC",
    ),
    (
        "IAM users created or deleted",
        "IAM users created or deleted, by whom and when.",
        "SELECT eventTime, eventName, element_at(requestParameters, 'userName') AS userName, userIdentity.arn AS actor FROM $EDS_ID WHERE eventSource = 'iam.amazonaws.com' AND eventName IN ('CreateUser', 'DeleteUser') ORDER BY eventTime DESC",
    ),
    (
        "Access keys created",
        "New IAM access keys: for which user, by whom and when.",
        "SELECT eventTime, element_at(requestParameters, 'userName') AS userName, userIdentity.arn AS actor FROM $EDS_ID WHERE eventName = 'CreateAccessKey' ORDER BY eventTime DESC",
    ),
    (
        "IAM policy changes",
        "Changes to IAM permissions: inline and managed policies put, attached, detached or deleted.",
        "SELECT eventTime, eventName, userIdentity.arn AS actor, requestParameters FROM $EDS_ID WHERE eventSource = 'iam.amazonaws.com' AND eventName IN ('PutUserPolicy', 'PutRolePolicy', 'PutGroupPolicy', 'AttachUserPolicy', 'AttachRolePolicy', 'AttachGroupPolicy', 'DetachUserPolicy', 'DetachRolePolicy', 'DetachGroupPolicy', 'CreatePolicyVersion', 'DeletePolicy') ORDER BY eventTime DESC",
    ),
    (
        "Roles assumed",
        "AssumeRole calls by role and caller.",
        "SELECT element_at(requestParameters, 'roleArn') AS role, userIdentity.arn AS caller, count(*) AS sessions FROM $EDS_ID WHERE eventSource = 'sts.amazonaws.com' AND eventName = 'AssumeRole' GROUP BY 1, 2 ORDER BY sessions DESC",
    ),
    (
        "KMS keys disabled or scheduled for deletion",
        "KMS keys that were disabled or scheduled for deletion, and by whom.",
        "SELECT eventTime, eventName, element_at(requestParameters, 'keyId') AS keyId, userIdentity.arn AS actor FROM $EDS_ID WHERE eventSource = 'kms.amazonaws.com' AND eventName IN ('DisableKey', 'ScheduleKeyDeletion') ORDER BY eventTime DESC",
    ),
    (
        "Secrets read",
        "Who read which Secrets Manager secret values, and how often.",
        "SELECT element_at(requestParameters, 'secretId') AS secret, userIdentity.arn AS reader, count(*) AS reads FROM $EDS_ID WHERE eventSource = 'secretsmanager.amazonaws.com' AND eventName = 'GetSecretValue' GROUP BY 1, 2 ORDER BY reads DESC",
    ),
    (
        "Trail logging stopped or trails deleted",
        "Calls that stop CloudTrail logging or delete a trail or event data store.",
        "SELECT eventTime, eventName, userIdentity.arn AS actor, requestParameters FROM $EDS_ID WHERE eventSource = 'cloudtrail.amazonaws.com' AND eventName IN ('StopLogging', 'DeleteTrail', 'DeleteEventDataStore', 'StopEventDataStoreIngestion') ORDER BY eventTime DESC",
    ),
    (
        "Calls by source IP address",
        "The source IP addresses calls came from, with how many calls and principals each.",
        "SELECT sourceIPAddress, count(*) AS calls, approx_distinct(userIdentity.arn) AS principals FROM $EDS_ID GROUP BY 1 ORDER BY calls DESC",
    ),
    (
        "Hourly call volume",
        "How many calls were made each hour over the last day.",
        "SELECT date_trunc('hour', eventTime) AS hour, count(*) AS calls FROM $EDS_ID WHERE eventTime > date_add('day', -1, now()) GROUP BY 1 ORDER BY 1",
    ),
    (
        "Write calls by user",
        "Calls that change something (not read-only), by principal.",
        "SELECT userIdentity.arn AS principal, count(*) AS writes FROM $EDS_ID WHERE readOnly = false GROUP BY 1 ORDER BY writes DESC",
    ),
];

/// Words that say nothing about which sample is meant.
const STOP: &[&str] = &[
    "a", "an", "the", "of", "in", "on", "by", "for", "to", "and", "or", "with", "which", "what", "who", "show", "me",
    "list", "find", "all", "my", "is", "are", "were", "was", "that", "this", "how", "many", "query", "queries", "from",
    "get",
];

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let w = w.to_ascii_lowercase();
            // A plural as its singular ("keys" finds "key").
            match w.strip_suffix('s') {
                Some(stem) if stem.len() >= 3 && !w.ends_with("ss") => stem.to_string(),
                _ => w,
            }
        })
        .filter(|w| !STOP.contains(&w.as_str()))
        .collect()
}

/// The samples matching `phrase`, most relevant first: (index into [`SAMPLES`], relevance 0–1).
pub fn search(phrase: &str) -> Vec<(usize, f64)> {
    let wanted = words(phrase);
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut hits: Vec<(usize, f64)> = SAMPLES
        .iter()
        .enumerate()
        .filter_map(|(i, (name, description, sql))| {
            let have = words(&format!("{name} {description} {sql}"));
            let title = words(name);
            let mut score = 0.0;
            for w in &wanted {
                if title.contains(w) {
                    score += 1.0;
                } else if have.contains(w) {
                    score += 0.6;
                }
            }
            let relevance = (score / wanted.len() as f64).min(1.0);
            (relevance > 0.0).then_some((i, (relevance * 1000.0).round() / 1000.0))
        })
        .collect();
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    hits
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_is_a_valid_query() {
        for (name, _, sql) in SAMPLES {
            let t = crate::lake::sql::translate(&sql.replace("$EDS_ID", "a1b2c3d4-0000-4000-8000-000000000001"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            crate::lake::query::check(&t).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn search_ranks_by_the_phrase_words() {
        let top = |p: &str| SAMPLES[search(p)[0].0].0;
        assert_eq!(top("access keys created"), "Access keys created");
        assert_eq!(top("who assumed roles"), "Roles assumed");
        assert_eq!(top("root user activity"), "Activity of the root user");
        assert_eq!(top("denied calls"), "Access denied calls by principal");
        assert!(search("zebra giraffe").is_empty());
        assert!(search("access keys created")[0].1 <= 1.0);
    }
}
