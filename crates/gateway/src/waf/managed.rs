//! Managed rule groups shipped with Rampart, named like AWS's (`VendorName: "AWS"`), written by us in the
//! same WAFv2 statement language users write, each rule with AWS's rule name and label
//! (`awswaf:managed:aws:<namespace>:<label>`). The IP reputation groups take their addresses from the
//! web ACL file's `ManagedIpLists`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::model;

pub struct ManagedDef {
    pub label_namespace: &'static str,
    pub rules: Vec<model::Rule>,
}

/// The ARN under which a managed IP list is registered while compiling.
pub fn ip_list_arn(name: &str) -> String {
    format!("arn:rampart:wafv2:managed-ip-list/{name}")
}

/// Managed IP list names (rule names in AWS's IP reputation groups).
pub const IP_LISTS: &[&str] = &[
    "AWSManagedIPReputationList",
    "AWSManagedReconnaissanceList",
    "AWSManagedIPDDoSList",
    "AnonymousIPList",
    "HostingProviderIPList",
];

pub const GROUPS: &[&str] = &[
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesSQLiRuleSet",
    "AWSManagedRulesLinuxRuleSet",
    "AWSManagedRulesUnixRuleSet",
    "AWSManagedRulesWindowsRuleSet",
    "AWSManagedRulesPHPRuleSet",
    "AWSManagedRulesAdminProtectionRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesAnonymousIpList",
];

fn tx(list: &[&str]) -> Value {
    let v: Vec<Value> = list.iter().enumerate().map(|(i, t)| json!({"Priority": i, "Type": t})).collect();
    if v.is_empty() {
        json!([{"Priority": 0, "Type": "NONE"}])
    } else {
        Value::Array(v)
    }
}

fn args() -> Value {
    json!({"AllQueryArguments": {}})
}
fn qs() -> Value {
    json!({"QueryString": {}})
}
fn uri() -> Value {
    json!({"UriPath": {}})
}
fn body() -> Value {
    json!({"Body": {"OversizeHandling": "CONTINUE"}})
}
fn cookies() -> Value {
    json!({"Cookies": {"MatchPattern": {"All": {}}, "MatchScope": "ALL", "OversizeHandling": "CONTINUE"}})
}
fn headers() -> Value {
    json!({"Headers": {"MatchPattern": {"All": {}}, "MatchScope": "ALL", "OversizeHandling": "CONTINUE"}})
}
fn arg_names() -> Value {
    // Query argument names: inspected through the query string's keys.
    json!({"QueryString": {}})
}
fn header(name: &str) -> Value {
    json!({"SingleHeader": {"Name": name}})
}

fn regex(field: Value, re: &str, t: &[&str]) -> Value {
    json!({"RegexMatchStatement": {"RegexString": re, "FieldToMatch": field, "TextTransformations": tx(t)}})
}
fn sqli(field: Value, t: &[&str], high: bool) -> Value {
    json!({"SqliMatchStatement": {"FieldToMatch": field, "TextTransformations": tx(t),
        "SensitivityLevel": if high { "HIGH" } else { "LOW" }}})
}
fn xss(field: Value, t: &[&str]) -> Value {
    json!({"XssMatchStatement": {"FieldToMatch": field, "TextTransformations": tx(t)}})
}
fn size_gt(field: Value, n: u64) -> Value {
    json!({"SizeConstraintStatement": {"FieldToMatch": field, "ComparisonOperator": "GT", "Size": n, "TextTransformations": tx(&[])}})
}
fn byte(field: Value, s: &str, pos: &str, t: &[&str]) -> Value {
    json!({"ByteMatchStatement": {"SearchString": s, "FieldToMatch": field, "PositionalConstraint": pos, "TextTransformations": tx(t)}})
}
fn or(v: Vec<Value>) -> Value {
    if v.len() == 1 {
        v.into_iter().next().unwrap_or(Value::Null)
    } else {
        json!({"OrStatement": {"Statements": v}})
    }
}
fn not(s: Value) -> Value {
    json!({"NotStatement": {"Statement": s}})
}
fn ipset(name: &str) -> Value {
    json!({"IPSetReferenceStatement": {"ARN": ip_list_arn(name)}})
}

fn rule(name: &str, label: &str, statement: Value) -> Value {
    rule_with(name, label, statement, json!({"Block": {}}))
}
fn rule_with(name: &str, label: &str, statement: Value, action: Value) -> Value {
    json!({
        "Name": name, "Priority": 0, "Statement": statement, "Action": action,
        "RuleLabels": [{"Name": label}],
        "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": name}
    })
}

