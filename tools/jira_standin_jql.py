"""JQL for the JIRA stand-in (tools/jira_standin.py): lexer, parser, validation, evaluation.

Written from Atlassian's JQL reference, not from this project's code:
  - keywords (AND, OR, NOT, EMPTY, NULL, ORDER BY, ASC, DESC) and the reserved-word list:
    https://support.atlassian.com/jira-core-cloud/docs/advanced-search-reference-jql-keywords
    https://confluence.atlassian.com/display/JIRACORESERVER083/Advanced+searching+-+keywords+reference
  - operators (= != > >= < <= ~ !~ IN, NOT IN, IS, IS NOT; "!=" and "NOT IN" never match an
    empty field): https://support.atlassian.com/jira-software-cloud/docs/jql-operators/
  - fields and date formats ("yyyy/MM/dd HH:mm", "yyyy-MM-dd HH:mm", "yyyy/MM/dd", "yyyy-MM-dd",
    or a period such as "-5d", "4w 2d"; read in the searching user's time zone):
    https://support.atlassian.com/jira-software-cloud/docs/jql-fields/
  - error texts as JIRA answers them (quoted in public bug reports, e.g.
    https://github.com/bobcarroll/jira-client/issues/277 "Expecting ')' before the end of the query.",
    https://github.com/hygieia/hygieia/issues/276 "Expecting operator but got '&'. The valid operators are ...",
    https://github.com/steyep/alfred-jira/issues/95 "The quoted string '...' has not been completed.",
    https://github.com/dapplo/Dapplo.Jira/issues/44 "'End' is a reserved JQL word. ...",
    https://github.com/juliangruber/jilla/issues/25 "The character '@' is a reserved JQL character. ...",
    https://github.com/solidify/jira-azuredevops-migrator/issues/61 "The value 'X' does not exist for the
    field 'project'." and "Not able to sort using field 'Rank'.",
    https://github.com/tenable/integration-jira-cloud/issues/25 "Field 'x' does not exist or you do not
    have permission to view it.").

Simplifications (documented in docs/jira-standin.md): text search (~) matches whole words,
case-insensitively, with a trailing * as a prefix wildcard and "\"a b\"" as a phrase; no stemming.
Date comparisons compare instants (the value is the start of its minute or day).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field as dc_field
from typing import Any, Callable, Optional

PREFIX = "Error in the JQL Query: "
OPERATORS_TEXT = ("The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', "
                  "'IN', 'NOT IN', 'IS' and 'IS NOT'.")

# JIRA's documented reserved words (they must be quoted to be used as values or field names).
RESERVED_WORDS = set("""
a an abort access add after alias all alter and any are as asc audit avg before begin between
boolean break by byte catch cf char character check checkpoint collate collation column commit
connect continue count create current date decimal declare decrement default defaults define
delete delimiter desc difference distinct divide do double drop else empty encoding end equals
escape exclusive exec execute exists explain false fetch file field first float for from function
go goto grant greater group having identified if immediate in increment index initial inner inout
input insert int integer intersect intersection into is isempty isnull join last left less like
limit lock long max min minus mode modify modulo more multiply next noaudit not notin nowait null
number object of on option or order outer output power previous prior privileges public raise raw
remainder rename resource return returns revoke right row rowid rownum rows select session set
share size sqrt start strict string subtract sum synonym table then to trans transaction trigger
true uid union unique update user validate values view when whenever where while with
""".split())
RESERVED_CHARS = set("+;?|*/%^$#@[]")
WORD_RE = re.compile(r"[A-Za-z0-9_.\-:\\]+")


class JqlError(Exception):
    """A JQL that JIRA refuses. kind: 'parse' or 'validation' (JIRA's bodies differ slightly)."""

    def __init__(self, messages, kind="parse"):
        if isinstance(messages, str):
            messages = [messages]
        super().__init__(messages[0])
        self.messages = list(messages)
        self.kind = kind


# ----------------------------------------------------------------------------- lexer

@dataclass
class Tok:
    kind: str      # 'word', 'string', 'op', 'lparen', 'rparen', 'comma', 'end'
    text: str      # value (unescaped for strings)
    raw: str       # as written
    pos: int       # 0-based offset


def _where(src: str, pos: int) -> str:
    line = src.count("\n", 0, pos) + 1
    col = pos - (src.rfind("\n", 0, pos) + 1) + 1
    return f"(line {line}, character {col})"


def tokenize(src: str) -> list[Tok]:
    toks: list[Tok] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c.isspace():
            i += 1
            continue
        if c in "\"'":
            q, j, out = c, i + 1, []
            while j < n and src[j] != q:
                if src[j] == "\\" and j + 1 < n:
                    e = src[j + 1]
                    if e == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", src[j + 2:j + 6] or ""):
                        out.append(chr(int(src[j + 2:j + 6], 16)))
                        j += 6
                        continue
                    out.append({"n": "\n", "t": "\t", "r": "\r"}.get(e, e))
                    j += 2
                    continue
                out.append(src[j])
                j += 1
            if j >= n:
                raise JqlError(PREFIX + f"The quoted string '{src[i + 1:]}' has not been completed. "
                               + _where(src, i))
            toks.append(Tok("string", "".join(out), src[i:j + 1], i))
            i = j + 1
            continue
        if c == "(":
            toks.append(Tok("lparen", c, c, i)); i += 1; continue
        if c == ")":
            toks.append(Tok("rparen", c, c, i)); i += 1; continue
        if c == ",":
            toks.append(Tok("comma", c, c, i)); i += 1; continue
        two = src[i:i + 2]
        if two in ("!=", "<=", ">=", "!~"):
            toks.append(Tok("op", two, two, i)); i += 2; continue
        if c in "=<>~":
            toks.append(Tok("op", c, c, i)); i += 1; continue
        if c in RESERVED_CHARS:
            raise JqlError(PREFIX + f"The character '{c}' is a reserved JQL character. You must enclose "
                           f"it in a string or use the escape '\\u{ord(c):04x}' instead. " + _where(src, i))
        m = WORD_RE.match(src, i)
        if m:
            raw = m.group(0)
            text = re.sub(r"\\(.)", r"\1", raw)
            toks.append(Tok("word", text, raw, i))
            i = m.end()
            continue
        toks.append(Tok("bad", c, c, i))
        i += 1
    toks.append(Tok("end", "", "", n))
    return toks


# ----------------------------------------------------------------------------- AST

@dataclass
class Value:
    kind: str                 # 'literal', 'empty', 'func', 'list'
    text: str = ""
    quoted: bool = False
    args: list = dc_field(default_factory=list)   # func args (str) / list items (Value)
    pos: int = 0


@dataclass
class Clause:
    field: str
    op: str                   # '=', '!=', '<', ..., '~', '!~', 'in', 'not in', 'is', 'is not'
    value: Value
    pos: int = 0


@dataclass
class Not:
    child: Any


@dataclass
class BoolOp:
    op: str                   # 'and' / 'or'
    children: list


@dataclass
class Query:
    where: Any                # None when the JQL has no restriction (unbounded)
    order: list               # [(field, ascending)]
    text: str = ""


class _Parser:
    def __init__(self, src: str):
        self.src = src
        self.toks = tokenize(src)
        self.i = 0

    def peek(self, k=0) -> Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return t

    def is_kw(self, t: Tok, *words) -> bool:
        return t.kind == "word" and t.text.lower() in words

    def err(self, msg: str, t: Tok | None = None):
        if t is None or t.kind == "end":
            raise JqlError(PREFIX + msg)
        raise JqlError(PREFIX + msg + " " + _where(self.src, t.pos))

    def parse(self) -> Query:
        where = None
        t = self.peek()
        if not (t.kind == "end" or (self.is_kw(t, "order") and self.is_kw(self.peek(1), "by"))):
            where = self.parse_or()
        order = []
        t = self.peek()
        if self.is_kw(t, "order"):
            self.next()
            by = self.next()
            if not self.is_kw(by, "by"):
                self.err(f"Expecting 'BY' but got '{by.raw}'." if by.kind != "end"
                         else "Expecting 'BY' before the end of the query.", by)
            while True:
                f = self.next()
                if f.kind not in ("word", "string"):
                    self.err(f"Expecting a field name but got '{f.raw}'." if f.kind != "end"
                             else "Expecting a field name before the end of the query.", f)
                asc = None
                d = self.peek()
                if self.is_kw(d, "asc", "desc"):
                    self.next()
                    asc = d.text.lower() == "asc"
                order.append((f.text, asc, f.pos))
                if self.peek().kind == "comma":
                    self.next()
                    continue
                break
        t = self.peek()
        if t.kind != "end":
            if t.kind == "rparen":
                self.err(f"Expecting either 'OR' or 'AND' but got ')'.", t)
            self.err(f"Expecting either 'OR' or 'AND' but got '{t.raw}'.", t)
        return Query(where, order, self.src)

    def parse_or(self):
        kids = [self.parse_and()]
        while self.is_kw(self.peek(), "or"):
            self.next()
            kids.append(self.parse_and())
        return kids[0] if len(kids) == 1 else BoolOp("or", kids)

    def parse_and(self):
        kids = [self.parse_not()]
        while self.is_kw(self.peek(), "and"):
            self.next()
            kids.append(self.parse_not())
        return kids[0] if len(kids) == 1 else BoolOp("and", kids)

    def parse_not(self):
        t = self.peek()
        if self.is_kw(t, "not"):
            self.next()
            return Not(self.parse_not())
        if t.kind == "lparen":
            self.next()
            inner = self.parse_or()
            r = self.next()
            if r.kind != "rparen":
                if r.kind == "end":
                    self.err("Expecting ')' before the end of the query.")
                self.err(f"Expecting ')' but got '{r.raw}'.", r)
            return inner
        return self.parse_clause()

    def parse_clause(self) -> Clause:
        f = self.next()
        if f.kind == "end":
            self.err("Expecting a field name before the end of the query.")
        if f.kind == "word" and f.text.lower() in RESERVED_WORDS and f.text.lower() not in ("cf",):
            self.err(f"'{f.raw}' is a reserved JQL word. You must surround it in quotation marks "
                     "to use it in a query.", f)
        if f.kind not in ("word", "string"):
            self.err(f"Expecting a field name but got '{f.raw}'.", f)
        name = f.text
        # cf[10000]: the lexer refuses '[', so custom fields must be quoted ("cf[10000]").
        op_t = self.next()
        op = None
        if op_t.kind == "op":
            op = op_t.text
        elif self.is_kw(op_t, "in"):
            op = "in"
        elif self.is_kw(op_t, "is"):
            op = "is"
            if self.is_kw(self.peek(), "not"):
                self.next()
                op = "is not"
        elif self.is_kw(op_t, "not") and self.is_kw(self.peek(), "in"):
            self.next()
            op = "not in"
        if op is None:
            if op_t.kind == "end":
                self.err("Expecting operator before the end of the query. " + OPERATORS_TEXT)
            self.err(f"Expecting operator but got '{op_t.raw}'. " + OPERATORS_TEXT, op_t)
        if op in ("is", "is not"):
            v = self.next()
            if not self.is_kw(v, "empty", "null"):
                if v.kind == "end":
                    self.err("Expecting 'EMPTY' or 'NULL' before the end of the query.")
                self.err(f"Expecting 'EMPTY' or 'NULL' but got '{v.raw}'.", v)
            return Clause(name, op, Value("empty", pos=v.pos), f.pos)
        if op in ("in", "not in"):
            lp = self.peek()
            if lp.kind != "lparen":
                val = self.parse_value()
                if val.kind != "func":
                    self.err(f"Expecting a list of values but got '{self.toks[self.i - 1].raw}'.",
                             self.toks[self.i - 1])
                return Clause(name, op, val, f.pos)
            self.next()
            items = [self.parse_value()]
            while self.peek().kind == "comma":
                self.next()
                items.append(self.parse_value())
            r = self.next()
            if r.kind != "rparen":
                if r.kind == "end":
                    self.err("Expecting ')' before the end of the query.")
                self.err(f"Expecting ')' but got '{r.raw}'.", r)
            return Clause(name, op, Value("list", args=items, pos=lp.pos), f.pos)
        return Clause(name, op, self.parse_value(), f.pos)

    def parse_value(self) -> Value:
        v = self.next()
        if v.kind == "end":
            self.err("Expecting either a value, list or function before the end of the query.")
        if v.kind == "string":
            return Value("literal", v.text, True, pos=v.pos)
        if v.kind == "word":
            low = v.text.lower()
            if low in ("empty", "null"):
                return Value("empty", pos=v.pos)
            if self.peek().kind == "lparen":
                self.next()
                args = []
                while self.peek().kind != "rparen":
                    a = self.next()
                    if a.kind not in ("word", "string"):
                        if a.kind == "end":
                            self.err("Expecting ')' before the end of the query.")
                        self.err(f"Expecting ')' but got '{a.raw}'.", a)
                    args.append(a.text)
                    if self.peek().kind == "comma":
                        self.next()
                self.next()
                return Value("func", v.text, args=args, pos=v.pos)
            if low in RESERVED_WORDS:
                self.err(f"'{v.raw}' is a reserved JQL word. You must surround it in quotation marks "
                         "to use it in a query.", v)
            return Value("literal", v.text, False, pos=v.pos)
        self.err(f"Expecting either a value, list or function but got '{v.raw}'. You must surround "
                 f"'{v.raw}' in quotation marks to use it as a value.", v)


def parse(src: str) -> Query:
    return _Parser(src or "").parse()


# ----------------------------------------------------------------------------- fields

# kind -> operators JIRA supports for it
_EQ = {"=", "!=", "in", "not in", "is", "is not"}
_ORD = {"<", ">", "<=", ">="}
_TEXT = {"~", "!~", "is", "is not"}
FIELD_KINDS = {
    "project": ("project", _EQ),
    "key": ("issue", _EQ | _ORD), "issuekey": ("issue", _EQ | _ORD), "issue": ("issue", _EQ | _ORD),
    "id": ("issue", _EQ | _ORD),
    "status": ("status", _EQ), "statuscategory": ("statusCategory", _EQ),
    "priority": ("priority", _EQ | _ORD),
    "issuetype": ("issuetype", _EQ), "type": ("issuetype", _EQ),
    "resolution": ("resolution", _EQ),
    "summary": ("summary", _TEXT), "description": ("description", _TEXT),
    "environment": ("environment", _TEXT), "comment": ("comment", _TEXT), "text": ("text", {"~", "!~"}),
    "created": ("created", _EQ | _ORD), "createddate": ("created", _EQ | _ORD),
    "updated": ("updated", _EQ | _ORD), "updateddate": ("updated", _EQ | _ORD),
    "resolved": ("resolved", _EQ | _ORD), "resolutiondate": ("resolved", _EQ | _ORD),
    "labels": ("labels", _EQ),
    "assignee": ("assignee", _EQ), "reporter": ("reporter", _EQ), "creator": ("creator", _EQ),
}
DATE_FIELDS = {"created", "updated", "resolved"}
TEXT_FIELDS = {"summary", "description", "environment", "comment", "text"}
SORTABLE = {"created", "updated", "resolved", "issue", "priority", "status", "summary",
            "issuetype", "project", "resolution", "assignee", "reporter", "creator"}

_DATE_FORMATS = [("%Y/%m/%d %H:%M", True), ("%Y-%m-%d %H:%M", True), ("%Y/%m/%d", False),
                 ("%Y-%m-%d", False)]
_PERIOD_RE = re.compile(r"^\s*([-+]?)\s*((?:\d+\s*[wdhm]\s*)+)$", re.I)


def _date_invalid(text: str, field: str) -> str:
    return (f"Date value '{text}' for field '{field}' is invalid. Valid formats include: "
            "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
            "format e.g. '-5d', '4w 2d'.")


def parse_date(value: Value, field: str, tz: dt.tzinfo, now: dt.datetime) -> dt.datetime:
    """The instant a JQL date value names, read in the searching user's time zone."""
    if value.kind == "func":
        name = value.text.lower()
        local_now = now.astimezone(tz)
        inc = dt.timedelta(0)
        if value.args:
            m = _PERIOD_RE.match(value.args[0])
            if not m:
                raise JqlError(f"The argument '{value.args[0]}' for the function '{value.text}' is invalid.",
                               "validation")
            inc = _period(m)
        if name == "now":
            return now + inc
        if name in ("startofday", "endofday"):
            base = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
            if name == "endofday":
                base = base + dt.timedelta(days=1) - dt.timedelta(milliseconds=1)
            return (base + inc).astimezone(dt.timezone.utc)
        raise JqlError(f"Unable to find JQL function '{value.text}()'.", "validation")
    text = value.text.strip()
    for fmt, _ in _DATE_FORMATS:
        try:
            local = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        return local.replace(tzinfo=tz).astimezone(dt.timezone.utc)
    m = _PERIOD_RE.match(text)
    if m:
        return now + _period(m)
    raise JqlError(_date_invalid(value.text, field), "validation")


def _period(m) -> dt.timedelta:
    sign = -1 if m.group(1) == "-" else 1
    total = dt.timedelta(0)
    for num, unit in re.findall(r"(\d+)\s*([wdhm])", m.group(2), re.I):
        total += {"w": dt.timedelta(weeks=1), "d": dt.timedelta(days=1), "h": dt.timedelta(hours=1),
                  "m": dt.timedelta(minutes=1)}[unit.lower()] * int(num)
    return sign * total


# ----------------------------------------------------------------------------- environment

@dataclass
class Env:
    """What evaluation needs from the stand-in.

    catalog: kind -> list of dicts with 'id', 'name' (and 'key' for projects, statusCategory).
    issue_exists(text) -> bool for issue keys / ids.
    user_matches(view_user, value_text) -> bool.
    """
    tz: dt.tzinfo
    now: dt.datetime
    catalog: dict
    issue_exists: Callable[[str], bool]
    current_user: dict
    issue_key_of: Optional[Callable[[str], Optional[str]]] = None


def _field(name: str):
    k = FIELD_KINDS.get(name.lower())
    if k is None:
        raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.",
                       "validation")
    return k


