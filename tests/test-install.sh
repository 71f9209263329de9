#!/bin/bash
# test-install.sh: what a packager gets from `meson install`.
#
#   test-install.sh BUILD_DIR SOURCE_DIR
#
# Installs the build into a temporary DESTDIR and checks, as TAP:
#  - the man pages exo-node(8), exoctl(1), exo-node.json(5) are there, groff
#    formats them without a warning and whatis/apropos (lexgrog) can index them,
#    and exo-node(8) and exoctl(1) document every option their --help lists;
#  - the guides and an example config are in share/doc/exo-node;
#  - exoctl's bash completion is in bash-completion's completionsdir under the
#    prefix, is valid bash and registers itself for exoctl;
#  - exo-1.pc requires every package whose headers the public headers include,
#    and a program including <exo/exo.h> compiles with its flags;
#  - the programs and plugins carry the prefix's libdir as RUNPATH (unless the
#    prefix is /usr), and the installed exo-node, seen at its real prefix in a
#    private mount namespace, finds libexo-1, its plugins and its model without
#    LD_LIBRARY_PATH, EXO_PLUGIN_PATH or EXO_MODEL_PATH;
#  - with introspection, the PyGObject overrides (gi/overrides/Exo.py) are
#    in the folder of /usr/bin/python3's own sys.path for the prefix (for
#    /usr and /usr/local; the Python loader is built with that folder), and
#    Exo-1.typelib is in $libdir/girepository-1.0 and loads from Python with
#    those overrides; with the Python loader built,
#    libexo-python-loader.so is in $libdir/exo-1 (RUNPATH too);
#  - -Dtests=false configures no test program.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

