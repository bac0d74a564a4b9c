//! The platform's CEQL `where` (and `orderBy`), parsed into a small tree and
//! written out as JQL for the hub's issue searches. No I/O.
//!
//! **The security property.** A value never leaves its JQL string: every
//! value the query gives is written by [`jql_string`], the one place a JQL
//! string literal is made, and field names are restricted by the grammar
//! (`[A-Za-z_][A-Za-z0-9_.]*`) before they are written. Nothing a caller
//! types becomes JQL syntax (`OR`, `)`, `currentUser()`, ...).
//!
//! **The grammar.**
//!
//! ```text
//! where     := or
//! or        := and ( OR and )*                 AND binds tighter than OR
//! and       := primary ( AND primary )*
//! primary   := '(' or ')' | condition
//! condition := field ( '=' | '!=' | '<' | '>' | '<=' | '>=' ) value
//!            | field LIKE string               '%' at either end
//!            | field IN '(' value ( ',' value )* ')'
//!            | field IS [ NOT ] NULL
//! value     := string | number | TRUE | FALSE
//! string    := '...'                           '' is one quote inside
//! number    := [+-]?[0-9]+(\.[0-9]+)?
//! field     := [A-Za-z_][A-Za-z0-9_.]*
//! ```
//!
//! Keywords are case-insensitive; spaces, tabs and line breaks separate.
//! `orderBy` is `field [asc|desc]`, comma-separated.
//!
//! **The translation.**
//!
//! | CEQL                        | JQL                                       |
//! | --------------------------- | ----------------------------------------- |
//! | `a = 'x'` (`!=` `<` `>` `<=` `>=` alike) | `a = "x"`                    |
//! | `a = 42`, `a = -7`          | `a = 42`, `a = -7`                        |
//! | `a = 1.5`                   | `a = "1.5"` (`.` is reserved in JQL)      |
//! | `a = true`                  | `a = "true"` (`true` is a JQL reserved word) |
//! | `a IN ('x', 2)`             | `a IN ("x", 2)`                           |
//! | `a IS NULL` / `IS NOT NULL` | `a IS EMPTY` / `a IS NOT EMPTY`           |
//! | `a LIKE 'word%'`, `'%word%'` | `a ~ "word*"`                            |
//! | `a LIKE '%some text%'`, `'text'`, `'%text'` | `a ~ "\"some text\""` (a phrase) |
//! | `a LIKE 'x%y'`, `'%'`       | refused (400)                             |
//! | `p AND q`, `p OR q`         | `p AND q`, `p OR q`; a group inside another always in parentheses |
//! | `fields.summary`            | `summary` (a leading `fields.` is dropped) |
//! | `customfield_10016`         | `cf[10016]`                               |
//! | `status.name`, `order`      | `"status.name"`, `"order"`                |
//! | `orderBy=a desc, b`         | `ORDER BY a DESC, b`                      |
//!
//! **Decisions, with Atlassian's documentation behind them.**
//!
//! - *Strings.* JQL strings are written in double quotes, with `\"`, `\\`,
//!   `\n`, `\r`, `\t`, and `\uXXXX` for the characters JQL's grammar keeps
//!   out of strings (U+0000–U+001F but line breaks, U+007F–U+009F, the
//!   non-characters U+FDD0–U+FDEF and U+FFFE–U+FFFF), as Jira's own
//!   `JqlStringSupportImpl.encodeAsQuotedString` does; line breaks, allowed
//!   raw, are escaped too, so a JQL string is always one line. A `'` needs
//!   no escape between double quotes. ("Advanced searching", *Restricted
//!   words and characters*; Jira's `JqlStringSupportImpl`.)
//! - *Field names* are written bare when they are plain identifiers
//!   (`[A-Za-z_][A-Za-z0-9_]*`) and not one of JQL's reserved words (the
//!   docs' list, plus `changed` and `was` from `JqlStringSupportImpl`),
//!   else as a JQL string: JQL reserves `.` among its characters, and words
//!   like `order` or `true` "need to be surrounded by quote-marks".
//!   `fields.` is dropped in front because the platform's users name JIRA's
//!   issue members by their place in the issue (`fields.summary`), while JQL
//!   names them bare; `customfield_N` becomes `cf[N]`, the documented JQL
//!   alias of a custom field by id ("JQL fields": *Custom field*, Alias
//!   `cf[CustomFieldID]`). Any other name goes through as written, and JIRA
//!   says if it does not know it (its 400, passed on).
//! - *LIKE.* JQL has no LIKE: its `~` (CONTAINS) is a text search on words
//!   (case-insensitive, stemmed), with `*` at the end of a word as its only
//!   dependable wildcard, no leading wildcard, and none inside a phrase
//!   ("Search syntax for text fields"). So `%` is read as "more text may
//!   follow or precede": a single word (letters and digits) with a `%` after
//!   it is that word as a prefix (`word*`); anything else is searched as the
//!   exact phrase (quote marks and backslashes in it escaped for the text
//!   search too), which finds the text among the field's words. A `%`
//!   anywhere but at the ends, or a pattern with no text, cannot be said in
//!   JQL and is refused rather than widened. `_` is not a wildcard.
//! - *Numbers* are JQL numbers when they are integers that fit a 64-bit
//!   signed number (JQL's number operands are longs); decimals and larger
//!   integers are strings, which JIRA compares as numbers on number fields.
//! - *Limits.* At most [`MAX_CHARS`] characters, [`MAX_DEPTH`] levels of
//!   parentheses, and [`MAX_TERMS`] conditions and listed values (each `IN`
//!   value counts), so that a hostile query cannot exhaust the stack or
//!   memory; beyond them the query is refused. Errors name the offset, in
//!   characters from 0, where the query stopped making sense.

use std::fmt;

pub const MAX_CHARS: usize = 4096;
pub const MAX_DEPTH: usize = 64;
pub const MAX_TERMS: usize = 200;

/// A `where` or `orderBy` that does not parse: `at` is a character offset,
/// and `message` names it too ("unexpected ')' at 14").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeqlError {
    pub at: usize,
    pub message: String,
}

