"""The Kubernetes API of the stand-in: a persisted object store, authentication (client certificates,
service-account tokens), RBAC authorization, and REST verbs with the API server's status errors."""
import copy
import json
import os
import threading
import time
import uuid

from k3s_common import now_rfc3339, write_file

# plural: (group, version, kind, namespaced, short names)
RESOURCES = {
    'nodes': ('', 'v1', 'Node', False, ['no', 'node']),
    'namespaces': ('', 'v1', 'Namespace', False, ['ns', 'namespace']),
    'serviceaccounts': ('', 'v1', 'ServiceAccount', True, ['sa', 'serviceaccount']),
    'secrets': ('', 'v1', 'Secret', True, ['secret']),
    'configmaps': ('', 'v1', 'ConfigMap', True, ['cm', 'configmap']),
    'pods': ('', 'v1', 'Pod', True, ['po', 'pod']),
    'services': ('', 'v1', 'Service', True, ['svc', 'service']),
    'events': ('', 'v1', 'Event', True, ['ev', 'event']),
    'clusterroles': ('rbac.authorization.k8s.io', 'v1', 'ClusterRole', False, ['clusterrole']),
    'clusterrolebindings': ('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', False, ['clusterrolebinding']),
    'roles': ('rbac.authorization.k8s.io', 'v1', 'Role', True, ['role']),
    'rolebindings': ('rbac.authorization.k8s.io', 'v1', 'RoleBinding', True, ['rolebinding']),
    'leases': ('coordination.k8s.io', 'v1', 'Lease', True, ['lease']),
}
KIND_TO_PLURAL = {v[2]: k for k, v in RESOURCES.items()}
SYSTEM_NAMESPACES = ('default', 'kube-system', 'kube-public', 'kube-node-lease')


def api_version(plural):
    g, v = RESOURCES[plural][0], RESOURCES[plural][1]
    return '%s/%s' % (g, v) if g else v


def resolve_resource(word):
    """kubectl's resource words: plural, singular, short name, or plural.group."""
    w = word.lower()
    base = w.split('.', 1)[0]
    for plural, (group, _, kind, _, shorts) in RESOURCES.items():
        if w in (plural, kind.lower()) or w in shorts or (base in (plural, kind.lower()) and w == base + '.' + group):
            return plural
    return None


class APIError(Exception):
    """A Status the API server answers with."""

    def __init__(self, code, reason, message, name=None, kind=None, group=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = {}
        if name is not None:
            self.details['name'] = name
        if kind is not None:
            self.details['kind'] = kind
        if group:
            self.details['group'] = group

    def status(self):
        s = {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure', 'message': self.message,
             'reason': self.reason, 'code': self.code}
        if self.details:
            s['details'] = self.details
        return s


def not_found(plural, name):
    return APIError(404, 'NotFound', '%s "%s" not found' % (_qualified(plural), name), name, plural, RESOURCES[plural][0])


def already_exists(plural, name):
    return APIError(409, 'AlreadyExists', '%s "%s" already exists' % (_qualified(plural), name), name, plural,
                    RESOURCES[plural][0])


def _qualified(plural):
    g = RESOURCES[plural][0]
    return '%s.%s' % (plural, g) if g else plural


def success_status(plural, obj):
    return {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Success',
            'details': {'name': obj['metadata']['name'], 'group': RESOURCES[plural][0], 'kind': plural,
                        'uid': obj['metadata'].get('uid', '')}}


# ---------------------------------------------------------------------------------------------------- store

class Store:
    """Objects by (plural, namespace, name) in one JSON file; writes are batched by a saver thread."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.RLock()
        self.data = {'rv': 1, 'objects': {}, 'tokens': {}}
        if os.path.exists(path):
            with open(path) as f:
                self.data = json.load(f)
        self.dirty = False

    @staticmethod
    def key(plural, ns, name):
        return '%s/%s/%s' % (plural, ns or '', name)

    def get(self, plural, ns, name):
        with self.lock:
            obj = self.data['objects'].get(self.key(plural, ns, name))
            return copy.deepcopy(obj) if obj else None

    def list(self, plural, ns=None):
        prefix = plural + '/'
        with self.lock:
            items = [copy.deepcopy(o) for k, o in self.data['objects'].items()
                     if k.startswith(prefix) and (ns is None or o['metadata'].get('namespace', '') == ns)]
        items.sort(key=lambda o: (o['metadata'].get('namespace', ''), o['metadata']['name']))
        return items

    def next_rv(self):
        with self.lock:
            self.data['rv'] += 1
            return str(self.data['rv'])

    def put(self, plural, obj, create=False):
        with self.lock:
            meta = obj['metadata']
            k = self.key(plural, meta.get('namespace'), meta['name'])
            if create:
                meta.setdefault('uid', str(uuid.uuid4()))
                meta.setdefault('creationTimestamp', now_rfc3339())
            meta['resourceVersion'] = self.next_rv()
            obj['apiVersion'], obj['kind'] = api_version(plural), RESOURCES[plural][2]
            self.data['objects'][k] = copy.deepcopy(obj)
            self.touch()
            return copy.deepcopy(obj)

    def remove(self, plural, ns, name):
        with self.lock:
            obj = self.data['objects'].pop(self.key(plural, ns, name), None)
            if obj is not None:
                self.touch()
            return obj

    def touch(self):
        with self.lock:
            self.dirty = True

    def save(self):
        with self.lock:
            if not self.dirty:
                return
            text = json.dumps(self.data, sort_keys=True)
            self.dirty = False
        write_file(self.path, text, 0o600)

    def start_saver(self):
        def loop():
            while True:
                time.sleep(0.5)
                try:
                    self.save()
                except OSError:
                    pass
        threading.Thread(target=loop, name='store-saver', daemon=True).start()


# ---------------------------------------------------------------------------------------------------- merge patch

def merge_patch(target, patch):
    """RFC 7386 (what kubectl's strategic merge patches amount to for the fields we store)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(target, ops):
    """RFC 6902 add / replace / remove / test on dict and list paths."""
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace('~1', '/').replace('~0', '~') for p in op['path'].lstrip('/').split('/')] if op['path'] else []
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1] if parts else None
        kind = op['op']
        if kind in ('add', 'replace'):
            if isinstance(parent, list):
                if last == '-':
                    parent.append(op['value'])
                elif kind == 'add':
                    parent.insert(int(last), op['value'])
                else:
                    parent[int(last)] = op['value']
            else:
                parent[last] = op['value']
        elif kind == 'remove':
            if isinstance(parent, list):
                parent.pop(int(last))
            else:
                parent.pop(last, None)
        elif kind == 'test':
            got = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if got != op.get('value'):
                raise APIError(422, 'Invalid', 'the server rejected our request due to an error in our request')
    return doc


