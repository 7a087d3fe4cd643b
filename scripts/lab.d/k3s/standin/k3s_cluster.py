"""The cluster state a k3s server keeps (the datastore leader): REST verbs over the store with the API server's
rules, the controllers that matter to an admin (service-account tokens, node lifecycle, system pods), and the
supervisor's node credentials."""
import base64
import copy
import hashlib
import json
import threading
import time
import uuid

import k3s_api as api
from k3s_api import APIError, RESOURCES
from k3s_common import VERSION, b64, b64url, error, info, make_cert, now_rfc3339, public_key_der, random_suffix, rsa_sign
from k3s_node import SYSTEM_IMAGES

STATUS_RESOURCES = ('nodes', 'pods', 'namespaces')
UNREACHABLE = 'node.kubernetes.io/unreachable'
UNSCHEDULABLE = 'node.kubernetes.io/unschedulable'
SYSTEM_TOLERATIONS = [
    {'key': 'CriticalAddonsOnly', 'operator': 'Exists'},
    {'key': 'node-role.kubernetes.io/control-plane', 'operator': 'Exists', 'effect': 'NoSchedule'},
    {'key': 'node-role.kubernetes.io/master', 'operator': 'Exists', 'effect': 'NoSchedule'},
]


def _rs_hash(name):
    alphabet = 'bcdfghjklmnpqrstvwxz2456789'
    h = int(hashlib.sha256((name + VERSION).encode()).hexdigest(), 16)
    return ''.join(alphabet[(h >> (5 * i)) % len(alphabet)] for i in range(10))


# name, component that --disable turns off, labels, image key, emptyDir volumes, replicas
DEPLOYMENTS = [
    ('coredns', 'coredns', {'k8s-app': 'kube-dns'}, 'coredns', [], 1),
    ('local-path-provisioner', 'local-storage', {'app': 'local-path-provisioner'}, 'local-path', [], 1),
    ('metrics-server', 'metrics-server', {'k8s-app': 'metrics-server'}, 'metrics-server', ['tmp-dir'], 1),
    ('traefik', 'traefik', {'app.kubernetes.io/name': 'traefik', 'app.kubernetes.io/instance': 'traefik-kube-system'},
     'traefik', ['data', 'tmp'], 1),
]


