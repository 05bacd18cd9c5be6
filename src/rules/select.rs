//! Which series a rule looks at: entities by glob, one metric, optionally some nodes or roles.

use crate::history::{NodeHistory, Series, Window};

/// `*` matches any run of characters, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[derive(Debug, Clone, Default)]
pub struct Selector {
    /// Entity globs ("container:*", "gpu:*"); empty means every entity.
    pub entities: Vec<String>,
    pub exclude: Vec<String>,
    /// Metric (series rules) or attribute (fleet rules); empty for kinds that need neither.
    pub metric: String,
    pub nodes: Vec<String>,
    pub roles: Vec<String>,
}

impl Selector {
    pub fn node_matches(&self, node: &NodeHistory) -> bool {
        (self.nodes.is_empty() || self.nodes.iter().any(|p| glob_match(p, &node.node)))
            && (self.roles.is_empty()
                || node
                    .role
                    .as_ref()
                    .is_some_and(|r| self.roles.iter().any(|p| glob_match(p, r))))
    }

    pub fn entity_matches(&self, entity: &str) -> bool {
        (self.entities.is_empty() || self.entities.iter().any(|p| glob_match(p, entity)))
            && !self.exclude.iter().any(|p| glob_match(p, entity))
    }

    /// Every selected series, by node then entity.
    pub fn series<'w>(&self, window: &'w Window) -> Vec<(&'w NodeHistory, &'w str, &'w Series)> {
        let mut out = Vec::new();
        for node in window.nodes().filter(|n| self.node_matches(n)) {
            for (entity, series) in node.series_of(&self.metric) {
                if self.entity_matches(entity) {
                    out.push((node, entity, series));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("container:*", "container:visionking-visualizer"));
        assert!(glob_match(
            "*inference*",
            "container:dev-visionking-inference"
        ));
        assert!(glob_match("gpu:?", "gpu:0"));
        assert!(!glob_match("gpu:?", "gpu:10"));
        assert!(!glob_match("container:*", "host"));
    }
}
