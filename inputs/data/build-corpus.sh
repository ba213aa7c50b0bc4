#!/usr/bin/env bash
# Builds quopt's default corpus: ~6 MB of English plain text taken from Debian packages, so that the
# demo needs no download beyond the Debian archive and no third-party text lives in the repository.
#
#   usage: inputs/data/build-corpus.sh [OUT_DIR]      (default OUT_DIR: <repo>/data/corpus)
#
# Produces, in OUT_DIR (documents separated by blank lines, as `quopt tokenize` expects):
#   kjv.txt               the King James Bible (package bible-kjv-text, read with bible-kjv's `bible`),
#                         one document per chapter, one verse per line
#   python-docs.txt       the Python 3 tutorial, HOWTOs, FAQ, language reference, "using" and
#                         "extending" guides (package python3-doc, HTML -> text with Python's
#                         html.parser), one document per section of at least ~1500 characters
#   debian-reference.txt  the Debian Reference (package debian-reference-en, HTML -> text likewise)
#   .stamp                recipe version, source package versions and sha256 of the three files
# Missing packages are installed with apt-get (as root, or through passwordless sudo).
# Idempotent: when the stamp matches the files and this recipe version, nothing is redone.
# Deterministic: inputs are read in sorted order (LC_ALL=C), the conversion has no randomness, so the
# same package versions give byte-identical files.
set -euo pipefail

RECIPE_VERSION=1  # bump when the output of this script changes
export LC_ALL=C

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/../.." && pwd)
out_dir=${1:-$repo_dir/data/corpus}
files=(kjv.txt python-docs.txt debian-reference.txt)
packages=(bible-kjv bible-kjv-text python3-doc debian-reference-en python3)
pydoc_dir=/usr/share/doc/python3/html
pydoc_sections=(tutorial howto faq reference using extending)
debref_dir=/usr/share/debian-reference

say() { printf 'build-corpus: %s\n' "$*"; }
die() {
  printf 'build-corpus: error: %s\n' "$*" >&2
  exit 1
}

summary() {
  local total=0 f bytes lines docs
  for f in "${files[@]}"; do
    bytes=$(wc -c <"$out_dir/$f")
    lines=$(grep -c . "$out_dir/$f" || true)
    docs=$(awk 'BEGIN { n = 0; inside = 0 } /^$/ { inside = 0; next } { if (!inside) n++; inside = 1 } END { print n }' "$out_dir/$f")
    printf '  %-22s %9d bytes %7d lines %6d documents\n' "$f" "$bytes" "$lines" "$docs"
    total=$((total + bytes))
  done
  printf '  %-22s %9d bytes\n' "total" "$total"
  grep '^# package ' "$out_dir/.stamp" | sed 's/^# package /  from /'
}

stamp_ok() {
  [[ -f "$out_dir/.stamp" ]] || return 1
  head -n 1 "$out_dir/.stamp" | grep -qx "# quopt corpus recipe $RECIPE_VERSION" || return 1
  (cd "$out_dir" && grep -v '^#' .stamp | sha256sum --quiet --status -c -) || return 1
}

if stamp_ok; then
  say "$out_dir is up to date (recipe $RECIPE_VERSION); nothing to do"
  summary
  exit 0
fi

# --- packages ------------------------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }
missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]} > 0)); then
  say "installing ${missing[*]} with apt-get"
  if [[ $(id -u) -eq 0 ]]; then
    sudo_cmd=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo_cmd=(sudo)
  else
    die "packages ${missing[*]} are missing and this user cannot run apt-get; install them as root: apt-get install ${missing[*]}"
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v bible >/dev/null || die "the 'bible' program (package bible-kjv) is not on PATH"
[[ -d "$pydoc_dir/tutorial" ]] || die "$pydoc_dir/tutorial not found (package python3-doc)"
[[ -d "$debref_dir" ]] || die "$debref_dir not found (package debian-reference-en)"