// Decoding chains used across groups.
const URL: &[&str] = &["URL_DECODE_UNI"];
const URL2: &[&str] = &["URL_DECODE_UNI", "URL_DECODE_UNI"];
const URL_HTML: &[&str] = &["URL_DECODE_UNI", "HTML_ENTITY_DECODE", "JS_DECODE", "CSS_DECODE", "REMOVE_NULLS"];
const URL_LOWER: &[&str] = &["URL_DECODE_UNI", "HTML_ENTITY_DECODE", "LOWERCASE", "REMOVE_NULLS"];
const URL_CMD: &[&str] = &["URL_DECODE_UNI", "CMD_LINE"];
const URL_PATH: &[&str] = &["URL_DECODE_UNI", "NORMALIZE_PATH_WIN"];

const SCANNER_UA: &str = r"(?i)(?:nessus|nmap|nikto|sqlmap|masscan|zgrab|nuclei|acunetix|netsparker|w3af|wpscan|dirbuster|gobuster|ffuf|wfuzz|havij|arachni|openvas|zmeu|morfeus|jaascois|brutus|bsqlbf|webinspect|appscan|burpcollaborator|skipfish|paros|whatweb|fimap|commix|xsser|grabber|\bnaxsi|libwhisker|absinthe|blackwidow|metis|pmafind|floodgate|datacha0s|mozilla/4\.0 \(compatible(?:; msie 6\.0; win32)?\)$|(?:^|\W)(?:muieblackcat|zmeu)\b)";

const LFI: &str = r"(?:^|[\\/])\.{2,3}[\\/]|[\\/]\.{2,3}(?:[\\/]|$)|(?:^|[\\/])\.{2}(?:%|;)";
const RESTRICTED_EXT: &str = r"(?i)\.(?:log|ini|conf|cfg|config|bak|backup|old|orig|save|swp|sql|sqlite|db|mdb|env|htaccess|htpasswd|git|svn|hg|ds_store|pem|key|crt|p12|pfx|asa|asax|ascx|axd|backup|bat|cdx|cer|cmd|com|csproj|dll|dos|exe|idq|inc|licx|lnk|mdf|passwd|pol|printer|pwd|rdb|resources|resx|shtml|sys|vb|vbs|vbproj|vsdisco|webinfo|xsd|xsx)(?:$|[?;#~])";
const RFI: &str = r#"(?i)^(?:(?:ht|f)tps?|file|php|data|expect|gopher|dict|ldap|jar|zip|phar|glob)://(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[[0-9a-f:]+\])|(?i)(?:include|require)(?:_once)?\s*\(?\s*['"]?(?:ht|f)tps?://|(?i)^(?:ht|f)tps?://[^?#]*\?+$|(?i)^(?:file|php|expect|gopher|dict|phar|glob)://"#;
const SSRF_METADATA: &str = r"(?i)(?:169\.254\.169\.254|\[?fd00:ec2::254|metadata\.google\.internal|169\.254\.170\.2|100\.100\.100\.200|0xa9fea9fe|2852039166|0251\.0376\.0251\.0376|instance-data)";

const JAVA_DESER: &str = r"(?i)(?:java\.lang\.(?:runtime|processbuilder|system|class|reflect|thread)|javax?\.script|java\.io\.|java\.net\.|java\.util\.|javax\.naming|javax\.management|org\.apache\.commons\.collections|org\.springframework|com\.opensymphony\.xwork2|com\.sun\.|sun\.misc|sun\.reflect|com\.mchange|org\.codehaus\.groovy|clojure\.|objectinputstream|xmldecoder|\brO0AB|aced0005|\bgetruntime\b|\.exec\s*\(|\bclassloader\b|\.forname\s*\(|processbuilder|\.getclass\s*\(|\.invoke\s*\(|\bnew\s+java\.|\bclass\.module\b|class\.classloader|java\.lang\.\w+|org\.omg\.|javax\.\w+\.|(?:clone|chained|constant|instantiate|invoker|map)transformer|forclosure|whileclosure|instantiatefactory|prototype(?:clone|serialization)factory|\bgetproperty\s*\(|filewriter|\bjndi:)";
const LOG4J: &str = r"(?i)\$\s*\{[^}]*(?:jndi|ldaps?|rmi|dns|nis|iiop|corba|nds|https?|lower|upper|env|sys|java|date|main|bundle|ctx|docker|k8s|log4j|spring|web|::-|:-)|\$\{\$\{|%24%7b|\$\\u007b";

const HEADER_INJECTION: &str = r"(?i)[\r\n]\s*(?:(?:content-(?:type|length)|set-cookie|location|refresh|x-[\w-]+|[\w-]+-addr|host|transfer-encoding)\s*:|http/\d|<(?:html|script|meta))";
const SESSION_FIXATION: &str =
    r"(?i)\.cookie\b[^;]{0,200};\W*(?:expires|domain|path)\W*=|\bhttp-equiv\W+set-cookie\b|document\.cookie\s*=";
const MULTIPART_CHARSET: &str =
    r"(?i)content-type\s*:[^\r\n]*charset\s*=\s*[\x22']?(?:utf-?7|utf-?32|ibm\d+|cp\d+|ebcdic|x-\w+)";