# ---------------------------------------------------------------------------------------------------- label selectors

def match_labels(selector, labels):
    """Equality (a=b, a==b, a!=b) and existence (a, !a) requirements, comma-separated."""
    if not selector:
        return True
    labels = labels or {}
    for req in [r.strip() for r in selector.split(',') if r.strip()]:
        if '!=' in req:
            k, v = req.split('!=', 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif '=' in req:
            k, v = req.replace('==', '=').split('=', 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif req.startswith('!'):
            if req[1:] in labels:
                return False
        elif req not in labels:
            return False
    return True


def match_fields(selector, obj):
    if not selector:
        return True
    for req in [r.strip() for r in selector.split(',') if r.strip()]:
        neg = '!=' in req
        k, v = req.replace('!=', '=').replace('==', '=').split('=', 1)
        cur = obj
        for part in k.split('.'):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if ((cur or '') == v) == neg:
            return False
    return True


# ---------------------------------------------------------------------------------------------------- identity & RBAC

class Identity:
    def __init__(self, user, groups, via):
        self.user, self.groups, self.via = user, list(groups), via

    def __repr__(self):
        return 'Identity(%s, %s, %s)' % (self.user, self.groups, self.via)


def sa_identity(ns, name):
    return Identity('system:serviceaccount:%s:%s' % (ns, name),
                    ['system:serviceaccounts', 'system:serviceaccounts:' + ns, 'system:authenticated'], 'token')


def _rule_allows(rule, verb, group, resource, name, url):
    verbs = rule.get('verbs') or []
    if '*' not in verbs and verb not in verbs:
        return False
    if url is not None:
        for pattern in rule.get('nonResourceURLs') or []:
            if pattern == '*' or pattern == url or (pattern.endswith('*') and url.startswith(pattern[:-1])):
                return True
        return False
    groups = rule.get('apiGroups')
    if groups is None or ('*' not in groups and group not in groups):
        return False
    resources = rule.get('resources') or []
    if '*' not in resources and resource not in resources and not (
            '/' in resource and resource.split('/')[0] + '/*' in resources):
        return False
    names = rule.get('resourceNames')
    return not names or name in names


def _subject_matches(subject, ident, binding_ns):
    kind = subject.get('kind')
    if kind == 'User':
        return subject.get('name') == ident.user
    if kind == 'Group':
        return subject.get('name') in ident.groups
    if kind == 'ServiceAccount':
        ns = subject.get('namespace') or binding_ns
        return ident.user == 'system:serviceaccount:%s:%s' % (ns, subject.get('name'))
    return False


def authorize(store, ident, verb, group='', resource='', namespace='', name='', url=None):
    """RBAC over the stored (Cluster)Roles and (Cluster)RoleBindings, plus the Node authorizer's grant to kubelets.
    `resource` may carry a subresource (nodes/status); `url` is set for non-resource requests (/readyz)."""
    if 'system:masters' in ident.groups:
        return True
    if 'system:nodes' in ident.groups and url is None and (
            resource.split('/')[0] in ('nodes', 'leases', 'events', 'pods') and (
            resource.split('/')[0] != 'pods' or verb in ('get', 'list', 'watch'))):
        return True
    for crb in store.list('clusterrolebindings'):
        if any(_subject_matches(s, ident, '') for s in crb.get('subjects') or []):
            role = store.get('clusterroles', '', crb.get('roleRef', {}).get('name', ''))
            if role and any(_rule_allows(r, verb, group, resource, name, url) for r in role.get('rules') or []):
                return True
    if namespace and url is None:
        for rb in store.list('rolebindings', namespace):
            if any(_subject_matches(s, ident, namespace) for s in rb.get('subjects') or []):
                ref = rb.get('roleRef', {})
                role = (store.get('clusterroles', '', ref.get('name', '')) if ref.get('kind') == 'ClusterRole'
                        else store.get('roles', namespace, ref.get('name', '')))
                if role and any(_rule_allows(r, verb, group, resource, name, url) for r in role.get('rules') or []):
                    return True
    return False


def forbidden_message(ident, verb, group, resource, namespace, name):
    res, _, sub = resource.partition('/')
    subject = 'User "%s" cannot %s resource "%s"' % (ident.user, verb, res)
    if sub:
        subject += '/%s' % sub
    what = '%s "%s"' % (_plural_group(res, group), name) if name else _plural_group(res, group)
    where = 'in the namespace "%s"' % namespace if namespace else 'at the cluster scope'
    return '%s is forbidden: %s in API group "%s" %s' % (what, subject, group, where)


def _plural_group(res, group):
    return '%s.%s' % (res, group) if group else res


BUILTIN_CLUSTER_ROLES = {
    'cluster-admin': [{'apiGroups': ['*'], 'resources': ['*'], 'verbs': ['*']},
                      {'nonResourceURLs': ['*'], 'verbs': ['*']}],
    'admin': [{'apiGroups': ['', 'apps', 'batch', 'rbac.authorization.k8s.io', 'networking.k8s.io', 'policy'],
               'resources': ['*'], 'verbs': ['*']}],
    'edit': [{'apiGroups': ['', 'apps', 'batch', 'networking.k8s.io', 'policy'],
              'resources': ['pods', 'services', 'configmaps', 'secrets', 'serviceaccounts', 'deployments', 'jobs',
                            'persistentvolumeclaims', 'ingresses', 'pods/eviction'],
              'verbs': ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']}],
    'view': [{'apiGroups': ['', 'apps', 'batch', 'networking.k8s.io', 'policy'],
              'resources': ['pods', 'services', 'configmaps', 'serviceaccounts', 'deployments', 'jobs', 'events',
                            'persistentvolumeclaims', 'ingresses', 'namespaces'],
              'verbs': ['get', 'list', 'watch']}],
    'system:basic-user': [{'apiGroups': ['authorization.k8s.io'],
                           'resources': ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'], 'verbs': ['create']}],
    'system:discovery': [{'nonResourceURLs': ['/api', '/api/*', '/apis', '/apis/*', '/healthz', '/livez', '/readyz',
                                              '/openapi', '/openapi/*', '/version', '/version/'], 'verbs': ['get']}],
    'system:public-info-viewer': [{'nonResourceURLs': ['/healthz', '/livez', '/readyz', '/version', '/version/'],
                                   'verbs': ['get']}],
}
BUILTIN_BINDINGS = {
    'cluster-admin': ('cluster-admin', [('Group', 'system:masters')]),
    'system:basic-user': ('system:basic-user', [('Group', 'system:authenticated')]),
    'system:discovery': ('system:discovery', [('Group', 'system:authenticated')]),
    'system:public-info-viewer': ('system:public-info-viewer', [('Group', 'system:authenticated'),
                                                                ('Group', 'system:unauthenticated')]),
}


# ---------------------------------------------------------------------------------------------------- paths

class Route:
    """A parsed API path: /api/v1/namespaces/NS/secrets/NAME/SUB or /apis/GROUP/VERSION/..."""

    def __init__(self, plural, namespace, name, sub, group, version):
        self.plural, self.namespace, self.name, self.sub = plural, namespace, name, sub
        self.group, self.version = group, version


def parse_path(path):
    parts = [p for p in path.split('/') if p]
    if parts[:2] == ['api', 'v1']:
        group, version, rest = '', 'v1', parts[2:]
    elif parts[:1] == ['apis'] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return Route(None, '', '', '', group, version)
    ns = ''
    if rest[0] == 'namespaces' and len(rest) >= 3 and rest[2] in RESOURCES and RESOURCES[rest[2]][3]:
        ns, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else ''
    sub = '/'.join(rest[2:]) if len(rest) > 2 else ''
    if plural not in RESOURCES or RESOURCES[plural][0] != group:
        raise APIError(404, 'NotFound', 'the server could not find the requested resource')
    return Route(plural, ns, name, sub, group, version)