set -u
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tmp=$(mktemp -d /tmp/exo-install-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; printf '%s\n' "$@" | sed 's/^/# /'; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { local what=$1; shift; local out; if out=$("$@" 2>&1); then ok "$what"; else not_ok "$what" "$out"; fi; }

intro() { meson introspect "$build" --buildoptions | python3 -c "import json,sys; print(next(o['value'] for o in json.load(sys.stdin) if o['name']=='$1'))"; }
prefix=$(intro prefix)
libdir=$(intro libdir)
mandir=$(intro mandir)
datadir=$(intro datadir)
[[ $libdir == /* ]] || libdir=$prefix/$libdir
[[ $mandir == /* ]] || mandir=$prefix/$mandir
[[ $datadir == /* ]] || datadir=$prefix/$datadir
root=$tmp/root

if ! out=$(meson install -C "$build" --no-rebuild --destdir "$root" 2>&1); then
  echo "1..1"
  not_ok "meson install --destdir" "$(tail -5 <<<"$out")"
  exit 1
fi
echo "1..13"

# The -Dtests=false configuration (the last check) runs meanwhile, on the
# other core: it reads only the source tree.
( meson setup "$tmp/notests" "$src" -Dtests=false -Dintrospection=disabled >"$tmp/notests.log" 2>&1
  echo $? >"$tmp/notests.rc" ) &
notests_pid=$!

# --- man pages ----------------------------------------------------------------
problems=()
for page in man8/exo-node.8 man1/exoctl.1 man5/exo-node.json.5; do
  f=$root$mandir/$page
  if [[ ! -f $f ]]; then problems+=("missing: $mandir/$page"); continue; fi
  warnings=$(LC_ALL=C.UTF-8 groff -man -ww -z -Tutf8 "$f" 2>&1)
  [[ -z $warnings ]] || problems+=("$page: $warnings")
  if command -v man >/dev/null; then
    # what a reader sees: no Markdown left over
    leftover=$(MANWIDTH=80 man -l "$f" 2>/dev/null | grep -n -e '\*\*' -e '](' | head -3)
    [[ -z $leftover ]] || problems+=("$page: Markdown in the rendered page: $leftover")
  fi
  if command -v lexgrog >/dev/null; then
    name=$(lexgrog "$f" 2>&1)
    grep -q ' - ' <<<"$name" || problems+=("$page: lexgrog finds no NAME line: $name")
  fi
done
if ((${#problems[@]} == 0)); then ok "man pages installed, clean under groff -ww, no Markdown left, indexed by lexgrog"
else not_ok "man pages" "${problems[@]}"; fi

# the options exo-node --help lists are all in exo-node(8)
missing=()
for opt in $("$build/src/daemon/exo-node" --help-all | grep -oE -- '^ +(-[a-zA-Z], )?--[a-z][a-z-]*' | grep -o -- '--[a-z-]*' | sort -u); do
  [[ $opt == --help* ]] && continue
  grep -q -- "${opt//-/\\\\-}" "$root$mandir/man8/exo-node.8" || missing+=("$opt")
done
if ((${#missing[@]} == 0)); then ok "exo-node(8) documents every option of exo-node --help"
else not_ok "exo-node(8) documents every option" "missing: ${missing[*]}"; fi

# ... and those of exoctl --help in exoctl(1)
missing=()
for opt in $("$build/src/exoctl/exoctl" --help | grep -oE -- '^ +(-[a-zA-Z], )?--[a-z][a-z-]*' | grep -o -- '--[a-z-]*' | sort -u); do
  grep -q -- "${opt//-/\\\\-}" "$root$mandir/man1/exoctl.1" || missing+=("$opt")
done
if ((${#missing[@]} == 0)); then ok "exoctl(1) documents every option of exoctl --help"
else not_ok "exoctl(1) documents every option" "missing: ${missing[*]}"; fi

# --- docs -------------------------------------------------------------------------
doc=$root$datadir/doc/exo-node
if [[ -f $doc/README.md && -f $doc/config.md && -f $doc/examples/exo-node.json ]]; then
  ok "guides and an example config in share/doc/exo-node"
else
  not_ok "guides and an example config in share/doc/exo-node" "$(ls -R "$doc" 2>&1 | head)"
fi

# --- bash completion --------------------------------------------------------------
compdir=$(pkg-config --variable=completionsdir --define-variable=datadir="$datadir" bash-completion 2>/dev/null)
[[ -n $compdir ]] || compdir=$datadir/bash-completion/completions
comp=$root$compdir/exoctl
if [[ ! -f $comp ]]; then
  not_ok "bash completion for exoctl in $compdir" "$(find "$root" -path '*completion*' 2>&1 | head)"
elif ! out=$(bash -n "$comp" 2>&1); then
  not_ok "bash completion for exoctl is valid bash" "$out"
elif [[ -f /usr/share/bash-completion/bash_completion ]]; then
  out=$(bash --norc -c '. /usr/share/bash-completion/bash_completion && . "$1" && complete -p exoctl' \
          sh "$comp" 2>&1)
  if [[ $out == "complete -F _exoctl exoctl" ]]; then ok "bash completion for exoctl in $compdir"
  else not_ok "bash completion for exoctl registers _exoctl" "$out"; fi
else
  ok "bash completion for exoctl in $compdir (bash-completion not installed: not loaded)"
fi

# --- pkg-config -------------------------------------------------------------------
pc=$root$libdir/pkgconfig/exo-1.pc
requires=$(sed -n 's/^Requires: //p' "$pc")
need=()
incs=$(cat "$root$prefix"/include/exo-1/exo/*.h)
grep -q '#include <glib-object.h>' <<<"$incs" && need+=(gobject-2.0)
grep -q '#include <gio/' <<<"$incs" && need+=(gio-2.0)
grep -q '#include <gmodule.h>' <<<"$incs" && need+=(gmodule-2.0)
grep -q '#include <glib.h>' <<<"$incs" && need+=(glib-2.0)
missing=()
for p in "${need[@]}"; do grep -qw -- "$p" <<<"$requires" || missing+=("$p"); done
if ((${#missing[@]} == 0)); then ok "exo-1.pc Requires: what the headers include ($requires)"
else not_ok "exo-1.pc Requires" "missing: ${missing[*]} (Requires: $requires)"; fi

printf '#include <exo/exo.h>\nint main (void) { return exo_resource_get_type () == 0; }\n' >"$tmp/t.c"
check "a program including <exo/exo.h> compiles with pkg-config --cflags exo-1" \
  sh -c 'mkdir -p "$1/pc" && sed "s|^prefix=.*|prefix=$2|" "$3" >"$1/pc/exo-1.pc" &&
         cc -c -o "$1/t.o" "$1/t.c" $(PKG_CONFIG_PATH="$1/pc" pkg-config --cflags exo-1)' \
  sh "$tmp" "$root$prefix" "$pc"

# --- GObject-Introspection and the Python loader -------------------------------------
typelib=$root$libdir/girepository-1.0/Exo-1.typelib
overrides=$(find "$root" -path '*/gi/overrides/Exo.py' | head -1)
pypath=${overrides%/gi/overrides/Exo.py}
site=${pypath#"$root"}
if [[ ! -f $build/src/libexo/Exo-1.typelib ]]; then
  skip "the PyGObject overrides are where python3 finds them" "built without introspection"
  skip "Exo-1.typelib installed and loads from Python" "built without introspection"
elif [[ -z $overrides ]]; then
  not_ok "the PyGObject overrides (gi/overrides/Exo.py) are installed" "$(find "$root" -name '*.py' | head)"
  skip "Exo-1.typelib installed and loads from Python" "no overrides installed"
else
  if [[ $prefix != /usr && $prefix != /usr/local ]]; then
    skip "the PyGObject overrides are on python3's sys.path" \
      "python3 searches no folder under $prefix; the Python loader adds $site"
  else
    # gi.overrides is extended over sys.path: a plain python3's own entry
    # for the prefix, not one that PYTHONPATH adds
    check "the PyGObject overrides are in $site, on /usr/bin/python3's own sys.path" \
      /usr/bin/python3 -E -s -c 'import sys; assert sys.argv[1] in sys.path, sys.path' "$site"
  fi
  if [[ ! -f $typelib ]]; then
    not_ok "Exo-1.typelib installed in $libdir/girepository-1.0" "$(find "$root" -name '*.typelib' | head)"
  else
    # the installed overrides, not the source tree's or another install's
    check "Exo-1.typelib installed in $libdir/girepository-1.0 and loads from Python with the overrides of $site" \
      env GI_TYPELIB_PATH="$root$libdir/girepository-1.0" LD_LIBRARY_PATH="$root$libdir" \
        PYTHONPATH="$pypath" /usr/bin/python3 -c '
import sys, gi
gi.require_version("Exo", "1")
from gi.repository import Exo
import gi.overrides.Exo as overrides
assert overrides.__file__ == sys.argv[1], "overrides from %s, not %s" % (overrides.__file__, sys.argv[1])
assert Exo._exo_overrides
Exo.RetryPolicy.new()' "$overrides"
  fi
fi
loader=$root$libdir/exo-1/libexo-python-loader.so
if [[ ! -f $build/src/python-loader/libexo-python-loader.so ]]; then
  skip "the Python loader module is installed" "not built (no python3-embed, PyGObject or typelib)"
elif [[ -f $loader ]] && grep -qaF -- "$site" "$loader"; then
  ok "the Python loader module is installed in $libdir/exo-1 and looks for the overrides in $site"
elif [[ -f $loader ]]; then
  not_ok "the Python loader looks for the overrides in $site" "$(strings "$loader" | grep -F -- '-packages' | head -3)"
else
  not_ok "the Python loader module is installed in $libdir/exo-1" "$(ls "$root$libdir/exo-1" 2>&1)"
fi

# --- RUNPATH ----------------------------------------------------------------------
bad=()
for f in "$root$prefix/bin/exo-node" "$root$libdir"/exo-1/plugins/*.so "$root$libdir"/exo-1/libexo-python-loader.so; do
  [[ -e $f ]] || continue
  rp=$(readelf -d "$f" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
  if [[ $prefix == /usr ]]; then [[ -z $rp ]] || bad+=("$f: RUNPATH $rp under /usr")
  else [[ $rp == "$libdir" ]] || bad+=("$f: RUNPATH '$rp', expected $libdir"); fi
done
if ((${#bad[@]} == 0)); then ok "RUNPATH of exo-node and plugins: $([[ $prefix == /usr ]] && echo "none (prefix /usr)" || echo "$libdir")"
else not_ok "RUNPATH" "${bad[@]}"; fi

# --- the installed node runs from its prefix ------------------------------------------
if [[ $prefix == /usr ]] || ! unshare -m true 2>/dev/null; then
  skip "the installed exo-node runs from its prefix" "needs a prefix other than /usr and unshare -m (root)"
else
  mkdir -p "$tmp/home"
  out=$(unshare -m sh -c '
      mkdir -p "$1" && mount --bind "$2$1" "$1" || exit 99
      cd "$3" && env -u LD_LIBRARY_PATH -u EXO_PLUGIN_PATH -u EXO_MODEL_PATH HOME="$3" \
        "$1/bin/exo-node" --check-config "$1/share/doc/exo-node/examples/exo-node.json"' \
      sh "$prefix" "$root" "$tmp/home" 2>&1)
  rc=$?
  if ((rc == 0)) && grep -q "configuration is valid" <<<"$out"; then
    ok "the installed exo-node finds libexo-1, its plugins and model without any *_PATH: $out"
  else
    not_ok "the installed exo-node runs from its prefix (rc $rc)" "$out"
  fi
fi

# --- -Dtests=false -----------------------------------------------------------------
wait "$notests_pid"
if [[ $(cat "$tmp/notests.rc" 2>/dev/null) == 0 ]]; then
  tests=$(meson introspect "$tmp/notests" --targets | python3 -c \
    "import json,sys; print(' '.join(t['name'] for t in json.load(sys.stdin) if t['name'].startswith(('test-','exo-bench','fuzz-'))))")
  tests+=$(meson introspect "$tmp/notests" --tests | python3 -c \
    "import json,sys; print(' '.join(t['name'] for t in json.load(sys.stdin)))")
  if [[ -z $tests ]]; then ok "-Dtests=false configures no test, bench or fuzzer, and meson test has none"
  else not_ok "-Dtests=false configures no test" "configured: $tests"; fi
else
  not_ok "meson setup -Dtests=false" "$(tail -5 "$tmp/notests.log")"
fi

exit $((failed > 0))
