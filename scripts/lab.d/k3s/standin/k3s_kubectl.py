"""`kubectl` (also `k3s kubectl`): the verbs an admin of this lab uses, with kubectl's output, messages and exit
codes, talking HTTPS to the API with the kubeconfig's CA and credentials."""
import base64
import json
import os
import re
import sys
import time
import urllib.parse

import k3s_api as api
import k3s_yaml
from k3s_common import (VERSION, client_context, parse_rfc3339, request, RequestError, warn)

USAGE = '''kubectl controls the Kubernetes cluster manager.

 Find more information at: https://kubernetes.io/docs/reference/kubectl/

Commands supported by the k3s stand-in:
  get, apply, create, delete, cordon, uncordon, drain, wait, label, annotate, auth can-i, cluster-info, config view,
  version

Usage:
  kubectl [flags] [options]
'''


class Fail(Exception):
    """Ends the command: the message goes to stderr, exit status 1 unless given."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.message, self.code = message, code


# ---------------------------------------------------------------------------------------------------- arguments

VALUE_FLAGS = {'kubeconfig', 'context', 'server', 's', 'token', 'certificate-authority', 'client-certificate',
               'client-key', 'namespace', 'n', 'request-timeout', 'output', 'o', 'selector', 'l', 'filename', 'f',
               'timeout', 'for', 'field-selector', 'clusterrole', 'user', 'group', 'serviceaccount', 'duration',
               'grace-period', 'v', 'cluster', 'role', 'as', 'dry-run', 'pod-selector', 'chunk-size', 'template',
               'field-manager', 'sort-by', 'from-literal', 'type', 'audience', 'label-columns', 'L'}


def parse_args(argv):
    opts, pos, i = {}, [], 0
    while i < len(argv):
        a = argv[i]
        if a == '--':
            pos.extend(argv[i + 1:])
            break
        if a.startswith('--'):
            name, eq, val = a[2:].partition('=')
            if not eq and name in VALUE_FLAGS:
                if i + 1 >= len(argv):
                    raise Fail('error: flag needs an argument: --%s' % name)
                i += 1
                val = argv[i]
            elif not eq:
                val = 'true'
            opts.setdefault(name, []).append(val)
        elif a.startswith('-') and len(a) > 1 and not re.match(r'^-\d', a):
            name, rest = a[1], a[2:]
            if name in VALUE_FLAGS:
                if rest.startswith('='):
                    rest = rest[1:]
                if not rest:
                    if i + 1 >= len(argv):
                        raise Fail('error: flag needs an argument: \'%s\' in -%s' % (name, name))
                    i += 1
                    rest = argv[i]
                opts.setdefault(name, []).append(rest)
            else:
                for ch in a[1:]:
                    opts.setdefault(ch, []).append('true')
        else:
            pos.append(a)
        i += 1
    return opts, pos


def opt(opts, *names, default=None):
    for n in names:
        if n in opts:
            return opts[n][-1]
    return default


def flag(opts, *names):
    v = opt(opts, *names)
    return v is not None and v.lower() not in ('false', '0')


# ---------------------------------------------------------------------------------------------------- client

def _kubeconfig_path(opts):
    """k3s's kubectl: --kubeconfig, else $KUBECONFIG, else ~/.kube/k3s.yaml or /etc/rancher/k3s/k3s.yaml when
    present, else ~/.kube/config."""
    if opt(opts, 'kubeconfig'):
        return opt(opts, 'kubeconfig')
    if os.environ.get('KUBECONFIG'):
        return os.environ['KUBECONFIG'].split(':')[0]
    home = os.path.expanduser('~/.kube/k3s.yaml')
    for candidate in (home, '/etc/rancher/k3s/k3s.yaml'):
        if os.path.exists(candidate):
            if not os.access(candidate, os.R_OK):
                warn('Unable to read %s, please start server with --write-kubeconfig-mode or --write-kubeconfig-group '
                     'to modify kube config permissions' % candidate)
            return candidate
    return os.path.expanduser('~/.kube/config')


def load_kubeconfig(opts):
    path = _kubeconfig_path(opts)
    if not os.path.exists(path):
        if opt(opts, 'kubeconfig') or os.environ.get('KUBECONFIG'):
            if opt(opts, 'kubeconfig'):
                raise Fail('error: stat %s: no such file or directory' % path)
        return {}, path
    try:
        with open(path) as f:
            cfg = k3s_yaml.load(f.read()) or {}
    except PermissionError:
        raise Fail('error: error loading config file "%s": open %s: permission denied' % (path, path))
    except k3s_yaml.YAMLError as e:
        raise Fail('error: error loading config file "%s": %s' % (path, e))
    return cfg, path


class Kube:
    def __init__(self, opts):
        cfg, self.config_path = load_kubeconfig(opts)
        self.config = cfg
        ctx_name = opt(opts, 'context') or cfg.get('current-context')
        ctx = next((c.get('context') or {} for c in cfg.get('contexts') or [] if c.get('name') == ctx_name), {})
        cluster = next((c.get('cluster') or {} for c in cfg.get('clusters') or [] if c.get('name') == ctx.get('cluster')), {})
        user = next((u.get('user') or {} for u in cfg.get('users') or [] if u.get('name') == ctx.get('user')), {})
        self.namespace = opt(opts, 'namespace', 'n') or ctx.get('namespace') or 'default'
        self.server = (opt(opts, 'server', 's') or cluster.get('server') or 'http://localhost:8080').rstrip('/')
        if '://' not in self.server:
            self.server = 'https://' + self.server
        ca = None
        if opt(opts, 'certificate-authority'):
            ca = _read_file(opt(opts, 'certificate-authority'))
        elif cluster.get('certificate-authority-data'):
            ca = base64.b64decode(cluster['certificate-authority-data']).decode()
        elif cluster.get('certificate-authority'):
            ca = _read_file(cluster['certificate-authority'])
        insecure = flag(opts, 'insecure-skip-tls-verify') or cluster.get('insecure-skip-tls-verify') is True
        cert = key = None
        if opt(opts, 'client-certificate'):
            cert = _read_file(opt(opts, 'client-certificate'))
        elif user.get('client-certificate-data'):
            cert = base64.b64decode(user['client-certificate-data']).decode()
        elif user.get('client-certificate'):
            cert = _read_file(user['client-certificate'])
        if opt(opts, 'client-key'):
            key = _read_file(opt(opts, 'client-key'))
        elif user.get('client-key-data'):
            key = base64.b64decode(user['client-key-data']).decode()
        elif user.get('client-key'):
            key = _read_file(user['client-key'])
        self.headers = {}
        token = opt(opts, 'token') or user.get('token')
        if token:
            self.headers['Authorization'] = 'Bearer ' + token      # sent along with any client certificate, as kubectl does
        elif user.get('username'):
            self.headers['Authorization'] = 'Basic ' + base64.b64encode(
                ('%s:%s' % (user['username'], user.get('password', ''))).encode()).decode()
        self.ctx = None
        if self.server.startswith('https://'):
            try:
                self.ctx = client_context(ca_pem=ca, cert_pem=cert, key_pem=key, insecure=insecure)
            except Exception as e:
                raise Fail('error: unable to load client credentials: %s' % e)
        self.timeout = _duration(opt(opts, 'request-timeout') or '0') or 32.0

    def raw(self, method, path):
        try:
            return request(method, self.server + path, None, self.ctx, dict(self.headers), timeout=self.timeout)
        except RequestError as e:
            raise self._transport_failure(e)

    def call(self, method, path, body=None, ctype='application/json', ok=(200, 201)):
        headers = dict(self.headers)
        if body is not None:
            headers['Content-Type'] = ctype
        url = self.server + path
        try:
            status, reason, _, payload = request(method, url, body, self.ctx, headers, timeout=self.timeout)
        except RequestError as e:
            raise self._transport_failure(e)
        try:
            obj = json.loads(payload) if payload else {}
        except ValueError:
            obj = {'message': payload.decode(errors='replace').strip()}
        if status in ok:
            return status, obj
        raise APIFailure(status, reason, obj)

    def _transport_failure(self, e):
        host = urllib.parse.urlsplit(self.server).netloc
        if e.kind == 'refused':
            sys.stderr.write('E%s %7d memcache.go:265] "Unhandled Error" err="couldn\'t get current server API group list: '
                             'Get \\"%s/api?timeout=32s\\": %s"\n'
                             % (time.strftime('%m%d %H:%M:%S.000000'), os.getpid(), self.server, e.reason))
            return Fail('The connection to the server %s was refused - did you specify the right host or port?' % host)
        return Fail('Unable to connect to the server: %s' % e.reason)

    def path(self, plural, ns=None, name=None, sub=None):
        group, version = api.RESOURCES[plural][0], api.RESOURCES[plural][1]
        p = '/apis/%s/%s' % (group, version) if group else '/api/v1'
        if api.RESOURCES[plural][3] and ns:
            p += '/namespaces/' + ns
        p += '/' + plural
        if name:
            p += '/' + urllib.parse.quote(name)
        if sub:
            p += '/' + sub
        return p


class APIFailure(Exception):
    def __init__(self, status, reason, obj):
        super().__init__(obj.get('message', reason))
        self.status, self.reason, self.obj = status, reason, obj

    def text(self, prefix=''):
        """kubectl's wording: Error from server (NotFound): ..., or the login hint on 401."""
        if self.status == 401:
            return 'error: You must be logged in to the server (Unauthorized)'
        reason = self.obj.get('reason') or {403: 'Forbidden', 404: 'NotFound', 409: 'Conflict', 422: 'Invalid',
                                             503: 'ServiceUnavailable'}.get(self.status, self.reason)
        return 'Error from server (%s): %s%s' % (reason, prefix, self.obj.get('message') or self.reason)


