"""The listener: parses requests as Rails/Grape would (query, JSON, form and multipart bodies, a[b] and a[] keys),
serves /api/v4 from gitlab_api, and the test controls under /-/fake/ (faults, request log, state, clock, reset).
Nothing secret is ever logged: the request log keeps names, never values, and is scrubbed of every known secret."""
import email.parser
import email.policy
import fnmatch
import json
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer

from gitlab_api import Api, ApiError, TOKEN_PARAMS
from gitlab_state import SeedError, iso

API_PREFIX = '/api/v4'
CONTROL_PREFIX = '/-/fake'
LOG_LIMIT = 10000
# Query values worth seeing in the request log; every other value is shown as [FILTERED].
SAFE_QUERY = {'page', 'per_page', 'type', 'status', 'paused', 'scope', 'tag_list', 'runner_type', 'order_by', 'sort',
              'filter', 'secrets', 'since'}


def log(msg):
    sys.stderr.write('fake-gitlab: %s\n' % msg)
    sys.stderr.flush()


class BodyError(Exception):
    pass


def nest(pairs):
    """Rack's nested parameters: a[b]=1 → {a: {b: 1}}, a[]=1&a[]=2 → {a: [1, 2]}; plain keys as they are."""
    out = {}
    for key, value in pairs:
        if '[' not in key or not key.endswith(']') or key.startswith('['):
            out[key] = value
            continue
        base, rest = key.split('[', 1)
        subs = rest[:-1].split('][')
        target, name = out, base
        for sub in subs:
            if sub == '':
                if not isinstance(target.get(name), list):
                    target[name] = []
                target[name].append(value)
                break
            if not isinstance(target.get(name), dict):
                target[name] = {}
            target, name = target[name], sub
        else:
            target[name] = value
    return out


def parse_body(content_type, body):
    """Params from a request body: JSON objects, url-encoded forms (curl -d) and multipart forms (curl -F)."""
    if not body:
        return {}
    ctype = (content_type or '').split(';')[0].strip().lower()
    if ctype == 'application/json' or (not ctype and body.lstrip()[:1] in (b'{', b'[')):
        try:
            value = json.loads(body.decode('utf-8'))
        except (ValueError, UnicodeDecodeError):
            raise BodyError('message body does not match declared format')
        return value if isinstance(value, dict) else {}
    if ctype == 'multipart/form-data':
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b'Content-Type: ' + content_type.encode('latin-1') + b'\r\n\r\n' + body)
        pairs = []
        for part in message.iter_parts():
            name = part.get_param('name', header='content-disposition')
            if name:
                pairs.append((name, part.get_payload(decode=True).decode('utf-8', 'replace')))
        return nest(pairs)
    try:
        return nest(urllib.parse.parse_qsl(body.decode('utf-8'), keep_blank_values=True))
    except UnicodeDecodeError:
        raise BodyError('message body does not match declared format')


class ApiRequest:
    def __init__(self, method, path, full_path, params, headers, client_ip, base_url):
        self.method, self.path, self.full_path = method, path, full_path
        self.params, self.headers, self.client_ip, self.base_url = params, headers, client_ip, base_url
        self.user_name = None


