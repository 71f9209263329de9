#!/bin/bash
# test-plugin-deps.sh: a plugin that needs another one says so up front.
#
#   test-plugin-deps.sh EXO_NODE PLUGIN_BUILD_DIR
#
# The node plugin makes its peers' handles with whatever plugin registers
# the ExoPeerHandle role (the http-server plugin).  Without it, a node with
# a discovery is refused by --check-config, naming the plugin to load; with
# it, the same config is valid.  A plugin found again later in the search
# path is skipped quietly.  (TAP)
#
# SPDX-License-Identifier: LGPL-2.1-or-later

set -u
exo_node=$1
plugins=$2
tmp=$(mktemp -d /tmp/exo-plugin-deps.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"

cat >"$tmp/node.json" <<'JSON'
{ "node": { "id": "n1" },
  "resources": [
    { "id": "engine", "type": "dummy-inference" },
    { "id": "discovery", "type": "udp-discovery", "settings": { "port": 0, "server-port": 1234 } },
    { "id": "node", "type": "node", "depends-on": ["engine", "discovery"],
      "settings": { "server": "" } } ] }
JSON

echo "1..3"
mkdir "$tmp/p" && chmod 755 "$tmp/p"
cp "$plugins"/node/*.so "$plugins"/dummy-inference/*.so "$plugins"/udp-discovery/*.so "$tmp/p/"
out=$(cd "$tmp" && env -u EXO_PLUGIN_PATH "$exo_node" --plugin-dir "$tmp/p" --check-config "$tmp/node.json" 2>&1)
rc=$?
if ((rc == 1)) && grep -q "no loaded plugin provides them (ExoPeerHandle); load the http-server plugin" <<<"$out"; then
  echo "ok 1 - without the http-server plugin --check-config refuses the node: $out"
else
  echo "not ok 1 - without the http-server plugin (rc $rc)"; sed 's/^/# /' <<<"$out"
fi
cp "$plugins"/http-server/*.so "$tmp/p/"
out=$(cd "$tmp" && env -u EXO_PLUGIN_PATH "$exo_node" --plugin-dir "$tmp/p" --check-config "$tmp/node.json" 2>&1)
rc=$?
if ((rc == 0)) && grep -q "configuration is valid" <<<"$out"; then
  echo "ok 2 - with it the same config is valid"
else
  echo "not ok 2 - with the http-server plugin (rc $rc)"; sed 's/^/# /' <<<"$out"
fi

# The same plugins again later in the search path (an installed copy behind
# a build tree's --plugin-dir): skipped quietly, nothing "refused".
mkdir "$tmp/q" && chmod 755 "$tmp/q"
cp "$tmp"/p/*.so "$tmp/q/"
out=$(cd "$tmp" && EXO_PLUGIN_PATH="$tmp/q" "$exo_node" --plugin-dir "$tmp/p" --check-config "$tmp/node.json" 2>&1)
rc=$?
if ((rc == 0)) && ! grep -q "refused" <<<"$out"; then
  echo "ok 3 - a plugin found again later in the search path is skipped without a warning"
else
  echo "not ok 3 - plugins found twice (rc $rc)"; sed 's/^/# /' <<<"$out"
fi
