#!/usr/bin/python3
"""The lab's services namespace: one HTTP server standing in for what hosts would fetch from the internet.

serve.py --address ADDRESS --port PORT --mirror DIR

Started by `scripts/lab up` inside the services network namespace (10.250.K.9), stopped by `scripts/lab down`.
It serves DIR (the lab's DIR/mirror) as static files below `/`, laid out as the real sites are below their base
URL, plus the dynamic ROUTES below. Python 3.11 stdlib only. Every request is logged on stderr, one line each:
`<client> "<METHOD> <path> HTTP/x" <status> <bytes>`.

Dynamic routes:
- GET /k3s/channels/<name>: 302 to /k3s/releases/tag/<version>, the version being the one line of
  DIR/k3s/channels/<name> (as update.k3s.io redirects a channel to its release); 404 if there is no such file.
- GET /k3s/releases/tag/<version>: 200 when DIR/k3s/releases/download/<version>/ exists (a release page).
Other services (a fake GitLab API...) add their own (prefix, handler) pair to ROUTES."""
import argparse
import http.server
import os
import re
import sys


def k3s_channel(handler, rest):
    """update.k3s.io answers a channel with a redirect whose last path segment is the release."""
    if not re.fullmatch(r'[A-Za-z0-9._-]+', rest):
        return handler.send_error(404)
    try:
        with open(os.path.join(handler.mirror, 'k3s', 'channels', rest), encoding='utf-8') as f:
            version = f.readline().strip()
    except OSError:
        return handler.send_error(404)
    handler.send_response(302)
    handler.send_header('Location', '/k3s/releases/tag/' + version)
    handler.send_header('Content-Length', '0')
    handler.end_headers()


def k3s_release_page(handler, rest):
    if not re.fullmatch(r'[A-Za-z0-9.+_-]+', rest) or not os.path.isdir(
            os.path.join(handler.mirror, 'k3s', 'releases', 'download', rest)):
        return handler.send_error(404)
    body = ('k3s release %s (provision lab mirror)\n' % rest).encode()
    handler.send_response(200)
    handler.send_header('Content-Type', 'text/plain; charset=utf-8')
    handler.send_header('Content-Length', str(len(body)))
    handler.end_headers()
    if handler.command != 'HEAD':
        handler.wfile.write(body)


# (path prefix, handler(request, rest of the path)); the first match wins, static files of the mirror otherwise.
ROUTES = [
    ('/k3s/channels/', k3s_channel),
    ('/k3s/releases/tag/', k3s_release_page),
]


class Handler(http.server.SimpleHTTPRequestHandler):
    server_version = 'provision-lab-services'
    sys_version = ''
    mirror = '.'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=self.mirror, **kwargs)

    def route(self):
        path = self.path.split('?', 1)[0]
        for prefix, function in ROUTES:
            if path.startswith(prefix):
                function(self, path[len(prefix):])
                return True
        return False

    def do_GET(self):
        if not self.route():
            super().do_GET()

    def do_HEAD(self):
        if not self.route():
            super().do_HEAD()

    def list_directory(self, path):
        # A release mirror answers files, not directory listings.
        self.send_error(404)
        return None

    def log_message(self, format, *args):
        sys.stderr.write('%s %s\n' % (self.client_address[0], format % args))
        sys.stderr.flush()


def main():
    parser = argparse.ArgumentParser(description='the provision lab services namespace HTTP server')
    parser.add_argument('--address', required=True)
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--mirror', required=True)
    args = parser.parse_args()
    Handler.mirror = os.path.abspath(args.mirror)
    server = http.server.ThreadingHTTPServer((args.address, args.port), Handler)
    server.daemon_threads = True
    sys.stderr.write('serving %s on http://%s:%d\n' % (Handler.mirror, args.address, args.port))
    sys.stderr.flush()
    server.serve_forever()


if __name__ == '__main__':
    main()