def _read_file(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise Fail('error: unable to read %s: %s' % (path, e.strerror))


def _duration(text):
    """Go durations: 90s, 2m, 1h30m, 500ms; a bare number is seconds."""
    if not text:
        return 0.0
    if re.match(r'^\d+(\.\d+)?$', text):
        return float(text)
    total = 0.0
    for num, unit in re.findall(r'(\d+(?:\.\d+)?)(ms|s|m|h)', text):
        total += float(num) * {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600}[unit]
    return total


# ---------------------------------------------------------------------------------------------------- printing

def age(ts):
    """kubectl's HumanDuration."""
    d = int(time.time() - parse_rfc3339(ts))
    if d < -1:
        return '<invalid>'
    d = max(d, 0)
    if d < 120:
        return '%ds' % d
    m = d // 60
    if m < 10:
        s = d % 60
        return '%dm%ds' % (m, s) if s else '%dm' % m
    if m < 180:
        return '%dm' % m
    h = d // 3600
    if h < 8:
        return '%dh%dm' % (h, m % 60) if m % 60 else '%dh' % h
    if h < 48:
        return '%dh' % h
    days = h // 24
    if h < 24 * 8:
        return '%dd%dh' % (days, h % 24) if h % 24 else '%dd' % days
    if days < 365 * 2:
        return '%dd' % days
    years = days // 365
    return '%dy%dd' % (years, days % 365) if years < 8 else '%dy' % years


def table(rows, headers=True):
    """tabwriter with padding 3, as kubectl prints: the last column is not padded."""
    if not headers:
        rows = rows[1:]
    if not rows:
        return ''
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [str(c).ljust(widths[i] + 3) if i < len(r) - 1 else str(c) for i, c in enumerate(r)]
        out.append(''.join(cells).rstrip())
    return '\n'.join(out) + '\n'


def node_roles(node):
    roles = sorted(k.split('/', 1)[1] for k in node['metadata'].get('labels', {}) if k.startswith('node-role.kubernetes.io/'))
    role = node['metadata'].get('labels', {}).get('kubernetes.io/role')
    if role and role not in roles:
        roles.append(role)
    return ','.join(sorted(roles)) or '<none>'


def node_status(node):
    ready = next((c for c in node.get('status', {}).get('conditions') or [] if c.get('type') == 'Ready'), None)
    s = 'Unknown' if ready is None else ('Ready' if ready.get('status') == 'True' else 'NotReady')
    if node.get('spec', {}).get('unschedulable'):
        s += ',SchedulingDisabled'
    return s


def pod_columns(pod):
    cs = (pod.get('status', {}).get('containerStatuses') or [{}])
    ready = sum(1 for c in cs if c.get('ready'))
    phase = pod.get('status', {}).get('phase', 'Pending')
    state = cs[0].get('state', {}) if cs else {}
    if phase == 'Succeeded':
        status = 'Completed'
    elif 'waiting' in state:
        status = state['waiting'].get('reason', 'Pending')
    else:
        status = phase
    return '%d/%d' % (ready, len(pod.get('spec', {}).get('containers') or [1])), status, \
        str(sum(c.get('restartCount', 0) for c in cs))


def rows_for(plural, items, wide, all_ns, show_labels, label_columns=()):
    head, rows = [], []
    if plural == 'nodes':
        head = ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION']
        if wide:
            head += ['INTERNAL-IP', 'EXTERNAL-IP', 'OS-IMAGE', 'KERNEL-VERSION', 'CONTAINER-RUNTIME']
        for n in items:
            addr = {a['type']: a['address'] for a in n.get('status', {}).get('addresses', [])}
            info = n.get('status', {}).get('nodeInfo', {})
            row = [n['metadata']['name'], node_status(n), node_roles(n), age(n['metadata'].get('creationTimestamp')),
                   info.get('kubeletVersion', '')]
            if wide:
                row += [addr.get('InternalIP', '<none>'), addr.get('ExternalIP', '<none>'), info.get('osImage', ''),
                        info.get('kernelVersion', ''), info.get('containerRuntimeVersion', '')]
            rows.append(row)
    elif plural == 'pods':
        head = ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE'] + (['IP', 'NODE', 'NOMINATED NODE', 'READINESS GATES'] if wide else [])
        for p in items:
            ready, status, restarts = pod_columns(p)
            row = [p['metadata']['name'], ready, status, restarts, age(p['metadata'].get('creationTimestamp'))]
            if wide:
                row += [p.get('status', {}).get('podIP', '<none>'), p.get('spec', {}).get('nodeName', '<none>'), '<none>', '<none>']
            rows.append(row)
    elif plural == 'namespaces':
        head = ['NAME', 'STATUS', 'AGE']
        rows = [[o['metadata']['name'], o.get('status', {}).get('phase', 'Active'), age(o['metadata'].get('creationTimestamp'))]
                for o in items]
    elif plural == 'serviceaccounts':
        head = ['NAME', 'SECRETS', 'AGE']
        rows = [[o['metadata']['name'], str(len(o.get('secrets') or [])), age(o['metadata'].get('creationTimestamp'))] for o in items]
    elif plural == 'secrets':
        head = ['NAME', 'TYPE', 'DATA', 'AGE']
        rows = [[o['metadata']['name'], o.get('type', 'Opaque'), str(len(o.get('data') or {})),
                 age(o['metadata'].get('creationTimestamp'))] for o in items]
    elif plural == 'configmaps':
        head = ['NAME', 'DATA', 'AGE']
        rows = [[o['metadata']['name'], str(len(o.get('data') or {})), age(o['metadata'].get('creationTimestamp'))] for o in items]
    elif plural == 'services':
        head = ['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE']
        for o in items:
            spec = o.get('spec', {})
            ports = ','.join('%d/%s' % (p['port'], p.get('protocol', 'TCP')) for p in spec.get('ports') or [])
            rows.append([o['metadata']['name'], spec.get('type', 'ClusterIP'), spec.get('clusterIP', ''),
                         '<pending>' if spec.get('type') == 'LoadBalancer' else '<none>', ports,
                         age(o['metadata'].get('creationTimestamp'))])
    elif plural in ('clusterrolebindings', 'rolebindings'):
        head = ['NAME', 'ROLE', 'AGE'] + (['USERS', 'GROUPS', 'SERVICEACCOUNTS'] if wide else [])
        for o in items:
            ref = o.get('roleRef', {})
            row = [o['metadata']['name'], '%s/%s' % (ref.get('kind'), ref.get('name')), age(o['metadata'].get('creationTimestamp'))]
            if wide:
                subj = o.get('subjects') or []
                row += [', '.join(s['name'] for s in subj if s.get('kind') == 'User'),
                        ', '.join(s['name'] for s in subj if s.get('kind') == 'Group'),
                        ', '.join('%s/%s' % (s.get('namespace', ''), s['name']) for s in subj if s.get('kind') == 'ServiceAccount')]
            rows.append(row)
    elif plural in ('clusterroles', 'roles'):
        head = ['NAME', 'CREATED AT']
        rows = [[o['metadata']['name'], o['metadata'].get('creationTimestamp', '')] for o in items]
    else:
        head = ['NAME', 'AGE']
        rows = [[o['metadata']['name'], age(o['metadata'].get('creationTimestamp'))] for o in items]
    if all_ns and api.RESOURCES[plural][3]:
        head = ['NAMESPACE'] + head
        rows = [[o['metadata'].get('namespace', '')] + r for o, r in zip(items, rows)]
    for col in label_columns:
        head = head + [col.rsplit('/', 1)[-1].upper()]
        rows = [r + [(o['metadata'].get('labels') or {}).get(col, '')] for o, r in zip(items, rows)]
    if show_labels:
        head = head + ['LABELS']
        rows = [r + [','.join('%s=%s' % kv for kv in sorted((o['metadata'].get('labels') or {}).items())) or '<none>']
                for o, r in zip(items, rows)]
    return [head] + rows


def with_type(plural, obj):
    o = dict(obj)
    o['apiVersion'] = api.api_version(plural)
    o['kind'] = api.RESOURCES[plural][2]
    return {k: o[k] for k in sorted(o)}


def type_name(plural):
    group = api.RESOURCES[plural][0]
    return api.RESOURCES[plural][2].lower() + ('.' + group if group else '')


def output(fmt, plural, objs, single, no_headers=False, all_ns=False, show_labels=False, label_columns=()):
    if fmt in ('json', 'yaml') or (fmt or '').startswith(('jsonpath', 'go-template')):
        data = objs[0] if single else {'apiVersion': 'v1', 'items': objs, 'kind': 'List', 'metadata': {'resourceVersion': ''}}
        if fmt == 'json':
            return json.dumps(data, indent=4, sort_keys=True) + '\n'
        if fmt == 'yaml':
            return k3s_yaml.dump(data)
        if fmt.startswith('jsonpath'):
            _, _, template = fmt.partition('=')
            if not template:
                raise Fail('error: template format specified but no template given')
            try:
                return k3s_yaml.jsonpath(template.strip("'"), data)
            except k3s_yaml.JSONPathError as e:
                raise Fail('error: error executing jsonpath "%s": %s' % (template, e))
        raise Fail('error: go-template output is not supported by the k3s stand-in')
    if fmt == 'name':
        return ''.join('%s/%s\n' % (type_name(plural), o['metadata']['name']) for o in objs)
    if fmt not in (None, '', 'wide'):
        raise Fail('error: unable to match a printer suitable for the output format "%s", allowed formats are: '
                   'custom-columns,custom-columns-file,go-template,go-template-file,json,jsonpath,jsonpath-as-json,'
                   'jsonpath-file,name,template,templatefile,wide,yaml' % fmt)
    return table(rows_for(plural, objs, fmt == 'wide', all_ns, show_labels, label_columns), not no_headers)


# ---------------------------------------------------------------------------------------------------- commands

def cmd_get(k, opts, pos):
    raw = opt(opts, 'raw')
    if raw:
        # `get --raw=/readyz`: the body as the server sent it (non-resource URLs included).
        status, reason, _, payload = k.raw('GET', raw)
        if status != 200:
            try:
                obj = json.loads(payload)
            except ValueError:
                obj = {'message': payload.decode(errors='replace').strip()}
            raise APIFailure(status, reason, obj)
        sys.stdout.write(payload.decode(errors='replace'))
        return 0
    if not pos:
        raise Fail('You must specify the type of resource to get. Use "kubectl api-resources" for a complete list of '
                   'supported resources.\n\nerror: Required resource not specified.\nUse "kubectl explain <resource>" '
                   'for a detailed description of that resource (e.g. kubectl explain pods).\n'
                   'See \'kubectl get -h\' for help and examples')
    targets = _targets(pos)
    fmt = opt(opts, 'output', 'o')
    all_ns = flag(opts, 'all-namespaces', 'A')
    selector = opt(opts, 'selector', 'l')
    fields = opt(opts, 'field-selector')
    out, errors, printed_any = [], [], False
    single = len(targets) == 1 and len(targets[0][1]) == 1 and fmt not in (None, '', 'wide', 'name')
    collected = []
    for plural, names in targets:
        ns = None if all_ns else k.namespace
        if names:
            objs = []
            for name in names:
                try:
                    _, obj = k.call('GET', k.path(plural, ns, name))
                    objs.append(with_type(plural, obj))
                except APIFailure as e:
                    errors.append(e.text())
            collected.append((plural, objs))
        else:
            query = {}
            if selector:
                query['labelSelector'] = selector
            if fields:
                query['fieldSelector'] = fields
            path = k.path(plural, ns) + ('?' + urllib.parse.urlencode(query) if query else '')
            try:
                _, lst = k.call('GET', path)
            except APIFailure as e:
                raise Fail(e.text())
            collected.append((plural, [with_type(plural, o) for o in lst.get('items') or []]))
    if fmt in ('json', 'yaml') or (fmt or '').startswith(('jsonpath', 'go-template')):
        objs = [o for _, items in collected for o in items]
        if not single:
            out.append(output(fmt, collected[0][0], objs, False))
        elif objs:
            out.append(output(fmt, collected[0][0], objs, True))
    else:
        for plural, objs in collected:
            if objs:
                printed_any = True
                columns = [c for v in opts.get('label-columns', []) + opts.get('L', []) for c in v.split(',') if c]
                out.append(output(fmt, plural, objs, False, no_headers=flag(opts, 'no-headers'), all_ns=all_ns,
                                  show_labels=flag(opts, 'show-labels'), label_columns=columns))
        if not printed_any and not errors:
            plural = collected[0][0] if collected else None
            if plural and api.RESOURCES[plural][3] and not all_ns:
                sys.stderr.write('No resources found in %s namespace.\n' % k.namespace)
            else:
                sys.stderr.write('No resources found\n')
    sys.stdout.write(''.join(out))
    if errors:
        raise Fail('\n'.join(errors))


def _targets(pos):
    """`nodes`, `nodes a b`, `node/a secret/b`, `sa,secret`."""
    if all('/' in p for p in pos):
        out = []
        for p in pos:
            word, _, name = p.partition('/')
            out.append((_resource(word), [name]))
        return out
    words, names = pos[0].split(','), pos[1:]
    return [(_resource(w), names) for w in words]


def _resource(word):
    plural = api.resolve_resource(word)
    if plural is None:
        raise Fail('error: the server doesn\'t have a resource type "%s"' % word)
    return plural


def read_manifests(paths):
    docs = []
    for path in paths:
        if path == '-':
            text, source = sys.stdin.read(), 'STDIN'
        else:
            if os.path.isdir(path):
                files = sorted(os.path.join(path, f) for f in os.listdir(path) if re.search(r'\.(ya?ml|json)$', f))
            else:
                files = [path]
            for f in files:
                try:
                    with open(f) as fh:
                        text = fh.read()
                except OSError:
                    raise Fail('error: the path "%s" does not exist' % f)
                docs.extend(_parse_manifest(text, f))
            continue
        docs.extend(_parse_manifest(text, source))
    return docs


def _parse_manifest(text, source):
    try:
        stripped = text.lstrip()
        parsed = [json.loads(text)] if stripped.startswith(('{', '[')) else k3s_yaml.load_all(text)
    except (ValueError, k3s_yaml.YAMLError) as e:
        raise Fail('error: error parsing %s: error converting YAML to JSON: %s' % (source, e))
    out = []
    for d in parsed:
        if isinstance(d, dict) and d.get('kind') == 'List':
            out.extend((i, source) for i in d.get('items') or [])
        elif isinstance(d, dict):
            out.append((d, source))
    return out


def _doc_target(k, doc, source):
    kind, version = doc.get('kind'), doc.get('apiVersion')
    if not kind or not version:
        raise Fail('error: error validating "%s": error validating data: [apiVersion not set, kind not set]; if you choose '
                   'to ignore these errors, turn validation off with --validate=false' % source)
    plural = api.KIND_TO_PLURAL.get(kind)
    if plural is None or api.api_version(plural) != version:
        raise Fail('error: resource mapping not found for name: "%s" namespace: "%s" from "%s": no matches for kind "%s" in '
                   'version "%s"\nensure CRDs are installed first' % (doc.get('metadata', {}).get('name', ''),
                                                                       doc.get('metadata', {}).get('namespace', ''), source, kind, version))
    name = (doc.get('metadata') or {}).get('name')
    ns = None
    if api.RESOURCES[plural][3]:
        ns = (doc.get('metadata') or {}).get('namespace') or k.namespace
    return plural, ns, name


def cmd_apply(k, opts, pos):
    files = opts.get('filename') or opts.get('f')
    if not files:
        raise Fail('error: must specify one of -f and -k')
    failed = []
    for doc, source in read_manifests(files):
        try:
            plural, ns, name = _doc_target(k, doc, source)
        except Fail as e:
            failed.append(e.message)
            continue
        last = json.dumps(doc, separators=(',', ':'), sort_keys=True) + '\n'
        body = json.loads(json.dumps(doc))
        body.setdefault('metadata', {}).setdefault('annotations', {})['kubectl.kubernetes.io/last-applied-configuration'] = last
        if ns and api.RESOURCES[plural][3]:
            body['metadata']['namespace'] = ns
        label = '%s/%s' % (type_name(plural), name)
        try:
            _, current = k.call('GET', k.path(plural, ns, name))
        except APIFailure as e:
            if e.status != 404:
                failed.append(e.text('error when retrieving current configuration of:\nResource: "%s", Name: "%s", '
                                     'Namespace: "%s"\nfrom server for: "%s": ' % (plural, name, ns or '', source)))
                continue
            try:
                k.call('POST', k.path(plural, ns), body)
                print('%s created' % label)
            except APIFailure as e2:
                failed.append(e2.text('error when creating "%s": ' % source))
            continue
        prev_text = (current['metadata'].get('annotations') or {}).get('kubectl.kubernetes.io/last-applied-configuration')
        if prev_text == last:
            print('%s unchanged' % label)
            continue
        if not prev_text:
            sys.stderr.write('Warning: resource %s/%s is missing the kubectl.kubernetes.io/last-applied-configuration '
                             'annotation which is required by kubectl apply. kubectl apply should only be used on resources '
                             'created declaratively by either kubectl create --save-config or kubectl apply. The missing '
                             'annotation will be patched automatically.\n' % (plural, name))
        prev = json.loads(prev_text) if prev_text else {}
        patch = _three_way(prev, body)
        try:
            k.call('PATCH', k.path(plural, ns, name), patch, 'application/merge-patch+json')
            print('%s configured' % label)
        except APIFailure as e:
            failed.append(e.text('error when applying patch:\nto:\nResource: "%s", Name: "%s", Namespace: "%s"\nfor: "%s": '
                                 % (plural, name, ns or '', source)))
    if failed:
        raise Fail('\n'.join(failed))


def _three_way(prev, new):
    """A merge patch that sets everything in `new` and removes what the previous apply set and `new` dropped."""
    if not isinstance(prev, dict) or not isinstance(new, dict):
        return new
    patch = {}
    for k2, v in new.items():
        patch[k2] = _three_way(prev.get(k2), v) if isinstance(v, dict) else v
    for k2 in prev:
        if k2 not in new:
            patch[k2] = None
    return patch


def cmd_create(k, opts, pos):
    if opts.get('filename') or opts.get('f'):
        failed = []
        for doc, source in read_manifests(opts.get('filename') or opts.get('f')):
            plural, ns, name = _doc_target(k, doc, source)
            try:
                k.call('POST', k.path(plural, ns), doc)
                print('%s/%s created' % (type_name(plural), name))
            except APIFailure as e:
                failed.append(e.text('error when creating "%s": ' % source))
        if failed:
            raise Fail('\n'.join(failed))
        return
    if not pos:
        raise Fail('error: Unexpected args: []')
    what, rest = pos[0], pos[1:]
    if what in ('namespace', 'ns') and rest:
        body, plural, ns = {'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': rest[0]}}, 'namespaces', None
    elif what in ('serviceaccount', 'sa') and rest:
        body, plural, ns = {'apiVersion': 'v1', 'kind': 'ServiceAccount', 'metadata': {'name': rest[0]}}, 'serviceaccounts', k.namespace
    elif what == 'clusterrolebinding' and rest:
        subjects = [{'kind': 'User', 'apiGroup': 'rbac.authorization.k8s.io', 'name': u} for u in opts.get('user', [])]
        subjects += [{'kind': 'Group', 'apiGroup': 'rbac.authorization.k8s.io', 'name': g} for g in opts.get('group', [])]
        for sa in opts.get('serviceaccount', []):
            sns, _, sname = sa.partition(':')
            if not sname:
                raise Fail('error: serviceaccount must be <namespace>:<name>')
            subjects.append({'kind': 'ServiceAccount', 'namespace': sns, 'name': sname})
        if not opt(opts, 'clusterrole'):
            raise Fail('error: required flag(s) "clusterrole" not set')
        body = {'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'ClusterRoleBinding', 'metadata': {'name': rest[0]},
                'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'ClusterRole', 'name': opt(opts, 'clusterrole')},
                'subjects': subjects}
        plural, ns = 'clusterrolebindings', None
    elif what == 'token' and rest:
        spec = {}
        if opt(opts, 'duration'):
            spec['expirationSeconds'] = int(_duration(opt(opts, 'duration')))
        if opts.get('audience'):
            spec['audiences'] = opts['audience']
        try:
            _, obj = k.call('POST', k.path('serviceaccounts', k.namespace, rest[0], 'token'),
                            {'apiVersion': 'authentication.k8s.io/v1', 'kind': 'TokenRequest', 'spec': spec})
        except APIFailure as e:
            raise Fail(e.text())
        print(obj['status']['token'])
        return
    else:
        raise Fail('error: unknown command "%s" for "kubectl create" (the k3s stand-in creates namespace, serviceaccount, '
                   'clusterrolebinding and token)' % ' '.join(pos))
    try:
        k.call('POST', k.path(plural, ns), body)
    except APIFailure as e:
        raise Fail(e.text())
    print('%s/%s created' % (type_name(plural), rest[0]))