impl CeqlError {
    fn new(at: usize, message: impl fmt::Display) -> Self {
        CeqlError { at, message: format!("{message} at {at}") }
    }
}

impl fmt::Display for CeqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CeqlError {}

/// A field as the query named it (`[A-Za-z_][A-Za-z0-9_.]*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field(String);

impl Field {
    pub fn new(name: &str) -> Option<Self> {
        let mut chars = name.chars();
        let first = chars.next()?;
        let valid = (first.is_ascii_alphabetic() || first == '_') && chars.all(is_field_char);
        valid.then(|| Field(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JQL name: `fields.` dropped, `customfield_N` as `cf[N]`, quoted
    /// unless a plain identifier that is not a reserved word.
    pub fn to_jql(&self) -> String {
        let name = self.0.strip_prefix("fields.").filter(|rest| !rest.is_empty()).unwrap_or(&self.0);
        if let Some(id) = name.strip_prefix("customfield_") {
            if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
                return format!("cf[{id}]");
            }
        }
        let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if plain && !is_reserved(name) {
            name.to_owned()
        } else {
            jql_string(name)
        }
    }
}

fn is_field_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// JQL's reserved words: the list in "Advanced searching" (Restricted words),
/// with `changed` and `was` that Jira's `JqlStringSupportImpl` adds.
const RESERVED: &[&str] = &[
    "abort",
    "access",
    "add",
    "after",
    "alias",
    "all",
    "alter",
    "and",
    "any",
    "as",
    "asc",
    "audit",
    "avg",
    "before",
    "begin",
    "between",
    "boolean",
    "break",
    "by",
    "byte",
    "catch",
    "cf",
    "changed",
    "char",
    "character",
    "check",
    "checkpoint",
    "collate",
    "collation",
    "column",
    "commit",
    "connect",
    "continue",
    "count",
    "create",
    "current",
    "date",
    "decimal",
    "declare",
    "decrement",
    "default",
    "defaults",
    "define",
    "delete",
    "delimiter",
    "desc",
    "difference",
    "distinct",
    "divide",
    "do",
    "double",
    "drop",
    "else",
    "empty",
    "encoding",
    "end",
    "equals",
    "escape",
    "exclusive",
    "exec",
    "execute",
    "exists",
    "explain",
    "false",
    "fetch",
    "field",
    "file",
    "first",
    "float",
    "for",
    "from",
    "function",
    "go",
    "goto",
    "grant",
    "greater",
    "group",
    "having",
    "identified",
    "if",
    "immediate",
    "in",
    "increment",
    "index",
    "initial",
    "inner",
    "inout",
    "input",
    "insert",
    "int",
    "integer",
    "intersect",
    "intersection",
    "into",
    "is",
    "isempty",
    "isnull",
    "join",
    "last",
    "left",
    "less",
    "like",
    "limit",
    "lock",
    "long",
    "max",
    "min",
    "minus",
    "mode",
    "modify",
    "modulo",
    "more",
    "multiply",
    "next",
    "noaudit",
    "not",
    "notin",
    "nowait",
    "null",
    "number",
    "object",
    "of",
    "on",
    "option",
    "or",
    "order",
    "outer",
    "output",
    "power",
    "previous",
    "prior",
    "privileges",
    "public",
    "raise",
    "raw",
    "remainder",
    "rename",
    "resource",
    "return",
    "returns",
    "revoke",
    "right",
    "row",
    "rowid",
    "rownum",
    "rows",
    "select",
    "session",
    "set",
    "share",
    "size",
    "sqrt",
    "start",
    "strict",
    "string",
    "subtract",
    "sum",
    "synonym",
    "table",
    "then",
    "to",
    "trans",
    "transaction",
    "trigger",
    "true",
    "uid",
    "union",
    "unique",
    "update",
    "user",
    "validate",
    "values",
    "view",
    "was",
    "when",
    "whenever",
    "where",
    "while",
    "with",
];

fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

/// `value` as a JQL string literal: the one place values are quoted.
pub fn jql_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_jql_control(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The characters JQL's grammar keeps out of strings (its CONTROLCHARS).
fn is_jql_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}'..='\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{fdd0}'..='\u{fdef}' | '\u{fffe}'..='\u{ffff}')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl Op {
    /// The same in CEQL and JQL.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Ge => ">=",
        }
    }
}

/// A number as the query wrote it: `[+-]?[0-9]+(\.[0-9]+)?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number(String);

