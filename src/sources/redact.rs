//! Masking secrets in everything a snapshot stores. Remote text (container commands, log lines
//! and their templates, health-check output, HTTP error bodies, Redis values, error messages)
//! often carries credentials in a handful of common forms; each is masked here, keeping the key
//! or flag so a reader still sees what was there:
//!
//! - URL passwords: `scheme://user:secret@host` (the password may hold `/`, `:` or `@`);
//! - `key=value` and `key: value` pairs, JSON-style `"password": "x"` and `'token': 'x'`
//!   (password, passwd, pwd, secret, token, api_key, access_key, …);
//! - command-line flags: `--requirepass x`, `--password x`, `--password=x`, `--token x`,
//!   `--api-key x`, `mysql -px`; in an argument list (a container's command) the argument after
//!   a bare secret flag;
//! - `Bearer x`, `token x`, `Authorization: Basic x`, `Authorization: x`;
//! - configured patterns, and the exact values of the passwords patrol itself resolved.
//!
//! Only the value is masked: "password changed for user bob" keeps its words. Applied to the
//! whole snapshot after collection, so no collector can forget.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::model::Snapshot;

pub const MASK: &str = "***";

/// Names that mark a secret in a pair, in any case and with any prefix (`DB_PASSWORD`).
const PAIR_KEYS: &str = r"(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?token|credentials?)(?:[_-]?key)?";

/// Flag names whose value is a secret (`--requirepass`, `--db-password`, `-pass`).
const FLAG_NAMES: &str = r"(?:[a-z0-9]+-)*(?:requirepass|masterauth|password|passwd|pass|token|secret|api-?key|access-key|secret-key|private-key|auth-token|auth)";

/// Arguments that start like `-p<password>` but are well-known options of other tools.
const NOT_SHORT_P: &[&str] = &[
    "-print",
    "-print0",
    "-printf",
    "-prune",
    "-path",
    "-perm",
    "-pthread",
    "-pedantic",
    "-pipe",
];

struct Builtin {
    url: Regex,
    pair: Regex,
    flag: Regex,
    short_p: Regex,
    authorization: Regex,
    bearer: Regex,
    token_word: Regex,
    bare_flag: Regex,
    user_colon: Regex,
}

fn compile(pattern: &str) -> Regex {
    // The patterns are constants checked by the tests below; an empty-matching fallback keeps
    // this infallible rather than panicking.
    Regex::new(pattern).unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| unreachable!()))
}

