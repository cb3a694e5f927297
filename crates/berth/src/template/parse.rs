//! Parsing Go `text/template` source into a tree.
//!
//! Supported: text, `{{pipeline}}`, trim markers `{{- -}}`, comments `{{/* */}}`, `if`/`else
//! if`/`else`, `range` (with `$i, $e :=` and `else`), `with` (and `else with`), `define`,
//! `template`, `block`, `break`, `continue`, variables (`$x := ...`, `$x = ...`, `$`),
//! field chains (`.A.B`, `$x.A`, `(pipe).A`), function calls, pipelines (`|`), parenthesized
//! pipelines, and string (`"..."`, raw), char, number, bool and nil literals.

use std::collections::HashMap;

/// A byte offset into the template source.
pub type Pos = usize;

/// A parse failure: `template: :LINE: MESSAGE` like Go's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "template: :{}: {}", self.line, self.message)
    }
}

/// A node of the tree.
#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If {
        branches: Vec<(Pipe, Vec<Node>)>,
        otherwise: Option<Vec<Node>>,
    },
    With {
        branches: Vec<(Pipe, Vec<Node>)>,
        otherwise: Option<Vec<Node>>,
    },
    Range {
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Option<Vec<Node>>,
    },
    Template {
        name: String,
        pipe: Option<Pipe>,
        pos: Pos,
    },
    Break,
    Continue,
}

/// A pipeline with optional variable declaration.
#[derive(Debug, Clone)]
pub struct Pipe {
    pub pos: Pos,
    /// Variables declared (`$x :=`) or assigned (`$x =`).
    pub vars: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

/// One command of a pipeline: a function/method call or a single operand.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub pos: Pos,
    pub args: Vec<Arg>,
}

/// An operand.
#[derive(Debug, Clone)]
pub enum Arg {
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `.A.B` on dot.
    Field(Vec<String>),
    /// `$x.A.B` (empty fields for a bare variable).
    Var(String, Vec<String>),
    /// A function name.
    Ident(String),
    /// `(pipeline).A.B`.
    Sub(Box<Pipe>, Vec<String>),
}

impl Arg {
    /// The source-like rendering used in error messages (`<.State.Status>`).
    pub fn describe(&self) -> String {
        match self {
            Arg::Dot => ".".into(),
            Arg::Nil => "nil".into(),
            Arg::Bool(b) => b.to_string(),
            Arg::Int(i) => i.to_string(),
            Arg::Float(f) => f.to_string(),
            Arg::Str(s) => format!("{s:?}"),
            Arg::Field(fs) => fs.iter().map(|f| format!(".{f}")).collect(),
            Arg::Var(v, fs) => format!(
                "{v}{}",
                fs.iter().map(|f| format!(".{f}")).collect::<String>()
            ),
            Arg::Ident(i) => i.clone(),
            Arg::Sub(_, fs) => format!(
                "(...){}",
                fs.iter().map(|f| format!(".{f}")).collect::<String>()
            ),
        }
    }
}

/// A parsed template with its named sub-templates (`define`).
#[derive(Debug, Clone)]
pub struct Tree {
    pub root: Vec<Node>,
    pub defines: HashMap<String, Vec<Node>>,
    pub source: String,
}

impl Tree {
    /// Line (1-based) and column (0-based byte in line) of `pos`, as Go reports them.
    pub fn line_col(&self, pos: Pos) -> (usize, usize) {
        line_col(&self.source, pos)
    }
}

fn line_col(src: &str, pos: Pos) -> (usize, usize) {
    let before = &src[..pos.min(src.len())];
    let line = 1 + before.matches('\n').count();
    let col = before.rfind('\n').map(|i| pos - i - 1).unwrap_or(pos);
    (line, col)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Field(Vec<String>),
    Dot,
    Var(String, Vec<String>),
    Str(String),
    Char(char),
    Num(String),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: Pos,
    /// Whitespace came right before this token.
    spaced: bool,
}

/// A raw action: its tokens and where it starts.
struct Action {
    pos: Pos,
    tokens: Vec<Token>,
}

enum Item {
    Text(String),
    Action(Action),
}