class Cluster:
    def __init__(self, store, pki, settings):
        """pki: server-ca, client-ca, service key (PEM); settings: password, agent_password, grace, disabled,
        cluster_init, token_delay."""
        self.store, self.pki, self.s = store, pki, settings
        self.last_seen = {}           # node name -> monotonic time of its last heartbeat (this process's clock)
        self.started = time.monotonic()
        self.lock = threading.RLock()
        self._kid = None

    # ------------------------------------------------------------------------------------------------ bootstrap

    def ensure_system_objects(self):
        st = self.store
        for ns in api.SYSTEM_NAMESPACES:
            if not st.get('namespaces', '', ns):
                self._create_namespace({'metadata': {'name': ns}})
        for name, rules in api.BUILTIN_CLUSTER_ROLES.items():
            if not st.get('clusterroles', '', name):
                st.put('clusterroles', {'metadata': {'name': name, 'labels': {'kubernetes.io/bootstrapping': 'rbac-defaults'},
                                                     'annotations': {'rbac.authorization.kubernetes.io/autoupdate': 'true'}},
                                        'rules': rules}, create=True)
        for name, (role, subjects) in api.BUILTIN_BINDINGS.items():
            if not st.get('clusterrolebindings', '', name):
                st.put('clusterrolebindings', {
                    'metadata': {'name': name, 'labels': {'kubernetes.io/bootstrapping': 'rbac-defaults'}},
                    'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'ClusterRole', 'name': role},
                    'subjects': [{'apiGroup': 'rbac.authorization.k8s.io', 'kind': k, 'name': n} for k, n in subjects]},
                    create=True)
        services = [('default', 'kubernetes', '10.43.0.1', 'ClusterIP', {'component': 'apiserver', 'provider': 'kubernetes'}, 443, None)]
        if self.enabled('coredns'):
            services.append(('kube-system', 'kube-dns', '10.43.0.10', 'ClusterIP',
                             {'k8s-app': 'kube-dns', 'kubernetes.io/cluster-service': 'true', 'kubernetes.io/name': 'CoreDNS'}, 53, 'dns'))
        if self.enabled('metrics-server'):
            services.append(('kube-system', 'metrics-server', '10.43.12.1', 'ClusterIP',
                             {'k8s-app': 'metrics-server', 'kubernetes.io/cluster-service': 'true',
                              'kubernetes.io/name': 'Metrics-server'}, 443, 'https'))
        if self.enabled('traefik'):
            services.append(('kube-system', 'traefik', '10.43.99.1', 'LoadBalancer',
                             {'app.kubernetes.io/name': 'traefik', 'app.kubernetes.io/instance': 'traefik-kube-system'}, 80, 'web'))
        for ns, name, ip, stype, labels, port, pname in services:
            if not st.get('services', ns, name):
                spec = {'clusterIP': ip, 'clusterIPs': [ip], 'type': stype,
                        'ports': [{'name': pname or 'https', 'port': port, 'protocol': 'UDP' if port == 53 else 'TCP'}]}
                st.put('services', {'metadata': {'name': name, 'namespace': ns, 'labels': labels}, 'spec': spec}, create=True)

    def enabled(self, component):
        disabled = self.s.get('disabled', [])
        if component == 'servicelb' and 'traefik' in disabled:
            return False
        return component not in disabled

    # ------------------------------------------------------------------------------------------------ authentication

    def bearer_identity(self, token):
        """A service-account token from a Secret (legacy) or from a TokenRequest; None if unknown or revoked."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        issued = self.store.data.get('tokens', {}).get(digest)
        if issued:
            sa = self.store.get('serviceaccounts', issued['ns'], issued['sa'])
            if sa and sa['metadata']['uid'] == issued['uid'] and issued['exp'] > time.time():
                return api.sa_identity(issued['ns'], issued['sa'])
            return None
        enc = b64(token)
        for secret in self.store.list('secrets'):
            if secret.get('type') == 'kubernetes.io/service-account-token' and (secret.get('data') or {}).get('token') == enc:
                meta = secret['metadata']
                sa_name = (meta.get('annotations') or {}).get('kubernetes.io/service-account.name', '')
                sa = self.store.get('serviceaccounts', meta['namespace'], sa_name)
                if sa:
                    return api.sa_identity(meta['namespace'], sa_name)
        return None

    def supervisor_role(self, user, password):
        """k3s's passwd file: the server token's password for users server and node; the agent token for node."""
        if user in ('server', 'node') and password == self.s['password']:
            return user
        if user == 'node' and self.s.get('agent_password') and password == self.s['agent_password']:
            return 'node'
        return None

    # ------------------------------------------------------------------------------------------------ REST

    def handle(self, ident, method, route, query, body, ctype):
        """(status code, JSON answer) for an authenticated request on a resource path."""
        plural, ns, name, sub = route.plural, route.namespace, route.name, route.sub
        group = route.group
        if plural is None:
            return 200, self.discovery(route)
        verb = {'GET': 'get' if name else ('watch' if query.get('watch') in ('true', '1') else 'list'),
                'POST': 'create', 'PUT': 'update', 'PATCH': 'patch',
                'DELETE': 'delete' if name else 'deletecollection'}.get(method)
        if verb is None:
            raise APIError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource')
        resource = plural + ('/' + sub if sub else '')
        if sub == 'eviction' or sub == 'token':
            verb = 'create'
        if not api.authorize(self.store, ident, verb, group, resource, ns, name):
            raise APIError(403, 'Forbidden', api.forbidden_message(ident, verb, group, resource, ns, name),
                           name or None, plural, group)
        if sub == 'token':
            self._kid_value()
        if verb == 'watch':
            raise APIError(405, 'MethodNotAllowed', 'watch is not supported by the k3s stand-in')
        with self.lock:
            if verb == 'get':
                return 200, self._get(plural, ns, name, sub)
            if verb == 'list':
                return 200, self._list(plural, ns, query)
            if verb == 'create':
                if sub == 'eviction':
                    return 201, self._evict(ns, name)
                if sub == 'token':
                    return 201, self._token_request(ns, name, body or {})
                if plural == 'selfsubjectaccessreviews':
                    raise APIError(404, 'NotFound', 'the server could not find the requested resource')
                return 201, self.create(plural, ns, body, query.get('dryRun') == 'All')
            if verb == 'update':
                return 200, self.update(plural, ns, name, body, sub)
            if verb == 'patch':
                return 200, self.patch(plural, ns, name, body, ctype, sub)
            if verb == 'delete':
                return 200, self.delete(plural, ns, name)
            raise APIError(405, 'MethodNotAllowed', 'deletecollection is not supported by the k3s stand-in')

    def discovery(self, route):
        resources = [{'name': p, 'singularName': v[2].lower(), 'namespaced': v[3], 'kind': v[2],
                      'verbs': ['create', 'delete', 'get', 'list', 'patch', 'update'], 'shortNames': v[4][:-1]}
                     for p, v in RESOURCES.items() if v[0] == route.group and v[1] == route.version]
        gv = '%s/%s' % (route.group, route.version) if route.group else route.version
        return {'kind': 'APIResourceList', 'apiVersion': 'v1', 'groupVersion': gv, 'resources': resources}

    def _get(self, plural, ns, name, sub):
        obj = self.store.get(plural, ns, name)
        if obj is None:
            raise api.not_found(plural, name)
        if plural == 'namespaces' or not RESOURCES[plural][3] or obj['metadata'].get('namespace') == ns:
            return obj
        raise api.not_found(plural, name)

    def _list(self, plural, ns, query):
        items = [o for o in self.store.list(plural, ns or None if RESOURCES[plural][3] else None)
                 if api.match_labels(query.get('labelSelector'), o['metadata'].get('labels'))
                 and api.match_fields(query.get('fieldSelector'), o)]
        for o in items:
            o.pop('apiVersion', None)
            o.pop('kind', None)
        return {'kind': RESOURCES[plural][2] + 'List', 'apiVersion': api.api_version(plural),
                'metadata': {'resourceVersion': str(self.store.data['rv'])}, 'items': items}

    def create(self, plural, ns, body, dry_run=False):
        if not isinstance(body, dict):
            raise APIError(400, 'BadRequest', 'the object provided is unrecognized (must be of type %s)' % RESOURCES[plural][2])
        obj = copy.deepcopy(body)
        meta = obj.setdefault('metadata', {})
        kind = RESOURCES[plural][2]
        if obj.get('kind') not in (None, kind):
            raise APIError(400, 'BadRequest', 'the API version in the data (%s) does not match the expected API version (%s)'
                           % (obj.get('apiVersion'), api.api_version(plural)))
        if not meta.get('name'):
            if meta.get('generateName'):
                meta['name'] = meta['generateName'] + random_suffix()
            else:
                raise APIError(422, 'Invalid', '%s "" is invalid: metadata.name: Required value: name or generateName is required'
                               % kind, '', plural)
        name = meta['name']
        if RESOURCES[plural][3]:
            body_ns = meta.get('namespace')
            if body_ns and ns and body_ns != ns:
                raise APIError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request')
            ns = ns or body_ns or 'default'
            meta['namespace'] = ns
            if not self.store.get('namespaces', '', ns):
                raise api.not_found('namespaces', ns)
        else:
            meta.pop('namespace', None)
            ns = ''
        for k in ('uid', 'resourceVersion', 'creationTimestamp', 'deletionTimestamp'):
            meta.pop(k, None)
        if self.store.get(plural, ns, name):
            raise api.already_exists(plural, name)
        self._validate(plural, obj)
        if dry_run:
            return obj
        if plural == 'namespaces':
            return self._create_namespace(obj)
        if plural == 'nodes':
            self._prepare_node(obj, None)
        obj = self.store.put(plural, obj, create=True)
        self._after_write(plural, obj)
        return obj

    def update(self, plural, ns, name, body, sub=''):
        old = self._get(plural, ns, name, '')
        obj = copy.deepcopy(body)
        meta = obj.setdefault('metadata', {})
        if meta.get('name') not in (None, name):
            raise APIError(400, 'BadRequest', 'the name of the object (%s) does not match the name on the URL (%s)'
                           % (meta.get('name'), name))
        rv = meta.get('resourceVersion')
        if rv and rv != old['metadata']['resourceVersion']:
            raise APIError(409, 'Conflict', 'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                           'please apply your changes to the latest version and try again' % (api._qualified(plural), name),
                           name, plural)
        return self._replace(plural, old, obj, sub)

    def patch(self, plural, ns, name, body, ctype, sub=''):
        old = self._get(plural, ns, name, '')
        if 'json-patch' in (ctype or ''):
            obj = api.json_patch(old, body or [])
        else:
            obj = api.merge_patch(old, body or {})
        return self._replace(plural, old, obj, sub)

    def _replace(self, plural, old, obj, sub):
        meta = obj.setdefault('metadata', {})
        for k in ('uid', 'creationTimestamp', 'name', 'namespace'):
            if k in old['metadata']:
                meta[k] = old['metadata'][k]
        if plural in STATUS_RESOURCES:
            if sub == 'status':
                status = obj.get('status')
                obj = copy.deepcopy(old)
                obj['status'] = status
            else:
                obj['status'] = old.get('status')
        self._validate(plural, obj)
        if plural == 'nodes':
            self._prepare_node(obj, old)
            if sub == 'status':
                self.last_seen[old['metadata']['name']] = time.monotonic()
        if _same(old, obj):
            return old
        obj = self.store.put(plural, obj)
        self._after_write(plural, obj)
        return obj

    def delete(self, plural, ns, name):
        obj = self._get(plural, ns, name, '')
        if plural == 'namespaces':
            if name in api.SYSTEM_NAMESPACES:
                raise APIError(403, 'Forbidden', 'namespaces "%s" is forbidden: this namespace may not be deleted' % name,
                               name, plural)
            for p, v in RESOURCES.items():
                if v[3]:
                    for o in self.store.list(p, name):
                        self.store.remove(p, name, o['metadata']['name'])
        self.store.remove(plural, ns, name)
        if plural == 'nodes':
            self._node_deleted(name)
        if plural == 'serviceaccounts':
            for s in self.store.list('secrets', ns):
                if (s['metadata'].get('annotations') or {}).get('kubernetes.io/service-account.name') == name \
                        and s.get('type') == 'kubernetes.io/service-account-token':
                    self.store.remove('secrets', ns, s['metadata']['name'])
        if plural in ('secrets', 'configmaps', 'serviceaccounts', 'services', 'pods', 'nodes', 'namespaces',
                      'clusterroles', 'clusterrolebindings', 'roles', 'rolebindings'):
            return api.success_status(plural, obj)
        return obj

    def _validate(self, plural, obj):
        kind = RESOURCES[plural][2]
        name = obj['metadata'].get('name', '')
        if plural == 'secrets':
            for k, v in (obj.get('stringData') or {}).items():
                obj.setdefault('data', {})[k] = b64(str(v))
            obj.pop('stringData', None)
            for k, v in (obj.get('data') or {}).items():
                try:
                    base64.b64decode(str(v), validate=True)
                except ValueError:
                    raise APIError(400, 'BadRequest', 'Secret in version "v1" cannot be handled as a Secret: '
                                   'illegal base64 data at input byte 0')
            obj.setdefault('type', 'Opaque')
            if obj['type'] == 'kubernetes.io/service-account-token' and not (
                    obj['metadata'].get('annotations') or {}).get('kubernetes.io/service-account.name'):
                raise APIError(422, 'Invalid', 'Secret "%s" is invalid: metadata.annotations[kubernetes.io/service-account.name]: '
                               'Required value' % name, name, plural)
        if plural in ('clusterrolebindings', 'rolebindings'):
            ref = obj.get('roleRef') or {}
            if not ref.get('name') or ref.get('kind') not in ('ClusterRole', 'Role'):
                raise APIError(422, 'Invalid', '%s.rbac.authorization.k8s.io "%s" is invalid: roleRef.kind: Unsupported value: "%s": '
                               'supported values: "ClusterRole", "Role"' % (kind, name, ref.get('kind', '')), name, plural,
                               'rbac.authorization.k8s.io')
            if plural == 'clusterrolebindings' and ref.get('kind') == 'Role':
                raise APIError(422, 'Invalid', 'ClusterRoleBinding.rbac.authorization.k8s.io "%s" is invalid: roleRef.kind: '
                               'Unsupported value: "Role": supported values: "ClusterRole"' % name, name, plural,
                               'rbac.authorization.k8s.io')
            for i, s in enumerate(obj.get('subjects') or []):
                if s.get('kind') == 'ServiceAccount' and not s.get('namespace') and plural == 'clusterrolebindings':
                    raise APIError(422, 'Invalid', 'ClusterRoleBinding.rbac.authorization.k8s.io "%s" is invalid: '
                                   'subjects[%d].namespace: Required value' % (name, i), name, plural, 'rbac.authorization.k8s.io')

    def _after_write(self, plural, obj):
        if plural == 'secrets' and obj.get('type') == 'kubernetes.io/service-account-token' \
                and not (obj.get('data') or {}).get('token'):
            delay = self.s.get('token_delay', 0.3)
            t = threading.Timer(delay, self._fill_token, (obj['metadata']['namespace'], obj['metadata']['name']))
            t.daemon = True
            t.start()

    # ------------------------------------------------------------------------------------------------ namespaces

    def _create_namespace(self, obj):
        name = obj['metadata']['name']
        obj['metadata'].setdefault('labels', {})['kubernetes.io/metadata.name'] = name
        obj['spec'] = {'finalizers': ['kubernetes']}
        obj['status'] = {'phase': 'Active'}
        obj = self.store.put('namespaces', obj, create=True)
        self.store.put('serviceaccounts', {'metadata': {'name': 'default', 'namespace': name}}, create=True)
        description = ('Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints '
                       'such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across '
                       'distributions of Kubernetes clusters.')
        self.store.put('configmaps', {'metadata': {'name': 'kube-root-ca.crt', 'namespace': name,
                                                   'annotations': {'kubernetes.io/description': description}},
                                      'data': {'ca.crt': self.pki['server-ca.crt']}}, create=True)
        return obj

    # ------------------------------------------------------------------------------------------------ service accounts

    def _kid_value(self):
        if self._kid is None:
            self._kid = b64url(hashlib.sha256(public_key_der(self.pki['service.key'])).digest())
        return self._kid

    def _sign_jwt(self, claims):
        header = {'alg': 'RS256', 'kid': self._kid_value()}
        signing = b64url(json.dumps(header, separators=(',', ':')).encode()) + '.' + \
            b64url(json.dumps(claims, separators=(',', ':')).encode())
        return signing + '.' + b64url(rsa_sign(self.pki['service.key'], signing.encode()))

    def _fill_token(self, ns, name):
        """The token controller: fills data.token, data[ca.crt] and data.namespace a moment after creation, or
        deletes the Secret when its service account does not exist."""
        self._kid_value()   # waits, outside the lock, for a service key still being generated
        with self.lock:
            secret = self.store.get('secrets', ns, name)
            if not secret or (secret.get('data') or {}).get('token'):
                return
            ann = secret['metadata'].setdefault('annotations', {})
            sa_name = ann.get('kubernetes.io/service-account.name', '')
            sa = self.store.get('serviceaccounts', ns, sa_name)
            if sa is None:
                self.store.remove('secrets', ns, name)
                return
            try:
                token = self._sign_jwt({
                    'iss': 'kubernetes/serviceaccount', 'kubernetes.io/serviceaccount/namespace': ns,
                    'kubernetes.io/serviceaccount/secret.name': name,
                    'kubernetes.io/serviceaccount/service-account.name': sa_name,
                    'kubernetes.io/serviceaccount/service-account.uid': sa['metadata']['uid'],
                    'sub': 'system:serviceaccount:%s:%s' % (ns, sa_name)})
            except RuntimeError as e:
                error('Failed to sign service-account token: %s' % e)
                return
            ann['kubernetes.io/service-account.uid'] = sa['metadata']['uid']
            secret.setdefault('data', {}).update({'token': b64(token), 'ca.crt': b64(self.pki['server-ca.crt']),
                                                 'namespace': b64(ns)})
            self.store.put('secrets', secret)

    def _token_request(self, ns, name, body):
        sa = self.store.get('serviceaccounts', ns, name)
        if sa is None:
            raise api.not_found('serviceaccounts', name)
        seconds = int(((body.get('spec') or {}).get('expirationSeconds')) or 3600)
        exp = int(time.time()) + max(600, seconds)
        token = self._sign_jwt({
            'aud': (body.get('spec') or {}).get('audiences') or ['https://kubernetes.default.svc.cluster.local', 'k3s'],
            'exp': exp, 'iat': int(time.time()), 'iss': 'https://kubernetes.default.svc.cluster.local',
            'jti': str(uuid.uuid4()), 'kubernetes.io': {'namespace': ns, 'serviceaccount': {'name': name, 'uid': sa['metadata']['uid']}},
            'nbf': int(time.time()), 'sub': 'system:serviceaccount:%s:%s' % (ns, name)})
        self.store.data.setdefault('tokens', {})[hashlib.sha256(token.encode()).hexdigest()] = {
            'ns': ns, 'sa': name, 'uid': sa['metadata']['uid'], 'exp': exp}
        self.store.touch()
        return {'kind': 'TokenRequest', 'apiVersion': 'authentication.k8s.io/v1', 'metadata': {'name': name, 'namespace': ns},
                'spec': {'audiences': ['https://kubernetes.default.svc.cluster.local', 'k3s'], 'expirationSeconds': exp - int(time.time())},
                'status': {'token': token, 'expirationTimestamp': now_rfc3339(exp)}}

    def access_review(self, ident, body):
        spec = (body or {}).get('spec') or {}
        ra, nra = spec.get('resourceAttributes'), spec.get('nonResourceAttributes')
        if nra:
            allowed = api.authorize(self.store, ident, nra.get('verb', 'get'), url=nra.get('path', '/'))
        else:
            ra = ra or {}
            res = ra.get('resource', '') + ('/' + ra['subresource'] if ra.get('subresource') else '')
            allowed = api.authorize(self.store, ident, ra.get('verb', 'get'), ra.get('group', ''), res,
                                    ra.get('namespace', ''), ra.get('name', ''))
        out = {'kind': 'SelfSubjectAccessReview', 'apiVersion': 'authorization.k8s.io/v1', 'metadata': {},
               'spec': spec, 'status': {'allowed': allowed}}
        if allowed:
            out['status']['reason'] = 'RBAC: allowed by ClusterRoleBinding'
        return out

    # ------------------------------------------------------------------------------------------------ nodes

    def _prepare_node(self, obj, old):
        spec = obj.setdefault('spec', {})
        name = obj['metadata']['name']
        if not spec.get('podCIDR'):
            spec['podCIDR'] = (old or {}).get('spec', {}).get('podCIDR') or self._next_pod_cidr()
            spec['podCIDRs'] = [spec['podCIDR']]
        taints = [t for t in spec.get('taints') or [] if t.get('key') != UNSCHEDULABLE]
        if spec.get('unschedulable'):
            taints.append({'key': UNSCHEDULABLE, 'effect': 'NoSchedule', 'timeAdded': now_rfc3339()})
        spec['taints'] = taints
        if not spec['taints']:
            spec.pop('taints')
        # Transition times move only when a condition's status changes.
        old_conds = {c['type']: c for c in ((old or {}).get('status') or {}).get('conditions') or []}
        for c in (obj.get('status') or {}).get('conditions') or []:
            prev = old_conds.get(c['type'])
            if prev and prev.get('status') == c.get('status'):
                c['lastTransitionTime'] = prev.get('lastTransitionTime', c.get('lastTransitionTime'))
        ready = _condition(obj, 'Ready')
        if ready and ready.get('status') == 'True' and spec.get('taints'):
            spec['taints'] = [t for t in spec['taints'] if t.get('key') != UNREACHABLE]
            if not spec['taints']:
                spec.pop('taints')
        if old is None:
            self.last_seen[name] = time.monotonic()

    def _next_pod_cidr(self):
        used = {n.get('spec', {}).get('podCIDR') for n in self.store.list('nodes')}
        for i in range(256):
            cidr = '10.42.%d.0/24' % i
            if cidr not in used:
                return cidr
        return '10.42.255.0/24'

    def _node_deleted(self, name):
        self.last_seen.pop(name, None)
        self.store.remove('secrets', 'kube-system', name + '.node-password.k3s')
        self.store.remove('leases', 'kube-node-lease', name)
        for pod in self.store.list('pods'):
            if pod.get('spec', {}).get('nodeName') == name:
                self.store.remove('pods', pod['metadata']['namespace'], pod['metadata']['name'])

    def register_node(self, node):
        """A kubelet's registration: create, or on a restart merge its labels, addresses and status."""
        with self.lock:
            name = node['metadata']['name']
            old = self.store.get('nodes', '', name)
            if old is None:
                self._prepare_node(node, None)
                return self.store.put('nodes', node, create=True)
            merged = copy.deepcopy(old)
            merged['metadata'].setdefault('labels', {}).update(node['metadata'].get('labels') or {})
            merged['metadata'].setdefault('annotations', {}).update(node['metadata'].get('annotations') or {})
            merged['status'] = node['status']
            self._prepare_node(merged, old)
            self.last_seen[name] = time.monotonic()
            return self.store.put('nodes', merged)

    def heartbeat(self, name, conditions, images=None):
        with self.lock:
            node = self.store.get('nodes', '', name)
            if node is None:
                raise api.not_found('nodes', name)
            new = copy.deepcopy(node)
            new['status']['conditions'] = conditions
            if images is not None:
                new['status']['images'] = images
            self._prepare_node(new, node)
            self.last_seen[name] = time.monotonic()
            return self.store.put('nodes', new)

    def node_password_check(self, node_name, password):
        """The node-password Secret of k3s: the first registration records the password's hash, later ones must match."""
        with self.lock:
            return self._node_password_check(node_name, password)

    def _node_password_check(self, node_name, password):
        name = node_name + '.node-password.k3s'
        secret = self.store.get('secrets', 'kube-system', name)
        salt = 'k3s-standin'
        digest = hashlib.sha256((salt + password).encode()).hexdigest()
        if secret is None:
            self.store.put('secrets', {'metadata': {'name': name, 'namespace': 'kube-system',
                                                    'labels': {'k3s.io/node-password': 'true'}},
                                       'type': 'k3s.cattle.io/node-password', 'data': {'hash': b64('$1:%s' % digest)}},
                           create=True)
            return True
        return base64.b64decode(secret['data']['hash']).decode() == '$1:%s' % digest

    def node_certificate(self, node_name, kind, ips):
        if kind == 'client':
            return make_cert('system:node:' + node_name, ['system:nodes'],
                             (self.pki['client-ca.crt'], self.pki['client-ca.key']), usage='client')
        return make_cert(node_name, [], (self.pki['server-ca.crt'], self.pki['server-ca.key']),
                         sans=[node_name, 'localhost', '127.0.0.1'] + list(ips), usage='server')

    # ------------------------------------------------------------------------------------------------ controllers

    def start_controllers(self):
        threading.Thread(target=self._controller_loop, name='controllers', daemon=True).start()

    def _controller_loop(self):
        while True:
            time.sleep(0.25)
            try:
                with self.lock:
                    self._node_lifecycle()
                    self._system_pods()
            except Exception as e:   # a controller bug must not take the API down
                error('controller error: %r' % (e,))

    def _node_lifecycle(self):
        """NodeLifecycleController: no heartbeat for the grace period -> every condition Unknown, unreachable taints."""
        grace = self.s.get('grace', 15.0)
        now = time.monotonic()
        for node in self.store.list('nodes'):
            name = node['metadata']['name']
            seen = self.last_seen.setdefault(name, max(self.started, now - 0.001))
            ready = _condition(node, 'Ready')
            if now - seen <= grace or (ready and ready.get('status') == 'Unknown'):
                continue
            new = copy.deepcopy(node)
            stamp = now_rfc3339()
            for c in new['status'].get('conditions') or []:
                c.update({'status': 'Unknown', 'reason': 'NodeStatusUnknown', 'message': 'Kubelet stopped posting node status.',
                          'lastTransitionTime': stamp})
            taints = [t for t in new['spec'].get('taints') or [] if t.get('key') != UNREACHABLE]
            taints.append({'key': UNREACHABLE, 'effect': 'NoSchedule', 'timeAdded': stamp})
            taints.append({'key': UNREACHABLE, 'effect': 'NoExecute', 'timeAdded': stamp})
            new['spec']['taints'] = taints
            self.store.put('nodes', new)
            info('Node %s is NotReady: no heartbeat for %.1fs' % (name, now - seen))

    def _system_pods(self):
        """Deployments, the servicelb DaemonSet and the finished helm jobs of a default k3s, scheduled on nodes."""
        nodes = {n['metadata']['name']: n for n in self.store.list('nodes')}
        pods = self.store.list('pods', 'kube-system')
        by_owner = {}
        for p in pods:
            by_owner.setdefault(p['metadata'].get('labels', {}).get('k3s-standin/workload'), []).append(p)
        if self.enabled('servicelb') and self.enabled('traefik'):
            have = {p['spec'].get('nodeName') for p in by_owner.get('svclb-traefik', [])}
            for name in nodes:
                if name not in have:
                    self._new_pod('svclb-traefik', 'DaemonSet', 'svclb-traefik-%s' % hashlib.sha256(b'traefik').hexdigest()[:8],
                                  {'app': 'svclb-traefik', 'svccontroller.k3s.cattle.io/svcname': 'traefik'},
                                  'klipper-lb', [], name)
        for p in by_owner.get('svclb-traefik', []):
            if p['spec'].get('nodeName') not in nodes:
                self.store.remove('pods', 'kube-system', p['metadata']['name'])
        for name, component, labels, image, volumes, replicas in DEPLOYMENTS:
            if not self.enabled(component):
                continue
            for _ in range(replicas - len(by_owner.get(name, []))):
                self._new_pod(name, 'ReplicaSet', '%s-%s' % (name, _rs_hash(name)), labels, image, volumes, None)
        if self.enabled('traefik') and not self.store.data.get('helm_jobs_done') and nodes:
            first = self.s.get('node_name') if self.s.get('node_name') in nodes else sorted(nodes)[0]
            for job in ('helm-install-traefik-crd', 'helm-install-traefik'):
                self._new_pod(job, 'Job', job, {'job-name': job}, 'klipper-helm', [], first, phase='Succeeded')
            self.store.data['helm_jobs_done'] = True
        for p in self.store.list('pods', 'kube-system'):
            self._schedule_and_status(p, nodes)

    def _new_pod(self, workload, owner_kind, owner_name, labels, image, volumes, node, phase='Pending'):
        name = owner_name + '-' + random_suffix()
        lab = dict(labels)
        lab['k3s-standin/workload'] = workload
        if owner_kind == 'ReplicaSet':
            lab['pod-template-hash'] = owner_name.rsplit('-', 1)[1]
        pod = {'metadata': {'name': name, 'namespace': 'kube-system', 'labels': lab,
                            'ownerReferences': [{'apiVersion': 'batch/v1' if owner_kind == 'Job' else 'apps/v1',
                                                 'kind': owner_kind, 'name': owner_name, 'controller': True,
                                                 'blockOwnerDeletion': True, 'uid': str(uuid.uuid5(uuid.NAMESPACE_DNS, owner_name))}]},
               'spec': {'containers': [{'name': workload.split('-')[0] if owner_kind != 'Job' else 'helm',
                                        'image': SYSTEM_IMAGES[image]}],
                        'volumes': [{'name': v, 'emptyDir': {}} for v in volumes],
                        'tolerations': SYSTEM_TOLERATIONS + ([{'operator': 'Exists'}] if owner_kind == 'DaemonSet' else []),
                        'priorityClassName': 'system-cluster-critical'},
               'status': {'phase': phase}}
        if node:
            pod['spec']['nodeName'] = node
        if phase == 'Succeeded':
            pod['status']['containerStatuses'] = [{'name': 'helm', 'ready': False, 'restartCount': 0,
                                                   'state': {'terminated': {'exitCode': 0, 'reason': 'Completed'}}}]
        self.store.put('pods', pod, create=True)

    def _schedule_and_status(self, pod, nodes):
        if pod['status'].get('phase') in ('Succeeded', 'Failed'):
            return
        changed = False
        node_name = pod['spec'].get('nodeName')
        if node_name is None:
            candidates = [n for n in nodes.values() if _schedulable(n, pod['spec'].get('tolerations') or [])]
            if not candidates:
                return
            counts = {}
            for p in self.store.list('pods'):
                counts[p['spec'].get('nodeName')] = counts.get(p['spec'].get('nodeName'), 0) + 1
            node_name = min(candidates, key=lambda n: (counts.get(n['metadata']['name'], 0), n['metadata']['name']))['metadata']['name']
            pod['spec']['nodeName'] = node_name
            changed = True
        node = nodes.get(node_name)
        ready = _condition(node, 'Ready') if node else None
        if not ready or ready.get('status') != 'True':
            if changed:
                self.store.put('pods', pod)
            return   # a pod on a node that stopped reporting keeps its last status, as in Kubernetes
        images = {n for i in node['status'].get('images') or [] for n in i.get('names', [])}
        image = pod['spec']['containers'][0]['image']
        running = image in images
        ip = next((a['address'] for a in node['status'].get('addresses', []) if a['type'] == 'InternalIP'), '')
        cidr = node['spec'].get('podCIDR', '10.42.0.0/24')
        index = 2 + int(hashlib.sha256(pod['metadata']['name'].encode()).hexdigest(), 16) % 250
        status = {'phase': 'Running' if running else 'Pending', 'hostIP': ip, 'podIP': cidr.rsplit('.', 1)[0] + '.%d' % index}
        cname = pod['spec']['containers'][0]['name']
        if running:
            started = pod['status'].get('startTime') or now_rfc3339()
            status['startTime'] = started
            status['containerStatuses'] = [{'name': cname, 'image': image, 'ready': True, 'restartCount': 0, 'started': True,
                                            'state': {'running': {'startedAt': started}}}]
            status['conditions'] = [{'type': 'Ready', 'status': 'True'}]
        else:
            # No airgap images and no network: not even the pause image, so the sandbox never starts.
            status['containerStatuses'] = [{'name': cname, 'image': image, 'ready': False, 'restartCount': 0,
                                            'state': {'waiting': {'reason': 'ContainerCreating'}}}]
            status['conditions'] = [{'type': 'Ready', 'status': 'False'}]
        if changed or _status_key(pod['status']) != _status_key(status):
            pod['status'] = status
            self.store.put('pods', pod)

    def _evict(self, ns, name):
        pod = self.store.get('pods', ns, name)
        if pod is None:
            raise api.not_found('pods', name)
        self.store.remove('pods', ns, name)
        return {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Success', 'code': 201}


def _condition(node, ctype):
    for c in (node.get('status') or {}).get('conditions') or []:
        if c.get('type') == ctype:
            return c
    return None


def _tolerates(tolerations, taint):
    for t in tolerations:
        if t.get('operator') == 'Exists' and not t.get('key'):
            return True
        if t.get('key') == taint.get('key') and (not t.get('effect') or t.get('effect') == taint.get('effect')):
            if t.get('operator') == 'Exists' or t.get('value') == taint.get('value'):
                return True
    return False


def _schedulable(node, tolerations):
    ready = _condition(node, 'Ready')
    if not ready or ready.get('status') != 'True' or node['spec'].get('unschedulable'):
        return False
    return all(_tolerates(tolerations, t) for t in node['spec'].get('taints') or [] if t.get('effect') in ('NoSchedule', 'NoExecute'))


def _status_key(status):
    cs = (status.get('containerStatuses') or [{}])[0]
    state = cs.get('state', {})
    return status.get('phase'), sorted(state), (state.get('waiting') or {}).get('reason'), status.get('hostIP')


def _same(a, b):
    strip = lambda o: {k: v for k, v in o.items() if k != 'metadata'}
    ma = {k: v for k, v in a.get('metadata', {}).items() if k != 'resourceVersion'}
    mb = {k: v for k, v in b.get('metadata', {}).items() if k != 'resourceVersion'}
    return ma == mb and strip(a) == strip(b)