def validate(q: Query, env: Env) -> None:
    """Raises JqlError(kind='validation') with every message JIRA would list."""
    msgs: list[str] = []

    def walk(node):
        if node is None:
            return
        if isinstance(node, BoolOp):
            for c in node.children:
                walk(c)
            return
        if isinstance(node, Not):
            walk(node.child)
            return
        try:
            kind, ops = _field(node.field)
        except JqlError as e:
            msgs.append(e.messages[0])
            return
        if node.op not in ops:
            msgs.append(f"The operator '{node.op.upper() if node.op.isalpha() or ' ' in node.op else node.op}'"
                        f" is not supported by the '{node.field}' field.")
            return
        values = node.value.args if node.value.kind == "list" else [node.value]
        for v in values:
            if v.kind == "empty":
                continue
            if v.kind == "func":
                fname = v.text.lower()
                if kind in DATE_FIELDS and fname in ("now", "startofday", "endofday"):
                    try:
                        parse_date(v, node.field, env.tz, env.now)
                    except JqlError as e:
                        msgs.append(e.messages[0])
                    continue
                if kind in ("assignee", "reporter", "creator") and fname == "currentuser":
                    continue
                msgs.append(f"Unable to find JQL function '{v.text}()'.")
                continue
            if kind in DATE_FIELDS:
                try:
                    parse_date(v, node.field, env.tz, env.now)
                except JqlError as e:
                    msgs.append(e.messages[0])
            elif kind in ("project", "status", "statusCategory", "priority", "issuetype", "resolution"):
                if not _catalog_find(env.catalog.get(kind, []), v.text):
                    msgs.append(f"The value '{v.text}' does not exist for the field '{node.field}'.")
            elif kind == "issue":
                # JIRA resolves an issue named in any clause, a comparison too
                # (`key > "P-41"` reads P-41's number): one that does not exist is refused.
                if not env.issue_exists(v.text):
                    msgs.append(f"An issue with key '{v.text}' does not exist for field '{node.field}'.")
            elif kind in TEXT_FIELDS and not v.text.strip():
                msgs.append(f"The field '{node.field}' does not support searching for an empty string.")
    walk(q.where)
    for name, _asc, _pos in q.order:
        k = FIELD_KINDS.get(name.lower())
        if k is None or k[0] not in SORTABLE:
            msgs.append(f"Not able to sort using field '{name}'.")
    if msgs:
        raise JqlError(msgs, "validation")


