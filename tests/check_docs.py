#!/usr/bin/env python3
"""Docs that check themselves: every directive envelopd knows must be in
docs/configuration.md, docs/envelopd.conf.5 and conf/envelopd.conf.

The directive table is what `envelopd --list-directives` prints ("SECTION
NAME" lines, e.g. "upstream server"). Each document is read section by
section and the directives it describes are collected:

- docs/configuration.md: a "## [SECTION]" or "## [SECTION NAME]" heading,
  then table rows starting with | `NAME` |;
- docs/envelopd.conf.5: a ".SH [SECTION]" header, then a .TP paragraph
  whose tag (.B/.BI/.BR) starts with NAME;
- conf/envelopd.conf: a [SECTION] line, then NAME = lines; both may be
  commented out ("#[admin]", "# name = value") and still count.

Fails naming every directive missing from a document, and every directive
the reference or the man page describes that envelopd does not know.
Standard library only.

Run: python3 tests/check_docs.py path/to/envelopd [SOURCE_ROOT]
"""

import os
import re
import subprocess
import sys

SECTION_MD = re.compile(r"^##\s+\[([a-z]+)(?:\s+[A-Z]+)?\]\s*$")
ROW_MD = re.compile(r"^\|\s*`([a-z0-9_]+)`\s*\|")
SECTION_MAN = re.compile(r"^\.SH\s+\"?\[([a-z]+)(?:\s+[A-Z]+)?\]\"?\s*$")
TAG_MAN = re.compile(r"^\.B[IR]?\s+\"?([a-z0-9_]+)")
SECTION_CONF = re.compile(r"^\s*(?:#\s*)?\[([a-z]+)(?:\s+[A-Za-z0-9_.-]+)?\]\s*(?:#.*)?$")
KEY_CONF = re.compile(r"^\s*(?:#\s*)?([a-z][a-z0-9_]*)\s*=")


def table(envelopd):
    out = subprocess.run([envelopd, "--list-directives"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=30, check=False)
    if out.returncode != 0:
        sys.exit("check_docs: %s --list-directives failed (%d): %s"
                 % (envelopd, out.returncode, out.stderr.strip()))
    rows = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) != 2:
            sys.exit("check_docs: unexpected --list-directives line %r" % line)
        rows.append((parts[0], parts[1]))
    if len(rows) < 10:
        sys.exit("check_docs: --list-directives printed only %d directives" % len(rows))
    return rows


def from_markdown(text):
    found, section = set(), None
    for line in text.splitlines():
        m = SECTION_MD.match(line)
        if m:
            section = m.group(1)
            continue
        if line.startswith("## "):
            section = None      # "## Limits of the file" and the like
            continue
        m = ROW_MD.match(line)
        if section and m:
            found.add((section, m.group(1)))
    return found


def from_man(text):
    found, section, after_tp = set(), None, False
    for line in text.splitlines():
        m = SECTION_MAN.match(line)
        if m:
            section, after_tp = m.group(1), False
            continue
        if line.startswith(".SH"):
            section, after_tp = None, False
            continue
        if line.startswith(".TP"):
            after_tp = True
            continue
        if after_tp:
            m = TAG_MAN.match(line)
            if section and m:
                found.add((section, m.group(1)))
            after_tp = False
    return found


def from_sample(text):
    found, section = set(), None
    for line in text.splitlines():
        m = SECTION_CONF.match(line)
        if m:
            section = m.group(1)
            continue
        m = KEY_CONF.match(line)
        if section and m:
            found.add((section, m.group(1)))
    return found


DOCS = [
    # path, reader, whether a directive it names must exist
    ("docs/configuration.md", from_markdown, True),
    ("docs/envelopd.conf.5", from_man, True),
    ("conf/envelopd.conf", from_sample, False),
]


def check(envelopd, root):
    rows = table(envelopd)
    known = set(rows)
    problems = []
    for rel, reader, strict in DOCS:
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            found = reader(f.read())
        for sect, name in rows:
            if (sect, name) not in found:
                problems.append("%s: [%s] %s is missing" % (rel, sect, name))
        if strict:
            for sect, name in sorted(found - known):
                problems.append("%s: describes [%s] %s, which envelopd does not know"
                                % (rel, sect, name))
    return len(rows), problems


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit("usage: check_docs.py ENVELOPD [SOURCE_ROOT]")
    root = argv[2] if len(argv) == 3 else os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))
    n, problems = check(argv[1], root)
    for p in problems:
        print(p)
    if problems:
        print("check_docs: %d problem(s); every directive of `envelopd --list-directives` "
              "must be documented in each file" % len(problems))
        return 1
    print("check_docs: %d directives, each in %s" % (n, ", ".join(d[0] for d in DOCS)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