class Fake:
    """Everything behind the listener: the store, the API, faults, the request log. One lock serialises state."""

    def __init__(self, store):
        self.store = store
        self.api = Api(store)
        self.lock = threading.Lock()
        self.faults = []
        self.next_fault = 1
        self.entries = []
        self.seq = 0

    # -- faults

    def take_faults(self, method, path):
        """Consumes the matching fault rules: returns (latency seconds, the failing rule or None)."""
        latency, failing = 0.0, None
        with self.lock:
            for rule in list(self.faults):
                if rule['method'] not in ('*', method) or not fnmatch.fnmatchcase(path, rule['path']):
                    continue
                if rule['status'] is not None and failing is not None:
                    continue   # one failure per request; later rules wait for later requests
                latency += rule['latency']
                if rule['status'] is not None:
                    failing = dict(rule)
                if rule['remaining'] is not None:
                    rule['remaining'] -= 1
                    rule['used'] += 1
                    if rule['remaining'] <= 0:
                        self.faults.remove(rule)
                else:
                    rule['used'] += 1
        return latency, failing

    def add_fault(self, spec):
        if not isinstance(spec, dict):
            raise ApiError(400, {'error': 'a fault is a JSON object'})
        status = spec.get('status')
        latency = spec.get('latency', 0)
        count = spec.get('count')
        if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
            raise ApiError(400, {'error': 'status must be an HTTP status code'})
        if not isinstance(latency, (int, float)) or latency < 0:
            raise ApiError(400, {'error': 'latency must be a number of seconds'})
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ApiError(400, {'error': 'count must be a positive integer'})
        if status is None and not latency:
            raise ApiError(400, {'error': 'a fault needs a status, a latency, or both'})
        if status is not None and count is None:
            count = 1
        rule = {'id': self.next_fault, 'method': str(spec.get('method', '*')).upper(),
                'path': str(spec.get('path', '*')), 'status': status, 'latency': float(latency),
                'retry_after': spec.get('retry_after'), 'body': spec.get('body'), 'remaining': count, 'used': 0}
        self.next_fault += 1
        self.faults.append(rule)
        return rule

    @staticmethod
    def fault_response(rule):
        headers = {}
        if rule['retry_after'] is not None:
            headers['Retry-After'] = str(rule['retry_after'])
        if rule['body'] is not None:
            return rule['status'], rule['body'], headers
        if rule['status'] == 429:
            return 429, 'Retry later\n', headers   # what GitLab's Rack::Attack throttle answers
        phrase = HTTPStatus(rule['status']).phrase if rule['status'] in HTTPStatus._value2member_map_ else 'Error'
        return rule['status'], {'message': '%d %s' % (rule['status'], phrase)}, headers

    # -- the request log

    def scrub(self, text):
        for secret in self.store.secrets():
            text = text.replace(secret, '[REDACTED]')
        return text

    def record(self, method, path, query, body_keys, status, started, auth, user, fault):
        entry = {'seq': 0, 'time': iso(time.time()), 'method': method, 'path': path,
                 'query': {k: (v if k in SAFE_QUERY else '[FILTERED]') for k, v in query.items()},
                 'body_keys': sorted(body_keys), 'status': status,
                 'duration_ms': round((time.monotonic() - started) * 1000, 1), 'auth': auth, 'user': user,
                 'fault': fault}
        # Belt and braces: a secret in a path or a "safe" value still never reaches the log.
        entry = json.loads(self.scrub(json.dumps(entry)))
        self.seq += 1
        entry['seq'] = self.seq
        self.entries.append(entry)
        del self.entries[:-LOG_LIMIT]
        log('%s %s %d%s (%.0f ms)' % (method, entry['path'], status, ' [fault]' if fault else '', entry['duration_ms']))

    # -- the state as tests read it

    def dump(self, show_secrets):
        s, store = self.store.state, self.store

        def secret(value):
            return value if show_secrets else None
        runners = []
        for r in s['runners']:
            creator = store.user_by_id(r['creator_id']) if r['creator_id'] else None
            item = {'id': r['id'], 'runner_type': r['runner_type'], 'registration_type': r['registration_type'],
                    'description': r['description'], 'tag_list': r['tag_list'], 'run_untagged': r['run_untagged'],
                    'locked': r['locked'], 'access_level': r['access_level'], 'paused': not r['active'],
                    'maximum_timeout': r['maximum_timeout'], 'maintenance_note': r['maintenance_note'],
                    'name': r['name'], 'status': store.status(r), 'created_at': iso(r['created_at']),
                    'contacted_at': iso(r['contacted_at']), 'project_ids': r['project_ids'],
                    'group_ids': r['group_ids'], 'creator': creator['username'] if creator else None,
                    'managers': [{'id': m['id'], 'system_id': m['system_id'], 'status': store.status(m),
                                  'created_at': iso(m['created_at']), 'contacted_at': iso(m['contacted_at']),
                                  'version': m['version'], 'platform': m['platform'],
                                  'architecture': m['architecture'], 'executor': m['executor'],
                                  'ip_address': m['ip_address']} for m in r['managers']]}
            if show_secrets:
                item['token'] = r['token']
            runners.append(item)
        variables = [{'owner': v['owner'], 'owner_id': v['owner_id'], 'key': v['key'],
                      'environment_scope': v['environment_scope'], 'variable_type': v['variable_type'],
                      'protected': v['protected'], 'masked': v['masked'], 'hidden': v['hidden'], 'raw': v['raw'],
                      'description': v['description'], 'value': secret(v['value'])} for v in s['variables']]
        agents = [{'id': a['id'], 'name': a['name'], 'project_id': a['project_id'],
                   'created_at': iso(a['created_at']),
                   'tokens': [dict({'id': t['id'], 'name': t['name'], 'description': t['description'],
                                    'status': t['status']}, **({'token': t['token']} if show_secrets else {}))
                              for t in s['agent_tokens'] if t['agent_id'] == a['id']]} for a in s['agents']]
        out = {
            'now': iso(store.now()), 'clock_offset': s['clock_offset'],
            'settings': {'allow_registration_token': s['settings']['allow_registration_token'],
                         'registration_token_set': bool(s['settings'].get('registration_token'))},
            'runners': runners, 'variables': variables, 'agents': agents,
            'counts': {'runners': len(runners), 'managers': sum(len(r['managers']) for r in runners),
                       'project_variables': sum(1 for v in variables if v['owner'] == 'project'),
                       'group_variables': sum(1 for v in variables if v['owner'] == 'group'),
                       'agents': len(agents),
                       'agent_tokens': len(s['agent_tokens']),
                       'agent_tokens_active': sum(1 for t in s['agent_tokens'] if t['status'] == 'active'),
                       'requests': self.seq, 'faults_pending': len(self.faults)},
        }
        if show_secrets:
            out['settings']['registration_token'] = s['settings'].get('registration_token')
            out['tokens'] = [{'name': t['name'], 'user': t['user'], 'scopes': t['scopes'], 'token': t['token']}
                             for t in s['tokens']]
        return out

    # -- /-/fake/

    def control(self, method, path, query, body):
        """Test controls. Returns (status, body)."""
        parts = path[len(CONTROL_PREFIX):].strip('/').split('/')
        head = parts[0]
        if head == 'health' and method == 'GET':
            return 200, {'ok': True}
        if head == 'state' and method == 'GET':
            return 200, self.dump(query.get('secrets') in ('1', 'true'))
        if head == 'log' and method == 'GET':
            since = int(query.get('since') or 0)
            return 200, {'entries': [e for e in self.entries if e['seq'] > since]}
        if head == 'log' and method == 'DELETE':
            self.entries = []
            return 204, None
        if head == 'faults' and len(parts) == 1:
            if method == 'GET':
                return 200, {'faults': self.faults}
            if method == 'POST':
                specs = body if isinstance(body, list) else [body]
                return 201, {'faults': [self.add_fault(spec) for spec in specs]}
            if method == 'DELETE':
                self.faults = []
                return 204, None
        if head == 'runners' and len(parts) == 2 and method == 'DELETE':
            # An admin deleting the runner in the UI (Admin > Runners > Delete): no token needed.
            runner = self.store.runner(int(parts[1])) if parts[1].isdigit() else None
            if runner is None:
                return 404, {'error': 'no runner %s' % parts[1]}
            self.store.state['runners'].remove(runner)
            self.store.save()
            return 204, None
        if head == 'clock' and method in ('GET', 'POST'):
            if method == 'POST':
                advance = body.get('advance') if isinstance(body, dict) else None
                if not isinstance(advance, (int, float)):
                    raise ApiError(400, {'error': 'advance must be a number of seconds'})
                self.store.advance(advance)
                self.store.save()
            return 200, {'now': iso(self.store.now()), 'offset': self.store.state['clock_offset']}
        if head == 'settings' and method in ('GET', 'POST'):
            settings = self.store.state['settings']
            if method == 'POST':
                if not isinstance(body, dict) or not isinstance(body.get('allow_registration_token'), bool):
                    raise ApiError(400, {'error': 'allow_registration_token must be true or false'})
                settings['allow_registration_token'] = body['allow_registration_token']
                self.store.save()
            return 200, {'allow_registration_token': settings['allow_registration_token'],
                         'registration_token_set': bool(settings.get('registration_token'))}
        if head == 'reset' and method == 'POST':
            try:
                self.store.reset()
            except SeedError as e:
                raise ApiError(500, {'error': str(e)})
            self.faults, self.entries, self.seq = [], [], 0
            return 200, {'reset': True}
        return 404, {'error': 'no control %s %s' % (method, path)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def version_string(self):
        return 'nginx'

    def setup(self):
        if self.server.context:
            self.request.do_handshake()
        super().setup()

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.dispatch('GET')

    def do_HEAD(self):
        self.dispatch('HEAD')

    def do_POST(self):
        self.dispatch('POST')

    def do_PUT(self):
        self.dispatch('PUT')

    def do_PATCH(self):
        self.dispatch('PATCH')

    def do_DELETE(self):
        self.dispatch('DELETE')

    def base_url(self):
        host = self.headers.get('Host') or '%s:%d' % self.server.server_address[:2]
        return '%s://%s' % (self.server.scheme, host)

    def dispatch(self, method):
        started = time.monotonic()
        fake = self.server.fake
        length = int(self.headers.get('Content-Length') or 0)
        raw_body = self.rfile.read(length) if length else b''
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query_pairs = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        query = nest(query_pairs)
        if path.startswith(CONTROL_PREFIX + '/') or path == CONTROL_PREFIX:
            try:
                body = json.loads(raw_body) if raw_body.strip() else {}
            except ValueError:
                return self.respond(400, {'error': 'control bodies are JSON'})
            with fake.lock:
                try:
                    status, payload = fake.control(method, path, {k: v for k, v in query_pairs}, body)
                except ApiError as e:
                    status, payload = e.status, e.body
            return self.respond(status, payload)
        if not path.startswith(API_PREFIX + '/'):
            return self.respond(404, {'error': '404 Not Found'})

        h = self.headers
        auth = ('private-token' if h.get('PRIVATE-TOKEN') else 'bearer'
                if (h.get('Authorization') or '').lower().startswith('bearer ') else
                'param' if any(p in query for p in TOKEN_PARAMS) else None)
        latency, failing = fake.take_faults(method, path)
        if latency:
            time.sleep(latency)
        body_keys = []
        user = None
        extra_headers = {}
        if failing:
            status, payload, extra_headers = fake.fault_response(failing)
        else:
            try:
                body_params = parse_body(h.get('Content-Type'), raw_body)
                body_keys = list(body_params)
                params = dict(query)
                params.update(body_params)
                if auth is None and any(p in body_params for p in TOKEN_PARAMS):
                    auth = 'param'
                req = ApiRequest(method, path[len(API_PREFIX):], path, params, h, self.client_address[0],
                                 self.base_url())
                with fake.lock:
                    try:
                        status, payload, extra_headers, changed = fake.api.serve(req)
                        if changed:
                            fake.store.save()
                    finally:
                        user = req.user_name
                if user and user.startswith('runner#'):
                    auth = 'runner-token'
            except BodyError as e:
                status, payload = 400, {'error': str(e)}
            except ApiError as e:
                status, payload, extra_headers = e.status, e.body, e.headers
            except Exception:
                log('internal error serving %s %s:\n%s' % (method, path, fake.scrub(traceback.format_exc())))
                status, payload = 500, {'message': '500 Internal Server Error'}
        with fake.lock:
            fake.record(method, path, query, body_keys, status, started, auth, user, bool(failing))
        self.respond(status, payload, extra_headers, head=method == 'HEAD')

    def respond(self, status, payload, headers=None, head=False):
        if payload is None or status in (204, 304):
            data, ctype = b'', None
        elif isinstance(payload, str):
            data, ctype = payload.encode(), 'text/plain'
        else:
            data, ctype = json.dumps(payload, separators=(',', ':')).encode(), 'application/json'
        self.send_response(status)
        if ctype:
            self.send_header('Content-Type', ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if status not in (204, 304):
            self.send_header('Content-Length', str(len(data)))
        self.send_header('Cache-Control', 'no-cache')
        self.end_headers()
        if data and not head:
            self.wfile.write(data)


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, fake, context=None):
        self.fake, self.context = fake, context
        self.scheme = 'https' if context else 'http'
        super().__init__(address, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.settimeout(60)
        if self.context:
            # The handshake runs in the request's thread (Handler.setup), not in the accepting loop.
            sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        pass   # a client that hangs up or fails the TLS handshake is its own problem


def serve(store, host, port, cert=None, key=None, tls_listen=None):
    """Serves on (host, port), with TLS if cert is given; tls_listen (host, port) adds an HTTPS listener beside a
    plain one. Both share one state. Prints one "listening on URL" line per listener."""
    context = None
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
    fake = Fake(store)
    listeners = [((host, port), None if tls_listen else context)]
    if tls_listen:
        listeners.append((tls_listen, context))
    servers = []
    try:
        for address, ctx in listeners:
            family = socket.AF_INET6 if ':' in address[0] else socket.AF_INET
            server_class = type('Server6' if family == socket.AF_INET6 else 'Server4', (Server,),
                                {'address_family': family})
            servers.append(server_class(address, fake, ctx))
        for server in servers:
            bound_host, bound_port = server.server_address[:2]
            shown = '[%s]' % bound_host if ':' in bound_host else bound_host
            sys.stdout.write('listening on %s://%s:%d\n' % (server.scheme, shown, bound_port))
        sys.stdout.flush()
        for server in servers[1:]:
            threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.2}, daemon=True).start()
        servers[0].serve_forever(poll_interval=0.2)
    finally:
        for server in servers:
            server.server_close()
