//! Executing a parsed template over a [`Value`].

use super::funcs::{self, FuncSet};
use super::parse::{Arg, Cmd, Node, Pipe, Pos, Tree};
use super::value::Value;

/// An execution failure: `template: :LINE:COL: executing "" at <EXPR>: MESSAGE` like Go's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecError(pub String);

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a missing map key behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingKey {
    /// `map has no entry for key "X"` (Docker's inspect and list formatting).
    Error,
    /// `<no value>` (table headers).
    NoValue,
    /// `can't evaluate field X in type T`: the data stands for a Go struct named T (docker's
    /// row contexts, e.g. `*formatter.ContainerContext`), whose missing fields are errors
    /// whatever the template's missingkey option.
    Struct(&'static str),
    /// Like [`MissingKey::Struct`] for data that stands for nested Go structs: the type of
    /// the map reached by each field path from the root (`""`, `".Client"`, ...); maps at
    /// other paths are Go maps under Go's default option (`<no value>`).
    Types(&'static [(&'static str, &'static str)]),
}

enum Flow {
    Normal,
    Break,
    Continue,
}

/// Recursion limit for `template` calls and nesting (a hostile template cannot overflow the
/// stack).
const MAX_DEPTH: usize = 100;

pub(crate) struct Exec<'a> {
    tree: &'a Tree,
    funcs: FuncSet,
    missing: MissingKey,
    vars: Vec<(String, Value)>,
    out: String,
    depth: usize,
}

impl<'a> Exec<'a> {
    pub(crate) fn new(tree: &'a Tree, funcs: FuncSet, missing: MissingKey) -> Self {
        Exec {
            tree,
            funcs,
            missing,
            vars: Vec::new(),
            out: String::new(),
            depth: 0,
        }
    }

    pub(crate) fn run(mut self, data: &Value) -> Result<String, ExecError> {
        self.vars.push(("$".into(), data.clone()));
        let tree = self.tree;
        match self.walk(data, &tree.root)? {
            Flow::Normal => Ok(self.out),
            _ => Err(self.error(0, "", "break or continue outside range")),
        }
    }

    fn error(&self, pos: Pos, at: &str, msg: &str) -> ExecError {
        let (line, col) = self.tree.line_col(pos);
        if at.is_empty() {
            ExecError(format!("template: :{line}:{col}: executing \"\" {msg}"))
        } else {
            ExecError(format!(
                "template: :{line}:{col}: executing \"\" at <{at}>: {msg}"
            ))
        }
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> Result<Flow, ExecError> {
        for node in nodes {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(pipe) => {
                    let v = self.pipe(dot, pipe)?;
                    if pipe.vars.is_empty() {
                        self.print(&v, pipe)?;
                    }
                }
                Node::If {
                    branches,
                    otherwise,
                }
                | Node::With {
                    branches,
                    otherwise,
                } => {
                    let is_with = matches!(node, Node::With { .. });
                    let mark = self.vars.len();
                    let mut taken = false;
                    for (cond, body) in branches {
                        let v = self.pipe(dot, cond)?;
                        if v.truthy() {
                            let flow = if is_with {
                                self.walk(&v, body)?
                            } else {
                                self.walk(dot, body)?
                            };
                            self.vars.truncate(mark);
                            if !matches!(flow, Flow::Normal) {
                                return Ok(flow);
                            }
                            taken = true;
                            break;
                        }
                    }
                    if !taken && let Some(els) = otherwise {
                        let flow = self.walk(dot, els)?;
                        self.vars.truncate(mark);
                        if !matches!(flow, Flow::Normal) {
                            return Ok(flow);
                        }
                    }
                    self.vars.truncate(mark);
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let mark = self.vars.len();
                    let decl = pipe.vars.clone();
                    let bare = Pipe {
                        vars: Vec::new(),
                        ..pipe.clone()
                    };
                    let v = self.pipe(dot, &bare)?;
                    let items: Vec<(Value, Value)> = match v {
                        Value::List(items) => items
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Value::Int(i as i64), v))
                            .collect(),
                        Value::Map(entries) => {
                            let mut e: Vec<_> = entries
                                .into_iter()
                                .filter(|(_, v)| !matches!(v, Value::Func(_)))
                                .collect();
                            e.sort_by(|a, b| a.0.cmp(&b.0));
                            e.into_iter().map(|(k, v)| (Value::Str(k), v)).collect()
                        }
                        Value::Int(n) => (0..n.max(0))
                            .map(|i| (Value::Int(i), Value::Int(i)))
                            .collect(),
                        Value::Nil | Value::NoValue => Vec::new(),
                        other => {
                            return Err(self.error(
                                pipe.pos,
                                "",
                                &format!("range can't iterate over {}", other.to_display()),
                            ));
                        }
                    };
                    if items.is_empty() {
                        if let Some(els) = otherwise {
                            let flow = self.walk(dot, els)?;
                            self.vars.truncate(mark);
                            if !matches!(flow, Flow::Normal) {
                                return Ok(flow);
                            }
                        }
                        continue;
                    }
                    for (key, item) in items {
                        self.vars.truncate(mark);
                        match decl.len() {
                            1 => self.vars.push((decl[0].clone(), item.clone())),
                            2 => {
                                self.vars.push((decl[0].clone(), key));
                                self.vars.push((decl[1].clone(), item.clone()));
                            }
                            _ => {}
                        }
                        match self.walk(&item, body)? {
                            Flow::Break => break,
                            Flow::Continue | Flow::Normal => {}
                        }
                    }
                    self.vars.truncate(mark);
                }
                Node::Template { name, pipe, pos } => {
                    let Some(body) = self.tree.defines.get(name) else {
                        return Err(self.error(
                            *pos,
                            "",
                            &format!(
                                "template: no template {name:?} associated with template \"\""
                            ),
                        ));
                    };
                    let arg = match pipe {
                        Some(p) => self.pipe(dot, p)?,
                        None => Value::Nil,
                    };
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(self.error(*pos, "", "exceeded maximum template depth (100)"));
                    }
                    let saved = std::mem::take(&mut self.vars);
                    self.vars.push(("$".into(), arg.clone()));
                    let tree = self.tree;
                    let r = self.walk(&arg, &tree.defines[name]);
                    let _ = body;
                    self.vars = saved;
                    self.depth -= 1;
                    r?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn print(&mut self, v: &Value, pipe: &Pipe) -> Result<(), ExecError> {
        if let Value::Func(_) = v {
            return Err(self.error(
                pipe.pos,
                "",
                "can't print a method value; call it with arguments",
            ));
        }
        self.out.push_str(&v.to_display());
        Ok(())
    }

    fn pipe(&mut self, dot: &Value, pipe: &Pipe) -> Result<Value, ExecError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(pipe.pos, "", "exceeded maximum template depth (100)"));
        }
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.cmd(dot, cmd, value)?);
        }
        self.depth -= 1;
        let value = value.unwrap_or(Value::Nil);
        for name in &pipe.vars {
            if pipe.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value.clone(),
                    None => {
                        return Err(self.error(
                            pipe.pos,
                            name,
                            &format!("undefined variable: {name}"),
                        ));
                    }
                }
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn cmd(&mut self, dot: &Value, cmd: &Cmd, piped: Option<Value>) -> Result<Value, ExecError> {
        let first = &cmd.args[0];
        let at = first.describe();
        match first {
            Arg::Ident(name) => {
                let rest = &cmd.args[1..];
                if name == "and" || name == "or" {
                    return self.and_or(dot, cmd, name == "and", rest, piped);
                }
                let mut args = Vec::with_capacity(rest.len() + 1);
                for a in rest {
                    args.push(self.arg(dot, a, cmd.pos)?);
                }
                if let Some(p) = piped {
                    args.push(p);
                }
                funcs::call(&self.funcs, name, &args)
                    .map_err(|m| self.error(cmd.pos, name, &format!("error calling {name}: {m}")))
            }
            Arg::Field(_) | Arg::Var(_, _) | Arg::Sub(_, _) => {
                let (receiver_path, last) = self.resolve_chain(dot, first, cmd.pos)?;
                let has_args = cmd.args.len() > 1 || piped.is_some();
                let mut args = Vec::new();
                for a in &cmd.args[1..] {
                    args.push(self.arg(dot, a, cmd.pos)?);
                }
                if let Some(p) = piped {
                    args.push(p);
                }
                match last {
                    Value::Func(f) => f(&args).map_err(|m| self.error(cmd.pos, &at, &m)),
                    _ if has_args => {
                        let _ = receiver_path;
                        Err(self.error(
                            cmd.pos,
                            &at,
                            &format!("can't give argument to non-function {at}"),
                        ))
                    }
                    other => Ok(other),
                }
            }
            Arg::Nil if cmd.args.len() == 1 && piped.is_none() => {
                Err(self.error(cmd.pos, "nil", "nil is not a command"))
            }
            _ => {
                if cmd.args.len() > 1 || piped.is_some() {
                    return Err(self.error(
                        cmd.pos,
                        &at,
                        &format!("can't give argument to non-function {at}"),
                    ));
                }
                self.arg(dot, first, cmd.pos)
            }
        }
    }

    fn and_or(
        &mut self,
        dot: &Value,
        cmd: &Cmd,
        is_and: bool,
        rest: &[Arg],
        piped: Option<Value>,
    ) -> Result<Value, ExecError> {
        let name = if is_and { "and" } else { "or" };
        if rest.is_empty() && piped.is_none() {
            return Err(self.error(
                cmd.pos,
                name,
                &format!("wrong number of args for {name}: want at least 1 got 0"),
            ));
        }
        let mut last = Value::Nil;
        for a in rest {
            last = self.arg(dot, a, cmd.pos)?;
            if last.truthy() != is_and {
                return Ok(last);
            }
        }
        if let Some(p) = piped {
            last = p;
        }
        Ok(last)
    }

    /// Evaluates a field chain to its final value (calling methods without arguments along
    /// the way, except the last, which the caller may call with arguments).
    fn resolve_chain(
        &mut self,
        dot: &Value,
        arg: &Arg,
        pos: Pos,
    ) -> Result<(String, Value), ExecError> {
        // Go places a chain (`.A.B`) at its second element
        let pos = match arg {
            Arg::Field(fs) if fs.len() > 1 => pos + 1 + fs[0].len() as Pos,
            _ => pos,
        };
        let (mut cur, fields, mut path) = match arg {
            Arg::Field(fs) => (dot.clone(), fs.as_slice(), String::new()),
            Arg::Var(name, fs) => {
                let v = self.var(name, pos)?;
                (v, fs.as_slice(), name.clone())
            }
            Arg::Sub(p, fs) => {
                let v = self.pipe(dot, p)?;
                (v, fs.as_slice(), "(...)".to_owned())
            }
            _ => unreachable!("resolve_chain on a non-chain"),
        };
        for (i, f) in fields.iter().enumerate() {
            path.push('.');
            path.push_str(f);
            if let Value::Func(m) = &cur {
                cur = m(&[]).map_err(|e| self.error(pos, &path, &e))?;
            }
            cur = match &cur {
                Value::Map(_) => match cur.field(f) {
                    Some(v) => v.clone(),
                    None => match self.missing {
                        MissingKey::Error => {
                            return Err(self.error(
                                pos,
                                &path,
                                &format!("map has no entry for key {f:?}"),
                            ));
                        }
                        MissingKey::NoValue => Value::NoValue,
                        MissingKey::Struct(typ) => {
                            return Err(self.error(
                                pos,
                                &path,
                                &format!("can't evaluate field {f} in type {typ}"),
                            ));
                        }
                        MissingKey::Types(types) => {
                            let parent = &path[..path.rfind('.').unwrap_or(0)];
                            match types.iter().find(|(p, _)| *p == parent) {
                                Some((_, typ)) => {
                                    return Err(self.error(
                                        pos,
                                        &path,
                                        &format!("can't evaluate field {f} in type {typ}"),
                                    ));
                                }
                                // a Go map under Go's default missingkey option
                                None => Value::NoValue,
                            }
                        }
                    },
                },
                Value::Nil => {
                    return Err(self.error(
                        pos,
                        &path,
                        &format!("nil pointer evaluating interface {{}}.{f}"),
                    ));
                }
                Value::NoValue if self.missing == MissingKey::NoValue => Value::NoValue,
                other => {
                    // decoded JSON is `interface {}` to Go; a row context's fields are typed
                    let typ = match self.missing {
                        MissingKey::Struct(_) | MissingKey::Types(_) => other.type_name(),
                        _ => "interface {}",
                    };
                    return Err(self.error(
                        pos,
                        &path,
                        &format!("can't evaluate field {f} in type {typ}"),
                    ));
                }
            };
            let _ = i;
        }
        Ok((path, cur))
    }

    fn var(&self, name: &str, pos: Pos) -> Result<Value, ExecError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.error(pos, name, &format!("undefined variable: {name}")))
    }

    fn arg(&mut self, dot: &Value, arg: &Arg, pos: Pos) -> Result<Value, ExecError> {
        Ok(match arg {
            Arg::Dot => dot.clone(),
            Arg::Nil => Value::Nil,
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(f) => Value::Float(*f),
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Ident(name) => funcs::call(&self.funcs, name, &[])
                .map_err(|m| self.error(pos, name, &format!("error calling {name}: {m}")))?,
            Arg::Field(_) | Arg::Var(_, _) | Arg::Sub(_, _) => {
                let (path, v) = self.resolve_chain(dot, arg, pos)?;
                match v {
                    // A method used as an argument is called without arguments.
                    Value::Func(f) => f(&[]).map_err(|e| self.error(pos, &path, &e))?,
                    v => v,
                }
            }
        })
    }
}