const REQUEST_IN_ARG: &str = r"(?i)\b(?:get|post|head|options|connect|put|delete|trace|track|patch|propfind|proppatch|mkcol|copy|move|lock|unlock)\s+\S+\s+http/\d(?:\.\d)?\b";
const LDAP_INJECTION: &str = r"\)\s*[&|!]?\s*\(\s*[\w.-]+\s*[~<>]?=|\*\)\s*\)?\s*\(\s*[&|!]";

const EXPLOITABLE_PATHS: &str = r"(?i)(?:/web-inf(?:/|$)|/meta-inf(?:/|$)|/actuator(?:/|$)|/jmx-console|/invoker/|/hudson|/jenkins/script|/manager/html|/solr/admin|/_ignition/|/cgi-bin/.*\.(?:sh|pl|cgi)|/\.git/|/\.svn/|/\.env$|/server-status|/phpunit/)";

const LINUX_LFI: &str = r"(?i)(?:/etc/(?:passwd|shadow|group|hosts|issue|motd|crontab|sudoers|hostname|mysql|nginx|apache2|httpd|ssh|security|profile|bashrc|fstab|environment|master\.passwd|pwd\.db|spwd\.db|[a-z]+\.conf)|/proc/(?:self|\d+)/(?:environ|cmdline|fd|maps|mem|status|stat|cwd|exe|root)|/var/(?:log|mail|spool|run)/|/root/|/home/[^/]+/\.|\.(?:bash_history|bashrc|profile|ssh/|ssh$|htpasswd|mysql_history|viminfo|netrc|gitconfig|pgpass|aws/credentials|docker/config)|/usr/local/(?:etc|apache)|/boot/grub|/dev/(?:tcp|udp)/|/sys/(?:class|kernel|devices)/)";