def _catalog_find(items, text):
    t = str(text).strip().lower()
    for it in items:
        for k in ("id", "name", "key"):
            if k in it and it[k] is not None and str(it[k]).lower() == t:
                return it
    return None


# ----------------------------------------------------------------------------- evaluation

_WORD = re.compile(r"[\w']+", re.U)


def _words(s: str) -> list[str]:
    return [w.lower().strip("'") for w in _WORD.findall(s or "")]


def text_matches(haystacks: list[str], query: str) -> bool:
    """Word search: every term must be a word of the text (term* is a prefix, "a b" a phrase)."""
    words = []
    for h in haystacks:
        words.extend(_words(h))
    if not words:
        return False
    joined = " " + " ".join(words) + " "
    phrases = re.findall(r'"([^"]*)"', query)
    rest = re.sub(r'"[^"]*"', " ", query)
    for p in phrases:
        pw = _words(p)
        if pw and (" " + " ".join(pw) + " ") not in joined:
            return False
    terms = re.findall(r"[\w']+\*?", rest, re.U)
    if not terms and not phrases:
        return False
    wordset = set(words)
    for t in terms:
        t = t.lower()
        if t.endswith("*"):
            stem = t[:-1].strip("'")
            if not any(w.startswith(stem) for w in words):
                return False
        elif t.strip("'") not in wordset:
            return False
    return True