impl Number {
    pub fn new(text: &str) -> Option<Self> {
        let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        (digits(whole) && digits(fraction)).then(|| Number(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn to_jql(&self) -> String {
        let text = self.0.strip_prefix('+').unwrap_or(&self.0);
        if text.parse::<i64>().is_ok() {
            text.to_owned()
        } else {
            jql_string(text)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Number(Number),
    Bool(bool),
}

impl Value {
    pub fn to_jql(&self) -> String {
        match self {
            Value::Text(text) => jql_string(text),
            Value::Number(number) => number.to_jql(),
            Value::Bool(b) => jql_string(if *b { "true" } else { "false" }),
        }
    }

    pub fn to_ceql(&self) -> String {
        match self {
            Value::Text(text) => ceql_string(text),
            Value::Number(number) => number.0.clone(),
            Value::Bool(b) => b.to_string(),
        }
    }
}

fn ceql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A LIKE pattern JQL can say: text, with a `%` perhaps at either end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    leading: bool,
    trailing: bool,
}

impl Pattern {
    /// The pattern, or why JQL cannot say it.
    pub fn new(pattern: &str) -> Result<Self, &'static str> {
        let rest = pattern.strip_prefix('%');
        let leading = rest.is_some();
        let rest = rest.unwrap_or(pattern);
        let text = rest.strip_suffix('%');
        let trailing = text.is_some();
        let text = text.unwrap_or(rest);
        if text.contains('%') {
            return Err("a LIKE pattern can have '%' only at its start and end (JQL has no wildcard inside text)");
        }
        if text.trim().is_empty() {
            return Err("a LIKE pattern needs some text besides '%'");
        }
        Ok(Pattern { text: text.to_owned(), leading, trailing })
    }

    /// The text searched for, without its `%`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The operand of JQL's `~`: `word*` for one word then `%`, else the
    /// exact phrase.
    pub fn to_jql(&self) -> String {
        if self.trailing && self.text.chars().all(char::is_alphanumeric) {
            return jql_string(&format!("{}*", self.text));
        }
        let phrase = self.text.replace('\\', "\\\\").replace('"', "\\\"");
        jql_string(&format!("\"{phrase}\""))
    }

    pub fn to_ceql(&self) -> String {
        let lead = if self.leading { "%" } else { "" };
        let trail = if self.trailing { "%" } else { "" };
        ceql_string(&format!("{lead}{}{trail}", self.text))
    }
}

/// A parsed `where`. [`parse`] never gives an empty or one-member `And` or
/// `Or`, nor one directly inside another of its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Cmp { field: Field, op: Op, value: Value },
    Like { field: Field, pattern: Pattern },
    In { field: Field, values: Vec<Value> },
    Null { field: Field, negated: bool },
}

impl Expr {
    pub fn to_jql(&self) -> String {
        match self {
            Expr::And(members) => join(members, " AND ", Expr::to_jql),
            Expr::Or(members) => join(members, " OR ", Expr::to_jql),
            Expr::Cmp { field, op, value } => format!("{} {} {}", field.to_jql(), op.symbol(), value.to_jql()),
            Expr::Like { field, pattern } => format!("{} ~ {}", field.to_jql(), pattern.to_jql()),
            Expr::In { field, values } => {
                let values: Vec<String> = values.iter().map(Value::to_jql).collect();
                format!("{} IN ({})", field.to_jql(), values.join(", "))
            }
            Expr::Null { field, negated } => {
                format!("{} IS {}EMPTY", field.to_jql(), if *negated { "NOT " } else { "" })
            }
        }
    }

    /// Back to CEQL, which [`parse`] reads as the same tree.
    pub fn to_ceql(&self) -> String {
        match self {
            Expr::And(members) => join(members, " AND ", Expr::to_ceql),
            Expr::Or(members) => join(members, " OR ", Expr::to_ceql),
            Expr::Cmp { field, op, value } => format!("{} {} {}", field.0, op.symbol(), value.to_ceql()),
            Expr::Like { field, pattern } => format!("{} LIKE {}", field.0, pattern.to_ceql()),
            Expr::In { field, values } => {
                let values: Vec<String> = values.iter().map(Value::to_ceql).collect();
                format!("{} IN ({})", field.0, values.join(", "))
            }
            Expr::Null { field, negated } => {
                format!("{} IS {}NULL", field.0, if *negated { "NOT " } else { "" })
            }
        }
    }
}

/// Members joined by `sep`, a group among them in parentheses (so neither
/// language's precedence is relied on).
fn join(members: &[Expr], sep: &str, write: fn(&Expr) -> String) -> String {
    let parts: Vec<String> = members
        .iter()
        .map(|m| match m {
            Expr::And(_) | Expr::Or(_) => format!("({})", write(m)),
            _ => write(m),
        })
        .collect();
    parts.join(sep)
}

// ---------------------------------------------------------------- tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(String),
    Op(Op),
    Open,
    Close,
    Comma,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    at: usize,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Word(w) if w.chars().count() > 40 => format!("'{}...'", w.chars().take(40).collect::<String>()),
        Tok::Word(w) => format!("'{w}'"),
        Tok::Str(_) => "a string".to_owned(),
        Tok::Num(n) if n.chars().count() > 40 => "a number".to_owned(),
        Tok::Num(n) => format!("number {n}"),
        Tok::Op(op) => format!("'{}'", op.symbol()),
        Tok::Open => "'('".to_owned(),
        Tok::Close => "')'".to_owned(),
        Tok::Comma => "','".to_owned(),
        Tok::End => "the end".to_owned(),
    }
}

/// The tokens of `input`, ending with `End`; refuses input over [`MAX_CHARS`].
fn tokenize(input: &str) -> Result<Vec<Token>, CeqlError> {
    if input.chars().nth(MAX_CHARS).is_some() {
        return Err(CeqlError::new(MAX_CHARS, format_args!("longer than {MAX_CHARS} characters: stopped")));
    }
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i;
        let tok = match c {
            ' ' | '\t' | '\n' | '\r' => {
                i += 1;
                continue;
            }
            '(' => Tok::Open,
            ')' => Tok::Close,
            ',' => Tok::Comma,
            '=' => Tok::Op(Op::Eq),
            '!' if chars.get(i + 1) == Some(&'=') => Tok::Op(Op::Ne),
            '<' if chars.get(i + 1) == Some(&'=') => Tok::Op(Op::Le),
            '>' if chars.get(i + 1) == Some(&'=') => Tok::Op(Op::Ge),
            '<' => Tok::Op(Op::Lt),
            '>' => Tok::Op(Op::Gt),
            '\'' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(CeqlError::new(at, "unterminated string starting")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            text.push('\'');
                            i += 2;
                        }
                        Some('\'') => break,
                        Some(&c) => {
                            text.push(c);
                            i += 1;
                        }
                    }
                }
                Tok::Str(text)
            }
            c if c.is_ascii_digit()
                || (matches!(c, '+' | '-') && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let mut end = i + 1;
                while end < chars.len() && (chars[end].is_ascii_digit() || chars[end] == '.') {
                    end += 1;
                }
                let text: String = chars[i..end].iter().collect();
                let glued = chars.get(end).is_some_and(|&c| is_field_char(c));
                match Number::new(&text) {
                    Some(_) if !glued => {}
                    _ => return Err(CeqlError::new(at, "malformed number starting")),
                }
                i = end;
                tokens.push(Token { tok: Tok::Num(text), at });
                continue;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut end = i + 1;
                while end < chars.len() && is_field_char(chars[end]) {
                    end += 1;
                }
                let word: String = chars[i..end].iter().collect();
                i = end;
                tokens.push(Token { tok: Tok::Word(word), at });
                continue;
            }
            c => {
                let shown = if c.is_control() { c.escape_debug().to_string() } else { c.to_string() };
                return Err(CeqlError::new(at, format_args!("unexpected character '{shown}'")));
            }
        };
        i += match tok {
            Tok::Op(Op::Ne | Op::Le | Op::Ge) => 2,
            _ => 1,
        };
        tokens.push(Token { tok, at });
    }
    tokens.push(Token { tok: Tok::End, at: chars.len() });
    Ok(tokens)
}

