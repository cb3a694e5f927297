//! Template functions: Go's built-ins and Docker's additions (`json`, `split`, `join`,
//! `title`, `lower`, `upper`, `pad`, `truncate`).

use super::value::{Value, go_float};

/// Which function table is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuncSet {
    /// Normal rendering.
    Basic,
    /// Table headers: Docker's header functions return their first argument unchanged so that
    /// `{{upper .Names}}` still prints `NAMES`.
    Header,
}

const NAMES: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "html", "js", "urlquery", "json", "split", "join", "title", "lower", "upper",
    "pad", "truncate",
];

/// True for a known function name.
pub fn is_func(name: &str) -> bool {
    NAMES.contains(&name)
}

fn want(args: &[Value], n: usize, name: &str) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn as_str<'a>(v: &'a Value, what: &str) -> Result<std::borrow::Cow<'a, str>, String> {
    match v {
        Value::Str(s) => Ok(std::borrow::Cow::Borrowed(s)),
        Value::Nil | Value::NoValue => Ok(std::borrow::Cow::Borrowed("")),
        other => Err(format!(
            "{what}: expected string; found {}",
            other.to_display()
        )),
    }
}

fn as_int(v: &Value, what: &str) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Float(f) if f.fract() == 0.0 => Ok(*f as i64),
        other => Err(format!(
            "{what}: expected integer; found {}",
            other.to_display()
        )),
    }
}