def matches(node, view: dict, env: Env) -> bool:
    if node is None:
        return True
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(matches(c, view, env) for c in node.children)
        return any(matches(c, view, env) for c in node.children)
    if isinstance(node, Not):
        return not matches(node.child, view, env)
    kind, _ = _field(node.field)
    op = node.op
    if op in ("is", "is not"):
        empty = _is_empty(kind, view)
        return empty if op == "is" else not empty
    if kind in TEXT_FIELDS:
        if kind == "text":
            hay = [view.get("summary") or "", view.get("description") or "",
                   view.get("environment") or ""] + list(view.get("comments") or [])
        elif kind == "comment":
            hay = list(view.get("comments") or [])
        else:
            hay = [view.get(kind) or ""]
        hit = text_matches(hay, node.value.text)
        return hit if op == "~" else not hit
    values = node.value.args if node.value.kind == "list" else [node.value]
    if op in ("in", "not in"):
        if _is_empty(kind, view):
            return op == "in" and any(v.kind == "empty" for v in values)
        hit = any(_eq(kind, view, v, env) for v in values)
        return hit if op == "in" else not hit
    v = values[0]
    if op in ("=", "!="):
        if v.kind == "empty":
            e = _is_empty(kind, view)
            return e if op == "=" else not e
        if _is_empty(kind, view):
            return False
        hit = _eq(kind, view, v, env)
        return hit if op == "=" else not hit
    # ordering operators
    left, right = _ordered(kind, view, v, env)
    if left is None or right is None:
        return False
    return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]