def cmd_delete(k, opts, pos):
    ignore = flag(opts, 'ignore-not-found')
    targets = []
    if opts.get('filename') or opts.get('f'):
        for doc, source in read_manifests(opts.get('filename') or opts.get('f')):
            plural, ns, name = _doc_target(k, doc, source)
            targets.append((plural, ns, name))
    else:
        if not pos:
            raise Fail('error: You must provide one or more resources by argument or filename.')
        for plural, names in _targets(pos):
            if not names:
                raise Fail('error: resource(s) were provided, but no name was specified')
            targets.extend((plural, k.namespace if api.RESOURCES[plural][3] else None, n) for n in names)
    failed = []
    for plural, ns, name in targets:
        try:
            k.call('DELETE', k.path(plural, ns, name))
            print('%s "%s" deleted' % (type_name(plural), name))
        except APIFailure as e:
            if not (e.status == 404 and ignore):
                failed.append(e.text())
    if failed:
        raise Fail('\n'.join(failed))


def _get_node(k, name):
    try:
        return k.call('GET', k.path('nodes', None, name))[1]
    except APIFailure as e:
        raise Fail(e.text())


def cmd_cordon(k, opts, pos, on=True):
    if not pos:
        verb = 'cordon' if on else 'uncordon'
        raise Fail('error: USAGE: %s NODE [flags]\nSee \'kubectl %s -h\' for help and examples' % (verb, verb))
    for name in pos:
        node = _get_node(k, name)
        verb = 'cordoned' if on else 'uncordoned'
        if bool(node.get('spec', {}).get('unschedulable')) == on:
            print('node/%s already %s' % (name, verb))
            continue
        try:
            k.call('PATCH', k.path('nodes', None, name), {'spec': {'unschedulable': True if on else None}},
                   'application/merge-patch+json')
        except APIFailure as e:
            raise Fail(e.text())
        print('node/%s %s' % (name, verb))


