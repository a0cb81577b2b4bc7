#!/usr/bin/env python3
"""Copies the XML examples of XEP texts into test fixtures.

Usage: tools/extract-xep-examples.py SPEC_DIR OUT_DIR xep-0413 [xep-0462 ...]
Writes OUT_DIR/<xep>/<NN>.xml for every example whose content is well-formed XML (after replacing the
ellipsis placeholders some examples use), and prints the captions it skipped.
"""
import html
import os
import re
import sys
import xml.dom.minidom

spec_dir, out_dir, names = sys.argv[1], sys.argv[2], sys.argv[3:]
pattern = re.compile(r"<example caption=(['\"])(.*?)\1>\s*<!\[CDATA\[(.*?)\]\]>", re.S)
for name in names:
    text = open(os.path.join(spec_dir, name + ".xml"), encoding="utf-8").read()
    target = os.path.join(out_dir, name)
    os.makedirs(target, exist_ok=True)
    for n, (_, caption, body) in enumerate(pattern.findall(text), 1):
        body = body.strip().replace("\u2026", "")
        try:
            xml.dom.minidom.parseString(body)
        except Exception:
            print(f"{name} #{n} skipped (not XML): {html.unescape(caption)}")
            continue
        with open(os.path.join(target, f"{n:02}.xml"), "w", encoding="utf-8") as f:
            f.write(f"<!-- {name} example {n}: {html.unescape(caption).replace('--', '-')} -->\n{body}\n")