static BUILTIN: LazyLock<Builtin> = LazyLock::new(|| Builtin {
    // Greedy up to the last `@` of the token: a password may hold `@`, `/` and `:` unescaped,
    // and in a log template `<n>` where digits were.
    url: compile(r#"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@"]*:)[^\s"]+@"#),
    pair: compile(&format!(
        // A quoted value runs to its closing quote (escapes included); a bare one to the next
        // space, quote or `&`: a `,` or `;` inside a password must not leave its tail behind.
        r#"(?i)(?P<keep>{PAIR_KEYS}(?:\\?["'])?\s*[=:]\s*)(?:(?P<q>\\")(?:\\\\\\.|[^\\\r\n]|\\[^"])*|(?P<q2>")(?:[^"\\\r\n]|\\.)*|(?P<q3>')(?:[^'\\\r\n]|\\.)*|[^\s"'&]+)"#
    )),
    flag: compile(&format!(
        r#"(?i)(?P<keep>(?:^|[\s"'=])--?(?P<name>{FLAG_NAMES})(?:\s+|=))(?:"[^"]*"|'[^']*'|[^\s"']+)"#
    )),
    short_p: compile(r#"(?P<keep>(?:^|[\s"'])-p)(?P<value>[^\s"']+)"#),
    authorization: compile(
        r#"(?i)(?P<keep>\bauthorization(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?(?:(?:basic|bearer|token|digest|negotiate|apikey)\s+)?)[^\s"',;\\]+"#,
    ),
    bearer: compile(r"(?i)(?P<keep>\bbearer\s+)[A-Za-z0-9\-._~+/]{8,}=*"),
    token_word: compile(r"(?i)(?P<keep>\btoken\s+)[A-Za-z0-9\-._~+/]{16,}=*"),
    bare_flag: compile(&format!(r"(?i)^--?(?P<name>{FLAG_NAMES})$")),
    // `curl -u user:password`, `--user=user:password`: the part after the first colon.
    user_colon: compile(r#"(?P<keep>(?:^|[\s"'])(?:-u|--user)(?:\s+|=)[^\s:"']+:)[^\s"']+"#),
});

/// Whether `arg` is a flag whose next argument is a secret (`--requirepass`, `--token`).
fn is_secret_flag(arg: &str) -> bool {
    BUILTIN
        .bare_flag
        .captures(arg.trim())
        .and_then(|c| c.name("name"))
        .is_some_and(|n| !n.as_str().to_ascii_lowercase().starts_with("no-"))
}

/// The built-in forms only, for text that never reaches a [`Redactor`] (a warning on stderr).
pub fn builtin_text(input: &str) -> String {
    Redactor::new(&[], Vec::new()).text(input)
}

pub struct Redactor {
    patterns: Vec<Regex>,
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(extra: &[Regex], secrets: Vec<String>) -> Redactor {
        Redactor {
            patterns: extra.to_vec(),
            // Very short values would mask ordinary text; they are still masked inside DSNs.
            secrets: secrets.into_iter().filter(|s| s.len() >= 4).collect(),
        }
    }

    /// Masks every form; repeated until nothing changes, so masking twice gives what masking
    /// once gave.
    pub fn text(&self, input: &str) -> String {
        let mut out = self.once(input);
        for _ in 0..4 {
            let next = self.once(&out);
            if next == out {
                break;
            }
            out = next;
        }
        out
    }

    fn once(&self, input: &str) -> String {
        let mut out = input.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        let b = &*BUILTIN;
        out = b
            .url
            .replace_all(&out, format!("${{keep}}{MASK}@"))
            .into_owned();
        out = b
            .pair
            .replace_all(&out, |c: &Captures| {
                match c.name("q").or(c.name("q2")).or(c.name("q3")) {
                    Some(q) => format!("{}{}{MASK}", &c["keep"], q.as_str()),
                    None => format!("{}{MASK}", &c["keep"]),
                }
            })
            .into_owned();
        out = b
            .user_colon
            .replace_all(&out, format!("${{keep}}{MASK}"))
            .into_owned();
        out = b
            .flag
            .replace_all(&out, |c: &Captures| {
                if c["name"].to_ascii_lowercase().starts_with("no-") {
                    c[0].to_string()
                } else {
                    format!("{}{MASK}", &c["keep"])
                }
            })
            .into_owned();
        out = b
            .short_p
            .replace_all(&out, |c: &Captures| {
                let value = &c["value"];
                let word = format!("-p{value}");
                // A port or port mapping (`-p5432`, `-p8080:80`) is not a password.
                let port = value.chars().all(|ch| ch.is_ascii_digit() || ch == ':');
                if port || NOT_SHORT_P.contains(&word.as_str()) {
                    c[0].to_string()
                } else {
                    format!("{}{MASK}", &c["keep"])
                }
            })
            .into_owned();
        for re in [&b.authorization, &b.bearer, &b.token_word] {
            out = re
                .replace_all(&out, format!("${{keep}}{MASK}"))
                .into_owned();
        }
        for re in &self.patterns {
            if re.capture_names().any(|n| n == Some("keep")) {
                out = re
                    .replace_all(&out, format!("${{keep}}{MASK}${{end}}"))
                    .into_owned();
            } else {
                out = re.replace_all(&out, MASK).into_owned();
            }
        }
        out
    }

    /// An argument list (a container's command): each argument masked, and the argument after
    /// a bare secret flag (`--requirepass`, `x`) masked whole.
    pub fn args(&self, args: &[String]) -> Vec<String> {
        let mut out = Vec::with_capacity(args.len());
        let mut previous: Option<&str> = None;
        for a in args {
            let masked = match previous {
                Some(flag) if is_secret_flag(flag) => MASK.to_string(),
                // `-u user:password` as two arguments: the user stays, the password goes.
                Some("-u" | "--user") if a.contains(':') => {
                    let user = a.split(':').next().unwrap_or_default();
                    format!("{}:{MASK}", self.text(user))
                }
                _ => self.text(a),
            };
            out.push(masked);
            previous = Some(a.as_str());
        }
        out
    }

    /// Masks every string in the snapshot.
    pub fn snapshot(&self, snap: &mut Snapshot) {
        let Ok(mut value) = serde_json::to_value(&*snap) else {
            return;
        };
        self.walk(&mut value);
        if let Ok(clean) = serde_json::from_value(value) {
            *snap = clean;
        }
    }

    fn walk(&self, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => {
                let cleaned = self.text(s);
                if cleaned != *s {
                    *s = cleaned;
                }
            }
            serde_json::Value::Array(items) => {
                // Every list of strings is treated as arguments: a secret flag and its value
                // are two items.
                let strings: Option<Vec<String>> = items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect();
                match strings {
                    Some(args) => {
                        *items = self
                            .args(&args)
                            .into_iter()
                            .map(serde_json::Value::String)
                            .collect();
                    }
                    None => items.iter_mut().for_each(|i| self.walk(i)),
                }
            }
            serde_json::Value::Object(map) => {
                // Keys are fleet text too: extracted log fields are counted by value.
                let entries = std::mem::take(map);
                for (key, mut value) in entries {
                    self.walk(&mut value);
                    let key = self.text(&key);
                    match map.get_mut(&key) {
                        // Two values masked alike: their counts add up.
                        Some(serde_json::Value::Number(have)) => {
                            if let (Some(a), Some(b)) = (have.as_u64(), value.as_u64()) {
                                *have = (a + b).into();
                            }
                        }
                        Some(_) => {}
                        None => {
                            map.insert(key, value);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plain() -> Redactor {
        Redactor::new(&[], Vec::new())
    }

    #[test]
    fn quoted_values_run_to_their_closing_quote_and_bare_ones_keep_no_tail() {
        let r = Redactor::new(&[], Vec::new());
        for (input, secret) in [
            (r#"password="ab'SECRET1" user=bob"#, "SECRET1"),
            (r#"token="ab\"SECRET2""#, "SECRET2"),
            ("db_password=p4ss,SECRET3 next", "SECRET3"),
            ("x_secret=p4ss;SECRET4", "SECRET4"),
            (r#"{\"password\": \"a\\\"SECRET5\"}"#, "SECRET5"),
            ("curl -u admin:SECRET6 https://x", "SECRET6"),
            ("app --auth SECRET7", "SECRET7"),
            ("app --private-key=SECRET8", "SECRET8"),
        ] {
            let out = r.text(input);
            assert!(!out.contains(secret), "{input} -> {out}");
        }
        assert_eq!(
            r.text(r#"password="x" user=bob"#),
            r#"password="***" user=bob"#
        );
        let args: Vec<String> = ["curl", "-u", "admin:SECRET9", "--auth", "SECRET10", "-v"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let out = r.args(&args);
        assert_eq!(out[2], "admin:***");
        assert_eq!(out[4], "***");
        assert_eq!(out[5], "-v");
    }

    #[test]
    fn keys_of_stored_maps_are_masked_and_their_counts_kept() {
        let r = Redactor::new(&[], Vec::new());
        let mut v = serde_json::json!({"conn": {"postgres://u:SECRET1@h/db": 2, "postgres://u:SECRET2@h/db": 3}});
        r.walk(&mut v);
        let text = v.to_string();
        assert!(!text.contains("SECRET"), "{text}");
        assert_eq!(v["conn"]["postgres://u:***@h/db"], 5);
    }

    #[test]
    fn masks_dsn_passwords_pairs_and_known_secrets() {
        let r = Redactor::new(
            &[Regex::new(r"sk-[A-Za-z0-9]{8,}").unwrap()],
            vec!["s3cr3t-value".into()],
        );
        assert_eq!(
            r.text("connect postgresql://patrol:hunter2@10.0.0.1:5432/db failed"),
            "connect postgresql://patrol:***@10.0.0.1:5432/db failed"
        );
        assert_eq!(r.text("login password=hunter2 ok"), "login password=*** ok");
        assert_eq!(r.text("DB_PASSWORD: 'abc def'"), "DB_PASSWORD: '***'");
        assert_eq!(r.text("got s3cr3t-value back"), "got *** back");
        assert_eq!(r.text("key sk-abcdefghij used"), "key *** used");
        assert_eq!(
            r.text("http://host:8080/path"),
            "http://host:8080/path",
            "a port is not a password"
        );
    }

    #[test]
    fn masks_each_common_form() {
        let r = plain();
        for (input, expected) in [
            (
                "redis-server --requirepass hunter2 --port 6379",
                "redis-server --requirepass *** --port 6379",
            ),
            ("mysql -uroot -phunter2 db", "mysql -uroot -p*** db"),
            ("app --password hunter2", "app --password ***"),
            ("app --password=hunter2", "app --password=***"),
            (
                "app --token abc123 --api-key xyz789",
                "app --token *** --api-key ***",
            ),
            (
                r#"{"password": "hunter 2", "user": "bob"}"#,
                r#"{"password": "***", "user": "bob"}"#,
            ),
            ("{'secret': 'hunter2'}", "{'secret': '***'}"),
            (
                r#"{"api_key":"k1","token":"t1"}"#,
                r#"{"api_key":"***","token":"***"}"#,
            ),
            ("postgres://u:pa/ss@host/db", "postgres://u:***@host/db"),
            (
                "redis://:p@ss:w/rd@cache:6379/0",
                "redis://:***@cache:6379/0",
            ),
            (
                "reconnecting to postgresql://app:pt-secret<n>@db:<n>/fleet",
                "reconnecting to postgresql://app:***@db:<n>/fleet",
            ),
            (
                "Authorization: Bearer abcdefghij",
                "Authorization: Bearer ***",
            ),
            (
                "curl -H 'Authorization: Basic dXNlcjpwYXNz'",
                "curl -H 'Authorization: Basic ***'",
            ),
            ("Authorization: abcdef", "Authorization: ***"),
            ("sent Bearer eyJhbGciOiJIUzI1NiJ9.x.y", "sent Bearer ***"),
            (
                "Authorization: token ghp_abcdefghijklmnop",
                "Authorization: token ***",
            ),
            (
                "git clone with token ghp_abcdefghijklmnop1234",
                "git clone with token ***",
            ),
        ] {
            assert_eq!(r.text(input), expected, "{input}");
        }
    }

    #[test]
    fn ordinary_text_keeps_its_words() {
        let r = plain();
        for input in [
            "password changed for user bob",
            "the token expired, please log in again",
            "find / -name x -print",
            "docker run -p8080:80 nginx",
            "psql -p 5432 -h db",
            "psql --no-password -h db",
            "reading password_file /run/secrets/pg",
            "GET http://host:8080/api/v1/items 200",
            "tokens: 12 used",
        ] {
            assert_eq!(r.text(input), input);
        }
    }

    #[test]
    fn a_flag_and_its_value_as_separate_arguments() {
        let r = plain();
        let args: Vec<String> = ["redis-server", "--requirepass", "hunter2", "--port", "6379"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            r.args(&args),
            ["redis-server", "--requirepass", "***", "--port", "6379"]
        );
        let mut v = serde_json::json!({"command": ["app", "--token", "t0k3n", "-psecret1"]});
        r.walk(&mut v);
        assert_eq!(
            v["command"],
            serde_json::json!(["app", "--token", "***", "-p***"])
        );
    }

    /// Each form with `{}` where the secret goes.
    const FORMS: &[&str] = &[
        "redis-server --requirepass {} --appendonly yes",
        "mysql -u root -p{} -h db",
        "app --password {}",
        "app --password={} --verbose",
        "app --token {}",
        "app --api-key {} run",
        r#"{"password": "{}"}"#,
        "{'password': '{}'}",
        r#"{"secret":"{}","n":1}"#,
        r#"{"token": "{}"}"#,
        r#"{"api_key": "{}"}"#,
        "connect postgres://user:{}@db:5432/app failed",
        "GET /x Authorization: Bearer {} 200",
        "Bearer {}",
        "token {}",
        "Authorization: Basic {}",
        "Authorization: {}",
        "DB_PASSWORD={}",
        "password: {}",
    ];

    fn secret() -> impl Strategy<Value = String> {
        "[A-Za-z0-9]{16,32}"
    }

    fn url_secret() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9/:@]{14,30}[A-Za-z0-9]"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn no_form_keeps_its_secret(value in secret(), form in 0..FORMS.len()) {
            let text = FORMS[form].replace("{}", &value);
            let out = plain().text(&text);
            prop_assert!(!out.contains(&value), "form {} kept its value", form);
        }

        #[test]
        fn a_url_password_with_slashes_colons_and_ats_is_masked(value in url_secret()) {
            let text = format!("dial postgres://patrol:{value}@db.local:5432/app: refused");
            let out = plain().text(&text);
            prop_assert!(!out.contains(&value));
            prop_assert!(out.contains("@db.local:5432/app"), "{}", out);
        }

        #[test]
        fn masking_twice_is_masking_once(text in "[ -~]{0,80}") {
            let r = plain();
            let once = r.text(&text);
            prop_assert_eq!(r.text(&once), once);
        }

        #[test]
        fn text_without_secret_forms_is_unchanged(text in "[a-z ]{0,80}") {
            // Words and blanks only: no key, flag, URL or header to mask.
            let words: Vec<&str> = text.split(' ').collect();
            prop_assume!(!words.iter().any(|w| ["bearer", "token", "authorization"].contains(w)));
            prop_assert_eq!(plain().text(&text), text);
        }
    }
}