def cmd_drain(k, opts, pos):
    if not pos:
        raise Fail('error: USAGE: drain NODE [flags]\nSee \'kubectl drain -h\' for help and examples')
    name = pos[0]
    cmd_cordon(k, opts, [name], True)
    ignore_ds = flag(opts, 'ignore-daemonsets')
    empty_dir = flag(opts, 'delete-emptydir-data') or flag(opts, 'delete-local-data')
    force = flag(opts, 'force')
    try:
        _, pods = k.call('GET', '/api/v1/pods?' + urllib.parse.urlencode({'fieldSelector': 'spec.nodeName=' + name}))
    except APIFailure as e:
        raise Fail(e.text())
    fatal, warnings, evict = {}, {}, []   # insertion order = kubectl's filter order (DaemonSet, local storage, unmanaged)
    for p in pods.get('items') or []:
        ref = '%s/%s' % (p['metadata']['namespace'], p['metadata']['name'])
        owners = p['metadata'].get('ownerReferences') or []
        finished = p.get('status', {}).get('phase') in ('Succeeded', 'Failed')
        if any(o.get('kind') == 'DaemonSet' for o in owners):
            if ignore_ds:
                warnings.setdefault('ignoring DaemonSet-managed Pods', []).append(ref)
            else:
                fatal.setdefault('DaemonSet-managed Pods (use --ignore-daemonsets to ignore)', []).append(ref)
            continue
        if not owners and not finished:
            if force:
                warnings.setdefault('deleting Pods that declare no controller', []).append(ref)
            else:
                fatal.setdefault('Pods declare no controller (use --force to override)', []).append(ref)
        if not finished and any('emptyDir' in v for v in p.get('spec', {}).get('volumes') or []):
            if empty_dir:
                warnings.setdefault('deleting Pods with local storage', []).append(ref)
            else:
                fatal.setdefault('Pods with local storage (use --delete-emptydir-data to override)', []).append(ref)
        evict.append(p)
    if fatal:
        errs = ['cannot delete %s: %s' % (msg, ', '.join(refs)) for msg, refs in fatal.items()]
        joined = errs[0] if len(errs) == 1 else '[%s]' % ', '.join(errs)
        raise Fail('error: unable to drain node "%s" due to error: %s, continuing command...\n'
                   'There are pending nodes to be drained:\n %s\n%s' % (name, joined, name, '\n'.join(errs)))
    if warnings:
        sys.stderr.write('Warning: %s\n' % '; '.join('%s: %s' % (msg, ', '.join(refs)) for msg, refs in warnings.items()))
    for p in evict:
        print('evicting pod %s/%s' % (p['metadata']['namespace'], p['metadata']['name']))
    for p in evict:
        try:
            k.call('POST', k.path('pods', p['metadata']['namespace'], p['metadata']['name'], 'eviction'),
                   {'apiVersion': 'policy/v1', 'kind': 'Eviction',
                    'metadata': {'name': p['metadata']['name'], 'namespace': p['metadata']['namespace']}})
        except APIFailure as e:
            if e.status != 404:
                raise Fail('error: unable to drain node "%s" due to error: %s' % (name, e.text()))
        print('pod/%s evicted' % p['metadata']['name'])
    print('node/%s drained' % name)