def _is_empty(kind, view) -> bool:
    if kind in ("summary", "description", "environment"):
        return not (view.get(kind) or "").strip()
    if kind == "comment":
        return not view.get("comments")
    if kind == "labels":
        return not view.get("labels")
    if kind in ("resolution", "resolved", "assignee", "reporter", "creator", "priority"):
        return view.get(kind) is None
    return False


def _eq(kind, view, v: Value, env: Env) -> bool:
    if v.kind == "empty":
        return False
    if kind in DATE_FIELDS:
        return view.get(kind) is not None and view[kind] == parse_date(v, kind, env.tz, env.now)
    if kind == "issue":
        t = v.text.strip()
        return t.lower() == view["key"].lower() or t == str(view["id"])
    if kind in ("project", "status", "statusCategory", "priority", "issuetype", "resolution"):
        cur = view.get(kind)
        if cur is None:
            return False
        t = v.text.strip().lower()
        return any(str(cur.get(k, "")).lower() == t for k in ("id", "name", "key") if cur.get(k) is not None)
    if kind == "labels":
        return v.text.lower() in [x.lower() for x in view.get("labels") or []]
    if kind in ("assignee", "reporter", "creator"):
        u = view.get(kind)
        if u is None:
            return False
        if v.kind == "func" and v.text.lower() == "currentuser":
            return u.get("id") == env.current_user.get("id")
        t = v.text.strip().lower()
        return any(str(x).lower() == t for x in u.values() if x)
    return False