/// Shell commands after a separator. After `&` (which decoded prose contains: "Q&A", "& more") the
/// command must be followed by something command-like, not just end the text.
fn unix_cmd() -> String {
    let cmd = r#"(?:\(|\{)?\s*(?:[\\'"]*(?:/usr)?/s?bin/)?[\\'"]*(?:c[\\'"]*a[\\'"]*t|l[\\'"]*s|i[\\'"]*d|w[\\'"]*h[\\'"]*o[\\'"]*a[\\'"]*m[\\'"]*i|u[\\'"]*n[\\'"]*a[\\'"]*m[\\'"]*e|p[\\'"]*w[\\'"]*d|p[\\'"]*i[\\'"]*n[\\'"]*g|n[\\'"]*c(?:at)?|n[\\'"]*e[\\'"]*t[\\'"]*c[\\'"]*a[\\'"]*t|w[\\'"]*g[\\'"]*e[\\'"]*t|c[\\'"]*u[\\'"]*r[\\'"]*l|b[\\'"]*a[\\'"]*s[\\'"]*h|s[\\'"]*h|z[\\'"]*s[\\'"]*h|k[\\'"]*s[\\'"]*h|d[\\'"]*a[\\'"]*s[\\'"]*h|p[\\'"]*y[\\'"]*t[\\'"]*h[\\'"]*o[\\'"]*n[23]?|p[\\'"]*e[\\'"]*r[\\'"]*l|r[\\'"]*u[\\'"]*b[\\'"]*y|p[\\'"]*h[\\'"]*p|e[\\'"]*c[\\'"]*h[\\'"]*o|p[\\'"]*r[\\'"]*i[\\'"]*n[\\'"]*t[\\'"]*f|c[\\'"]*h[\\'"]*m[\\'"]*o[\\'"]*d|c[\\'"]*h[\\'"]*o[\\'"]*w[\\'"]*n|r[\\'"]*m|m[\\'"]*v|c[\\'"]*p|t[\\'"]*o[\\'"]*u[\\'"]*c[\\'"]*h|m[\\'"]*k[\\'"]*d[\\'"]*i[\\'"]*r|k[\\'"]*i[\\'"]*l[\\'"]*l|p[\\'"]*s|t[\\'"]*a[\\'"]*i[\\'"]*l|h[\\'"]*e[\\'"]*a[\\'"]*d|m[\\'"]*o[\\'"]*r[\\'"]*e|l[\\'"]*e[\\'"]*s[\\'"]*s|g[\\'"]*r[\\'"]*e[\\'"]*p|f[\\'"]*i[\\'"]*n[\\'"]*d|a[\\'"]*w[\\'"]*k|s[\\'"]*e[\\'"]*d|b[\\'"]*a[\\'"]*s[\\'"]*e[\\'"]*6[\\'"]*4|x[\\'"]*x[\\'"]*d|t[\\'"]*e[\\'"]*l[\\'"]*n[\\'"]*e[\\'"]*t|s[\\'"]*o[\\'"]*c[\\'"]*a[\\'"]*t|n[\\'"]*s[\\'"]*l[\\'"]*o[\\'"]*o[\\'"]*k[\\'"]*u[\\'"]*p|d[\\'"]*i[\\'"]*g|h[\\'"]*o[\\'"]*s[\\'"]*t[\\'"]*n[\\'"]*a[\\'"]*m[\\'"]*e|i[\\'"]*f[\\'"]*c[\\'"]*o[\\'"]*n[\\'"]*f[\\'"]*i[\\'"]*g|s[\\'"]*l[\\'"]*e[\\'"]*e[\\'"]*p|e[\\'"]*n[\\'"]*v|e[\\'"]*x[\\'"]*p[\\'"]*o[\\'"]*r[\\'"]*t|s[\\'"]*u[\\'"]*d[\\'"]*o|s[\\'"]*u|c[\\'"]*r[\\'"]*o[\\'"]*n[\\'"]*t[\\'"]*a[\\'"]*b|s[\\'"]*s[\\'"]*h|s[\\'"]*c[\\'"]*p|t[\\'"]*f[\\'"]*t[\\'"]*p|f[\\'"]*t[\\'"]*p|n[\\'"]*m[\\'"]*a[\\'"]*p|e[\\'"]*v[\\'"]*a[\\'"]*l|e[\\'"]*x[\\'"]*e[\\'"]*c|n[\\'"]*o[\\'"]*h[\\'"]*u[\\'"]*p|t[\\'"]*i[\\'"]*m[\\'"]*e[\\'"]*o[\\'"]*u[\\'"]*t|x[\\'"]*a[\\'"]*r[\\'"]*g[\\'"]*s)"#;
    let follow = r#"(?:\s+[-/~$.'"`\\]|\s*[<>|;&`$(){}]|[\\'"/,])"#;
    format!(r#"(?i)(?:(?:[;|`\n]|\$\(|\|\||&&)\s*{cmd}(?:{follow}|\s*$)|&\s*{cmd}{follow})"#)
}
const UNIX_VARS: &str = r"(?:\$\{?(?:IFS|PATH|HOME|SHELL|USER|PWD|BASH\w*|HOSTNAME)\b\}?|\$\(\s*\w|`[^`]{1,100}`|\b(?:/bin|/usr/bin|/usr/local/bin|/sbin)/\w+|<\(\s*\w|\$\{[^}]{0,20}:[-=?+]|\$'\\x[0-9a-f]{2})";

const WINDOWS_CMD: &str = r"(?i)(?:[;|&`\n]|\|\||&&|^)\s*(?:cmd(?:\.exe)?\s*/[ck]|powershell(?:\.exe)?|pwsh|wscript|cscript|mshta|rundll32|regsvr32|certutil|bitsadmin|net\s+(?:user|localgroup|share|use|view)|ipconfig|systeminfo|tasklist|taskkill|whoami|wmic|reg\s+(?:query|add|delete)|schtasks|sc\s+(?:query|create|start|stop|config)|type\s+\S+|dir\s+[a-z]:|copy\s+\S+|del\s+\S+|echo\s+\S+|start\s+\S+|ping\s+-n)\b|(?i)\bfor\s+(?:/[a-z]\s+(?:\x22[^\x22]*\x22\s+)?)*%%?~?\w+\s+in\s*\(|(?i)\bif\s+(?:/i\s+)?(?:not\s+)?(?:exist\s+\S+|defined\s+\S+|errorlevel\s+\d+|\S+\s*==\s*\S+|\(?\s*\S+\s+(?:equ|neq|lss|leq|gtr|geq)\s)";
const POWERSHELL: &str = r"(?i)(?:invoke-(?:expression|webrequest|command|item|restmethod|shellcode|mimikatz)|\biex\s*\(|new-object\s+(?:net\.webclient|system\.)|downloadstring|downloadfile|start-process|get-(?:wmiobject|process|childitem|content|item)|set-(?:executionpolicy|mppreference)|-encodedcommand|-enc\s+[a-z0-9+/=]{8}|\[system\.(?:convert|text\.encoding|reflection)|frombase64string|add-mppreference|remove-item|bypass\s+-)";

const PHP_HIGH_RISK: &str = r"(?i)(?:<\?(?:php\b|=|\s|$)|[\[{]/?php[\]}]|[(\[]\s*['\x22]?\s*(?:system|exec|passthru|shell_exec|popen|proc_open|eval|assert|phpinfo)\s*['\x22]?\s*[)\]]\s*[(\[]|\bdefine\s*\(\s*['\x22]\w+['\x22]\s*,|\b(?:eval|assert|system|exec|passthru|shell_exec|popen|proc_open|pcntl_exec|create_function|call_user_func(?:_array)?|preg_replace|include(?:_once)?|require(?:_once)?|file_get_contents|file_put_contents|fopen|fwrite|fputs|readfile|show_source|highlight_file|phpinfo|base64_decode|gzinflate|gzuncompress|str_rot13|unserialize|move_uploaded_file|chmod|chown|copy|unlink|rmdir|mkdir|symlink|posix_\w+|ini_set|ini_get|putenv|getenv|set_time_limit|array_map|usort|uasort|ob_start|mail|curl_exec|fsockopen|pfsockopen|stream_socket_client|parse_str|extract|var_dump|print_r|escapeshellcmd|escapeshellarg|glob|scandir|opendir|readdir|file|dl|proc_nice|proc_terminate|apache_\w+|iconv|mb_\w+)\s*(?:\(|/\*|#|//|\$|['\x22`\[{])|\$_(?:GET|POST|COOKIE|REQUEST|SERVER|FILES|ENV|SESSION)\b|\$GLOBALS\b|php://(?:input|filter|stdin|memory|temp|fd)|(?:phar|zip|expect|data|glob|zlib|compress\.\w+)://|\b[OCa]:\d+:[\x22{]|\bAUTO_PREPEND_FILE\b|\ballow_url_include\b|\bsafe_mode\b|\bdisable_functions\b|\bopen_basedir\b)";

const ADMIN_PATHS: &str = r"(?i)^/(?:admin|administrator|wp-admin|wp-login\.php|phpmyadmin|pma|myadmin|adminer(?:\.php)?|admin\.php|admin/login|manager/html|cpanel|webadmin|siteadmin|backend|controlpanel|console)(?:/|$|\.)";

const SQLI_EXTENDED: &str = r"(?i)(?:\bunion\b[\s\S]{0,100}\bselect\b|\bselect\b[\s\S]{0,100}\bfrom\b[\s\S]{0,100}\b(?:information_schema|sysobjects|syscolumns|pg_\w+|mysql\.\w+|sqlite_master|dual|all_tables|user_tables)\b|\b(?:sleep|benchmark|pg_sleep|dbms_pipe\.receive_message|waitfor\s+delay|randomblob)\s*\(|\b(?:load_file|into\s+(?:out|dump)file|xp_cmdshell|sp_executesql|sp_oacreate|exec\s+master|utl_http|dbms_\w+)\b|;\s*(?:drop|truncate|delete|insert|update|alter|create|shutdown|declare|exec)\b|\b(?:extractvalue|updatexml|group_concat|concat_ws|unhex|current_user|system_user|session_user|make_set|name_const)\s*\(|\b(?:char|chr)\s*\(\s*\d+\s*[,)]|\b(?:ascii|substring|substr|mid)\s*\(\s*\(?\s*select\b|@@(?:version|datadir|hostname|basedir)|['\x22`]\s*(?:or|and|xor|\|\||&&|div|like|rlike|regexp|sounds\s+like)\s+['\x22`\w(]|\b(?:or|and)\s+(?:\d+|'[^']*'|true|false|null)\s*(?:=|<=>|!=|<>|<|>|\blike\b|\bis\b|\bin\b|\bbetween\b)|\border\s+by\s+\d+\s*(?:--|#|/\*)|\bhaving\b\s+\d|\binsert\s+into\b|\bdelete\s+from\b|\bdrop\s+(?:table|database|column|procedure|function)\b|'\s*(?:--|#|/\*|;))";

fn common_rule_set() -> Vec<Value> {
    vec![
        rule("NoUserAgent_HEADER", "NoUserAgent_Header", not(size_gt(header("user-agent"), 0))),
        rule(
            "UserAgent_BadBots_HEADER",
            "UserAgent_BadBots_Header",
            regex(header("user-agent"), SCANNER_UA, &["URL_DECODE"]),
        ),
        rule("SizeRestrictions_QUERYSTRING", "SizeRestrictions_QueryString", size_gt(qs(), 2048)),
        rule("SizeRestrictions_Cookie_HEADER", "SizeRestrictions_Cookie_Header", size_gt(header("cookie"), 10240)),
        rule("SizeRestrictions_BODY", "SizeRestrictions_Body", size_gt(body(), 8 * 1024)),
        rule("SizeRestrictions_URIPATH", "SizeRestrictions_URIPath", size_gt(uri(), 1024)),
        rule("EC2MetaDataSSRF_BODY", "EC2MetaDataSSRF_Body", regex(body(), SSRF_METADATA, URL2)),
        rule("EC2MetaDataSSRF_COOKIE", "EC2MetaDataSSRF_Cookie", regex(cookies(), SSRF_METADATA, URL2)),
        rule("EC2MetaDataSSRF_URIPATH", "EC2MetaDataSSRF_URIPath", regex(uri(), SSRF_METADATA, URL2)),
        rule("EC2MetaDataSSRF_QUERYARGUMENTS", "EC2MetaDataSSRF_QueryArguments", regex(args(), SSRF_METADATA, URL2)),
        rule("GenericLFI_QUERYARGUMENTS", "GenericLFI_QueryArguments", regex(args(), LFI, URL2)),
        rule("GenericLFI_URIPATH", "GenericLFI_URIPath", regex(uri(), LFI, URL2)),
        rule("GenericLFI_BODY", "GenericLFI_Body", regex(body(), LFI, URL2)),
        rule("RestrictedExtensions_URIPATH", "RestrictedExtensions_URIPath", regex(uri(), RESTRICTED_EXT, URL)),
        rule(
            "RestrictedExtensions_QUERYARGUMENTS",
            "RestrictedExtensions_QueryArguments",
            regex(args(), RESTRICTED_EXT, URL),
        ),
        rule("GenericRFI_QUERYARGUMENTS", "GenericRFI_QueryArguments", regex(args(), RFI, URL)),
        rule("GenericRFI_BODY", "GenericRFI_Body", regex(body(), RFI, URL)),
        rule("GenericRFI_URIPATH", "GenericRFI_URIPath", regex(uri(), RFI, URL)),
        rule("CrossSiteScripting_COOKIE", "CrossSiteScripting_Cookie", xss(cookies(), URL_HTML)),
        rule(
            "CrossSiteScripting_QUERYARGUMENTS",
            "CrossSiteScripting_QueryArguments",
            or(vec![xss(args(), URL_HTML), xss(arg_names(), URL_HTML)]),
        ),
        rule("CrossSiteScripting_BODY", "CrossSiteScripting_Body", xss(body(), URL_HTML)),
        rule("CrossSiteScripting_URIPATH", "CrossSiteScripting_URIPath", xss(uri(), URL_HTML)),
    ]
}

fn known_bad_inputs() -> Vec<Value> {
    vec![
        rule("JavaDeserializationRCE_HEADER", "JavaDeserializationRCE_Header", regex(headers(), JAVA_DESER, URL_LOWER)),
        rule("JavaDeserializationRCE_BODY", "JavaDeserializationRCE_Body", regex(body(), JAVA_DESER, URL_LOWER)),
        rule("JavaDeserializationRCE_URIPATH", "JavaDeserializationRCE_URIPath", regex(uri(), JAVA_DESER, URL_LOWER)),
        rule(
            "JavaDeserializationRCE_QUERYSTRING",
            "JavaDeserializationRCE_QueryString",
            regex(qs(), JAVA_DESER, URL_LOWER),
        ),
        rule(
            "Host_localhost_HEADER",
            "Host_Localhost_Header",
            regex(header("host"), r"(?i)^(?:localhost|127\.0\.0\.1|\[?::1\]?)(?::\d+)?$", &[]),
        ),
        rule("PROPFIND_METHOD", "Propfind_Method", byte(json!({"Method": {}}), "PROPFIND", "EXACTLY", &[])),
        rule("ExploitablePaths_URIPATH", "ExploitablePaths_URIPath", regex(uri(), EXPLOITABLE_PATHS, URL_PATH)),
        rule(
            "Log4JRCE_HEADER",
            "Log4JRCE_Header",
            regex(headers(), LOG4J, &["URL_DECODE_UNI", "HTML_ENTITY_DECODE", "JS_DECODE"]),
        ),
        rule(
            "Log4JRCE_QUERYSTRING",
            "Log4JRCE_QueryString",
            regex(qs(), LOG4J, &["URL_DECODE_UNI", "HTML_ENTITY_DECODE", "JS_DECODE"]),
        ),
        rule(
            "Log4JRCE_BODY",
            "Log4JRCE_Body",
            regex(body(), LOG4J, &["URL_DECODE_UNI", "HTML_ENTITY_DECODE", "JS_DECODE"]),
        ),
        rule(
            "Log4JRCE_URIPATH",
            "Log4JRCE_URIPath",
            regex(uri(), LOG4J, &["URL_DECODE_UNI", "HTML_ENTITY_DECODE", "JS_DECODE"]),
        ),
        // Rampart additions (not in AWS's group): response splitting / header injection, session
        // fixation through cookies set from markup, multipart parts declaring exotic charsets.
        rule(
            "HeaderInjection_QUERYARGUMENTS",
            "HeaderInjection_QueryArguments",
            or(vec![regex(qs(), HEADER_INJECTION, URL), regex(cookies(), HEADER_INJECTION, URL)]),
        ),
        rule(
            "SessionFixation_QUERYARGUMENTS_BODY",
            "SessionFixation_QueryArguments_Body",
            or(vec![regex(args(), SESSION_FIXATION, URL_HTML), regex(body(), SESSION_FIXATION, URL_HTML)]),
        ),
        rule("MultipartCharset_BODY", "MultipartCharset_Body", regex(body(), MULTIPART_CHARSET, &[])),
        rule(
            "RequestSmuggling_QUERYARGUMENTS_BODY",
            "RequestSmuggling_QueryArguments_Body",
            or(vec![regex(args(), REQUEST_IN_ARG, URL), regex(body(), REQUEST_IN_ARG, URL)]),
        ),
        rule(
            "LDAPInjection_QUERYARGUMENTS_BODY",
            "LDAPInjection_QueryArguments_Body",
            or(vec![regex(args(), LDAP_INJECTION, URL), regex(body(), LDAP_INJECTION, URL)]),
        ),
        rule(
            "NullByte_QUERYARGUMENTS_URIPATH",
            "NullByte_QueryArguments_URIPath",
            or(vec![regex(qs(), "\\x00", URL), regex(uri(), "\\x00", URL)]),
        ),
    ]
}

fn sqli_rule_set() -> Vec<Value> {
    let t = &["URL_DECODE_UNI", "HTML_ENTITY_DECODE", "REMOVE_NULLS"];
    vec![
        rule(
            "SQLiExtendedPatterns_QUERYARGUMENTS",
            "SQLiExtendedPatterns_QueryArguments",
            or(vec![
                regex(
                    args(),
                    SQLI_EXTENDED,
                    &["URL_DECODE_UNI", "HTML_ENTITY_DECODE", "REPLACE_COMMENTS", "COMPRESS_WHITE_SPACE"],
                ),
                regex(arg_names(), SQLI_EXTENDED, &["URL_DECODE_UNI", "REPLACE_COMMENTS", "COMPRESS_WHITE_SPACE"]),
            ]),
        ),
        rule(
            "SQLi_QUERYARGUMENTS",
            "SQLi_QueryArguments",
            or(vec![sqli(args(), t, false), sqli(arg_names(), URL, false)]),
        ),
        rule("SQLi_BODY", "SQLi_Body", sqli(body(), t, false)),
        rule("SQLi_COOKIE", "SQLi_Cookie", sqli(cookies(), t, false)),
        rule("SQLi_URIPATH", "SQLi_URIPath", sqli(uri(), t, false)),
        rule(
            "SQLiExtendedPatterns_BODY",
            "SQLiExtendedPatterns_Body",
            regex(
                body(),
                SQLI_EXTENDED,
                &["URL_DECODE_UNI", "HTML_ENTITY_DECODE", "REPLACE_COMMENTS", "COMPRESS_WHITE_SPACE"],
            ),
        ),
        rule(
            "SQLiExtendedPatterns_COOKIE",
            "SQLiExtendedPatterns_Cookie",
            regex(
                cookies(),
                SQLI_EXTENDED,
                &["URL_DECODE_UNI", "HTML_ENTITY_DECODE", "REPLACE_COMMENTS", "COMPRESS_WHITE_SPACE"],
            ),
        ),
    ]
}

fn linux_rule_set() -> Vec<Value> {
    vec![
        rule("LFI_URIPATH", "LFI_URIPath", regex(uri(), LINUX_LFI, URL_PATH)),
        rule(
            "LFI_QUERYSTRING",
            "LFI_QueryString",
            regex(qs(), LINUX_LFI, &["URL_DECODE_UNI", "URL_DECODE_UNI", "NORMALIZE_PATH_WIN"]),
        ),
        rule("LFI_HEADER", "LFI_Header", regex(headers(), LINUX_LFI, URL_PATH)),
        rule("LFI_BODY", "LFI_Body", regex(body(), LINUX_LFI, &["URL_DECODE_UNI", "NORMALIZE_PATH_WIN"])),
    ]
}

fn unix_rule_set() -> Vec<Value> {
    let cmd = |f: Value| or(vec![regex(f.clone(), &unix_cmd(), URL), regex(f, UNIX_VARS, URL)]);
    vec![
        rule(
            "UNIXShellCommandsVariables_QUERYSTRING",
            "UNIXShellCommandsVariables_QueryString",
            or(vec![
                regex(args(), &unix_cmd(), URL),
                regex(args(), UNIX_VARS, URL),
                regex(arg_names(), UNIX_VARS, URL),
            ]),
        ),
        rule("UNIXShellCommandsVariables_BODY", "UNIXShellCommandsVariables_Body", cmd(body())),
        rule(
            "UNIXShellCommandsVariables_HEADER",
            "UNIXShellCommandsVariables_Header",
            or(vec![
                regex(
                    json!({"Headers": {"MatchPattern": {"ExcludedHeaders": ["cookie", "accept", "accept-language", "accept-encoding", "content-type", "referer"]}, "MatchScope": "VALUE", "OversizeHandling": "CONTINUE"}}),
                    UNIX_VARS,
                    URL,
                ),
                regex(cookies(), &unix_cmd(), URL),
            ]),
        ),
    ]
}

fn windows_rule_set() -> Vec<Value> {
    vec![
        rule(
            "WindowsShellCommands_QUERYARGUMENTS",
            "WindowsShellCommands_QueryArguments",
            regex(args(), WINDOWS_CMD, URL_CMD),
        ),
        rule("WindowsShellCommands_COOKIE", "WindowsShellCommands_Cookie", regex(cookies(), WINDOWS_CMD, URL_CMD)),
        rule("WindowsShellCommands_BODY", "WindowsShellCommands_Body", regex(body(), WINDOWS_CMD, URL_CMD)),
        rule("PowerShellCommands_QUERYARGUMENTS", "PowerShellCommands_QueryArguments", regex(args(), POWERSHELL, URL)),
        rule("PowerShellCommands_COOKIE", "PowerShellCommands_Cookie", regex(cookies(), POWERSHELL, URL)),
        rule("PowerShellCommands_BODY", "PowerShellCommands_Body", regex(body(), POWERSHELL, URL)),
    ]
}

fn php_rule_set() -> Vec<Value> {
    vec![
        rule(
            "PHPHighRiskMethodsVariables_HEADER",
            "PHPHighRiskMethodsVariables_Header",
            regex(headers(), PHP_HIGH_RISK, URL),
        ),
        rule(
            "PHPHighRiskMethodsVariables_QUERYSTRING",
            "PHPHighRiskMethodsVariables_QueryString",
            regex(qs(), PHP_HIGH_RISK, URL2),
        ),
        rule("PHPHighRiskMethodsVariables_BODY", "PHPHighRiskMethodsVariables_Body", regex(body(), PHP_HIGH_RISK, URL)),
    ]
}

fn admin_protection() -> Vec<Value> {
    vec![rule("AdminProtection_URIPATH", "AdminProtection_URIPath", regex(uri(), ADMIN_PATHS, URL_PATH))]
}

fn ip_reputation() -> Vec<Value> {
    vec![
        rule("AWSManagedIPReputationList", "AWSManagedIPReputationList", ipset("AWSManagedIPReputationList")),
        rule("AWSManagedReconnaissanceList", "AWSManagedReconnaissanceList", ipset("AWSManagedReconnaissanceList")),
        // As in AWS, the DDoS list only counts (label it; block with a LabelMatchStatement if wanted).
        rule_with("AWSManagedIPDDoSList", "AWSManagedIPDDoSList", ipset("AWSManagedIPDDoSList"), json!({"Count": {}})),
    ]
}

fn anonymous_ip() -> Vec<Value> {
    vec![
        rule("AnonymousIPList", "AnonymousIPList", ipset("AnonymousIPList")),
        rule("HostingProviderIPList", "HostingProviderIPList", ipset("HostingProviderIPList")),
    ]
}

/// The definition of a managed rule group, or None if Rampart has no group of that name.
pub fn group(name: &str, _ip_lists: &BTreeMap<String, Vec<String>>) -> Option<Result<ManagedDef, String>> {
    let (ns, rules) = match name {
        "AWSManagedRulesCommonRuleSet" => ("core-rule-set", common_rule_set()),
        "AWSManagedRulesKnownBadInputsRuleSet" => ("known-bad-inputs", known_bad_inputs()),
        "AWSManagedRulesSQLiRuleSet" => ("sql-database", sqli_rule_set()),
        "AWSManagedRulesLinuxRuleSet" => ("linux-os", linux_rule_set()),
        "AWSManagedRulesUnixRuleSet" => ("posix-os", unix_rule_set()),
        "AWSManagedRulesWindowsRuleSet" => ("windows-os", windows_rule_set()),
        "AWSManagedRulesPHPRuleSet" => ("php-app", php_rule_set()),
        "AWSManagedRulesAdminProtectionRuleSet" => ("admin-protection", admin_protection()),
        "AWSManagedRulesAmazonIpReputationList" => ("amazon-ip-list", ip_reputation()),
        "AWSManagedRulesAnonymousIpList" => ("anonymous-ip-list", anonymous_ip()),
        _ => return None,
    };
    let mut out = Vec::with_capacity(rules.len());
    for (i, r) in rules.into_iter().enumerate() {
        let mut r = r;
        r["Priority"] = json!(i);
        match serde_json::from_value::<model::Rule>(r) {
            Ok(rule) => out.push(rule),
            Err(e) => return Some(Err(format!("internal definition error: {e}"))),
        }
    }
    Some(Ok(ManagedDef { label_namespace: ns, rules: out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_compiles_with_labels() {
        let metrics = crate::waf::metrics::WafMetrics::default();
        for g in GROUPS {
            let acl = json!({
                "Name": "t", "DefaultAction": {"Allow": {}},
                "Rules": [{"Name": "g", "Priority": 1, "OverrideAction": {"None": {}},
                    "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": g}},
                    "VisibilityConfig": {"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": "g"}}]
            });
            let r = crate::waf::load_str(&acl.to_string(), &metrics);
            assert!(r.is_ok(), "{g}: {:?}", r.err());
            let def = group(g, &BTreeMap::new()).and_then(Result::ok).map(|d| d.rules).unwrap_or_default();
            assert!(!def.is_empty(), "{g} has rules");
            assert!(def.iter().all(|r| r.rule_labels.len() == 1));
        }
    }
}