def cmd_wait(k, opts, pos):
    cond = opt(opts, 'for')
    if not cond:
        raise Fail('error: --for must be specified')
    timeout = _duration(opt(opts, 'timeout') or '30s')
    if flag(opts, 'all'):
        plural = _resource(pos[0]) if pos else 'nodes'
        ns = k.namespace if api.RESOURCES[plural][3] else None
        try:
            names = [o['metadata']['name'] for o in k.call('GET', k.path(plural, ns))[1].get('items') or []]
        except APIFailure as e:
            raise Fail(e.text())
        targets = [(plural, n) for n in names]
    else:
        targets = [(p, names[0]) for p, names in _targets(pos)]
    m = re.match(r'^condition=([^=]+)(?:=(.*))?$', cond)
    deadline = time.monotonic() + timeout
    for plural, name in targets:
        ns = k.namespace if api.RESOURCES[plural][3] else None
        while True:
            try:
                _, obj = k.call('GET', k.path(plural, ns, name))
                if cond == 'delete':
                    met = False
                elif m:
                    want = (m.group(2) or 'true').lower()
                    met = any(c.get('type', '').lower() == m.group(1).lower() and str(c.get('status', '')).lower() == want
                              for c in obj.get('status', {}).get('conditions') or [])
                else:
                    raise Fail('error: unrecognized condition: "%s"' % cond)
            except APIFailure as e:
                if e.status == 404 and cond == 'delete':
                    met = True
                elif e.status == 404:
                    raise Fail(e.text())
                else:
                    raise Fail(e.text())
            if met:
                print('%s/%s condition met' % (api.RESOURCES[plural][2].lower(), name))
                break
            if time.monotonic() >= deadline:
                raise Fail('error: timed out waiting for the condition on %s/%s' % (plural, name))
            time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))


