//! The web ACL file in AWS WAFv2's own JSON: the input of `aws wafv2 create-web-acl`, plus the IP sets,
//! regex pattern sets and rule groups its rules reference by ARN (each in its `create-*` input shape with an
//! `ARN` member). Parsing only; `compile` checks and turns this into what requests are evaluated against.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The whole `--web-acl` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AclFile {
    pub name: String,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub default_action: DefaultAction,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub visibility_config: Option<VisibilityConfig>,
    #[serde(default)]
    pub custom_response_bodies: BTreeMap<String, CustomResponseBody>,
    #[serde(default)]
    pub captcha_config: Option<ImmunityConfig>,
    #[serde(default)]
    pub challenge_config: Option<ImmunityConfig>,
    #[serde(default)]
    pub token_domains: Vec<String>,
    #[serde(default)]
    pub association_config: Option<AssociationConfig>,
    #[serde(default)]
    pub tags: Vec<Value>,
    /// Rampart: the ARN this web ACL is known by in logs (default: made from the name).
    #[serde(default, rename = "ARN")]
    pub arn: Option<String>,
    #[serde(default, rename = "IPSets")]
    pub ip_sets: Vec<IpSet>,
    #[serde(default)]
    pub regex_pattern_sets: Vec<RegexPatternSet>,
    #[serde(default)]
    pub rule_groups: Vec<RuleGroup>,
    /// Rampart: the address lists behind the IP reputation managed rule groups
    /// (keys: AWS's rule names, e.g. `AWSManagedIPReputationList`, `AnonymousIPList`; values: CIDRs).
    #[serde(default)]
    pub managed_ip_lists: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DefaultAction {
    #[serde(default)]
    pub allow: Option<AllowAction>,
    #[serde(default)]
    pub block: Option<BlockAction>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AllowAction {
    #[serde(default)]
    pub custom_request_handling: Option<CustomRequestHandling>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CustomRequestHandling {
    pub insert_headers: Vec<HeaderNameValue>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct HeaderNameValue {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct BlockAction {
    #[serde(default)]
    pub custom_response: Option<CustomResponse>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CustomResponse {
    pub response_code: u16,
    #[serde(default)]
    pub custom_response_body_key: Option<String>,
    #[serde(default)]
    pub response_headers: Vec<HeaderNameValue>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CustomResponseBody {
    pub content_type: String,
    pub content: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VisibilityConfig {
    #[serde(default)]
    pub sampled_requests_enabled: bool,
    #[serde(default)]
    pub cloud_watch_metrics_enabled: bool,
    pub metric_name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImmunityConfig {
    pub immunity_time_property: ImmunityTime,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImmunityTime {
    pub immunity_time: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssociationConfig {
    #[serde(default)]
    pub request_body: BTreeMap<String, RequestBodyConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestBodyConfig {
    pub default_size_inspection_limit: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Rule {
    pub name: String,
    pub priority: i64,
    pub statement: Statement,
    #[serde(default)]
    pub action: Option<RuleAction>,
    #[serde(default)]
    pub override_action: Option<OverrideAction>,
    #[serde(default)]
    pub rule_labels: Vec<Label>,
    #[serde(default)]
    pub visibility_config: Option<VisibilityConfig>,
    #[serde(default)]
    pub captcha_config: Option<ImmunityConfig>,
    #[serde(default)]
    pub challenge_config: Option<ImmunityConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Label {
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RuleAction {
    #[serde(default)]
    pub block: Option<BlockAction>,
    #[serde(default)]
    pub allow: Option<AllowAction>,
    #[serde(default)]
    pub count: Option<CountAction>,
    #[serde(default)]
    pub captcha: Option<CountAction>,
    #[serde(default)]
    pub challenge: Option<CountAction>,
}

/// Count, CAPTCHA and Challenge all take an optional CustomRequestHandling.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CountAction {
    #[serde(default)]
    pub custom_request_handling: Option<CustomRequestHandling>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct OverrideAction {
    #[serde(default)]
    pub count: Option<CountAction>,
    #[serde(default)]
    pub none: Option<Value>,
}

/// Exactly one member is set (checked when compiling).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Statement {
    pub byte_match_statement: Option<ByteMatchStatement>,
    pub sqli_match_statement: Option<SqliMatchStatement>,
    pub xss_match_statement: Option<XssMatchStatement>,
    pub size_constraint_statement: Option<SizeConstraintStatement>,
    pub geo_match_statement: Option<GeoMatchStatement>,
    pub rule_group_reference_statement: Option<RuleGroupReferenceStatement>,
    #[serde(rename = "IPSetReferenceStatement")]
    pub ip_set_reference_statement: Option<IpSetReferenceStatement>,
    pub regex_pattern_set_reference_statement: Option<RegexPatternSetReferenceStatement>,
    pub rate_based_statement: Option<Box<RateBasedStatement>>,
    pub and_statement: Option<StatementList>,
    pub or_statement: Option<StatementList>,
    pub not_statement: Option<Box<NotStatement>>,
    pub managed_rule_group_statement: Option<Box<ManagedRuleGroupStatement>>,
    pub label_match_statement: Option<LabelMatchStatement>,
    pub regex_match_statement: Option<RegexMatchStatement>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ByteMatchStatement {
    /// Plain text, as in the CLI's JSON input (not base64).
    pub search_string: String,
    pub field_to_match: FieldToMatch,
    pub text_transformations: Vec<TextTransformation>,
    pub positional_constraint: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SqliMatchStatement {
    pub field_to_match: FieldToMatch,
    pub text_transformations: Vec<TextTransformation>,
    #[serde(default)]
    pub sensitivity_level: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct XssMatchStatement {
    pub field_to_match: FieldToMatch,
    pub text_transformations: Vec<TextTransformation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SizeConstraintStatement {
    pub field_to_match: FieldToMatch,
    pub comparison_operator: String,
    pub size: u64,
    pub text_transformations: Vec<TextTransformation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct GeoMatchStatement {
    pub country_codes: Vec<String>,
    #[serde(default, rename = "ForwardedIPConfig")]
    pub forwarded_ip_config: Option<ForwardedIpConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ForwardedIpConfig {
    pub header_name: String,
    pub fallback_behavior: String,
    /// Only in IPSetForwardedIPConfig.
    #[serde(default)]
    pub position: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RuleGroupReferenceStatement {
    #[serde(rename = "ARN")]
    pub arn: String,
    #[serde(default)]
    pub excluded_rules: Vec<NameOnly>,
    #[serde(default)]
    pub rule_action_overrides: Vec<RuleActionOverride>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NameOnly {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RuleActionOverride {
    pub name: String,
    pub action_to_use: RuleAction,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct IpSetReferenceStatement {
    #[serde(rename = "ARN")]
    pub arn: String,
    #[serde(default, rename = "IPSetForwardedIPConfig")]
    pub ip_set_forwarded_ip_config: Option<ForwardedIpConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RegexPatternSetReferenceStatement {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub field_to_match: FieldToMatch,
    pub text_transformations: Vec<TextTransformation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RateBasedStatement {
    pub limit: u64,
    #[serde(default)]
    pub evaluation_window_sec: Option<u64>,
    pub aggregate_key_type: String,
    #[serde(default)]
    pub scope_down_statement: Option<Statement>,
    #[serde(default, rename = "ForwardedIPConfig")]
    pub forwarded_ip_config: Option<ForwardedIpConfig>,
    #[serde(default)]
    pub custom_keys: Vec<RateBasedCustomKey>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RateBasedCustomKey {
    pub header: Option<NamedKey>,
    pub cookie: Option<NamedKey>,
    pub query_argument: Option<NamedKey>,
    pub query_string: Option<TransformsOnly>,
    #[serde(rename = "HTTPMethod")]
    pub http_method: Option<Value>,
    #[serde(rename = "ForwardedIP")]
    pub forwarded_ip: Option<Value>,
    #[serde(rename = "IP")]
    pub ip: Option<Value>,
    pub label_namespace: Option<LabelNamespaceKey>,
    pub uri_path: Option<TransformsOnly>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NamedKey {
    pub name: String,
    pub text_transformations: Vec<TextTransformation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TransformsOnly {
    pub text_transformations: Vec<TextTransformation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct LabelNamespaceKey {
    pub namespace: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StatementList {
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NotStatement {
    pub statement: Statement,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ManagedRuleGroupStatement {
    pub vendor_name: String,
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub excluded_rules: Vec<NameOnly>,
    #[serde(default)]
    pub scope_down_statement: Option<Statement>,
    #[serde(default)]
    pub managed_rule_group_configs: Vec<Value>,
    #[serde(default)]
    pub rule_action_overrides: Vec<RuleActionOverride>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct LabelMatchStatement {
    pub scope: String,
    pub key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RegexMatchStatement {
    pub regex_string: String,
    pub field_to_match: FieldToMatch,
    pub text_transformations: Vec<TextTransformation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TextTransformation {
    pub priority: i64,
    #[serde(rename = "Type")]
    pub kind: String,
}

/// Exactly one member is set (checked when compiling).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FieldToMatch {
    pub single_header: Option<NameOnlyLower>,
    pub single_query_argument: Option<NameOnlyLower>,
    pub all_query_arguments: Option<Value>,
    pub uri_path: Option<Value>,
    pub query_string: Option<Value>,
    pub body: Option<BodyField>,
    pub method: Option<Value>,
    pub json_body: Option<JsonBodyField>,
    pub headers: Option<HeadersField>,
    pub cookies: Option<CookiesField>,
    pub header_order: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NameOnlyLower {
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct BodyField {
    #[serde(default)]
    pub oversize_handling: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct JsonBodyField {
    pub match_pattern: JsonMatchPattern,
    pub match_scope: String,
    #[serde(default)]
    pub invalid_fallback_behavior: Option<String>,
    #[serde(default)]
    pub oversize_handling: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct JsonMatchPattern {
    #[serde(default)]
    pub all: Option<Value>,
    #[serde(default)]
    pub included_paths: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct HeadersField {
    pub match_pattern: HeaderMatchPattern,
    pub match_scope: String,
    #[serde(default)]
    pub oversize_handling: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct HeaderMatchPattern {
    #[serde(default)]
    pub all: Option<Value>,
    #[serde(default)]
    pub included_headers: Option<Vec<String>>,
    #[serde(default)]
    pub excluded_headers: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CookiesField {
    pub match_pattern: CookieMatchPattern,
    pub match_scope: String,
    #[serde(default)]
    pub oversize_handling: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CookieMatchPattern {
    #[serde(default)]
    pub all: Option<Value>,
    #[serde(default)]
    pub included_cookies: Option<Vec<String>>,
    #[serde(default)]
    pub excluded_cookies: Option<Vec<String>>,
}

/// `create-ip-set` input plus its ARN.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpSet {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(rename = "IPAddressVersion")]
    pub ip_address_version: String,
    pub addresses: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `create-regex-pattern-set` input plus its ARN.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegexPatternSet {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    #[serde(default)]
    pub scope: Option<String>,
    pub regular_expression_list: Vec<RegexString>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegexString {
    pub regex_string: String,
}

/// `create-rule-group` input plus its ARN.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuleGroup {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub capacity: Option<u64>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub visibility_config: Option<VisibilityConfig>,
    #[serde(default)]
    pub custom_response_bodies: BTreeMap<String, CustomResponseBody>,
    #[serde(default)]
    pub description: Option<String>,
}