# --- conversion ----------------------------------------------------------------------------------
mkdir -p "$out_dir"
tmp=$(mktemp -d "$out_dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/totext.py" <<'PY'
"""Plain text for the quopt corpus. Modes:
  kjv             stdin: `bible -f` output ("Ge1:1 In the beginning ..."); one document per chapter
  sphinx FILE...  Sphinx HTML (Python docs): the text of <div role="main">
  docbook FILE... DocBook HTML (Debian Reference): the body minus navigation and tables of contents
HTML documents start at h1-h3 headings once the current one holds >= 1500 characters; documents under
200 characters are dropped. Within a document: one line per block element, whitespace collapsed
(<pre> keeps its lines), no blank lines. Documents are separated by one blank line."""
import html.parser
import re
import sys

BLOCK = {"p", "div", "pre", "li", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th",
         "section", "blockquote", "table", "ul", "ol", "dl", "br", "hr", "article", "figure",
         "figcaption", "caption"}
VOID = {"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr", "source"}
SKIP_TAGS = {"script", "style", "head", "title", "noscript", "button", "form", "nav"}
SKIP_CLASSES = {"headerlink", "navheader", "navfooter", "sphinxsidebar", "related", "footer", "toc",
                "navigation", "mobile-nav"}
HEADINGS = {"h1", "h2", "h3"}
MIN_SPLIT, MIN_KEEP = 1500, 200


class ToText(html.parser.HTMLParser):
    def __init__(self, root_attr):
        super().__init__(convert_charrefs=True)
        self.root_attr = root_attr  # (name, value) of the content root; None: everything
        self.stack = []  # (tag, skip, in_root, in_pre)
        self.docs, self.lines, self.cur = [], [], []

    def state(self):
        return self.stack[-1][1:] if self.stack else (False, self.root_attr is None, False)

    def flush_line(self):
        text, self.cur = "".join(self.cur), []
        if self.state()[2]:
            self.lines += [l.rstrip().expandtabs(4) for l in text.split("\n") if l.strip()]
        else:
            text = re.sub(r"\s+", " ", text).strip()
            if text:
                self.lines.append(text)

    def new_doc(self):
        if sum(map(len, self.lines)) >= MIN_SPLIT:
            self.docs.append(self.lines)
            self.lines = []

    def handle_starttag(self, tag, attrs):
        skip, in_root, in_pre = self.state()
        a = dict(attrs)
        if in_root and not skip:
            if tag in BLOCK:
                self.flush_line()
            if tag in HEADINGS:
                self.new_doc()
        if tag in VOID:
            return
        classes = set((a.get("class") or "").split())
        skip = skip or tag in SKIP_TAGS or bool(classes & SKIP_CLASSES)
        in_root = in_root or (self.root_attr is not None and a.get(self.root_attr[0]) == self.root_attr[1])
        self.stack.append((tag, skip, in_root, in_pre or tag == "pre"))

    def handle_endtag(self, tag):
        if tag in VOID or all(t != tag for t, *_ in self.stack):
            return
        skip, in_root, _ = self.state()
        if tag in BLOCK and in_root and not skip:
            self.flush_line()
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data):
        skip, in_root, _ = self.state()
        if in_root and not skip:
            self.cur.append(data)

    def finish(self):
        self.flush_line()
        if self.lines:
            self.docs.append(self.lines)
        return [d for d in self.docs if sum(map(len, d)) >= MIN_KEEP]


def write_docs(docs):
    for d in docs:
        sys.stdout.write("\n".join(d) + "\n\n")


def main():
    mode, paths = sys.argv[1], sys.argv[2:]
    if mode == "kjv":
        verse = re.compile(r"^([0-9]?[A-Za-z]+)([0-9]+):([0-9]+) (.*)$")
        chapter, lines = None, []
        for raw in sys.stdin:
            m = verse.match(raw.rstrip("\n"))
            if not m:
                raise SystemExit(f"unexpected line from bible: {raw!r}")
            if (m.group(1), m.group(2)) != chapter and lines:
                write_docs([lines])
                lines = []
            chapter = (m.group(1), m.group(2))
            lines.append(m.group(4).strip())
        write_docs([lines])
        return
    root = {"sphinx": ("role", "main"), "docbook": None}[mode]
    for p in paths:
        conv = ToText(root)
        with open(p, encoding="utf-8", errors="replace") as f:
            conv.feed(f.read())
        conv.close()
        write_docs(conv.finish())


main()
PY

say "converting the King James Bible"
bible -f gen1:1-rev22:21 </dev/null | python3 -I "$tmp/totext.py" kjv >"$tmp/kjv.txt"
say "converting the Python documentation (${pydoc_sections[*]})"
mapfile -t pyfiles < <(for s in "${pydoc_sections[@]}"; do find -L "$pydoc_dir/$s" -name '*.html' -type f; done | sort)
python3 -I "$tmp/totext.py" sphinx "${pyfiles[@]}" >"$tmp/python-docs.txt"
say "converting the Debian Reference"
mapfile -t debfiles < <(find -L "$debref_dir" -maxdepth 1 -name '*.en.html' -type f | sort)
python3 -I "$tmp/totext.py" docbook "${debfiles[@]}" >"$tmp/debian-reference.txt"

for f in "${files[@]}"; do
  [[ -s "$tmp/$f" ]] || die "conversion produced an empty $f"
done
{
  echo "# quopt corpus recipe $RECIPE_VERSION"
  for p in bible-kjv-text python3-doc debian-reference-en; do
    echo "# package $p $(dpkg-query -W -f='${Version}' "$p")"
  done
  (cd "$tmp" && sha256sum "${files[@]}")
} >"$tmp/.stamp"
for f in "${files[@]}" .stamp; do mv -f "$tmp/$f" "$out_dir/$f"; done
say "wrote $out_dir"
summary