// ---------------------------------------------------------------- parser

/// Parses a `where`.
pub fn parse(where_: &str) -> Result<Expr, CeqlError> {
    let mut parser = Parser { tokens: tokenize(where_)?, next: 0, depth: 0, terms: 0 };
    let expr = parser.or()?;
    match parser.peek() {
        Tok::End => Ok(expr),
        tok => Err(CeqlError::new(parser.at(), format_args!("unexpected {}", describe(tok)))),
    }
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    depth: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.next].tok
    }

    fn at(&self) -> usize {
        self.tokens[self.next].at
    }

    fn bump(&mut self) -> Token {
        let token = self.tokens[self.next].clone();
        if token.tok != Tok::End {
            self.next += 1;
        }
        token
    }

    fn keyword(&mut self, word: &str) -> bool {
        let found = matches!(self.peek(), Tok::Word(w) if w.eq_ignore_ascii_case(word));
        if found {
            self.next += 1;
        }
        found
    }

    fn expected(&self, what: &str) -> CeqlError {
        CeqlError::new(self.at(), format_args!("expected {what}, found {},", describe(self.peek())))
    }

    fn count_term(&mut self, at: usize) -> Result<(), CeqlError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(CeqlError::new(at, format_args!("more than {MAX_TERMS} conditions and values")));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, CeqlError> {
        let mut members = Vec::new();
        loop {
            match self.and()? {
                Expr::Or(inner) => members.extend(inner),
                expr => members.push(expr),
            }
            if !self.keyword("or") {
                break;
            }
        }
        Ok(if members.len() == 1 { members.remove(0) } else { Expr::Or(members) })
    }

    fn and(&mut self) -> Result<Expr, CeqlError> {
        let mut members = Vec::new();
        loop {
            match self.primary()? {
                Expr::And(inner) => members.extend(inner),
                expr => members.push(expr),
            }
            if !self.keyword("and") {
                break;
            }
        }
        Ok(if members.len() == 1 { members.remove(0) } else { Expr::And(members) })
    }

    fn primary(&mut self) -> Result<Expr, CeqlError> {
        match self.peek().clone() {
            Tok::Open => {
                let open = self.bump().at;
                if self.depth == MAX_DEPTH {
                    return Err(CeqlError::new(open, format_args!("more than {MAX_DEPTH} levels of parentheses")));
                }
                self.depth += 1;
                let expr = self.or()?;
                self.depth -= 1;
                if *self.peek() != Tok::Close {
                    return Err(self.expected(&format!("')' to close the '(' at {open}")));
                }
                self.bump();
                Ok(expr)
            }
            Tok::Word(name) => {
                let at = self.bump().at;
                let field = Field(name);
                self.condition(field, at)
            }
            _ => Err(self.expected("a field or '('")),
        }
    }

    fn condition(&mut self, field: Field, at: usize) -> Result<Expr, CeqlError> {
        self.count_term(at)?;
        if let Tok::Op(op) = *self.peek() {
            self.bump();
            let value = self.value()?;
            return Ok(Expr::Cmp { field, op, value });
        }
        if self.keyword("like") {
            let Tok::Str(pattern) = self.peek().clone() else {
                return Err(self.expected("a quoted pattern after LIKE"));
            };
            let at = self.bump().at;
            let pattern = Pattern::new(&pattern).map_err(|why| CeqlError::new(at, why))?;
            return Ok(Expr::Like { field, pattern });
        }
        if self.keyword("in") {
            if *self.peek() != Tok::Open {
                return Err(self.expected("'(' after IN"));
            }
            self.bump();
            let mut values = Vec::new();
            loop {
                if !values.is_empty() {
                    self.count_term(self.at())?;
                }
                values.push(self.value()?);
                match self.peek() {
                    Tok::Comma => self.bump(),
                    Tok::Close => break,
                    _ => return Err(self.expected("',' or ')' in the IN list")),
                };
            }
            self.bump();
            return Ok(Expr::In { field, values });
        }
        if self.keyword("is") {
            let negated = self.keyword("not");
            if !self.keyword("null") {
                return Err(self.expected(if negated { "NULL after IS NOT" } else { "NULL or NOT NULL after IS" }));
            }
            return Ok(Expr::Null { field, negated });
        }
        Err(self.expected(&format!("an operator after '{}'", field.0)))
    }

    fn value(&mut self) -> Result<Value, CeqlError> {
        let value = match self.peek() {
            Tok::Str(text) => Value::Text(text.clone()),
            Tok::Num(text) => Value::Number(Number(text.clone())),
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
            Tok::Word(_) => return Err(self.expected("a value (text goes in single quotes)")),
            _ => return Err(self.expected("a value")),
        };
        self.bump();
        Ok(value)
    }
}

