//! The route table's index: a tree of path segments (literal children by name, one `:param` child, and the
//! routes ending in `*` or ending exactly at each node), so finding a request's route walks the request's
//! segments instead of every route — the cost stays flat from ten routes to ten thousand. The walk yields every
//! route whose pattern *could* match; the lowest-numbered one that passes its host, method and exact pattern
//! check wins, so "first match wins" means exactly what it did with a linear scan. (matchit, axum's router,
//! refuses overlapping patterns such as `/a/:x` beside `/a/*`, which our first-match-wins table allows.)

use std::collections::HashMap;

use crate::path_pattern::{PathPattern, PatternSegment};

#[derive(Debug, Clone, Default)]
struct Node {
    literal: HashMap<String, Node>,
    param: Option<Box<Node>>,
    /// Routes whose pattern ends here with `*`.
    rest: Vec<usize>,
    /// Routes whose pattern ends exactly here.
    end: Vec<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct RouteIndex {
    root: Node,
}

impl RouteIndex {
    /// Indexes patterns by their position in the table.
    pub fn build<'a>(patterns: impl IntoIterator<Item = &'a PathPattern>) -> Self {
        let mut root = Node::default();
        for (index, pattern) in patterns.into_iter().enumerate() {
            let mut node = &mut root;
            let mut rest = false;
            for segment in pattern.segments() {
                match segment {
                    PatternSegment::Literal(name) => node = node.literal.entry(name.to_owned()).or_default(),
                    PatternSegment::Param => node = node.param.get_or_insert_with(Default::default),
                    PatternSegment::Rest => rest = true,
                }
            }
            if rest {
                node.rest.push(index);
            } else {
                node.end.push(index);
            }
        }
        RouteIndex { root }
    }

    /// The lowest route index that could match `path` and for which `accept` holds (`accept` makes the exact
    /// checks: host, method, pattern). No allocation.
    pub fn first(&self, path: &str, accept: &mut dyn FnMut(usize) -> bool) -> Option<usize> {
        let body = path.strip_prefix('/')?;
        let mut best = None;
        walk(&self.root, body, accept, &mut best);
        best
    }
}

fn consider(candidates: &[usize], accept: &mut dyn FnMut(usize) -> bool, best: &mut Option<usize>) {
    for &index in candidates {
        if best.is_some_and(|b| b <= index) {
            // Candidates are in table order: nothing later here can win.
            return;
        }
        if accept(index) {
            *best = Some(index);
            return;
        }
    }
}

/// `rest` is what is left of the path after this node's segment and its `/` (empty: the path ended here, or
/// with one trailing slash, which a pattern without `*` ignores).
fn walk(node: &Node, rest: &str, accept: &mut dyn FnMut(usize) -> bool, best: &mut Option<usize>) {
    // A `*` takes whatever is left, even nothing.
    consider(&node.rest, accept, best);
    // A pattern without `*` ends here when the path does (one trailing slash is ignored).
    if rest.is_empty() {
        consider(&node.end, accept, best);
        return;
    }
    let (segment, after) = match rest.split_once('/') {
        Some((segment, after)) => (segment, after),
        None => (rest, ""),
    };
    if let Some(child) = node.literal.get(segment) {
        walk(child, after, accept, best);
    }
    if !segment.is_empty()
        && let Some(child) = &node.param
    {
        walk(child, after, accept, best);
    }
}