/// Parses `src`; `is_func` says whether an identifier names a known function (Go checks
/// function names at parse time).
pub fn parse(src: &str, is_func: &dyn Fn(&str) -> bool) -> Result<Tree, ParseError> {
    let items = scan(src)?;
    let mut p = Parser {
        src,
        items,
        i: 0,
        is_func,
        defines: HashMap::new(),
    };
    let (root, end) = p.list()?;
    if let Some((word, pos)) = end {
        return Err(p.err(pos, &format!("unexpected {{{{{word}}}}}")));
    }
    Ok(Tree {
        root,
        defines: p.defines,
        source: src.to_owned(),
    })
}

fn scan(src: &str) -> Result<Vec<Item>, ParseError> {
    let err = |pos: Pos, m: &str| ParseError {
        line: line_col(src, pos).0,
        message: m.to_owned(),
    };
    let mut items = Vec::new();
    let mut rest_start = 0;
    let mut trim_next = false;
    while rest_start <= src.len() {
        let rest = &src[rest_start..];
        let Some(open) = rest.find("{{") else {
            let mut text = rest;
            if trim_next {
                text = text.trim_start();
            }
            if !text.is_empty() {
                items.push(Item::Text(text.to_owned()));
            }
            break;
        };
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let action_start = rest_start + open;
        let mut inner_start = action_start + 2;
        let bytes = src.as_bytes();
        let left_trim = bytes.get(inner_start) == Some(&b'-')
            && bytes
                .get(inner_start + 1)
                .is_some_and(|b| b.is_ascii_whitespace());
        if left_trim {
            text = text.trim_end();
            inner_start += 2;
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_owned()));
        }
        // Comments: {{/* ... */}}
        let after_ws = src[inner_start..].trim_start();
        if after_ws.starts_with("/*") {
            let cstart = src.len() - after_ws.len();
            let Some(cend) = src[cstart..].find("*/") else {
                return Err(err(action_start, "unclosed comment"));
            };
            let mut j = cstart + cend + 2;
            let tail = &src[j..];
            let tail_trim = tail.trim_start();
            let (right_trim, close_at) =
                if tail_trim.starts_with("-}}") && tail.len() != tail_trim.len() {
                    (true, src.len() - tail_trim.len())
                } else if tail.starts_with("}}") {
                    (false, j)
                } else {
                    return Err(err(action_start, "comment ends before closing delimiter"));
                };
            j = close_at + if right_trim { 3 } else { 2 };
            trim_next = right_trim;
            rest_start = j;
            continue;
        }
        let (tokens, end, right_trim) = lex_action(src, inner_start)?;
        items.push(Item::Action(Action {
            pos: inner_start,
            tokens,
        }));
        trim_next = right_trim;
        rest_start = end;
    }
    Ok(items)
}

/// Lexes from `start` to the closing `}}`; returns tokens, the offset after `}}`, and whether
/// the action ended with a right trim marker.
fn lex_action(src: &str, start: Pos) -> Result<(Vec<Token>, Pos, bool), ParseError> {
    let err = |pos: Pos, m: String| ParseError {
        line: line_col(src, pos).0,
        message: m,
    };
    let b = src.as_bytes();
    let mut i = start;
    let mut tokens = Vec::new();
    let mut spaced = false;
    loop {
        if i >= b.len() {
            return Err(err(start, "unclosed action".into()));
        }
        let c = b[i];
        // Right trim marker: " -}}"
        if c.is_ascii_whitespace() {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if src[j..].starts_with("-}}") {
                return Ok((tokens, j + 3, true));
            }
            i = j;
            spaced = true;
            continue;
        }
        if src[i..].starts_with("}}") {
            return Ok((tokens, i + 2, false));
        }
        let pos = i;
        let tok = match c {
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'|' => {
                i += 1;
                Tok::Pipe
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b'=' => {
                i += 1;
                Tok::Assign
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Declare
            }
            b'"' => {
                let (s, end) = lex_quoted(src, i).map_err(|m| err(pos, m))?;
                i = end;
                Tok::Str(s)
            }
            b'`' => {
                let Some(end) = src[i + 1..].find('`') else {
                    return Err(err(pos, "unterminated raw quoted string".into()));
                };
                let s = src[i + 1..i + 1 + end].to_owned();
                i = i + 2 + end;
                Tok::Str(s)
            }
            b'\'' => {
                let (s, end) = lex_char(src, i).map_err(|m| err(pos, m))?;
                i = end;
                Tok::Char(s)
            }
            b'.' => {
                if b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
                    let end = scan_number(b, i);
                    let n = src[i..end].to_owned();
                    i = end;
                    Tok::Num(n)
                } else {
                    let (fields, end) = scan_fields(src, i);
                    i = end;
                    if fields.is_empty() {
                        Tok::Dot
                    } else {
                        Tok::Field(fields)
                    }
                }
            }
            b'$' => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                let name = src[i..j].to_owned();
                let (fields, end) = scan_fields(src, j);
                i = end;
                Tok::Var(name, fields)
            }
            b'-' | b'+' | b'0'..=b'9' => {
                let end = scan_number(b, i);
                if end == i + 1 && (c == b'-' || c == b'+') {
                    return Err(err(pos, format!("unexpected {:?} in command", c as char)));
                }
                let n = src[i..end].to_owned();
                i = end;
                Tok::Num(n)
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80)
                {
                    j += 1;
                }
                let word = src[i..j].to_owned();
                i = j;
                Tok::Ident(word)
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(err(pos, format!("unexpected {ch:?} in command")));
            }
        };
        tokens.push(Token { tok, pos, spaced });
        spaced = false;
    }
}

