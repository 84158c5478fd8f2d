//! SCIM filters (RFC 7644 §3.4.2.2): a recursive-descent parser over the whole grammar and the
//! syntax tree the directory evaluates (docs/scim.md once the directory is built).
//!
//! ```text
//! FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
//! valuePath = attrPath "[" valFilter "]"            ; then ".subAttr" as PATCH paths write it
//! attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
//! logExp    = FILTER SP ("and" / "or") SP FILTER   ; "and" binds tighter than "or"
//! compValue = false / null / true / number / string ; JSON literals (RFC 7159)
//! attrPath  = [URI ":"] ATTRNAME *1subAttr
//! compareOp = "eq" / "ne" / "co" / "sw" / "ew" / "gt" / "lt" / "ge" / "le"
//! ```
//!
//! Operators, `and`/`or`/`not`, `pr` and the literals are case-insensitive (§3.4.2.2); attribute
//! names are kept as written and compared case-insensitively by the evaluator. A filter is at most
//! [`MAX_LEN`] bytes, [`MAX_DEPTH`] levels deep and [`MAX_OPERATORS`] `and`/`or`s long (each makes the
//! tree one level deeper), so no input can exhaust the stack of the parser or of what walks the tree.

use std::fmt;

/// Longer filters than this are refused (`invalidFilter`): no client needs more.
pub const MAX_LEN: usize = 4096;
/// Deeper nesting (parentheses, `not`, value paths) is refused.
pub const MAX_DEPTH: usize = 32;
/// More `and`/`or` operators in one filter are refused.
pub const MAX_OPERATORS: usize = 64;

/// An attribute path: `[urn:…:]name[.sub]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN, for a fully qualified name (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`).
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Lt,
    Ge,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "lt" => CompareOp::Lt,
            "ge" => CompareOp::Ge,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Lt => "lt",
            CompareOp::Ge => "ge",
            CompareOp::Le => "le",
        }
    }
}

/// A comparison's literal. Numbers keep their JSON text (the evaluator compares them as numbers,
/// strings that hold dates as dates).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Number(serde_json::Number),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare { path: AttrPath, op: CompareOp, value: Value },
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `emails[type eq "work"]`, and PATCH's `emails[type eq "work"].value`.
    ValuePath { path: AttrPath, filter: Box<Filter>, sub: Option<String> },
}

/// Why a filter is not one: where (a byte offset) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter at {position}: {message}")]
pub struct FilterError {
    pub position: usize,
    pub message: String,
}

/// Parses a filter (the `filter` query parameter, or a `.search` body's).
pub fn parse(input: &str) -> Result<Filter, FilterError> {
    if input.len() > MAX_LEN {
        return Err(FilterError { position: MAX_LEN, message: format!("longer than {MAX_LEN} bytes") });
    }
    let mut parser = Parser { input, pos: 0, depth: 0, operators: 0 };
    let filter = parser.or_expr()?;
    parser.skip_space();
    if parser.pos != input.len() {
        return Err(parser.error("the filter continues after a complete expression"));
    }
    Ok(filter)
}

