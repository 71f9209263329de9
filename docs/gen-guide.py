#!/usr/bin/env python3
# gen-guide.py IN OUT: copy a guide (docs/*.md) for gi-docgen.
#
# The guides are plain Markdown that reads well in the source tree.  gi-docgen
# wants a "Title:" metadata line and renders each guide as NAME.html, so the
# copy gets the first "# heading" as its title, links to sibling guides point
# at their .html pages, and links into the source tree (../path) become the
# path in code, since the reference has no repository to link to.
# SPDX-License-Identifier: LGPL-2.1-or-later

import re
import sys


def main(src, dst):
    with open(src, encoding='utf-8') as f:
        text = f.read()

    title = None
    for line in text.splitlines():
        if line.startswith('# '):
            title = line[2:].strip()
            break
    if title is None:
        title = src.rsplit('/', 1)[-1].removesuffix('.md')

    # [text](other.md) and [text](other.md#anchor) -> other.html
    text = re.sub(r'\]\(([A-Za-z0-9_-]+)\.md(#[^)]*)?\)',
                  lambda m: '](%s.html%s)' % (m.group(1), m.group(2) or ''), text)
    # [text](../path) -> text (`path`); [`path`](../path) -> `path`
    def source_link(m):
        label, path = m.group(1), m.group(2)
        if label.strip('`') == path:
            return label
        return '%s (`%s`)' % (label, path)
    text = re.sub(r'\[([^\]]+)\]\(\.\./([^)\s]+)\)', source_link, text)

    with open(dst, 'w', encoding='utf-8') as f:
        f.write('Title: %s\n\n' % title)
        f.write(text)


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit('usage: gen-guide.py IN OUT')
    main(sys.argv[1], sys.argv[2])
