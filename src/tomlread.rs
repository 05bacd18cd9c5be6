//! Reading hand-written TOML so that every mistake is reported at once, each with its line and
//! column, and an unknown key gets a "did you mean" suggestion.
//!
//! serde stops at the first error; rules files and fleet configs are edited by people who want
//! the whole list. So the document is parsed once into spanned values and each field is read by
//! hand through [`Fields`], which records problems instead of returning early.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::error::{Problem, did_you_mean};

pub type Spanned<T> = toml::Spanned<T>;

/// The source text and the problems found so far.
pub struct Ctx<'s> {
    pub src: &'s str,
    pub problems: Vec<Problem>,
}

impl<'s> Ctx<'s> {
    pub fn new(src: &'s str) -> Self {
        Ctx {
            src,
            problems: Vec::new(),
        }
    }

    /// Every problem found in the file at `path`, as one error, or none.
    pub fn into_result(self, path: &std::path::Path) -> Result<(), crate::error::Error> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(crate::error::Error::Invalid {
                path: path.to_path_buf(),
                problems: self.problems,
            })
        }
    }

    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.src[..offset.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rfind('\n')
            .map(|i| before.len() - i)
            .unwrap_or(before.len() + 1);
        (line, column)
    }

    pub fn report(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = self.line_col(span.start);
        self.problems.push(Problem {
            line,
            column,
            message: message.into(),
        });
    }

    /// Parses the document; a syntax error is recorded and `None` returned.
    pub fn parse(&mut self) -> Option<Spanned<DeTable<'s>>> {
        match DeTable::parse(self.src) {
            Ok(t) => Some(t),
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                self.report(span, format!("TOML syntax: {}", e.message().trim()));
                None
            }
        }
    }
}

/// The fields of one table, read one by one; unknown keys are reported by [`Fields::finish`].
pub struct Fields<'t, 'i> {
    table: &'t DeTable<'i>,
    pub span: Range<usize>,
    /// What the table is, for messages: "rule `gpu-null`", "[fleet]".
    pub what: String,
    used: Vec<String>,
}

impl<'t, 'i> Fields<'t, 'i> {
    pub fn new(table: &'t DeTable<'i>, span: Range<usize>, what: impl Into<String>) -> Self {
        Fields {
            table,
            span,
            what: what.into(),
            used: Vec::new(),
        }
    }

