"""The HTTPS listener on :6443 (supervisor + Kubernetes API, as k3s multiplexes them) and its two backends:
the datastore leader answers from its own Cluster; a joined server forwards to the leader."""
import base64
import json
import socketserver
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import k3s_api as api
from k3s_api import APIError
from k3s_common import (VERSION, b64, basic_auth, client_context, error, info, kube_minor, request, RequestError,
                        version_commit, go_version, go_arch)


class _Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, ctx, backend):
        self.ctx, self.backend = ctx, backend
        super().__init__(addr, _Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.settimeout(60)
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        pass   # handshake and socket errors are logged by the handler (Go prints them the same way)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def setup(self):
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError) as e:
            info('http: TLS handshake error from %s:%d: %s' % (self.client_address[0], self.client_address[1],
                                                                  getattr(e, 'reason', None) or e))
            raise
        super().setup()

    def log_message(self, *args):
        pass

    def version_string(self):
        return ''

    def do_GET(self):
        self._dispatch('GET')

    def do_POST(self):
        self._dispatch('POST')

    def do_PUT(self):
        self._dispatch('PUT')

    def do_PATCH(self):
        self._dispatch('PATCH')

    def do_DELETE(self):
        self._dispatch('DELETE')

    def _dispatch(self, method):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        try:
            code, ctype, payload, extra = self.server.backend.serve(self, method, body)
        except APIError as e:
            code, ctype, payload, extra = e.code, 'application/json', json.dumps(e.status()).encode(), {}
        except Exception as e:  # never leave a client hanging on a bug
            error('internal error serving %s %s: %r' % (method, self.path, e))
            status = APIError(500, 'InternalError', 'Internal error occurred: %s' % e).status()
            code, ctype, payload, extra = 500, 'application/json', json.dumps(status).encode(), {}
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(payload)))
        self.send_header('Cache-Control', 'no-cache, private')
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def peer_identity(self):
        """The subject of a client certificate that the client CA verified (CN = user, O = groups)."""
        cert = self.connection.getpeercert()
        if not cert:
            return None
        cn, orgs = None, []
        for rdn in cert.get('subject', ()):
            for key, value in rdn:
                if key == 'commonName':
                    cn = value
                elif key == 'organizationName':
                    orgs.append(value)
        return api.Identity(cn, orgs + ['system:authenticated'], 'x509') if cn else None


def serve(address, port, ctx, backend):
    srv = _Server((address, port), ctx, backend)
    threading.Thread(target=srv.serve_forever, name='https', daemon=True).start()
    return srv


def server_context(cert_file, key_file, client_ca_pem):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(cadata=client_ca_pem)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def _json(code, obj, extra=None):
    return code, 'application/json', json.dumps(obj).encode(), extra or {}


def _text(code, text):
    return code, 'text/plain; charset=utf-8', text.encode(), {'X-Content-Type-Options': 'nosniff'}


def _unauthorized():
    return _json(401, APIError(401, 'Unauthorized', 'Unauthorized').status())


def version_info():
    major, minor = kube_minor()
    return {'major': major, 'minor': minor, 'gitVersion': VERSION,
            'gitCommit': (version_commit() * 5)[:40], 'gitTreeState': 'clean', 'buildDate': '2025-05-27T18:33:00Z',
            'goVersion': go_version(), 'compiler': 'gc', 'platform': 'linux/%s' % go_arch()}


def _basic(handler):
    auth = handler.headers.get('Authorization', '')
    if not auth.startswith('Basic '):
        return None, None
    try:
        user, _, pw = base64.b64decode(auth[6:]).decode().partition(':')
        return user, pw
    except ValueError:
        return None, None


class LeaderBackend:
    """The server that holds the cluster state."""

    def __init__(self, cluster, pki, supervisor):
        self.cluster, self.pki, self.supervisor = cluster, pki, supervisor

    def identity(self, handler):
        ident = handler.peer_identity()
        if ident:
            return ident
        auth = handler.headers.get('Authorization', '')
        if auth.startswith('Bearer '):
            return self.cluster.bearer_identity(auth[7:].strip())
        user, pw = _basic(handler)
        if user and self.cluster.supervisor_role(user, pw) == 'server' and handler.headers.get('X-Remote-User'):
            groups = [g.strip() for h in handler.headers.get_all('X-Remote-Group') or [] for g in h.split(',') if g.strip()]
            return api.Identity(handler.headers['X-Remote-User'], groups + ['system:authenticated'], 'proxy')
        return None

    def serve(self, handler, method, body):
        u = urllib.parse.urlsplit(handler.path)
        path, query = u.path, dict(urllib.parse.parse_qsl(u.query))
        if path == '/ping':
            return _text(200, 'pong')
        if path == '/cacerts':
            return 200, 'text/plain; charset=utf-8', self.pki['server-ca.crt'].encode(), {}
        if path.startswith('/v1-k3s/'):
            return self.supervisor.serve(handler, method, path, body)
        ident = self.identity(handler)
        if ident is None:
            return _unauthorized()
        if path in ('/readyz', '/livez', '/healthz') or path.startswith(('/readyz/', '/livez/', '/healthz/')):
            if not api.authorize(self.cluster.store, ident, 'get', url=path):
                raise APIError(403, 'Forbidden', 'forbidden: User "%s" cannot get path "%s"' % (ident.user, path))
            if 'verbose' in query:
                checks = ['ping', 'log', 'etcd', 'informer-sync', 'poststarthook/start-apiserver-admission-initializer']
                name = path.strip('/').split('/')[0]
                return _text(200, ''.join('[+]%s ok\n' % c for c in checks) + '%s check passed\n' % name)
            return _text(200, 'ok')
        if path.rstrip('/') in ('/version', '/api', '/apis') and not api.authorize(self.cluster.store, ident, 'get', url=path):
            raise APIError(403, 'Forbidden', 'forbidden: User "%s" cannot get path "%s"' % (ident.user, path))
        if path in ('/version', '/version/'):
            return _json(200, version_info())
        if path in ('/api', '/api/'):
            return _json(200, {'kind': 'APIVersions', 'versions': ['v1'], 'serverAddressByClientCIDRs': [
                {'clientCIDR': '0.0.0.0/0', 'serverAddress': '%s:6443' % self.supervisor.node_ip}]})
        if path in ('/apis', '/apis/'):
            groups = sorted({v[0] for v in api.RESOURCES.values() if v[0]} | {'authorization.k8s.io'})
            return _json(200, {'kind': 'APIGroupList', 'apiVersion': 'v1', 'groups': [
                {'name': g, 'versions': [{'groupVersion': g + '/v1', 'version': 'v1'}],
                 'preferredVersion': {'groupVersion': g + '/v1', 'version': 'v1'}} for g in groups]})
        if path.rstrip('/') == '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews' and method == 'POST':
            return _json(201, self.cluster.access_review(ident, _load(body)))
        route = api.parse_path(path)
        if route is None:
            raise APIError(404, 'NotFound', 'the server could not find the requested resource')
        code, obj = self.cluster.handle(ident, method, route, query, _load(body), handler.headers.get('Content-Type', ''))
        return _json(code, obj)