/// Parses an attribute path on its own (PATCH `path` without a filter, `sortBy`, `attributes`).
pub fn parse_path(input: &str) -> Result<AttrPath, FilterError> {
    let mut parser = Parser { input, pos: 0, depth: 0, operators: 0 };
    parser.skip_space();
    let path = parser.attr_path()?;
    parser.skip_space();
    if parser.pos != input.len() {
        return Err(parser.error("not an attribute path"));
    }
    Ok(path)
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
    depth: usize,
    operators: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> FilterError {
        FilterError { position: self.pos, message: message.to_owned() }
    }

    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.peek().filter(|c| *c == ' ' || *c == '\t' || *c == '\n' || *c == '\r') {
            self.pos += c.len_utf8();
        }
    }

    fn enter(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH { Err(self.error("nested too deeply")) } else { Ok(()) }
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn operator(&mut self) -> Result<(), FilterError> {
        self.operators += 1;
        if self.operators > MAX_OPERATORS { Err(self.error("too many and/or operators")) } else { Ok(()) }
    }

    /// The next word (letters only) if it is `word`, case-insensitively, and not the start of a
    /// longer name; consumed.
    fn keyword(&mut self, word: &str) -> bool {
        let rest = self.rest();
        let matches = rest.len() >= word.len()
            && rest.is_char_boundary(word.len())
            && rest[..word.len()].eq_ignore_ascii_case(word)
            && !rest[word.len()..].chars().next().is_some_and(is_name_char);
        if matches {
            self.pos += word.len();
        }
        matches
    }

    /// `or` chains of `and` chains: `a or b and c` is `a or (b and c)` (§3.4.2.2, precedence).
    fn or_expr(&mut self) -> Result<Filter, FilterError> {
        self.enter()?;
        let mut left = self.and_expr()?;
        loop {
            let save = self.pos;
            self.skip_space();
            if self.pos > save && self.keyword("or") {
                self.operator()?;
                self.require_space()?;
                let right = self.and_expr()?;
                left = Filter::Or(Box::new(left), Box::new(right));
            } else {
                self.pos = save;
                break;
            }
        }
        self.leave();
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Filter, FilterError> {
        self.enter()?;
        let mut left = self.unary()?;
        loop {
            let save = self.pos;
            self.skip_space();
            if self.pos > save && self.keyword("and") {
                self.operator()?;
                self.require_space()?;
                let right = self.unary()?;
                left = Filter::And(Box::new(left), Box::new(right));
            } else {
                self.pos = save;
                break;
            }
        }
        self.leave();
        Ok(left)
    }

    fn require_space(&mut self) -> Result<(), FilterError> {
        let before = self.pos;
        self.skip_space();
        if self.pos == before { Err(self.error("a space is expected here")) } else { Ok(()) }
    }

    /// `not (F)`, `(F)`, or an attribute expression / value path.
    fn unary(&mut self) -> Result<Filter, FilterError> {
        self.skip_space();
        let save = self.pos;
        if self.keyword("not") {
            self.skip_space();
            if self.peek() == Some('(') {
                self.enter()?;
                let inner = self.group()?;
                self.leave();
                return Ok(Filter::Not(Box::new(inner)));
            }
            // An attribute called "not…" is still an attribute: try again as one.
            self.pos = save;
        }
        if self.peek() == Some('(') {
            return self.group();
        }
        self.attr_expr()
    }

    fn group(&mut self) -> Result<Filter, FilterError> {
        self.pos += 1; // "("
        self.enter()?;
        let inner = self.or_expr()?;
        self.skip_space();
        if self.peek() != Some(')') {
            return Err(self.error("a closing parenthesis is expected"));
        }
        self.pos += 1;
        self.leave();
        Ok(inner)
    }

    fn attr_expr(&mut self) -> Result<Filter, FilterError> {
        let path = self.attr_path()?;
        if self.peek() == Some('[') {
            self.pos += 1;
            self.enter()?;
            let inner = self.or_expr()?;
            self.skip_space();
            if self.peek() != Some(']') {
                return Err(self.error("a closing bracket is expected"));
            }
            self.pos += 1;
            self.leave();
            if path.sub.is_some() {
                return Err(self.error("a value filter applies to an attribute, not to a sub-attribute"));
            }
            let sub = if self.peek() == Some('.') {
                self.pos += 1;
                Some(self.name()?)
            } else {
                None
            };
            return Ok(Filter::ValuePath { path, filter: Box::new(inner), sub });
        }
        self.require_space()?;
        if self.keyword("pr") {
            return Ok(Filter::Present(path));
        }
        let start = self.pos;
        let word: String = self.rest().chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        let op = CompareOp::parse(&word).ok_or_else(|| FilterError { position: start, message: format!("{word:?} is not an operator") })?;
        self.pos += word.len();
        self.require_space()?;
        let value = self.value()?;
        Ok(Filter::Compare { path, op, value })
    }

    fn name(&mut self) -> Result<String, FilterError> {
        let start = self.pos;
        let mut chars = self.rest().chars();
        match chars.next() {
            // `$ref` is the one attribute name RFC 7643 gives that starts otherwise.
            Some(c) if c.is_ascii_alphabetic() || c == '$' => {}
            _ => return Err(self.error("an attribute name is expected")),
        }
        let len = 1 + chars.take_while(|c| is_name_char(*c)).map(char::len_utf8).sum::<usize>();
        self.pos += len;
        Ok(self.input[start..self.pos].to_owned())
    }

    /// `[urn:…:]name[.sub]`: a URN runs up to the last colon before the name.
    fn attr_path(&mut self) -> Result<AttrPath, FilterError> {
        let start = self.pos;
        let token_len: usize = self.rest().chars().take_while(|c| is_name_char(*c) || matches!(c, ':' | '.' | '$')).map(char::len_utf8).sum();
        let token = &self.input[start..start + token_len];
        let (urn, local, local_start) = if token.len() > 4 && token[..4].eq_ignore_ascii_case("urn:") {
            let colon = token.rfind(':').ok_or_else(|| self.error("a schema URN without an attribute"))?;
            (Some(token[..colon].to_owned()), &token[colon + 1..], start + colon + 1)
        } else {
            (None, token, start)
        };
        if urn.as_deref().is_some_and(|u| u.len() <= 4) {
            return Err(FilterError { position: start, message: "an empty schema URN".into() });
        }
        let (name, sub) = match local.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (local, None),
        };
        let valid = |n: &str| {
            let mut cs = n.chars();
            cs.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '$') && cs.all(is_name_char)
        };
        if !valid(name) || sub.is_some_and(|s| !valid(s)) || local.contains(':') {
            return Err(FilterError { position: local_start, message: "an attribute name is expected".into() });
        }
        self.pos = start + token_len;
        Ok(AttrPath { urn, name: name.to_owned(), sub: sub.map(str::to_owned) })
    }

    fn value(&mut self) -> Result<Value, FilterError> {
        let start = self.pos;
        match self.peek() {
            Some('"') => {
                // A JSON string: find its end (a quote not escaped), then let serde_json decode it.
                let bytes = self.rest().as_bytes();
                let mut i = 1;
                let mut escaped = false;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' if !escaped => escaped = true,
                        b'"' if !escaped => break,
                        _ => escaped = false,
                    }
                    i += 1;
                }
                if i >= bytes.len() {
                    return Err(self.error("an unterminated string"));
                }
                let literal = &self.rest()[..=i];
                let text: String = serde_json::from_str(literal).map_err(|_| self.error("not a JSON string"))?;
                self.pos += i + 1;
                Ok(Value::Str(text))
            }
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let len = self.rest().chars().take_while(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')).count();
                let literal = &self.rest()[..len];
                let number: serde_json::Number = serde_json::from_str(literal).map_err(|_| FilterError { position: start, message: "not a JSON number".into() })?;
                self.pos += len;
                Ok(Value::Number(number))
            }
            _ if self.keyword("true") => Ok(Value::Bool(true)),
            _ if self.keyword("false") => Ok(Value::Bool(false)),
            _ if self.keyword("null") => Ok(Value::Null),
            _ => Err(self.error("a value is expected: a string, a number, true, false or null")),
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        write!(f, "{}", self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            Value::Number(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Null => write!(f, "null"),
        }
    }
}

