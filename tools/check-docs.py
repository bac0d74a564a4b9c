#!/usr/bin/env python3
"""The README and docs/*.md against the code, so the pages cannot drift.

Checks, one line per failure:
  - every relative link resolves: the file (or folder) exists inside the
    repository, and an #anchor into a Markdown page names one of its headings
    (GitHub's slugs) or an <a id>/<a name> of it;
  - every `make <target>` the pages name in code (inline or fenced) is a
    target of the Makefile (.PHONY or a rule);
  - the error table (the table with a status and a code column) lists exactly
    the codes src/api/error.rs answers (its CODES list and the literals its
    code() and fields_code() return), and every `<status> <code>` the pages
    quote in code is a row of that table;
  - the checker itself: the same checks on a small tree with one fault of
    each kind must find each fault, and on that tree repaired, none.

Closes with 'docs: N passed, N failed' (N counts checks); exits 1 on any
failure. Standard library only.

  python3 tools/check-docs.py             # the repository, then the self-test
  python3 tools/check-docs.py --self-test # the self-test alone
  python3 tools/check-docs.py --root DIR  # another tree (no self-test)
"""
import argparse
import pathlib
import re
import sys
import tempfile
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HREF = re.compile(r"""<a\s[^>]*\bhref\s*=\s*["']([^"']*)["']""", re.I)
HTML_ANCHOR = re.compile(r"""<a\s[^>]*\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//")
MAKE = re.compile(r"(?:^|[\s;&|(])make((?:\s+\S+)*)")
TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
CODE_WORD = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
STATUS_CODE = re.compile(r"^([1-5][0-9][0-9]) ([a-z][a-z0-9]*(?:_[a-z0-9]+)*)$")


class Page:
    """A Markdown page: its text, its code (fenced and inline) and the rest."""

    def __init__(self, path, root):
        self.path = path
        self.name = path.relative_to(root).as_posix()
        self.text = path.read_text(encoding="utf-8")
        self.code = []  # (offset, code text)
        chars = list(self.text)
        # Fenced code blocks: kept as code, blanked from the prose.
        offset, fence = 0, None
        for line in self.text.splitlines(keepends=True):
            m = FENCE.match(line)
            if fence is None and m:
                fence = (m.group(1)[0], len(m.group(1)))
                start = offset
            elif fence is not None and m and m.group(1)[0] == fence[0] and len(m.group(1)) >= fence[1] \
                    and not line.strip().strip(fence[0]):
                self.code.append((start, self.text[start:offset]))
                self._blank(chars, start, offset + len(line))
                fence = None
            offset += len(line)
        if fence is not None:
            self.code.append((start, self.text[start:]))
            self._blank(chars, start, len(self.text))
        prose = "".join(chars)
        # Inline code spans, in what is left.
        for m in INLINE_CODE.finditer(prose):
            self.code.append((m.start(), m.group(2)))
            self._blank(chars, m.start(), m.end())
        self.prose = "".join(chars)

    @staticmethod
    def _blank(chars, start, end):
        for i in range(start, end):
            if chars[i] != "\n":
                chars[i] = " "

    def line(self, offset):
        return self.text.count("\n", 0, offset) + 1

    def anchors(self):
        """The #anchors this page offers: GitHub's heading slugs, <a id>s."""
        found, seen = set(), {}
        in_fence = None
        for line in self.text.splitlines():
            m = FENCE.match(line)
            if m:
                if in_fence is None:
                    in_fence = m.group(1)[0]
                elif m.group(1)[0] == in_fence:
                    in_fence = None
                continue
            if in_fence is not None:
                continue
            h = HEADING.match(line)
            if h:
                slug = github_slug(h.group(2))
                n = seen.get(slug, 0)
                seen[slug] = n + 1
                found.add(slug if n == 0 else f"{slug}-{n}")
        found.update(m.group(1) for m in HTML_ANCHOR.finditer(self.prose))
        return found


def github_slug(heading):
    """A heading's anchor as GitHub makes it: the text without its markup,
    lower case, punctuation dropped, each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # HTML tags
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def pages_of(root):
    paths = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
    return [Page(p, root) for p in paths if p.is_file()]


def check_links(root, pages):
    by_path = {p.path.resolve(): p for p in pages}
    results = []
    for page in pages:
        targets = [(m.start(), m.group(1)) for m in LINK.finditer(page.prose)]
        targets += [(m.start(), m.group(1)) for m in REF_DEF.finditer(page.prose)]
        targets += [(m.start(), m.group(1)) for m in HREF.finditer(page.prose)]
        for offset, target in targets:
            where = f"{page.name}:{page.line(offset)}"
            if not target or SCHEME.match(target):
                continue  # external (or empty): not ours to check
            what = f"{where}: link {target}"
            path_part, _, anchor = target.partition("#")
            path_part = urllib.parse.unquote(path_part)
            if not path_part:
                dest = page.path
            elif path_part.startswith("/"):
                dest = root / path_part.lstrip("/")
            else:
                dest = page.path.parent / path_part
            dest = dest.resolve()
            try:
                dest.relative_to(root.resolve())
            except ValueError:
                results.append((False, "link-outside", f"{what}: outside the repository (a clone has no such file)"))
                continue
            if not dest.exists():
                results.append((False, "link-missing", f"{what}: no such file"))
                continue
            if anchor and dest.suffix == ".md" and dest.is_file():
                target_page = by_path.get(dest) or Page(dest, root)
                if urllib.parse.unquote(anchor) not in target_page.anchors():
                    results.append((False, "link-anchor", f"{what}: no heading of {target_page.name} has the anchor #{anchor}"))
                    continue
            results.append((True, "link", what))
    return results


def makefile_targets(root):
    makefile = root / "Makefile"
    if not makefile.is_file():
        return set()
    text = re.sub(r"\\\n", " ", makefile.read_text(encoding="utf-8"))
    targets = set()
    for line in text.splitlines():
        if not line or line[0] in "\t#":
            continue
        m = re.match(r"^\.PHONY\s*:(.*)$", line)
        if m:
            targets.update(m.group(1).split())
            continue
        m = re.match(r"^([^:=#\s][^:=#]*?)\s*::?(?!=)", line)
        if m and not re.match(r"^\s*(export|override|define|include|-include|ifeq|ifneq|ifdef|ifndef)\b", line):
            targets.update(t for t in m.group(1).split() if "%" not in t and "$" not in t)
    targets.discard(".PHONY")
    return targets


def check_make_targets(root, pages):
    known = makefile_targets(root)
    results, seen = [], set()
    for page in pages:
        for offset, code in page.code:
            for m in MAKE.finditer(code):
                target = None
                for token in m.group(1).split():
                    if "=" in token or token.startswith("-"):
                        continue  # VAR=value, an option
                    target = token if TARGET.match(token) else None
                    break
                if target is None:
                    continue
                where = f"{page.name}:{page.line(offset + m.start())}"
                if (page.name, target) in seen:
                    continue
                seen.add((page.name, target))
                if target in known:
                    results.append((True, "make", f"{where}: make {target}"))
                else:
                    results.append((False, "make-target", f"{where}: `make {target}`: no such target in the Makefile"))
    return results


def function_body(text, name):
    """The text of `fn name(...) {...}`, braces matched."""
    m = re.search(r"\bfn\s+" + re.escape(name) + r"\b[^{]*\{", text)
    if not m:
        return ""
    depth, i = 1, m.end()
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[m.end():i]


def service_codes(root):
    path = root / "src/api/error.rs"
    if not path.is_file():
        return set()
    text = path.read_text(encoding="utf-8")
    text = text.split("#[cfg(test)]")[0]  # the service's codes, not its tests'
    codes = set()
    m = re.search(r"\bCODES\s*:[^=]*=\s*&\[(.*?)\];", text, re.S)
    if m:
        codes.update(re.findall(r'"([^"]+)"', m.group(1)))
    for fn in ("code", "fields_code"):
        codes.update(c for c in re.findall(r'"([^"]+)"', function_body(text, fn)) if CODE_WORD.match(c))
    return codes


def error_table(pages):
    """(status, code) rows of the tables with a status and a code column."""
    rows = []
    for page in pages:
        lines = page.text.splitlines()
        for i, line in enumerate(lines):
            if not line.lstrip().startswith("|") or i + 1 >= len(lines):
                continue
            if not re.match(r"^\s*\|?\s*:?-{3,}", lines[i + 1]):
                continue
            header = [c.strip().strip("`").lower() for c in line.strip().strip("|").split("|")]
            if "code" not in header or "status" not in header:
                continue
            status_col, code_col = header.index("status"), header.index("code")
            for j in range(i + 2, len(lines)):
                row = lines[j].strip()
                if not row.startswith("|"):
                    break
                cells = [c.strip() for c in row.strip("|").split("|")]
                if len(cells) <= max(status_col, code_col):
                    continue
                status = cells[status_col]
                for code in re.findall(r"`([^`]+)`", cells[code_col]):
                    if CODE_WORD.match(code):
                        rows.append((page, j + 1, status, code))
    return rows


def check_codes(root, pages):
    answered = service_codes(root)
    if not answered:
        return [(False, "codes-source", "src/api/error.rs: found no error codes (CODES, code(), fields_code())")]
    table = error_table(pages)
    if not table:
        return [(False, "codes-table", "no page has an error table (columns `status` and `code`)")]
    results = []
    documented = {}
    for page, line, status, code in table:
        documented.setdefault(code, f"{page.name}:{line}")
    for code, where in sorted(documented.items()):
        if code in answered:
            results.append((True, "code", f"{where}: {code}"))
        else:
            results.append((False, "code-unknown", f"{where}: `{code}` is in the error table, but src/api/error.rs never answers it"))
    for code in sorted(answered):
        if code in documented:
            results.append((True, "code", f"src/api/error.rs: {code} documented"))
        else:
            results.append((False, "code-undocumented", f"src/api/error.rs answers `{code}`, which the error table does not list"))
    pairs = {(status, code) for _, _, status, code in table}
    seen = set()
    for page in pages:
        for offset, code in page.code:
            m = STATUS_CODE.match(code.strip())
            if not m or (page.name, m.groups()) in seen:
                continue
            seen.add((page.name, m.groups()))
            where = f"{page.name}:{page.line(offset)}"
            if m.groups() in pairs:
                results.append((True, "status", f"{where}: {code}"))
            else:
                results.append((False, "status-code", f"{where}: `{code.strip()}` is no row of the error table"))
    return results


def check(root):
    root = pathlib.Path(root).resolve()
    pages = pages_of(root)
    if not pages:
        return [(False, "pages", f"{root}: no README.md or docs/*.md")]
    return check_links(root, pages) + check_make_targets(root, pages) + check_codes(root, pages)


# The self-test: a tree with one fault of each kind, then the same repaired.
SELF_TEST_FAULTS = {"link-missing", "link-anchor", "link-outside", "make-target", "code-unknown", "code-undocumented",
                    "status-code"}


def write_tree(root, broken):
    (root / "docs").mkdir(parents=True)
    (root / "src/api").mkdir(parents=True)
    (root / "Makefile").write_text(".PHONY: run test\nPORT ?= 9000\n\nrun:  ## serve\n\t@true\n\ntest:\n\t@true\n")
    (root / "src/api/error.rs").write_text(
        'pub const CODES: &[&str] = &["not_found", "unauthorized"%s];\n'
        'fn code(&self) -> &str { match self { A => "not_found", B => "unauthorized"%s } }\n'
        '#[cfg(test)]\nmod tests { const X: &str = "only_in_tests"; }\n'
        % ((', "payload_too_large"', ', C => "payload_too_large"') if broken else ("", "")))
    (root / "README.md").write_text(
        "# Title\n\n`make run`, then `PORT=1 make %s`. See [the API](docs/api.md#errors-and-codes)%s.\n\n"
        "```sh\nmake run   # serves\n```\n\n[Site](https://example.com/x) and `[not](a-link.md)`.\n"
        % (("nosuchtarget", " and [gone](docs/gone.md) and [shared](../shared/x.md)") if broken else ("test", "")))
    (root / "docs/api.md").write_text(
        "# API\n\n## Errors and codes\n\n| status | `code` | when |\n| --- | --- | --- |\n"
        "| 404 | `not_found` | no such thing |\n| 401 | `unauthorized` | bad credentials |\n%s\n"
        "An unknown id is `%s not_found`; back to [the top](#api) and [the README](../README.md#%s).\n"
        % (("| 418 | `teapot` | never |\n", "400", "no-such-heading") if broken else ("", "404", "title")))


def self_test():
    """Fails unless the checker finds each planted fault, and nothing once repaired."""
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        broken, fixed = pathlib.Path(tmp) / "broken", pathlib.Path(tmp) / "fixed"
        write_tree(broken, True)
        write_tree(fixed, False)
        found = {kind for ok, kind, _ in check(broken) if not ok}
        problems += [f"missed a planted fault: {kind}" for kind in sorted(SELF_TEST_FAULTS - found)]
        problems += [f"reported a fault not planted: {kind}" for kind in sorted(found - SELF_TEST_FAULTS)]
        clean = check(fixed)
        problems += [f"failed a sound tree: {message}" for ok, _, message in clean if not ok]
        if sum(ok for ok, _, _ in clean) < 8:
            problems.append(f"checked too little of a sound tree ({len(clean)} checks)")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=pathlib.Path, help="the tree to check (default: this repository)")
    ap.add_argument("--self-test", action="store_true", help="only show that the checker finds planted faults")
    a = ap.parse_args()
    results = []
    if not a.self_test:
        results += check(a.root or ROOT)
    if a.self_test or a.root is None:
        problems = self_test()
        results += [(False, "self-test", f"self-test: {p}") for p in problems] or [(True, "self-test", "self-test")]
    failed = [message for ok, _, message in results if not ok]
    for message in failed:
        print(f"FAIL {message}")
    print(f"docs: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