fn scan_fields(src: &str, mut i: Pos) -> (Vec<String>, Pos) {
    let b = src.as_bytes();
    let mut fields = Vec::new();
    while i < b.len() && b[i] == b'.' {
        let mut j = i + 1;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80) {
            j += 1;
        }
        if j == i + 1 {
            // A lone dot: ends the chain (".", or "$x." which Go rejects later).
            if fields.is_empty() {
                return (fields, j);
            }
            break;
        }
        fields.push(src[i + 1..j].to_owned());
        i = j;
    }
    (fields, i)
}

fn scan_number(b: &[u8], start: Pos) -> Pos {
    let mut j = start;
    if j < b.len() && (b[j] == b'-' || b[j] == b'+') {
        j += 1;
    }
    while j < b.len()
        && (b[j].is_ascii_alphanumeric()
            || b[j] == b'.'
            || b[j] == b'_'
            || ((b[j] == b'-' || b[j] == b'+') && matches!(b[j - 1], b'e' | b'E' | b'p' | b'P')))
    {
        j += 1;
    }
    j
}

fn lex_quoted(src: &str, start: Pos) -> Result<(String, Pos), String> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '"' => return Ok((out, start + 1 + off + 1)),
            '\n' => return Err("unterminated quoted string".into()),
            '\\' => {
                let Some((_, e)) = chars.next() else {
                    return Err("unterminated quoted string".into());
                };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..n)
                            .filter_map(|_| chars.next().map(|(_, c)| c))
                            .collect();
                        let code = u32::from_str_radix(&hex, 16)
                            .map_err(|_| format!("invalid escape \\{e}{hex} in quoted string"))?;
                        out.push(
                            char::from_u32(code)
                                .ok_or("invalid unicode escape in quoted string")?,
                        );
                    }
                    other => {
                        return Err(format!(
                            "unknown escape sequence \\{other} in quoted string"
                        ));
                    }
                }
            }
            c => out.push(c),
        }
    }
    Err("unterminated quoted string".into())
}

fn lex_char(src: &str, start: Pos) -> Result<(char, Pos), String> {
    let body = &src[start + 1..];
    let end = body.find('\'').ok_or("unterminated character constant")?;
    let inner = &body[..end];
    let (s, _) = lex_quoted(&format!("\"{inner}\""), 0)?;
    let mut cs = s.chars();
    match (cs.next(), cs.next()) {
        (Some(c), None) => Ok((c, start + 1 + end + 1)),
        _ => Err(format!("malformed character constant '{inner}'")),
    }
}

struct Parser<'a> {
    src: &'a str,
    items: Vec<Item>,
    i: usize,
    is_func: &'a dyn Fn(&str) -> bool,
    defines: HashMap<String, Vec<Node>>,
}