    /// The raw value of `key`, marking it as known.
    pub fn value(&mut self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.used.push(key.to_string());
        self.table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| v)
    }

    /// Every key of the table, for tables whose keys are names chosen by the user.
    pub fn keys(&self) -> Vec<String> {
        self.table
            .iter()
            .map(|(k, _)| k.get_ref().to_string())
            .collect()
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.iter().any(|(k, _)| k.get_ref().as_ref() == key)
    }

    fn missing(&self, ctx: &mut Ctx, key: &str) {
        ctx.report(
            self.span.clone(),
            format!("{} is missing `{key}`", self.what),
        );
    }

    fn wrong_type(&self, ctx: &mut Ctx, key: &str, v: &Spanned<DeValue>, expected: &str) {
        ctx.report(
            v.span(),
            format!(
                "{}: `{key}` must be {expected}, not {}",
                self.what,
                v.get_ref().type_str()
            ),
        );
    }

    pub fn string(&mut self, ctx: &mut Ctx, key: &str, required: bool) -> Option<Spanned<String>> {
        let Some(v) = self.value(key) else {
            if required {
                self.missing(ctx, key);
            }
            return None;
        };
        match v.get_ref().as_str() {
            Some(s) => Some(Spanned::new(v.span(), s.to_string())),
            None => {
                self.wrong_type(ctx, key, v, "a string");
                None
            }
        }
    }

    /// A number written as an integer or a float.
    pub fn number(&mut self, ctx: &mut Ctx, key: &str) -> Option<Spanned<f64>> {
        let v = self.value(key)?;
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => i.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            _ => None,
        };
        match parsed {
            // `nan` and `inf` compare unlike any number: a threshold of either silently turns
            // its check off.
            Some(n) if !n.is_finite() => {
                ctx.report(
                    v.span(),
                    format!("{}: `{key}` must be a finite number", self.what),
                );
                None
            }
            Some(n) => Some(Spanned::new(v.span(), n)),
            None => {
                self.wrong_type(ctx, key, v, "a number");
                None
            }
        }
    }

    pub fn count(&mut self, ctx: &mut Ctx, key: &str) -> Option<usize> {
        let n = self.number(ctx, key)?;
        let value = *n.get_ref();
        if value < 0.0 || value.fract() != 0.0 {
            ctx.report(
                n.span(),
                format!("{}: `{key}` must be a whole number ≥ 0", self.what),
            );
            return None;
        }
        Some(value as usize)
    }

    pub fn boolean(&mut self, ctx: &mut Ctx, key: &str) -> Option<bool> {
        let v = self.value(key)?;
        match v.get_ref().as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong_type(ctx, key, v, "true or false");
                None
            }
        }
    }

    /// A string, or an array of strings (a single string becomes a list of one).
    pub fn strings(&mut self, ctx: &mut Ctx, key: &str) -> Option<Vec<Spanned<String>>> {
        let v = self.value(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(vec![Spanned::new(v.span(), s.to_string())]),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    match item.get_ref().as_str() {
                        Some(s) => out.push(Spanned::new(item.span(), s.to_string())),
                        None => self.wrong_type(ctx, key, item, "a string"),
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong_type(ctx, key, v, "a string or an array of strings");
                None
            }
        }
    }

    /// A nested table, as fields of its own.
    pub fn table(&mut self, ctx: &mut Ctx, key: &str, what: &str) -> Option<Fields<'t, 'i>> {
        let v = self.value(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(Fields::new(t, v.span(), what)),
            _ => {
                self.wrong_type(ctx, key, v, "a table");
                None
            }
        }
    }

    /// Tables of an array of tables (`[[rule]]`), each with its span.
    pub fn tables(&mut self, ctx: &mut Ctx, key: &str) -> Vec<(&'t DeTable<'i>, Range<usize>)> {
        let Some(v) = self.value(key) else {
            return Vec::new();
        };
        match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| match item.get_ref() {
                    DeValue::Table(t) => Some((t, item.span())),
                    _ => {
                        self.wrong_type(ctx, key, item, "a table");
                        None
                    }
                })
                .collect(),
            _ => {
                self.wrong_type(ctx, key, v, "an array of tables");
                Vec::new()
            }
        }
    }

    /// Reports every key that no reader asked for.
    pub fn finish(self, ctx: &mut Ctx) {
        let known: Vec<&str> = self.used.iter().map(String::as_str).collect();
        for (k, _) in self.table.iter() {
            let name = k.get_ref().as_ref();
            if !known.contains(&name) {
                ctx.report(
                    k.span(),
                    format!(
                        "{}: unknown key `{name}`{}",
                        self.what,
                        did_you_mean(name, &known)
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_problem_with_lines() {
        let src = "[a]\nname = 3\nsevertiy = \"x\"\ncount = -1\n";
        let mut ctx = Ctx::new(src);
        let doc = ctx.parse().unwrap();
        let mut top = Fields::new(doc.get_ref(), doc.span(), "file");
        let mut a = top.table(&mut ctx, "a", "[a]").unwrap();
        assert!(a.string(&mut ctx, "name", true).is_none());
        a.string(&mut ctx, "severity", false);
        a.count(&mut ctx, "count");
        a.finish(&mut ctx);
        top.finish(&mut ctx);
        let lines: Vec<usize> = ctx.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 4, 3], "{:?}", ctx.problems);
        assert!(ctx.problems[2].message.contains("did you mean `severity`"));
    }

    #[test]
    fn syntax_errors_are_located() {
        let mut ctx = Ctx::new("a = 1\nb = = 2\n");
        assert!(ctx.parse().is_none());
        assert_eq!(ctx.problems[0].line, 2);
    }
}

/// Text that looks like the files patrol reads (tables, arrays of tables, keys it knows, values
/// of every type, out-of-range numbers and durations), for property tests of the loaders.
#[cfg(test)]
pub mod arbitrary {
    use proptest::prelude::*;

    const HEADERS: &[&str] = &[
        "[[node]]",
        "[node.docker]",
        "[node.ssh]",
        "[node.host]",
        "[node.prometheus]",
        "[[node.postgres]]",
        "[[node.redis]]",
        "[[node.rabbitmq]]",
        "[[node.http]]",
        "[[node.redis.watch]]",
        "[logs]",
        "[report]",
        "[daemon]",
        "[retention]",
        "[telegram]",
        "[[rule]]",
        "[[state]]",
        "[[alias]]",
        "[rule.params]",
        "[rule.select]",
        "[[ack]]",
        "[scenario]",
        "[[node.container]]",
        "[[node.container.log]]",
        "[[node_template]]",
        "[node_template.node]",
        "[node.host.disks]",
        "[[",
        "[a.b.c]",
    ];
    const KEYS: &[&str] = &[
        "fleet",
        "name",
        "timezone",
        "archive",
        "window",
        "timeout",
        "interval",
        "port",
        "endpoint",
        "target",
        "url",
        "api_base",
        "concurrency",
        "attempts",
        "backoff",
        "id",
        "kind",
        "severity",
        "select",
        "when",
        "params",
        "rule",
        "node",
        "reason",
        "owner",
        "expires",
        "start",
        "end",
        "count",
        "prefix",
        "extra_containers",
        "every",
        "mem",
        "image",
        "state",
        "message",
        "max_lines",
        "db",
        "key",
        "full",
        "hourly",
        "daily",
        "first_window",
        "repeat_after",
        "password",
        "token_env",
        "chat_id",
        "seed",
        "jitter",
    ];
    const VALUES: &[&str] = &[
        "\"x\"",
        "\"vk01\"",
        "\"15m\"",
        "\"0m\"",
        "\"99999999999999d\"",
        "\"1e400s\"",
        "\"-5s\"",
        "\"1000000000w\"",
        "\"2026-02-18 12:00\"",
        "\"+2h\"",
        "\"+99999999999d\"",
        "70000",
        "-1",
        "0",
        "1",
        "4294967296",
        "1e308",
        "-0.5",
        "nan",
        "inf",
        "true",
        "\"http://127.0.0.1:8080/\"",
        "\"ftp://x\"",
        "\"tcp://:0\"",
        "\"ssh://-oProxyCommand=x\"",
        "\"unix://\"",
        "\"-oProxyCommand=touch /tmp/x\"",
        "[]",
        "[\"a\", 1]",
        "{ a = 1 }",
        "\"414MB\"",
        "\"1.5GiB\"",
        "\"+2.7MB/h\"",
        "\"warning\"",
        "\"container\"",
        "\"\"",
        "\"2026-03-31\"",
        "\"running\"",
        "1000000000",
    ];

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(HEADERS).prop_map(str::to_string),
            (
                proptest::sample::select(KEYS),
                proptest::sample::select(VALUES)
            )
                .prop_map(|(k, v)| format!("{k} = {v}")),
            "[ -~]{0,20}",
        ]
    }

    /// A document of up to 40 such lines.
    pub fn tomlish() -> impl Strategy<Value = String> {
        proptest::collection::vec(line(), 0..40).prop_map(|l| l.join("\n"))
    }
}