/// Calls function `name`.
pub fn call(set: &FuncSet, name: &str, args: &[Value]) -> Result<Value, String> {
    if *set == FuncSet::Header
        && matches!(
            name,
            "json" | "split" | "join" | "title" | "lower" | "upper" | "truncate"
        )
    {
        return Ok(args.first().cloned().unwrap_or(Value::Nil));
    }
    match name {
        "not" => {
            want(args, 1, name)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        "len" => {
            want(args, 1, name)?;
            match &args[0] {
                Value::Str(s) => Ok(Value::Int(s.len() as i64)),
                Value::List(l) => Ok(Value::Int(l.len() as i64)),
                Value::Map(m) => Ok(Value::Int(
                    m.iter()
                        .filter(|(_, v)| !matches!(v, Value::Func(_)))
                        .count() as i64,
                )),
                other => Err(format!("len of type {}", other.type_name())),
            }
        }
        "index" => {
            if args.is_empty() {
                return Err("wrong number of args for index: want at least 1 got 0".into());
            }
            let mut cur = args[0].clone();
            for key in &args[1..] {
                cur = match (&cur, key) {
                    (Value::List(items), k) => {
                        let i = as_int(k, "index")?;
                        if i < 0 || i as usize >= items.len() {
                            return Err(format!("index out of range: {i}"));
                        }
                        items[i as usize].clone()
                    }
                    (Value::Str(s), k) => {
                        let i = as_int(k, "index")?;
                        match s.as_bytes().get(i as usize) {
                            Some(b) if i >= 0 => Value::Int(*b as i64),
                            _ => return Err(format!("index out of range: {i}")),
                        }
                    }
                    (Value::Map(entries), Value::Str(k)) => {
                        match entries.iter().find(|(name, _)| name == k) {
                            Some((_, v)) => v.clone(),
                            // Docker's typed maps (labels) yield their zero value: "".
                            None if entries.iter().all(|(_, v)| matches!(v, Value::Str(_))) => {
                                Value::Str(String::new())
                            }
                            None => Value::Nil,
                        }
                    }
                    (Value::Map(_), other) => {
                        return Err(format!(
                            "value has type {}; should be string",
                            other.type_name()
                        ));
                    }
                    (Value::Nil | Value::NoValue, _) => return Err("index of untyped nil".into()),
                    (other, _) => {
                        return Err(format!("can't index item of type {}", other.type_name()));
                    }
                };
            }
            Ok(cur)
        }
        "slice" => {
            if args.is_empty() || args.len() > 4 {
                return Err(format!(
                    "wrong number of args for slice: want 1 to 4 got {}",
                    args.len()
                ));
            }
            let idx: Vec<i64> = args[1..]
                .iter()
                .map(|a| as_int(a, "slice"))
                .collect::<Result<_, _>>()?;
            let len = match &args[0] {
                Value::Str(s) => s.len(),
                Value::List(l) => l.len(),
                other => return Err(format!("can't slice item of type {}", other.type_name())),
            } as i64;
            let lo = idx.first().copied().unwrap_or(0);
            let hi = idx.get(1).copied().unwrap_or(len);
            if lo < 0 || hi < lo || hi > len {
                return Err(format!("index out of range: [{lo}:{hi}] with length {len}"));
            }
            match &args[0] {
                Value::Str(s) => s
                    .get(lo as usize..hi as usize)
                    .map(|s| Value::Str(s.to_owned()))
                    .ok_or_else(|| "slice splits a UTF-8 character".to_owned()),
                Value::List(l) => Ok(Value::List(l[lo as usize..hi as usize].to_vec())),
                _ => unreachable!(),
            }
        }
        "print" => Ok(Value::Str(sprint(args))),
        "println" => {
            let mut s = args
                .iter()
                .map(Value::to_display)
                .collect::<Vec<_>>()
                .join(" ");
            s.push('\n');
            Ok(Value::Str(s))
        }
        "printf" => {
            if args.is_empty() {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            }
            let fmt = as_str(&args[0], "printf")?;
            Ok(Value::Str(sprintf(&fmt, &args[1..])))
        }
        "eq" => {
            if args.len() < 2 {
                return Err(format!(
                    "wrong number of args for eq: want at least 2 got {}",
                    args.len()
                ));
            }
            for other in &args[1..] {
                if compare(&args[0], other)? == std::cmp::Ordering::Equal {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            want(args, 2, name)?;
            Ok(Value::Bool(
                compare(&args[0], &args[1])? != std::cmp::Ordering::Equal,
            ))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(args, 2, name)?;
            if !matches!(args[0], Value::Int(_) | Value::Float(_) | Value::Str(_)) {
                return Err(format!(
                    "invalid type for comparison: {}",
                    args[0].type_name()
                ));
            }
            let o = compare(&args[0], &args[1])?;
            use std::cmp::Ordering::*;
            Ok(Value::Bool(match name {
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            }))
        }
        "html" => Ok(Value::Str(
            sprint(args)
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;")
                .replace('\'', "&#39;"),
        )),
        "js" => {
            let mut out = String::new();
            for c in sprint(args).chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\'' => out.push_str("\\'"),
                    '"' => out.push_str("\\\""),
                    '<' => out.push_str("\\u003C"),
                    '>' => out.push_str("\\u003E"),
                    '&' => out.push_str("\\u0026"),
                    '=' => out.push_str("\\u003D"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
                    c => out.push(c),
                }
            }
            Ok(Value::Str(out))
        }
        "urlquery" => Ok(Value::Str(
            berth_api::query::encode_component(&sprint(args)).replace("%20", "+"),
        )),
        "json" => {
            want(args, 1, name)?;
            Ok(Value::Str(args[0].to_json()))
        }
        "split" => {
            want(args, 2, name)?;
            let s = as_str(&args[0], "split")?;
            let sep = as_str(&args[1], "split")?;
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::Str(c.to_string())).collect()
            } else {
                s.split(sep.as_ref())
                    .map(|p| Value::Str(p.to_owned()))
                    .collect()
            };
            Ok(Value::List(parts))
        }
        "join" => {
            want(args, 2, name)?;
            let sep = as_str(&args[1], "join")?;
            match &args[0] {
                Value::List(items) => Ok(Value::Str(
                    items
                        .iter()
                        .map(Value::to_display)
                        .collect::<Vec<_>>()
                        .join(&sep),
                )),
                Value::Nil => Ok(Value::Str(String::new())),
                other => Err(format!(
                    "join: expected a list of strings; found {}",
                    other.type_name()
                )),
            }
        }
        "title" => {
            want(args, 1, name)?;
            let s = as_str(&args[0], "title")?;
            let mut out = String::with_capacity(s.len());
            let mut at_word_start = true;
            for c in s.chars() {
                if at_word_start && c.is_alphabetic() {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                at_word_start = !(c.is_alphanumeric() || c == '_' || c == '\'');
            }
            Ok(Value::Str(out))
        }
        "lower" => {
            want(args, 1, name)?;
            Ok(Value::Str(as_str(&args[0], "lower")?.to_lowercase()))
        }
        "upper" => {
            want(args, 1, name)?;
            Ok(Value::Str(as_str(&args[0], "upper")?.to_uppercase()))
        }
        "pad" => {
            want(args, 3, name)?;
            let s = match &args[0] {
                Value::Str(s) => s.clone(),
                other => other.to_display(),
            };
            if s.is_empty() {
                return Ok(Value::Str(s));
            }
            let pre = as_int(&args[1], "pad")?.clamp(0, 1 << 16) as usize;
            let post = as_int(&args[2], "pad")?.clamp(0, 1 << 16) as usize;
            Ok(Value::Str(format!(
                "{}{s}{}",
                " ".repeat(pre),
                " ".repeat(post)
            )))
        }
        "truncate" => {
            want(args, 2, name)?;
            let s = as_str(&args[0], "truncate")?;
            let n = as_int(&args[1], "truncate")?;
            if n < 0 || s.len() < n as usize {
                return Ok(Value::Str(s.into_owned()));
            }
            let mut end = n as usize;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            Ok(Value::Str(s[..end].to_owned()))
        }
        other => Err(format!("function {other:?} not defined")),
    }
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    use Value::*;
    let num = |v: &Value| match v {
        Int(i) => Some(*i as f64),
        Float(f) => Some(*f),
        _ => None,
    };
    match (a, b) {
        (Int(x), Int(y)) => Ok(x.cmp(y)),
        (Str(x), Str(y)) => Ok(x.cmp(y)),
        (Bool(x), Bool(y)) => Ok(x.cmp(y)),
        (Nil | NoValue, Nil | NoValue) => Ok(std::cmp::Ordering::Equal),
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x
                .partial_cmp(&y)
                .ok_or_else(|| "cannot compare NaN".to_owned()),
            _ => Err(format!(
                "incompatible types for comparison: {} and {}",
                a.type_name(),
                b.type_name()
            )),
        },
    }
}