/// How a list ended: the control word (`end`, `else`) and the action's tokens after it.
type ListEnd = Option<(String, Pos)>;

impl Parser<'_> {
    fn err(&self, pos: Pos, m: &str) -> ParseError {
        ParseError {
            line: line_col(self.src, pos).0,
            message: m.to_owned(),
        }
    }

    /// Parses nodes until `{{end}}` or `{{else ...}}` (left unconsumed in `self.pending`).
    fn list(&mut self) -> Result<(Vec<Node>, ListEnd), ParseError> {
        let mut nodes = Vec::new();
        while self.i < self.items.len() {
            let idx = self.i;
            self.i += 1;
            match &self.items[idx] {
                Item::Text(t) => nodes.push(Node::Text(t.clone())),
                Item::Action(a) => {
                    let pos = a.pos;
                    let tokens = a.tokens.clone();
                    if tokens.is_empty() {
                        return Err(self.err(pos, "missing value for command"));
                    }
                    if let Tok::Ident(word) = &tokens[0].tok {
                        match word.as_str() {
                            "end" => {
                                if tokens.len() > 1 {
                                    return Err(self.err(pos, "unexpected tokens after end"));
                                }
                                return Ok((nodes, Some(("end".into(), pos))));
                            }
                            "else" => {
                                // Re-parse the rest of the else action in the caller.
                                self.i = idx;
                                return Ok((nodes, Some(("else".into(), pos))));
                            }
                            "if" | "with" => {
                                let node = self.branches(word == "if", &tokens[1..], pos)?;
                                nodes.push(node);
                                continue;
                            }
                            "range" => {
                                let pipe = self.pipe(&tokens[1..], pos, true)?;
                                let (body, end) = self.list()?;
                                let otherwise = match end {
                                    Some((w, _)) if w == "end" => None,
                                    Some((_, epos)) => {
                                        let else_toks = self.take_else_tokens();
                                        if else_toks.len() > 1 {
                                            return Err(self.err(
                                                epos,
                                                "unexpected tokens after else in range",
                                            ));
                                        }
                                        let (els, end2) = self.list()?;
                                        self.expect_end(end2, epos)?;
                                        Some(els)
                                    }
                                    None => return Err(self.err(pos, "unexpected EOF")),
                                };
                                nodes.push(Node::Range {
                                    pipe,
                                    body,
                                    otherwise,
                                });
                                continue;
                            }
                            "define" | "block" => {
                                let Some(Token {
                                    tok: Tok::Str(name),
                                    ..
                                }) = tokens.get(1)
                                else {
                                    return Err(self.err(
                                        pos,
                                        &format!("{word} requires a template name string"),
                                    ));
                                };
                                let name = name.clone();
                                let pipe = if word == "block" {
                                    Some(self.pipe(&tokens[2..], pos, false)?)
                                } else {
                                    None
                                };
                                let (body, end) = self.list()?;
                                self.expect_end(end, pos)?;
                                self.defines.insert(name.clone(), body);
                                if word == "block" {
                                    nodes.push(Node::Template { name, pipe, pos });
                                }
                                continue;
                            }
                            "template" => {
                                let Some(Token {
                                    tok: Tok::Str(name),
                                    ..
                                }) = tokens.get(1)
                                else {
                                    return Err(
                                        self.err(pos, "template requires a template name string")
                                    );
                                };
                                let pipe = if tokens.len() > 2 {
                                    Some(self.pipe(&tokens[2..], pos, false)?)
                                } else {
                                    None
                                };
                                nodes.push(Node::Template {
                                    name: name.clone(),
                                    pipe,
                                    pos,
                                });
                                continue;
                            }
                            "break" => {
                                nodes.push(Node::Break);
                                continue;
                            }
                            "continue" => {
                                nodes.push(Node::Continue);
                                continue;
                            }
                            _ => {}
                        }
                    }
                    let pipe = self.pipe(&tokens, pos, false)?;
                    nodes.push(Node::Action(pipe));
                }
            }
        }
        Ok((nodes, None))
    }

    /// Consumes the pending `{{else ...}}` action and returns its tokens (starting at `else`).
    fn take_else_tokens(&mut self) -> Vec<Token> {
        let idx = self.i;
        self.i += 1;
        match &self.items[idx] {
            Item::Action(a) => a.tokens.clone(),
            Item::Text(_) => Vec::new(),
        }
    }

    fn expect_end(&self, end: ListEnd, pos: Pos) -> Result<(), ParseError> {
        match end {
            Some((w, _)) if w == "end" => Ok(()),
            Some((_, p)) => Err(self.err(p, "unexpected {{else}}")),
            None => Err(self.err(pos, "unexpected EOF")),
        }
    }

    /// `if`/`with` with `else if`/`else with` chains.
    fn branches(&mut self, is_if: bool, cond: &[Token], pos: Pos) -> Result<Node, ParseError> {
        let mut branches = Vec::new();
        let mut cond = cond.to_vec();
        let mut cond_pos = pos;
        loop {
            let pipe = self.pipe(&cond, cond_pos, false)?;
            let (body, end) = self.list()?;
            branches.push((pipe, body));
            match end {
                Some((w, _)) if w == "end" => {
                    break;
                }
                Some((_, epos)) => {
                    let toks = self.take_else_tokens();
                    let kw = if is_if { "if" } else { "with" };
                    if toks.len() > 1 {
                        match &toks[1].tok {
                            Tok::Ident(w) if w == kw => {
                                cond = toks[2..].to_vec();
                                cond_pos = epos;
                                continue;
                            }
                            _ => return Err(self.err(epos, "unexpected tokens after else")),
                        }
                    }
                    let (els, end2) = self.list()?;
                    self.expect_end(end2, epos)?;
                    let otherwise = Some(els);
                    return Ok(if is_if {
                        Node::If {
                            branches,
                            otherwise,
                        }
                    } else {
                        Node::With {
                            branches,
                            otherwise,
                        }
                    });
                }
                None => return Err(self.err(pos, "unexpected EOF")),
            }
        }
        Ok(if is_if {
            Node::If {
                branches,
                otherwise: None,
            }
        } else {
            Node::With {
                branches,
                otherwise: None,
            }
        })
    }

    fn pipe(&self, toks: &[Token], pos: Pos, is_range: bool) -> Result<Pipe, ParseError> {
        let mut toks = toks;
        let mut vars = Vec::new();
        let mut assign = false;
        // Declarations: $x := / $x = / (range) $i, $e :=
        let decl_end = toks
            .iter()
            .position(|t| matches!(t.tok, Tok::Declare | Tok::Assign));
        if let Some(d) = decl_end {
            let head = &toks[..d];
            let mut ok = !head.is_empty();
            for (k, t) in head.iter().enumerate() {
                match (&t.tok, k % 2) {
                    (Tok::Var(name, fields), 0) if fields.is_empty() => vars.push(name.clone()),
                    (Tok::Comma, 1) => {}
                    _ => ok = false,
                }
            }
            if ok && (vars.len() == 1 || (is_range && vars.len() == 2)) {
                assign = matches!(toks[d].tok, Tok::Assign);
                toks = &toks[d + 1..];
            } else if ok {
                return Err(self.err(pos, "too many declarations in command"));
            } else {
                vars.clear();
            }
        }
        if toks.is_empty() {
            return Err(self.err(pos, "missing value for command"));
        }
        let mut cmds = Vec::new();
        let mut start = 0;
        let mut depth = 0i32;
        for (k, t) in toks.iter().enumerate() {
            match t.tok {
                Tok::LParen => depth += 1,
                Tok::RParen => depth -= 1,
                Tok::Pipe if depth == 0 => {
                    if k == start {
                        return Err(self.err(t.pos, "missing command before |"));
                    }
                    cmds.push(self.cmd(&toks[start..k])?);
                    start = k + 1;
                }
                _ => {}
            }
        }
        if start >= toks.len() {
            return Err(self.err(pos, "missing command after |"));
        }
        cmds.push(self.cmd(&toks[start..])?);
        Ok(Pipe {
            pos: toks[0].pos,
            vars,
            assign,
            cmds,
        })
    }

    fn cmd(&self, toks: &[Token]) -> Result<Cmd, ParseError> {
        let mut args = Vec::new();
        let mut k = 0;
        while k < toks.len() {
            let t = &toks[k];
            if k > 0 && !t.spaced && !matches!(t.tok, Tok::LParen | Tok::RParen) {
                // Operands must be separated by spaces (Go: "unexpected ... in operand").
                if !matches!(toks[k - 1].tok, Tok::RParen) || !matches!(t.tok, Tok::Field(_)) {
                    return Err(self.err(
                        t.pos,
                        &format!("unexpected {} in operand", tok_text(&t.tok)),
                    ));
                }
            }
            let (arg, next) = match &t.tok {
                Tok::LParen => {
                    let mut depth = 0;
                    let mut close = None;
                    for (j, u) in toks.iter().enumerate().skip(k) {
                        match u.tok {
                            Tok::LParen => depth += 1,
                            Tok::RParen => {
                                depth -= 1;
                                if depth == 0 {
                                    close = Some(j);
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    let Some(close) = close else {
                        return Err(self.err(t.pos, "unclosed left paren"));
                    };
                    let inner = self.pipe(&toks[k + 1..close], t.pos, false)?;
                    let mut next = close + 1;
                    let mut fields = Vec::new();
                    if let Some(Token {
                        tok: Tok::Field(fs),
                        spaced: false,
                        ..
                    }) = toks.get(next)
                    {
                        fields = fs.clone();
                        next += 1;
                    }
                    (Arg::Sub(Box::new(inner), fields), next)
                }
                Tok::RParen => return Err(self.err(t.pos, "unexpected right paren")),
                Tok::Dot => (Arg::Dot, k + 1),
                Tok::Field(fs) => (Arg::Field(fs.clone()), k + 1),
                Tok::Var(name, fs) => (Arg::Var(name.clone(), fs.clone()), k + 1),
                Tok::Str(s) => (Arg::Str(s.clone()), k + 1),
                Tok::Char(c) => (Arg::Int(*c as i64), k + 1),
                Tok::Num(n) => (
                    parse_number(n)
                        .ok_or_else(|| self.err(t.pos, &format!("bad number syntax: {n:?}")))?,
                    k + 1,
                ),
                Tok::Ident(w) => {
                    let arg = match w.as_str() {
                        "true" => Arg::Bool(true),
                        "false" => Arg::Bool(false),
                        "nil" => Arg::Nil,
                        "if" | "else" | "end" | "range" | "with" | "define" | "template"
                        | "block" | "break" | "continue" => {
                            return Err(self.err(t.pos, &format!("unexpected <{w}> in command")));
                        }
                        _ if (self.is_func)(w) => Arg::Ident(w.clone()),
                        _ => return Err(self.err(t.pos, &format!("function {w:?} not defined"))),
                    };
                    (arg, k + 1)
                }
                Tok::Pipe | Tok::Comma | Tok::Declare | Tok::Assign => {
                    return Err(self.err(
                        t.pos,
                        &format!("unexpected {} in operand", tok_text(&t.tok)),
                    ));
                }
            };
            args.push(arg);
            k = next;
        }
        Ok(Cmd {
            pos: toks.first().map(|t| t.pos).unwrap_or(0),
            args,
        })
    }
}

fn tok_text(t: &Tok) -> String {
    match t {
        Tok::Ident(w) => format!("<{w}>"),
        Tok::Field(fs) => format!(
            "<{}>",
            fs.iter().map(|f| format!(".{f}")).collect::<String>()
        ),
        Tok::Dot => "<.>".into(),
        Tok::Var(v, _) => format!("<{v}>"),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Char(c) => format!("{c:?}"),
        Tok::Num(n) => format!("<{n}>"),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
    }
}

fn parse_number(n: &str) -> Option<Arg> {
    let clean = n.replace('_', "");
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(d) => (true, d.to_owned()),
        None => (false, clean.trim_start_matches('+').to_owned()),
    };
    let int = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(bits) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        i64::from_str_radix(bits, 2).ok()
    } else if digits.len() > 1
        && digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        i64::from_str_radix(&digits[1..], 8).ok()
    } else {
        digits.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Some(Arg::Int(if neg { -i } else { i }));
    }
    let f: f64 = digits.parse().ok()?;
    Some(Arg::Float(if neg { -f } else { f }))
}