def cmd_label(k, opts, pos):
    if len(pos) < 2:
        raise Fail('error: one or more resources must be specified as <resource> <name> or <resource>/<name>')
    if '/' in pos[0]:
        word, _, name = pos[0].partition('/')
        changes = pos[1:]
    else:
        word, name, changes = pos[0], pos[1], pos[2:]
    plural = _resource(word)
    ns = k.namespace if api.RESOURCES[plural][3] else None
    try:
        _, obj = k.call('GET', k.path(plural, ns, name))
    except APIFailure as e:
        raise Fail(e.text())
    labels, patch = obj['metadata'].get('labels') or {}, {}
    for c in changes:
        if c.endswith('-'):
            patch[c[:-1]] = None
        else:
            key, _, val = c.partition('=')
            if key in labels and labels[key] != val and not flag(opts, 'overwrite'):
                raise Fail("error: '%s' already has a value (%s), and --overwrite is false" % (key, labels[key]))
            patch[key] = val
    try:
        k.call('PATCH', k.path(plural, ns, name), {'metadata': {'labels': patch}}, 'application/merge-patch+json')
    except APIFailure as e:
        raise Fail(e.text())
    print('%s/%s %s' % (api.RESOURCES[plural][2].lower(), name, 'unlabeled' if all(v is None for v in patch.values()) else 'labeled'))