/// The canonical text of a filter (fully parenthesised): what it parses back to.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {} {value}", op.as_str()),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::And(a, b) => write!(f, "({a} and {b})"),
            Filter::Or(a, b) => write!(f, "({a} or {b})"),
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath { path, filter, sub } => {
                write!(f, "{path}[{filter}]")?;
                if let Some(sub) = sub {
                    write!(f, ".{sub}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> AttrPath {
        match name.split_once('.') {
            Some((n, s)) => AttrPath { urn: None, name: n.into(), sub: Some(s.into()) },
            None => AttrPath { urn: None, name: name.into(), sub: None },
        }
    }

    fn eq(name: &str, value: &str) -> Filter {
        Filter::Compare { path: path(name), op: CompareOp::Eq, value: Value::Str(value.into()) }
    }

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    #[test]
    fn the_grammar_and_its_precedence() {
        let b = |f: Filter| Box::new(f);
        for (input, expected) in [
            // Entra's "test connection" and its usual lookups.
            (r#"userName eq "8f1e3a1b-0c3d-4e5f-9a8b-7c6d5e4f3a2b""#, eq("userName", "8f1e3a1b-0c3d-4e5f-9a8b-7c6d5e4f3a2b")),
            (r#"externalId eq "ana""#, eq("externalId", "ana")),
            (r#"displayName eq "Sales""#, eq("displayName", "Sales")),
            // Case-insensitive operators, keywords and literals; attribute names kept as written.
            (r#"USERNAME EQ "ana""#, eq("USERNAME", "ana")),
            ("active Eq TRUE", Filter::Compare { path: path("active"), op: CompareOp::Eq, value: Value::Bool(true) }),
            ("title pr", Filter::Present(path("title"))),
            ("title PR", Filter::Present(path("title"))),
            ("manager eq null", Filter::Compare { path: path("manager"), op: CompareOp::Eq, value: Value::Null }),
            ("meta.lastModified gt \"2011-05-13T04:42:34Z\"", Filter::Compare { path: path("meta.lastModified"), op: CompareOp::Gt, value: Value::Str("2011-05-13T04:42:34Z".into()) }),
            ("age ge -1.5e3", Filter::Compare { path: path("age"), op: CompareOp::Ge, value: Value::Number(serde_json::from_str("-1.5e3").expect("n")) }),
            (r#"name.familyName co "O'Malley""#, Filter::Compare { path: path("name.familyName"), op: CompareOp::Co, value: Value::Str("O'Malley".into()) }),
            (r#"title sw "J\"r \u00e9""#, Filter::Compare { path: path("title"), op: CompareOp::Sw, value: Value::Str("J\"r é".into()) }),
            // and binds tighter than or; parentheses and not.
            (r#"a eq "1" or b eq "2" and c eq "3""#, Filter::Or(b(eq("a", "1")), b(Filter::And(b(eq("b", "2")), b(eq("c", "3")))))),
            (r#"(a eq "1" or b eq "2") and c eq "3""#, Filter::And(b(Filter::Or(b(eq("a", "1")), b(eq("b", "2")))), b(eq("c", "3")))),
            (r#"a eq "1" and b eq "2" and c eq "3""#, Filter::And(b(Filter::And(b(eq("a", "1")), b(eq("b", "2")))), b(eq("c", "3")))),
            (r#"not (a eq "1")"#, Filter::Not(b(eq("a", "1")))),
            (r#"NOT(a eq "1") or note pr"#, Filter::Or(b(Filter::Not(b(eq("a", "1")))), b(Filter::Present(path("note"))))),
            // An attribute whose name begins with a keyword is an attribute.
            (r#"notes eq "x""#, eq("notes", "x")),
            (r#"order eq "x""#, eq("order", "x")),
            // Value paths, as filters and as PATCH paths.
            (r#"emails[type eq "work"]"#, Filter::ValuePath { path: path("emails"), filter: b(eq("type", "work")), sub: None }),
            (r#"emails[type eq "work" and value co "@example.com"].value"#, Filter::ValuePath {
                path: path("emails"),
                filter: b(Filter::And(b(eq("type", "work")), b(Filter::Compare { path: path("value"), op: CompareOp::Co, value: Value::Str("@example.com".into()) }))),
                sub: Some("value".into()),
            }),
            (r#"members[value eq "2819c223"]"#, Filter::ValuePath { path: path("members"), filter: b(eq("value", "2819c223")), sub: None }),
            // URN-qualified names: the URN runs to the last colon (and holds "2.0").
            (&format!(r#"{ENTERPRISE}:employeeNumber eq "701984""#), Filter::Compare {
                path: AttrPath { urn: Some(ENTERPRISE.into()), name: "employeeNumber".into(), sub: None },
                op: CompareOp::Eq,
                value: Value::Str("701984".into()),
            }),
            (&format!("{ENTERPRISE}:manager.value pr"), Filter::Present(AttrPath { urn: Some(ENTERPRISE.into()), name: "manager".into(), sub: Some("value".into()) })),
            (r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#, Filter::Compare {
                path: AttrPath { urn: Some("urn:ietf:params:scim:schemas:core:2.0:User".into()), name: "userName".into(), sub: None },
                op: CompareOp::Sw,
                value: Value::Str("J".into()),
            }),
            ("members.$ref pr", Filter::Present(path("members.$ref"))),
            ("  title   pr  ", Filter::Present(path("title"))),
        ] {
            assert_eq!(parse(input), Ok(expected.clone()), "{input}");
            // The canonical text parses back to the same filter.
            assert_eq!(parse(&expected.to_string()), Ok(expected), "{input}");
        }
    }

    #[test]
    fn what_is_not_a_filter_says_where() {
        for (input, at) in [
            ("", 0),
            ("userName", 8),
            ("userName eq", 11),
            ("userName eq ", 12),
            (r#"userName equals "x""#, 9),
            (r#"userName eq "x"#, 12),
            (r#"userName eq 'x'"#, 12),
            ("userName eq x", 12),
            (r#"userName eq "x" and"#, 19),
            // The second "or" can only be an attribute name, and "b" no operator.
            (r#"userName eq "x" or or b pr"#, 22),
            (r#"(userName eq "x""#, 16),
            (r#"userName eq "x")"#, 15),
            (r#"emails[type eq "work""#, 21),
            (r#"emails.type[value pr]"#, 21),
            (r#"userName eq "x" extra"#, 16),
            ("1abc pr", 0),
            ("urn: pr", 0),
            (r#"userName eq "\x""#, 12),
            ("age gt 1.2.3", 7),
            ("not userName pr", 4),
        ] {
            let error = parse(input).expect_err(input);
            assert_eq!(error.position, at, "{input}: {error}");
        }
        let deep = format!("{}a pr{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert!(parse(&deep).expect_err("deep").message.contains("nested too deeply"));
        let long = format!(r#"userName eq "{}""#, "x".repeat(MAX_LEN));
        assert!(parse(&long).is_err());
        let chain = (0..200).map(|i| format!("a{i} pr")).collect::<Vec<_>>().join(" or ");
        assert!(parse(&chain).expect_err("chain").message.contains("too many and/or"), "long chains are deep trees too");
        let fine = (0..MAX_OPERATORS + 1).map(|i| format!("a{i} pr")).collect::<Vec<_>>().join(" and ");
        assert!(parse(&fine).is_ok(), "{MAX_OPERATORS} operators are fine");
    }

    #[test]
    fn attribute_paths_on_their_own() {
        assert_eq!(parse_path("name.givenName"), Ok(path("name.givenName")));
        assert_eq!(
            parse_path(&format!("{ENTERPRISE}:department")),
            Ok(AttrPath { urn: Some(ENTERPRISE.into()), name: "department".into(), sub: None })
        );
        for bad in ["", "name.", ".name", "name.given.more", "name givenName", "urn:x"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn attr_path() -> impl Strategy<Value = AttrPath> {
            (
                proptest::option::of(Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_owned())),
                "[a-zA-Z][a-zA-Z0-9_-]{0,8}",
                proptest::option::of("[a-zA-Z][a-zA-Z0-9]{0,6}"),
            )
                .prop_map(|(urn, name, sub)| AttrPath { urn, name, sub })
        }

        fn value() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<String>().prop_map(Value::Str),
                any::<i64>().prop_map(|n| Value::Number(n.into())),
                any::<bool>().prop_map(Value::Bool),
                Just(Value::Null),
            ]
        }

        fn filter() -> impl Strategy<Value = Filter> {
            let op = prop_oneof![
                Just(CompareOp::Eq), Just(CompareOp::Ne), Just(CompareOp::Co), Just(CompareOp::Sw), Just(CompareOp::Ew),
                Just(CompareOp::Gt), Just(CompareOp::Lt), Just(CompareOp::Ge), Just(CompareOp::Le),
            ];
            let leaf = prop_oneof![
                (attr_path(), op, value()).prop_map(|(path, op, value)| Filter::Compare { path, op, value }),
                attr_path().prop_map(Filter::Present),
            ];
            leaf.prop_recursive(4, 16, 2, |inner| {
                prop_oneof![
                    (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                    (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                    inner.clone().prop_map(|f| Filter::Not(Box::new(f))),
                    ("[a-z]{1,6}", inner, proptest::option::of("[a-z]{1,5}")).prop_map(|(name, f, sub)| Filter::ValuePath {
                        path: AttrPath { urn: None, name, sub: None },
                        filter: Box::new(f),
                        sub,
                    }),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Any text at all: an answer, never a panic.
            #[test]
            fn any_text_is_parsed_or_refused(input in "\\PC{0,200}") {
                let _ = parse(&input);
                let _ = parse_path(&input);
            }

            /// Text made of the grammar's own pieces, shuffled: the same.
            #[test]
            fn grammar_soup_is_parsed_or_refused(pieces in proptest::collection::vec(prop_oneof![
                Just("("), Just(")"), Just("["), Just("]"), Just(" "), Just("and"), Just("or"), Just("not"), Just("pr"),
                Just("eq"), Just("\""), Just("\\"), Just("userName"), Just("urn:a:b:"), Just("."), Just("1e9"), Just("true"),
            ], 0..40)) {
                let input: String = pieces.concat();
                let _ = parse(&input);
            }

            /// Every filter's canonical text parses back to it.
            #[test]
            fn filters_round_trip(f in filter()) {
                prop_assert_eq!(parse(&f.to_string()), Ok(f));
            }
        }
    }
}
