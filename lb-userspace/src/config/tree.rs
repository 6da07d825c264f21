//! Statements and blocks: `keyword args... [{ statements }]`.
//!
//! A statement ends at the end of its line or at `{`. Block keywords may
//! have their name on the following lines (`vrrp_script\n  chk\n{`), and a
//! `{` alone on the next line opens the previous statement's block.

use std::collections::VecDeque;

use super::{
    diag::{Diagnostics, Location},
    lexer::Token,
    limits::MAX_DEPTH,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub keyword: String,
    pub args: Vec<Token>,
    pub block: Option<Vec<Node>>,
    pub at: Location,
}

impl Node {
    pub fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(|t| t.text.as_str())
    }
}

/// Keywords that always own a block, so their arguments may run over lines.
const BLOCKS: &[&str] = &[
    "global_defs",
    "vrrp_script",
    "vrrp_instance",
    "vrrp_sync_group",
    "virtual_server",
    "virtual_server_group",
    "real_server",
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
    "DNS_CHECK",
    "SMTP_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
    "BFD_CHECK",
    "url",
    "authentication",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "virtual_routes",
    "virtual_rules",
    "unicast_peer",
    "track_script",
    "track_interface",
    "track_file",
    "vrrp_track_file",
    "track_process",
    "vrrp_track_process",
    "group",
    "notification_email",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "linkbeat_interfaces",
    "garp_group",
];

/// Reads statements and blocks without recursion: the open blocks are a
/// stack no deeper than `MAX_DEPTH`, so 100,000 `{` cost a loop, not the
/// call stack.
pub fn parse(chunks: Vec<Vec<Token>>, diags: &mut Diagnostics) -> Vec<Node> {
    let mut tokens = Tokens(chunks.into_iter().map(Vec::into_iter).collect());
    let mut top = Vec::new();
    // Blocks opened and not yet closed, innermost last.
    let mut open: Vec<Open> = Vec::new();
    while let Some(t) = tokens.next() {
        let out = open.last_mut().map_or(&mut top, |o| &mut o.kids);
        if t.is("}") {
            match open.pop() {
                Some(o) => o.close(open.last_mut().map_or(&mut top, |p| &mut p.kids)),
                // A `}` that closes nothing; go on after it.
                None => diags.error(&t.at, "`}` closes no block"),
            }
            continue;
        }
        let at = t.at.clone();
        let owner = if t.is("{") {
            // `{` alone: opens the block of the statement just read.
            match out.pop() {
                Some(prev) if prev.block.is_none() => Some(prev),
                other => {
                    out.extend(other);
                    diags.error(
                        &t.at,
                        "`{` opens a block with no keyword; the block is skipped",
                    );
                    None
                }
            }
        } else {
            match statement(t, &mut tokens, diags) {
                (node, true) => Some(node),
                (node, false) => {
                    out.push(node);
                    continue;
                }
            }
        };
        if open.len() >= MAX_DEPTH {
            let at = owner.as_ref().map_or(at, |o| o.at.clone());
            diags.error(
                &at,
                format!(
                    "blocks nested more than {MAX_DEPTH} deep; the block opened here is skipped"
                ),
            );
            skip_block(&mut tokens);
            continue;
        }
        open.push(Open {
            keep: owner.is_some(),
            owner: owner.unwrap_or_else(|| Node {
                keyword: "{".into(),
                args: Vec::new(),
                block: None,
                at,
            }),
            kids: Vec::new(),
        });
    }
    while let Some(o) = open.pop() {
        diags.error(
            &o.owner.at,
            format!("block `{}` opened here is never closed", o.owner.keyword),
        );
        o.close(open.last_mut().map_or(&mut top, |p| &mut p.kids));
    }
    top
}

/// A block whose `{` was read and whose `}` was not yet.
struct Open {
    owner: Node,
    kids: Vec<Node>,
    /// False for a block with no keyword: read, then dropped.
    keep: bool,
}

impl Open {
    fn close(mut self, parent: &mut Vec<Node>) {
        if self.keep {
            self.kids.shrink_to_fit();
            self.owner.block = Some(self.kids);
            parent.push(self.owner);
        }
    }
}

/// Reads past a block whose `{` was just read, through its matching `}`.
fn skip_block(tokens: &mut Tokens) {
    let mut depth = 1usize;
    for t in tokens.by_ref() {
        if t.is("{") {
            depth += 1;
        } else if t.is("}") {
            depth -= 1;
            if depth == 0 {
                return;
            }
        }
    }
}

/// The token stream, chunk by chunk: a chunk read is dropped at once.
struct Tokens(VecDeque<std::vec::IntoIter<Token>>);

impl Iterator for Tokens {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        loop {
            if let Some(t) = self.0.front_mut()?.next() {
                return Some(t);
            }
            self.0.pop_front();
        }
    }
}

impl Tokens {
    fn ahead(&self) -> impl Iterator<Item = &Token> {
        self.0.iter().flat_map(|c| c.as_slice())
    }
}

fn peek(tokens: &Tokens) -> Option<&Token> {
    tokens.ahead().next()
}

/// Whether a `{` comes within the next `room + 1` tokens with only names
/// before it: a block's name written on the lines before its brace.
fn brace_within(tokens: &Tokens, room: usize) -> bool {
    tokens
        .ahead()
        .take(room + 1)
        .take_while(|t| !t.is("}") && !BLOCKS.contains(&t.text.as_str()))
        .any(|t| t.is("{"))
}