def _resources_and_pairs(pos, kind):
    """kubectl's split of the arguments: resources first, then KEY=VALUE and KEY- changes."""
    resources, pairs = [], []
    for a in pos:
        if ('=' in a and not a.startswith('=')) or (a.endswith('-') and a != '-'):
            pairs.append(a)
        elif pairs:
            raise Fail('error: all resources must be specified before %s changes: %s' % (kind, a))
        else:
            resources.append(a)
    return resources, pairs


def cmd_annotate(k, opts, pos):
    """Like `label`, with annotate's own rule: without --overwrite any existing key is refused, even with the same
    value; removing a key needs no --overwrite. Prints `node/x annotated` per object, changed or not."""
    resources, pairs = _resources_and_pairs(pos, 'annotation')
    if not resources:
        raise Fail('error: one or more resources must be specified as <resource> <name> or <resource>/<name>')
    new, remove = {}, []
    for p in pairs:
        if '=' in p and not p.startswith('='):
            key, _, val = p.partition('=')
            new[key] = val
        else:
            remove.append(p[:-1])
    if not new and not remove:
        raise Fail('error: at least one annotation update is required')
    both = [r for r in remove if r in new]
    if both:
        raise Fail('error: can not both modify and remove the following annotation(s) in the same command: %s'
                   % ', '.join(both))
    targets = _targets(resources)
    if any(not names for _, names in targets):
        raise Fail('error: resource(s) were provided, but no name was specified')
    failed = []     # kubectl goes on with the other objects and reports every error at the end
    for plural, names in targets:
        ns = k.namespace if api.RESOURCES[plural][3] else None
        for name in names:
            try:
                _, obj = k.call('GET', k.path(plural, ns, name))
            except APIFailure as e:
                failed.append(e.text())
                continue
            current = obj['metadata'].get('annotations') or {}
            if not flag(opts, 'overwrite'):
                taken = ["'%s' already has a value (%s)" % (key, current[key]) for key in new
                         if key in current and key != 'kubernetes.io/change-cause']
                if taken:
                    failed.append('error: --overwrite is false but found the following declared annotation(s): %s'
                                  % '; '.join(taken))
                    continue
            patch = dict(new)
            patch.update({key: None for key in remove})
            try:
                k.call('PATCH', k.path(plural, ns, name), {'metadata': {'annotations': patch}},
                       'application/merge-patch+json')
            except APIFailure as e:
                failed.append(e.text())
                continue
            print('%s/%s annotated' % (type_name(plural), name))
    if failed:
        raise Fail('\n'.join(failed))