/// An `orderBy` (`field [asc|desc]`, comma-separated) as JQL's
/// `ORDER BY field ASC, ...`; a field without a direction keeps JIRA's
/// default for it.
pub fn order_by(text: &str) -> Result<String, CeqlError> {
    let mut parser = Parser { tokens: tokenize(text)?, next: 0, depth: 0, terms: 0 };
    let mut sorts = Vec::new();
    loop {
        let Tok::Word(name) = parser.peek().clone() else {
            return Err(parser.expected("a field"));
        };
        let at = parser.bump().at;
        parser.count_term(at)?;
        let mut sort = Field(name).to_jql();
        if parser.keyword("asc") {
            sort.push_str(" ASC");
        } else if parser.keyword("desc") {
            sort.push_str(" DESC");
        }
        sorts.push(sort);
        match parser.peek() {
            Tok::Comma => parser.bump(),
            Tok::End => break,
            _ => return Err(parser.expected("asc, desc or ','")),
        };
    }
    Ok(format!("ORDER BY {}", sorts.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn jql(where_: &str) -> String {
        match parse(where_) {
            Ok(expr) => expr.to_jql(),
            Err(e) => panic!("{where_:?}: {e}"),
        }
    }

    fn error(where_: &str) -> String {
        match parse(where_) {
            Ok(expr) => panic!("{where_:?} parsed as {expr:?}"),
            Err(e) => {
                assert!(e.message.ends_with(&format!(" at {}", e.at)), "{e:?}");
                e.message
            }
        }
    }

    // ----------------------------------------------- a JQL reader, from the docs

    /// A JQL token, as the JQL grammar reads it: a string literal (decoded),
    /// a bare word, or punctuation.
    #[derive(Debug, PartialEq)]
    enum Jql {
        Str(String),
        Word(String),
        Punct(&'static str),
    }

    /// Reads JQL by Atlassian's rules: strings in `"` or `'`, escapes `\"`
    /// `\'` `\\` `\n` `\r` `\t` `\ ` and `\uXXXX`, no raw control character
    /// inside (line breaks allowed); bare words hold none of the reserved
    /// characters (space + . , ; ? | * / % ^ $ # @ [ ]), `cf[N]` aside.
    fn read_jql(jql: &str) -> Result<Vec<Jql>, String> {
        const PUNCT: [&str; 11] = ["!=", "!~", "<=", ">=", "=", "<", ">", "~", "(", ")", ","];
        let mut out = Vec::new();
        let mut rest = jql;
        'next: while let Some(c) = rest.chars().next() {
            if c.is_whitespace() {
                rest = &rest[c.len_utf8()..];
                continue;
            }
            if c == '"' || c == '\'' {
                let quote = c;
                let mut text = String::new();
                let mut chars = rest[1..].char_indices();
                while let Some((i, c)) = chars.next() {
                    match c {
                        c if c == quote => {
                            out.push(Jql::Str(text));
                            rest = &rest[1 + i + 1..];
                            continue 'next;
                        }
                        '\\' => match chars.next().map(|(_, e)| e) {
                            Some('"') => text.push('"'),
                            Some('\'') => text.push('\''),
                            Some('\\') => text.push('\\'),
                            Some('n') => text.push('\n'),
                            Some('r') => text.push('\r'),
                            Some('t') => text.push('\t'),
                            Some(' ') => text.push(' '),
                            Some('u') => {
                                let hex: String = (0..4).filter_map(|_| chars.next().map(|(_, h)| h)).collect();
                                let unit = u32::from_str_radix(&hex, 16).map_err(|_| format!("bad \\u{hex}"))?;
                                text.push(char::from_u32(unit).ok_or("surrogate escape")?);
                            }
                            other => return Err(format!("bad escape {other:?}")),
                        },
                        c if is_jql_control(c) => return Err(format!("raw control {c:?} in a string")),
                        c => text.push(c),
                    }
                }
                return Err("unterminated string".into());
            }
            for p in PUNCT {
                if let Some(after) = rest.strip_prefix(p) {
                    out.push(Jql::Punct(p));
                    rest = after;
                    continue 'next;
                }
            }
            let end = rest.find(|c: char| c.is_whitespace() || "\"'=!<>~(),".contains(c)).unwrap_or(rest.len());
            let word = &rest[..end];
            if word.is_empty() {
                return Err(format!("unexpected {c:?}"));
            }
            let cf = word.strip_prefix("cf[").and_then(|w| w.strip_suffix(']'));
            let is_cf = cf.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
            if !is_cf && word.contains(|c: char| "+.,;?|*/%^$#@[]".contains(c)) {
                return Err(format!("reserved character in bare {word:?}"));
            }
            out.push(Jql::Word(word.to_owned()));
            rest = &rest[end..];
        }
        Ok(out)
    }

    fn word(w: &str) -> Jql {
        Jql::Word(w.to_owned())
    }

    fn string(s: &str) -> Jql {
        Jql::Str(s.to_owned())
    }

    #[test]
    fn the_reader_reads_the_docs_examples() {
        assert_eq!(
            read_jql(r#"project = "New office" and status = "open""#).unwrap(),
            [
                word("project"),
                Jql::Punct("="),
                string("New office"),
                word("and"),
                word("status"),
                Jql::Punct("="),
                string("open")
            ]
        );
        assert_eq!(read_jql(r#"text ~ "\"Jira Software\"""#).unwrap()[2], string("\"Jira Software\""));
        assert!(read_jql("fixVersion = 3.14").is_err(), "'.' is reserved");
        assert!(read_jql("summary ~ \"a\u{1}b\"").is_err());
    }

    // ----------------------------------------------- the translation table

    #[test]
    fn each_comparison() {
        assert_eq!(jql("status = 'Open'"), r#"status = "Open""#);
        assert_eq!(jql("status != 'Done'"), r#"status != "Done""#);
        assert_eq!(jql("priority < 3"), "priority < 3");
        assert_eq!(jql("priority > 3"), "priority > 3");
        assert_eq!(jql("created <= '2024-01-31'"), r#"created <= "2024-01-31""#);
        assert_eq!(jql("created>='2024-01-01'"), r#"created >= "2024-01-01""#);
    }

    #[test]
    fn numbers_and_booleans() {
        assert_eq!(jql("votes = 42"), "votes = 42");
        assert_eq!(jql("votes = -7"), "votes = -7");
        assert_eq!(jql("votes = +7"), "votes = 7");
        assert_eq!(jql("cf = 1.5"), r#""cf" = "1.5""#);
        assert_eq!(jql("votes = 99999999999999999999"), r#"votes = "99999999999999999999""#);
        assert_eq!(jql("flagged = TRUE"), r#"flagged = "true""#);
        assert_eq!(jql("flagged = false"), r#"flagged = "false""#);
    }

    #[test]
    fn in_lists_and_nulls() {
        assert_eq!(jql("status IN ('Open', 'In Progress', 3)"), r#"status IN ("Open", "In Progress", 3)"#);
        assert_eq!(jql("status in ('Open')"), r#"status IN ("Open")"#);
        assert_eq!(jql("assignee IS NULL"), "assignee IS EMPTY");
        assert_eq!(jql("assignee is not null"), "assignee IS NOT EMPTY");
    }

    #[test]
    fn like_is_a_text_search() {
        assert_eq!(jql("summary LIKE 'print%'"), r#"summary ~ "print*""#);
        assert_eq!(jql("summary LIKE '%print%'"), r#"summary ~ "print*""#);
        assert_eq!(jql("summary LIKE '%printer on fire%'"), r#"summary ~ "\"printer on fire\"""#);
        assert_eq!(jql("summary LIKE 'printer'"), r#"summary ~ "\"printer\"""#);
        assert_eq!(jql("summary LIKE '%printer'"), r#"summary ~ "\"printer\"""#);
        assert_eq!(jql("summary like 'a-b%'"), r#"summary ~ "\"a-b\"""#, "not one word: no wildcard");
        assert_eq!(jql(r#"summary LIKE 'say "hi" \ '"#), r#"summary ~ "\"say \\\"hi\\\" \\\\ \"""#);
        assert_eq!(jql("summary LIKE 'Ünïcödé%'"), r#"summary ~ "Ünïcödé*""#);
    }

    #[test]
    fn like_patterns_jql_cannot_say_are_refused() {
        assert_eq!(error("summary LIKE 'a%b'"), format!("{} at 13", Pattern::new("a%b").unwrap_err()));
        assert!(error("summary LIKE '%'").contains("needs some text"));
        assert!(error("summary LIKE '%%'").contains("needs some text"));
        assert!(error("summary LIKE '% %'").contains("needs some text"));
        assert!(error("summary LIKE '%%a'").contains("only at its start and end"));
        assert_eq!(error("summary LIKE 5"), "expected a quoted pattern after LIKE, found number 5, at 13");
        assert_eq!(error("summary LIKE"), "expected a quoted pattern after LIKE, found the end, at 12");
    }

    #[test]
    fn and_binds_tighter_than_or_and_groups_are_parenthesized() {
        assert_eq!(jql("a = 1 OR b = 2 AND c = 3"), "a = 1 OR (b = 2 AND c = 3)");
        assert_eq!(jql("(a = 1 OR b = 2) AND c = 3"), "(a = 1 OR b = 2) AND c = 3");
        assert_eq!(jql("a = 1 and (b = 2 and c = 3)"), "a = 1 AND b = 2 AND c = 3", "flattened");
        assert_eq!(jql("((((a = 1))))"), "a = 1");
        assert_eq!(
            parse("a = 1 AND b = 2 OR c = 3").unwrap(),
            Expr::Or(vec![
                Expr::And(vec![
                    Expr::Cmp {
                        field: Field::new("a").unwrap(),
                        op: Op::Eq,
                        value: Value::Number(Number::new("1").unwrap())
                    },
                    Expr::Cmp {
                        field: Field::new("b").unwrap(),
                        op: Op::Eq,
                        value: Value::Number(Number::new("2").unwrap())
                    },
                ]),
                Expr::Cmp {
                    field: Field::new("c").unwrap(),
                    op: Op::Eq,
                    value: Value::Number(Number::new("3").unwrap())
                },
            ])
        );
    }

    #[test]
    fn field_names() {
        assert_eq!(jql("fields.summary LIKE 'x%'"), r#"summary ~ "x*""#);
        assert_eq!(jql("customfield_10016 >= 5"), "cf[10016] >= 5");
        assert_eq!(jql("fields.customfield_10016 IS NULL"), "cf[10016] IS EMPTY");
        assert_eq!(jql("customfield_x = 'a'"), r#"customfield_x = "a""#);
        assert_eq!(jql("status.name = 'Done'"), r#""status.name" = "Done""#);
        assert_eq!(jql("fields. = 'a'"), r#""fields." = "a""#);
        assert_eq!(jql("order = 'a'"), r#""order" = "a""#, "a reserved word");
        assert_eq!(jql("ORDER = 'a'"), r#""ORDER" = "a""#);
        assert_eq!(jql("_x1 = 'a'"), r#"_x1 = "a""#);
        assert_eq!(jql("in IN ('a')"), r#""in" IN ("a")"#, "keywords can name fields");
        assert!(RESERVED.windows(2).all(|w| w[0] < w[1]), "the list stays sorted, without repeats");
    }

    #[test]
    fn values_stay_in_their_strings() {
        let hostile = "x' OR '1'='1";
        assert_eq!(jql(&format!("summary = '{}'", hostile.replace('\'', "''"))), r#"summary = "x' OR '1'='1""#);
        assert_eq!(
            jql(r#"a = '" OR assignee = currentUser() OR b = "'"#),
            r#"a = "\" OR assignee = currentUser() OR b = \"""#
        );
        assert_eq!(jql(r"a = '\'"), r#"a = "\\""#);
        assert_eq!(jql("a = 'line\nbreak\r\ttab'"), r#"a = "line\nbreak\r\ttab""#);
        assert_eq!(jql("a = '\u{0}\u{7f}\u{fdd0}\u{ffff}é😀'"), r#"a = "\u0000\u007f\ufdd0\uffffé😀""#);
        assert_eq!(jql("a = ''"), r#"a = """#);
        assert_eq!(jql("a = ''''"), r#"a = "'""#);
    }

    #[test]
    fn keywords_and_spacing() {
        assert_eq!(jql("a=1 And b Is Not Null oR c In(1,2)"), "(a = 1 AND b IS NOT EMPTY) OR c IN (1, 2)");
        assert_eq!(jql("\ta = 1\r\n\tAND\nb = 2 "), "a = 1 AND b = 2");
    }

    // ----------------------------------------------- errors

    #[test]
    fn errors_name_where() {
        assert_eq!(error("(a = 1 OR b = 2))"), "unexpected ')' at 16");
        assert_eq!(error("a = 'abc"), "unterminated string starting at 4");
        assert_eq!(error("a = 1 AND b = 'it''s"), "unterminated string starting at 14");
        assert_eq!(error(""), "expected a field or '(', found the end, at 0");
        assert_eq!(error("   "), "expected a field or '(', found the end, at 3");
        assert_eq!(error("a"), "expected an operator after 'a', found the end, at 1");
        assert_eq!(error("a ~ 'x'"), "unexpected character '~' at 2");
        assert_eq!(error("a = Open"), "expected a value (text goes in single quotes), found 'Open', at 4");
        assert_eq!(error("a = \"x\""), "unexpected character '\"' at 4");
        assert_eq!(error("a = "), "expected a value, found the end, at 4");
        assert_eq!(error("a = 1 b = 2"), "unexpected 'b' at 6");
        assert_eq!(error("a = 1 AND"), "expected a field or '(', found the end, at 9");
        assert_eq!(error("(a = 1"), "expected ')' to close the '(' at 0, found the end, at 6");
        assert_eq!(error("a IN 1"), "expected '(' after IN, found number 1, at 5");
        assert_eq!(error("a IN ()"), "expected a value, found ')', at 6");
        assert_eq!(error("a IN (1 2)"), "expected ',' or ')' in the IN list, found number 2, at 8");
        assert_eq!(error("a IN (1,)"), "expected a value, found ')', at 8");
        assert_eq!(error("a IS 1"), "expected NULL or NOT NULL after IS, found number 1, at 5");
        assert_eq!(error("a IS NOT"), "expected NULL after IS NOT, found the end, at 8");
        assert_eq!(error("a NOT IN (1)"), "expected an operator after 'a', found 'NOT', at 2");
        assert_eq!(error("a = 1.2.3"), "malformed number starting at 4");
        assert_eq!(error("a = 1."), "malformed number starting at 4");
        assert_eq!(error("a = 12abc"), "malformed number starting at 4");
        assert_eq!(error("a = -"), "unexpected character '-' at 4");
        assert_eq!(error("a ! 1"), "unexpected character '!' at 2");
        assert_eq!(error("a = 'x' AND ñ = 1"), "unexpected character 'ñ' at 12");
        assert_eq!(error("é = 'x' AND\u{0} = 1"), "unexpected character 'é' at 0");
        assert_eq!(error("a = 1 AND \u{7}"), "unexpected character '\\u{7}' at 10");
        assert_eq!(error("()"), "expected a field or '(', found ')', at 1");
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        assert_eq!(error("a = 'ééé' )"), "unexpected ')' at 10");
    }

    #[test]
    fn limits() {
        let long = format!("a = '{}'", "x".repeat(MAX_CHARS - 6));
        assert_eq!(long.chars().count(), MAX_CHARS);
        assert!(parse(&long).is_ok());
        assert_eq!(error(&format!("{long} ")), "longer than 4096 characters: stopped at 4096");
        assert_eq!(error(&format!("a = '{}'", "é".repeat(MAX_CHARS))).split(" at ").last(), Some("4096"));

        let nest = |n: usize| format!("{}a = 1{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(jql(&nest(MAX_DEPTH)), "a = 1");
        assert_eq!(error(&nest(MAX_DEPTH + 1)), "more than 64 levels of parentheses at 64");
        assert!(error(&"(".repeat(MAX_CHARS)).contains("levels of parentheses"));

        let terms = |n: usize| vec!["a = 1"; n].join(" OR ");
        assert!(parse(&terms(MAX_TERMS)).is_ok());
        assert_eq!(error(&terms(MAX_TERMS + 1)), format!("more than 200 conditions and values at {}", 200 * 9));
        let list = |n: usize| format!("a IN ({})", vec!["1"; n].join(","));
        assert!(parse(&list(MAX_TERMS)).is_ok());
        assert_eq!(error(&list(MAX_TERMS + 1)), format!("more than 200 conditions and values at {}", 6 + 200 * 2));
    }

    // ----------------------------------------------- orderBy

    #[test]
    fn order_by_fields_and_directions() {
        assert_eq!(order_by("created desc"), Ok("ORDER BY created DESC".into()));
        assert_eq!(order_by("priority ASC, fields.updated"), Ok("ORDER BY priority ASC, updated".into()));
        assert_eq!(order_by(" customfield_10016 Desc ,key asc "), Ok("ORDER BY cf[10016] DESC, key ASC".into()));
        assert_eq!(order_by("status.name, order desc"), Ok(r#"ORDER BY "status.name", "order" DESC"#.into()));
        assert_eq!(order_by("asc"), Ok(r#"ORDER BY "asc""#.into()), "a field named asc");
    }

    #[test]
    fn order_by_refusals() {
        let message = |text: &str| order_by(text).unwrap_err().message;
        assert_eq!(message(""), "expected a field, found the end, at 0");
        assert_eq!(message("created,"), "expected a field, found the end, at 8");
        assert_eq!(message("created desc up"), "expected asc, desc or ',', found 'up', at 13");
        assert_eq!(message("created sideways"), "expected asc, desc or ',', found 'sideways', at 8");
        assert_eq!(message("'created'"), "expected a field, found a string, at 0");
        assert_eq!(message("a; DROP"), "unexpected character ';' at 1");
        assert!(message(&vec!["a"; MAX_TERMS + 1].join(",")).starts_with("more than 200"));
    }

    // ----------------------------------------------- properties

    fn any_field() -> impl Strategy<Value = Field> {
        "[A-Za-z_][A-Za-z0-9_.]{0,12}".prop_map(|name| Field::new(&name).unwrap())
    }

    fn any_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<String>().prop_map(Value::Text),
            "[+-]?[0-9]{1,20}(\\.[0-9]{1,6})?".prop_map(|n| Value::Number(Number::new(&n).unwrap())),
            any::<bool>().prop_map(Value::Bool),
        ]
    }

    fn any_op() -> impl Strategy<Value = Op> {
        prop_oneof![Just(Op::Eq), Just(Op::Ne), Just(Op::Lt), Just(Op::Gt), Just(Op::Le), Just(Op::Ge)]
    }

    fn any_pattern() -> impl Strategy<Value = Pattern> {
        ("[^%]*[^%\\s][^%]*", any::<bool>(), any::<bool>()).prop_map(|(text, lead, trail)| {
            let pattern = format!("{}{text}{}", if lead { "%" } else { "" }, if trail { "%" } else { "" });
            Pattern::new(&pattern).unwrap()
        })
    }

    fn any_expr() -> impl Strategy<Value = Expr> {
        let leaf = prop_oneof![
            (any_field(), any_op(), any_value()).prop_map(|(field, op, value)| Expr::Cmp { field, op, value }),
            (any_field(), any_pattern()).prop_map(|(field, pattern)| Expr::Like { field, pattern }),
            (any_field(), prop::collection::vec(any_value(), 1..4))
                .prop_map(|(field, values)| Expr::In { field, values }),
            (any_field(), any::<bool>()).prop_map(|(field, negated)| Expr::Null { field, negated }),
        ];
        leaf.prop_recursive(3, 24, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
            ]
        })
    }

    /// What `parse` makes of a tree: groups inside a group of their kind merged.
    fn flattened(expr: Expr) -> Expr {
        let merge = |members: Vec<Expr>, and: bool| {
            let mut out = Vec::new();
            for member in members.into_iter().map(flattened) {
                match member {
                    Expr::And(inner) if and => out.extend(inner),
                    Expr::Or(inner) if !and => out.extend(inner),
                    other => out.push(other),
                }
            }
            out
        };
        match expr {
            Expr::And(members) => Expr::And(merge(members, true)),
            Expr::Or(members) => Expr::Or(merge(members, false)),
            leaf => leaf,
        }
    }

    /// Values made of JQL's own syntax and the characters it escapes.
    const JQL_LOOKING: &str = r#"([ "'\\(),=!~]|OR|AND|currentUser\(\)|\\u0022|\n|\r|é|😀|\x00|\x7f|\u{fffe})*"#;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The security property: whatever the value holds, the JQL is
        /// `x = "<literal>"` and the literal reads back as the value.
        #[test]
        fn any_value_comes_back_as_one_literal(v in any::<String>()) {
            let ceql = format!("x = '{}'", v.replace('\'', "''"));
            prop_assume!(ceql.chars().count() <= MAX_CHARS);
            let jql = parse(&ceql).unwrap().to_jql();
            prop_assert_eq!(read_jql(&jql), Ok(vec![word("x"), Jql::Punct("="), Jql::Str(v)]), "{}", jql);
        }

        /// The same for values drawn from JQL's own syntax, in lists too.
        #[test]
        fn jql_looking_values_stay_literals(
            vs in prop::collection::vec(JQL_LOOKING, 1..5),
        ) {
            let list: Vec<String> = vs.iter().map(|v| format!("'{}'", v.replace('\'', "''"))).collect();
            let jql = parse(&format!("x IN ({})", list.join(", "))).unwrap().to_jql();
            let mut expected = vec![word("x"), word("IN"), Jql::Punct("(")];
            for (i, v) in vs.iter().enumerate() {
                if i > 0 {
                    expected.push(Jql::Punct(","));
                }
                expected.push(Jql::Str(v.clone()));
            }
            expected.push(Jql::Punct(")"));
            prop_assert_eq!(read_jql(&jql), Ok(expected), "{}", jql);
        }

        /// A LIKE pattern is one literal too, holding the text (as a phrase
        /// or a prefix).
        #[test]
        fn any_pattern_is_one_literal(pattern in any_pattern()) {
            let jql = parse(&format!("x LIKE {}", pattern.to_ceql())).unwrap().to_jql();
            let tokens = read_jql(&jql).unwrap();
            prop_assert_eq!(tokens.len(), 3, "{}", jql);
            prop_assert_eq!(&tokens[..2], &[word("x"), Jql::Punct("~")]);
            let Jql::Str(search) = &tokens[2] else { panic!("{jql}") };
            let phrase = format!("\"{}\"", pattern.text().replace('\\', "\\\\").replace('"', "\\\""));
            prop_assert!(*search == phrase || *search == format!("{}*", pattern.text()), "{}", jql);
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = parse(&s);
            let _ = order_by(&s);
        }

        #[test]
        fn parse_never_panics_on_near_misses(
            parts in prop::collection::vec(prop_oneof![
                Just("("), Just(")"), Just(" AND "), Just(" or "), Just("a"), Just("fields.b"), Just(" = "),
                Just("!="), Just("<="), Just(">"), Just(" LIKE "), Just(" IN "), Just(" IS "), Just("NOT "),
                Just("NULL"), Just("'x'"), Just("'"), Just("''"), Just("'%y%'"), Just("1"), Just("-2.5"),
                Just(","), Just(" "), Just("true"), Just("asc"), Just("\n"), Just("é"),
            ], 0..400),
        ) {
            let s: String = parts.concat();
            if let Ok(expr) = parse(&s) {
                let ceql = expr.to_ceql();
                if ceql.chars().count() <= MAX_CHARS {
                    prop_assert_eq!(parse(&ceql), Ok(expr.clone()));
                }
                prop_assert!(read_jql(&expr.to_jql()).is_ok());
            }
            let _ = order_by(&s);
        }

        #[test]
        fn to_ceql_parses_back_to_the_same_tree(expr in any_expr()) {
            let ceql = expr.to_ceql();
            prop_assume!(ceql.chars().count() <= MAX_CHARS);
            prop_assert_eq!(parse(&ceql), Ok(flattened(expr)), "{}", ceql);
        }

        #[test]
        fn any_tree_makes_jql_the_reader_accepts(expr in any_expr()) {
            prop_assert!(read_jql(&expr.to_jql()).is_ok());
        }
    }
}