/// Go's `fmt.Sprint`: spaces between operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&a.to_display());
    }
    out
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A subset of Go's `fmt.Sprintf`: verbs `v s d q t x X o b c e E f F g G %`, flags
/// `- + # 0 space`, width and precision.
pub fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0;
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut zero, mut space, mut sharp) =
            (false, false, false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => sharp = true,
                _ => break,
            }
            chars.next();
        }
        let mut width: Option<usize> = None;
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            width = Some(
                width
                    .unwrap_or(0)
                    .saturating_mul(10)
                    .saturating_add(d as usize)
                    .min(1 << 16),
            );
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            prec = Some(0);
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                prec = Some(
                    prec.unwrap_or(0)
                        .saturating_mul(10)
                        .saturating_add(d as usize)
                        .min(1 << 16),
                );
                chars.next();
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        let bad = || format!("%!{verb}({}={})", arg.type_name(), arg.to_display());
        let (body, numeric) = match (verb, arg) {
            ('v', Value::Str(s)) if sharp => (go_quote(s), false),
            ('v', _) => (
                arg.to_display(),
                matches!(arg, Value::Int(_) | Value::Float(_)),
            ),
            ('s', Value::Str(s)) => (s.clone(), false),
            ('s', Value::Int(_) | Value::Float(_) | Value::Bool(_)) => (bad(), false),
            ('s', other) => (other.to_display(), false),
            ('q', Value::Str(s)) => (go_quote(s), false),
            ('q', Value::Int(i)) => (
                format!("{:?}", char::from_u32(*i as u32).unwrap_or('\u{fffd}')),
                false,
            ),
            ('t', Value::Bool(b)) => (b.to_string(), false),
            ('d', Value::Int(i)) => (
                sign(*i >= 0, plus, space, i.unsigned_abs().to_string()),
                true,
            ),
            ('x', Value::Int(i)) => (
                sign(
                    *i >= 0,
                    plus,
                    space,
                    format!("{}{:x}", if sharp { "0x" } else { "" }, i.unsigned_abs()),
                ),
                true,
            ),
            ('X', Value::Int(i)) => (
                sign(
                    *i >= 0,
                    plus,
                    space,
                    format!("{}{:X}", if sharp { "0X" } else { "" }, i.unsigned_abs()),
                ),
                true,
            ),
            ('o', Value::Int(i)) => (
                sign(*i >= 0, plus, space, format!("{:o}", i.unsigned_abs())),
                true,
            ),
            ('b', Value::Int(i)) => (
                sign(*i >= 0, plus, space, format!("{:b}", i.unsigned_abs())),
                true,
            ),
            ('c', Value::Int(i)) => (
                char::from_u32(*i as u32).unwrap_or('\u{fffd}').to_string(),
                false,
            ),
            ('x', Value::Str(s)) => (s.bytes().map(|b| format!("{b:02x}")).collect(), false),
            ('X', Value::Str(s)) => (s.bytes().map(|b| format!("{b:02X}")).collect(), false),
            ('e' | 'E' | 'f' | 'F' | 'g' | 'G', Value::Int(_) | Value::Float(_)) => {
                let f = match arg {
                    Value::Int(i) => *i as f64,
                    Value::Float(f) => *f,
                    _ => unreachable!(),
                };
                let s = match verb {
                    'e' => go_exp(f, prec.unwrap_or(6), 'e'),
                    'E' => go_exp(f, prec.unwrap_or(6), 'E'),
                    'f' | 'F' => format!("{:.*}", prec.unwrap_or(6), f.abs()),
                    _ => match prec {
                        Some(p) => berth_api::humanize::format_g(f.abs(), p),
                        None => go_float(f.abs()),
                    },
                };
                let s = if matches!(verb, 'e' | 'E') {
                    s.trim_start_matches('-').to_owned()
                } else {
                    s
                };
                (sign(f >= 0.0 || f.is_nan(), plus, space, s), true)
            }
            _ => (bad(), false),
        };
        let mut body = body;
        if let (Some(p), 's' | 'v', Value::Str(_)) = (prec, verb, arg) {
            body = body.chars().take(p).collect();
        }
        let w = width.unwrap_or(0);
        let len = body.chars().count();
        if len < w {
            let pad = w - len;
            if minus {
                body.push_str(&" ".repeat(pad));
            } else if zero && numeric {
                let (sgn, digits) = match body.chars().next() {
                    Some(c @ ('-' | '+' | ' ')) => (c.to_string(), body[1..].to_owned()),
                    _ => (String::new(), body.clone()),
                };
                body = format!("{sgn}{}{digits}", "0".repeat(pad));
            } else {
                body = format!("{}{body}", " ".repeat(pad));
            }
        }
        out.push_str(&body);
    }
    if argi < args.len() {
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|a| format!("{}={}", a.type_name(), a.to_display()))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn sign(non_negative: bool, plus: bool, space: bool, digits: String) -> String {
    if !non_negative {
        format!("-{digits}")
    } else if plus {
        format!("+{digits}")
    } else if space {
        format!(" {digits}")
    } else {
        digits
    }
}

fn go_exp(f: f64, prec: usize, e: char) -> String {
    let s = format!("{:.*e}", prec, f);
    let (m, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!("{m}{e}{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

/// Go's `json.Marshal` escapes `<`, `>`, `&`, U+2028 and U+2029; they can only occur inside
/// strings of serialized JSON. Docker's `json` template function does not escape, but a list
/// row marshals itself with `json.Marshal`, so `{{json .}}` of a row shows `\u003cnone\u003e`.
pub fn go_json_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for ch in json.chars() {
        match ch {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}