def cmd_auth(k, opts, pos):
    if not pos or pos[0] != 'can-i':
        raise Fail('error: the k3s stand-in supports "kubectl auth can-i" only')
    args = pos[1:]
    if len(args) < 2:
        raise Fail('error: you must specify two arguments: verb resource or verb resource/resourceName.\n'
                   'See \'kubectl auth can-i -h\' for help and examples')
    verb, what = args[0], args[1]
    name = args[2] if len(args) > 2 else ''
    ns = '' if flag(opts, 'all-namespaces', 'A') else k.namespace
    if what.startswith('/'):
        spec = {'nonResourceAttributes': {'verb': verb, 'path': what}}
    else:
        res, _, rname = what.partition('/')
        name = name or rname
        sub = opt(opts, 'subresource') or ''
        plural = api.resolve_resource(res) if res != '*' else '*'
        group = api.RESOURCES[plural][0] if plural in api.RESOURCES else ''
        if plural is None:
            sys.stderr.write("Warning: the server doesn't have a resource type '%s'\n" % res)
            plural, _, group = res.partition('.')
        spec = {'resourceAttributes': {'namespace': ns, 'verb': verb, 'group': group, 'resource': plural,
                                       'subresource': sub, 'name': name}}
    try:
        _, review = k.call('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
                           {'apiVersion': 'authorization.k8s.io/v1', 'kind': 'SelfSubjectAccessReview', 'spec': spec})
    except APIFailure as e:
        raise Fail(e.text())
    allowed = review.get('status', {}).get('allowed')
    print('yes' if allowed else 'no')
    if not allowed:
        raise Fail('', 1)


def cmd_cluster_info(k, opts, pos):
    try:
        _, svcs = k.call('GET', '/api/v1/namespaces/kube-system/services?labelSelector=kubernetes.io%2Fcluster-service%3Dtrue')
    except APIFailure as e:
        raise Fail(e.text())
    green, yellow, reset = '\x1b[0;32m', '\x1b[0;33m', '\x1b[0m'
    out = '%sKubernetes control plane%s is running at %s%s%s\n' % (green, reset, yellow, k.server, reset)
    for s in svcs.get('items') or []:
        label = s['metadata'].get('labels', {}).get('kubernetes.io/name') or s['metadata']['name']
        port = (s.get('spec', {}).get('ports') or [{}])[0]
        pname = port.get('name') or ''
        scheme = 'https:' if pname == 'https' else ''
        link = '%s/api/v1/namespaces/kube-system/services/%s%s:%s/proxy' % (k.server, scheme, s['metadata']['name'], pname)
        out += '%s%s%s is running at %s%s%s\n' % (green, label, reset, yellow, link, reset)
    out += "\nTo further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n"
    sys.stdout.write(out)


def cmd_config(k_opts, pos):
    if not pos or pos[0] != 'view':
        raise Fail('error: the k3s stand-in supports "kubectl config view" only')
    cfg, _ = load_kubeconfig(k_opts)
    cfg = json.loads(json.dumps(cfg or {'apiVersion': 'v1', 'clusters': None, 'contexts': None, 'current-context': '',
                                       'kind': 'Config', 'preferences': {}, 'users': None}))
    if flag(k_opts, 'minify'):
        cur = cfg.get('current-context')
        ctx = next((c for c in cfg.get('contexts') or [] if c.get('name') == cur), None)
        if ctx:
            cfg['contexts'] = [ctx]
            cfg['clusters'] = [c for c in cfg.get('clusters') or [] if c.get('name') == ctx['context'].get('cluster')]
            cfg['users'] = [u for u in cfg.get('users') or [] if u.get('name') == ctx['context'].get('user')]
    if not flag(k_opts, 'raw'):
        for c in cfg.get('clusters') or []:
            if 'certificate-authority-data' in (c.get('cluster') or {}):
                c['cluster']['certificate-authority-data'] = 'DATA+OMITTED'
        for u in cfg.get('users') or []:
            user = u.get('user') or {}
            if 'client-certificate-data' in user:
                user['client-certificate-data'] = 'DATA+OMITTED'
            for key in ('client-key-data', 'token', 'password'):
                if key in user:
                    user[key] = 'REDACTED'
    fmt = opt(k_opts, 'output', 'o') or 'yaml'
    if fmt == 'json':
        sys.stdout.write(json.dumps(cfg, indent=4) + '\n')
    elif fmt.startswith('jsonpath'):
        sys.stdout.write(k3s_yaml.jsonpath(fmt.partition('=')[2].strip("'"), cfg))
    else:
        sys.stdout.write(k3s_yaml.dump(cfg))


def cmd_version(k_factory, opts):
    client = 'Client Version: %s\nKustomize Version: v5.5.0\n' % VERSION
    if flag(opts, 'client'):
        sys.stdout.write(client)
        return
    k = k_factory()
    sys.stdout.write(client)
    try:
        _, v = k.call('GET', '/version')
    except APIFailure as e:
        raise Fail(e.text())
    sys.stdout.write('Server Version: %s\n' % v.get('gitVersion'))


COMMANDS = {'get': cmd_get, 'apply': cmd_apply, 'create': cmd_create, 'delete': cmd_delete, 'drain': cmd_drain,
            'wait': cmd_wait, 'label': cmd_label, 'annotate': cmd_annotate, 'auth': cmd_auth,
            'cluster-info': cmd_cluster_info,
            'cordon': lambda k, o, p: cmd_cordon(k, o, p, True), 'uncordon': lambda k, o, p: cmd_cordon(k, o, p, False)}


def main(argv):
    try:
        opts, pos = parse_args(argv)
        if not pos:
            sys.stdout.write(USAGE)
            return 0
        cmd, rest = pos[0], pos[1:]
        if cmd == 'version':
            cmd_version(lambda: Kube(opts), opts)
            return 0
        if cmd == 'config':
            cmd_config(opts, rest)
            return 0
        if cmd not in COMMANDS:
            raise Fail('error: unknown command "%s" for "kubectl"\n\nDid you mean this?\n\tget\n' % cmd)
        COMMANDS[cmd](Kube(opts), opts, rest)
        return 0
    except Fail as e:
        if e.message:
            sys.stderr.write(e.message.rstrip('\n') + '\n')
        return e.code
    except BrokenPipeError:
        return 1