/// Reads the statement `t` starts; true when it opens a block (its `{` read).
fn statement(t: Token, tokens: &mut Tokens, diags: &mut Diagnostics) -> (Node, bool) {
    let is_block = BLOCKS.contains(&t.text.as_str());
    let mut line_end = t.line_end;
    let mut node = Node {
        keyword: t.text,
        args: Vec::new(),
        block: None,
        at: t.at,
    };
    while let Some(next) = peek(tokens) {
        if next.is("}") {
            break;
        }
        if next.is("{") {
            tokens.next();
            node.args.shrink_to_fit();
            return (node, true);
        }
        // Block keywords may carry their (at most two) arguments over
        // lines when a `{` follows them.
        if line_end && !(is_block && brace_within(tokens, 2usize.saturating_sub(node.args.len()))) {
            break;
        }
        let Some(arg) = tokens.next() else { break };
        line_end = arg.line_end;
        node.args.push(arg);
    }
    // `{` on a later line is still to come; a block keyword without one
    // would otherwise be read as empty without a word.
    let brace_follows = peek(tokens).is_some_and(|n| n.is("{"));
    // FILE_CHECK's `track_file NAME` is a statement of the block keyword.
    let file_check_line = node.keyword == "track_file" && !node.args.is_empty();
    if is_block && !brace_follows && !file_check_line {
        diags.warn(
            &node.at,
            format!("{} without a {{ ... }} block", node.keyword),
        );
    }
    // A Vec grows by 4 tokens at first: most statements have one argument.
    node.args.shrink_to_fit();
    (node, false)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{diag::Severity, lexer::lex};

    fn tree(text: &str) -> (Vec<Node>, Diagnostics) {
        let mut d = Diagnostics::default();
        let t = lex(text, Path::new("t.conf"), &mut d);
        (parse(vec![t], &mut d), d)
    }

    fn shape(nodes: &[Node]) -> String {
        nodes
            .iter()
            .map(|n| {
                let args: Vec<&str> = n.args.iter().map(|a| a.text.as_str()).collect();
                match &n.block {
                    Some(kids) => format!("{}({})[{}]", n.keyword, args.join(","), shape(kids)),
                    None => format!("{}({})", n.keyword, args.join(",")),
                }
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    #[test]
    fn statements_end_at_line_end_and_blocks_nest() {
        let (t, d) = tree(
            "virtual_server 10.0.0.1 80 {\n delay_loop 6\n real_server 10.0.0.2 80 {\n weight 1\n }\n}\n",
        );
        assert_eq!(
            shape(&t),
            "virtual_server(10.0.0.1,80)[delay_loop(6);real_server(10.0.0.2,80)[weight(1)]]"
        );
        assert!(d.0.is_empty());
    }

    #[test]
    fn block_names_and_braces_on_later_lines() {
        let (t, _) = tree("vrrp_script\n  chk_nginx\n{\n  script \"pidof nginx\"\n}\n");
        assert_eq!(shape(&t), "vrrp_script(chk_nginx)[script(pidof nginx)]");
    }

    #[test]
    fn assignments_are_split_with_a_warning() {
        let (t, d) = tree("real_server 1.2.3.4 80 {\n weight=3\n}\n");
        assert_eq!(shape(&t), "real_server(1.2.3.4,80)[weight(3)]");
        assert_eq!(
            d.rendered(Severity::Warning),
            ["t.conf:2: warning: `weight=3` read as `weight 3`"]
        );
    }

    #[test]
    fn block_keywords_without_a_block_are_warned_about() {
        let (t, d) = tree("track_script chk\nvirtual_ipaddress\n{\n 10.0.0.1\n}\n");
        assert_eq!(
            shape(&t),
            "track_script(chk);virtual_ipaddress()[10.0.0.1()]"
        );
        assert_eq!(
            d.rendered(Severity::Warning),
            ["t.conf:1: warning: track_script without a { ... } block"]
        );
    }

    #[test]
    fn stray_open_brace_skips_its_block() {
        let (t, d) = tree("{\n a {\n  b\n }\n}\nc 1\n");
        assert_eq!(shape(&t), "c(1)");
        assert_eq!(
            d.rendered(Severity::Error),
            ["t.conf:1: error: `{` opens a block with no keyword; the block is skipped"]
        );
    }

    #[test]
    fn one_line_blocks() {
        let (t, _) = tree(
            "unicast_peer { 10.0.0.2 10.0.0.3 }\nvirtual_ipaddress { 10.0.0.100/24 dev eth0 }\n",
        );
        assert_eq!(
            shape(&t),
            "unicast_peer()[10.0.0.2(10.0.0.3)];virtual_ipaddress()[10.0.0.100/24(dev,eth0)]"
        );
    }

    #[test]
    fn unbalanced_braces_name_their_line() {
        let (_, d) = tree("global_defs {\n router_id x\n");
        assert_eq!(
            d.rendered(Severity::Error),
            ["t.conf:1: error: block `global_defs` opened here is never closed"]
        );
        let (_, d) = tree("a 1\n}\n");
        assert_eq!(
            d.rendered(Severity::Error),
            ["t.conf:2: error: `}` closes no block"]
        );
    }
}