def _load(body):
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise APIError(400, 'BadRequest', "couldn't get version/kind; json parse error: invalid character")


class Supervisor:
    """k3s's /v1-k3s/ endpoints: agent configuration, node certificates, bootstrap data for joining servers."""

    def __init__(self, cluster, pki, config, node_ip, servers):
        self.cluster, self.pki, self.config, self.node_ip, self.servers = cluster, pki, config, node_ip, servers

    def serve(self, handler, method, path, body):
        user, pw = _basic(handler)
        role = self.cluster.supervisor_role(user, pw) if user else None
        if role is None and handler.peer_identity() and path in ('/v1-k3s/config', '/v1-k3s/apiservers', '/v1-k3s/readyz'):
            role = 'node'      # a node that already holds its client certificate
        if role is None:
            error('Failed to authenticate request from %s:%d: invalid username/password combination'
                  % handler.client_address)
            return _text(401, 'Unauthorized\n')
        if path == '/v1-k3s/readyz':
            return _text(200, 'ok')
        if path == '/v1-k3s/config':
            return _json(200, self.config)
        if path == '/v1-k3s/apiservers':
            return _json(200, self.servers())
        if path in ('/v1-k3s/client-ca.crt', '/v1-k3s/server-ca.crt'):
            return _text(200, self.pki[path.rsplit('/', 1)[1]])
        if path in ('/v1-k3s/serving-kubelet.crt', '/v1-k3s/client-kubelet.crt'):
            node = (handler.headers.get('k3s-Node-Name') or '').lower()
            password = handler.headers.get('k3s-Node-Password') or ''
            if not node or not password:
                return _text(400, 'missing node name or password\n')
            with self.cluster.lock:
                ok = self.cluster.node_password_check(node, password)
            if not ok:
                return _text(403, 'Forbidden\n')
            ips = [i for i in (handler.headers.get('k3s-Node-IP') or '').split(',') if i]
            cert, key = self.cluster.node_certificate(node, 'client' if 'client' in path else 'serving', ips)
            return _text(200, cert + key)
        if path == '/v1-k3s/server-bootstrap':
            if role != 'server':
                return _text(401, 'Unauthorized\n')
            files = {k: b64(v) for k, v in self.pki.items()}
            return _json(200, {'files': files, 'clusterInit': self.config.get('StandinClusterInit', False),
                               'critical': self.config.get('StandinCritical', {})})
        return _text(404, '404 page not found\n')


class FollowerBackend:
    """A server joined to the cluster: same CA and listener, state on the leader it forwards to."""

    def __init__(self, leader_url, pki, password):
        self.leader, self.pki, self.password = leader_url.rstrip('/'), pki, password
        self.ctx = client_context(ca_pem=pki['server-ca.crt'])

    def serve(self, handler, method, body):
        u = urllib.parse.urlsplit(handler.path)
        if u.path == '/ping':
            return _text(200, 'pong')
        if u.path == '/cacerts':
            return 200, 'text/plain; charset=utf-8', self.pki['server-ca.crt'].encode(), {}
        headers = {}
        for h in ('Content-Type', 'Authorization', 'Accept', 'k3s-Node-Name', 'k3s-Node-Password', 'k3s-Node-IP'):
            if handler.headers.get(h):
                headers[h] = handler.headers[h]
        ident = handler.peer_identity()
        if ident and not (u.path.startswith('/v1-k3s/') and 'Authorization' in headers):
            headers.update(basic_auth('server', self.password))
            headers['X-Remote-User'] = ident.user
            headers['X-Remote-Group'] = ','.join(g for g in ident.groups if g != 'system:authenticated')
        try:
            status, _, rh, payload = request(method, self.leader + handler.path, body or None, self.ctx, headers)
        except RequestError as e:
            error('Failed to forward %s %s to %s: %s' % (method, u.path, self.leader, e.reason))
            return _json(503, APIError(503, 'ServiceUnavailable',
                                       'etcdserver: leader changed; the datastore leader at %s is unreachable' % self.leader).status())
        return status, rh.get('Content-Type', 'application/json'), payload, {}
