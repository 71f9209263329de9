# http_poll.py: an example Python plugin for exo-node (docs/writing-plugins-python.md).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Registers "http-poll", an Exo.NetworkResource that is "connected" when an
# HTTP endpoint answers 200 (node.json polls the node's own /healthcheck),
# and whose health check asks again.  Everything runs on the daemon's main
# context with Gio's asynchronous sockets: no thread, no blocking call.
# Bounds: `timeout-ms` per request, at most 64 KiB of answer read.
#
# Run it from the source folder, on the build tree (meson devenv sets
# EXO_PYTHON_LOADER, GI_TYPELIB_PATH and PYTHONPATH for the Python loader):
#   meson devenv -C build -w . exo-node --plugin-dir examples/python-plugin \
#            --config examples/python-plugin/node.json
# or `./bootstrap run --plugin-dir examples/python-plugin --config
# examples/python-plugin/node.json`; installed, plain `exo-node` with the
# same arguments (share/doc/exo-node/examples/python-plugin/).

import gi
gi.require_version('Exo', '1')
from gi.repository import Exo, Gio, GLib, GObject

MAX_ANSWER = 64 * 1024


class HttpPoll(Exo.NetworkResource):
    __gtype_name__ = 'ExampleHttpPoll'

    host = GObject.Property(type=str, default='127.0.0.1')
    port = GObject.Property(type=int, default=8080, minimum=1, maximum=65535)
    path = GObject.Property(type=str, default='/healthcheck')
    timeout_ms = GObject.Property(type=int, default=2000, minimum=1, maximum=60000)

    def _get(self, task):
        """GET path; completes task with True on 200, else with an error."""
        client = Gio.SocketClient.new()
        cancellable = Gio.Cancellable.new()
        timer = GLib.timeout_add(self.timeout_ms, lambda: cancellable.cancel() or False)
        state = {'answer': b''}

        def fail(message):
            GLib.source_remove(timer)
            task.return_error(GLib.Error.new_literal(
                Exo.resource_error_quark(), message, int(Exo.ResourceError.FAILED)))

        def on_read(stream, result, conn):
            try:
                data = stream.read_bytes_finish(result).get_data()
            except GLib.Error as e:
                return fail('reading the answer: %s' % e.message)
            state['answer'] += data
            if data and len(state['answer']) < MAX_ANSWER:
                stream.read_bytes_async(4096, GLib.PRIORITY_DEFAULT, cancellable, on_read, conn)
                return
            conn.close(None)
            status = state['answer'].split(b'\r\n', 1)[0].decode('latin-1')
            if status.split(' ')[1:2] == ['200']:
                GLib.source_remove(timer)
                task.return_boolean(True)
            else:
                fail('%s:%d%s answered %r' % (self.host, self.port, self.path, status[:80]))

        def on_written(stream, result, conn):
            try:
                stream.write_all_finish(result)
            except GLib.Error as e:
                return fail('sending the request: %s' % e.message)
            conn.get_input_stream().read_bytes_async(4096, GLib.PRIORITY_DEFAULT,
                                                     cancellable, on_read, conn)

        def on_connected(client, result):
            try:
                conn = client.connect_to_host_finish(result)
            except GLib.Error as e:
                return fail('connecting to %s:%d: %s' % (self.host, self.port, e.message))
            request = ('GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' % (self.path, self.host)).encode()
            conn.get_output_stream().write_all_async(request, GLib.PRIORITY_DEFAULT,
                                                     cancellable, on_written, conn)

        client.connect_to_host_async(self.host, self.port, cancellable, on_connected)

    def do_do_connect(self, task):
        self._get(task)

    def do_do_disconnect(self, task):
        task.return_boolean(True)

    def do_do_check_health(self, task):
        self._get(task)


EXO_PLUGIN = {
    'name': 'http-poll',
    'version': '1.0',
    'description': 'Polls an HTTP endpoint (an example written in Python)',
    'abi': '3.0',
    'types': {'http-poll': HttpPoll},
}