def _ordered(kind, view, v: Value, env: Env):
    if v.kind == "empty":
        return None, None
    if kind in DATE_FIELDS:
        return view.get(kind), parse_date(v, kind, env.tz, env.now)
    if kind == "issue":
        t = v.text.strip()
        if t.isdigit():
            # An id compares as its issue's key: within that issue's project,
            # by number (JIRA's IssueIdClauseQueryFactory), never as a number.
            t = env.issue_key_of(t) if env.issue_key_of else None
            if t is None:
                return None, None
        m = re.fullmatch(r"([A-Za-z][A-Za-z0-9_]*)-(\d+)", t)
        if not m or m.group(1).lower() != view["key"].split("-")[0].lower():
            return None, None
        return int(view["key"].split("-")[1]), int(m.group(2))
    if kind == "priority":
        cur = view.get("priority")
        other = _catalog_find(env.catalog.get("priority", []), v.text)
        if cur is None or other is None:
            return None, None
        return cur.get("rank", 0), other.get("rank", 0)
    return None, None


def sort_key_fn(order: list, env: Env):
    """A key function list for sorted(); each (field, asc) becomes one stable sort pass."""
    passes = []
    for name, asc, _pos in order:
        kind = FIELD_KINDS[name.lower()][0]
        if asc is None:
            asc = kind not in DATE_FIELDS and kind != "priority"   # JIRA: dates newest first

        def key(view, kind=kind):
            val = view.get(kind if kind != "issue" else "key")
            if kind == "issue":
                p, _, n = view["key"].partition("-")
                return (0, p.lower(), int(n or 0))
            if kind == "priority":
                return (0, (val or {}).get("rank", 0)) if val else (1, 0)
            if isinstance(val, dict):
                return (0, str(val.get("name", "")).lower())
            if val is None:
                return (1, "")
            if isinstance(val, str):
                return (0, val.lower())
            return (0, val)
        passes.append((key, asc))
    return passes


def apply_order(views: list[dict], order: list, env: Env) -> list[dict]:
    out = list(views)
    for key, asc in reversed(sort_key_fn(order, env)):
        out.sort(key=key, reverse=not asc)
    return out
