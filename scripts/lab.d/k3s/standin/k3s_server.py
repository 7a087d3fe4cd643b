"""`k3s server`: token and certificates, the :6443 listener, the kubeconfig, its own node, joining a cluster."""
import base64
import json
import os
import signal
import sys
import threading
import time

import k3s_api as api
import k3s_cluster
import k3s_http
import k3s_node
import k3s_yaml
from k3s_common import (CONFIG_DIR, DATA_DIR, VERSION, Flag, UsageError, b64, basic_auth, ca_hash, client_context,
                        error, fatal, hostname, info, make_cert, make_rsa_key, node_ip, parse_token, random_hex,
                        redacted_args, request, RequestError, require_memory_cgroup, resolve_flags, sd_notify,
                        version_commit, warn, write_file)

# Flags the stand-in honours, and flags it accepts and ignores (so that real configurations parse).
COMMON_FLAGS = [
    Flag('config', env='K3S_CONFIG_FILE', aliases=('c',)),
    Flag('debug', 'bool', env='K3S_DEBUG'),
    Flag('data-dir', env='K3S_DATA_DIR', aliases=('d',)),
    Flag('token', env='K3S_TOKEN', aliases=('t',)),
    Flag('token-file', env='K3S_TOKEN_FILE'),
    Flag('server', env='K3S_URL', aliases=('s',)),
    Flag('node-name', env='K3S_NODE_NAME'),
    Flag('node-label', 'list'), Flag('node-taint', 'list'),
    Flag('node-ip', 'list', aliases=('i',), split=True), Flag('node-external-ip', 'list', split=True),
    Flag('with-node-id', 'bool'),
    Flag('kubelet-arg', 'list'), Flag('kube-proxy-arg', 'list'),
    Flag('flannel-iface'), Flag('resolv-conf', env='K3S_RESOLV_CONF'), Flag('lb-server-port', env='K3S_LB_SERVER_PORT'),
    Flag('selinux', 'bool', env='K3S_SELINUX'), Flag('protect-kernel-defaults', 'bool'), Flag('pause-image'),
    Flag('snapshotter'), Flag('private-registry'), Flag('container-runtime-endpoint'), Flag('docker', 'bool'),
    Flag('prefer-bundled-bin', 'bool'), Flag('rootless', 'bool'), Flag('vpn-auth', env='K3S_VPN_AUTH'),
    Flag('vpn-auth-file', env='K3S_VPN_AUTH_FILE'), Flag('image-credential-provider-bin-dir'),
    Flag('image-credential-provider-config'), Flag('airgap-extra-registry', 'list'),
    Flag('disable-default-registry-endpoint', 'bool'), Flag('log', aliases=('l',)), Flag('alsologtostderr', 'bool'),
    Flag('v'), Flag('vmodule'),
]
SERVER_FLAGS = COMMON_FLAGS + [
    Flag('cluster-init', 'bool', env='K3S_CLUSTER_INIT'), Flag('cluster-reset', 'bool', env='K3S_CLUSTER_RESET'),
    Flag('agent-token', env='K3S_AGENT_TOKEN'), Flag('agent-token-file', env='K3S_AGENT_TOKEN_FILE'),
    Flag('tls-san', 'list', split=True), Flag('tls-san-security', 'bool'), Flag('disable', 'list', split=True),
    Flag('write-kubeconfig', env='K3S_KUBECONFIG_OUTPUT', aliases=('o',)),
    Flag('write-kubeconfig-mode', env='K3S_KUBECONFIG_MODE'), Flag('write-kubeconfig-group', env='K3S_KUBECONFIG_GROUP'),
    Flag('bind-address'), Flag('https-listen-port', default='6443'), Flag('advertise-address'), Flag('advertise-port'),
    Flag('cluster-cidr', default='10.42.0.0/16'), Flag('service-cidr', default='10.43.0.0/16'),
    Flag('cluster-dns', default='10.43.0.10'), Flag('cluster-domain', default='cluster.local'),
    Flag('flannel-backend', default='vxlan'), Flag('flannel-ipv6-masq', 'bool'), Flag('flannel-external-ip', 'bool'),
    Flag('egress-selector-mode'), Flag('servicelb-namespace'), Flag('service-node-port-range'),
    Flag('kube-apiserver-arg', 'list'), Flag('kube-controller-manager-arg', 'list'), Flag('kube-scheduler-arg', 'list'),
    Flag('kube-cloud-controller-manager-arg', 'list'), Flag('etcd-arg', 'list'),
    Flag('disable-network-policy', 'bool'), Flag('disable-kube-proxy', 'bool'), Flag('disable-cloud-controller', 'bool'),
    Flag('disable-helm-controller', 'bool'), Flag('disable-scheduler', 'bool'), Flag('disable-apiserver', 'bool'),
    Flag('disable-controller-manager', 'bool'), Flag('disable-etcd', 'bool'), Flag('disable-agent', 'bool'),
    Flag('secrets-encryption', 'bool'), Flag('embedded-registry', 'bool'), Flag('supervisor-metrics', 'bool'),
    Flag('datastore-endpoint', env='K3S_DATASTORE_ENDPOINT'), Flag('datastore-cafile'), Flag('datastore-certfile'),
    Flag('datastore-keyfile'), Flag('default-local-storage-path'), Flag('system-default-registry'),
    Flag('etcd-expose-metrics', 'bool'), Flag('etcd-disable-snapshots', 'bool'), Flag('etcd-snapshot-schedule-cron'),
    Flag('etcd-snapshot-retention'), Flag('etcd-snapshot-dir'), Flag('etcd-s3', 'bool'), Flag('enable-pprof', 'bool'),
    Flag('kine-tls', 'bool'), Flag('helm-job-image'), Flag('nonroot-devices', 'bool'),
]
CRITICAL = ('cluster-cidr', 'service-cidr', 'cluster-dns', 'cluster-domain', 'flannel-backend')


def read_token(values, name='token', file_flag='token-file'):
    if values.get(name):
        return values[name].strip()
    if values.get(file_flag):
        try:
            with open(values[file_flag]) as f:
                return f.read().strip()
        except OSError as e:
            fatal('Error: failed to read token file %s: %s' % (values[file_flag], e.strerror))
    return ''


def node_identity(values):
    name = (values.get('node-name') or hostname()).lower()
    ips = values.get('node-ip') or []
    if values.get('with-node-id'):
        id_file = '/etc/rancher/node/id'
        node_id = _read(id_file) or random_hex(4)
        write_file(id_file, node_id + '\n', 0o644)
        name = '%s-%s' % (name, node_id)
    try:
        ip = ips[0] if ips else node_ip()
    except RuntimeError as e:
        fatal('Error: failed to get node name and addresses: %s' % e)
    return name, ip


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ''


def kubeconfig_yaml(ca_pem, cert_pem, key_pem, server='https://127.0.0.1:6443'):
    cfg = {'apiVersion': 'v1', 'kind': 'Config', 'preferences': {}, 'current-context': 'default',
           'clusters': [{'name': 'default', 'cluster': {'certificate-authority-data': b64(ca_pem), 'server': server}}],
           'contexts': [{'name': 'default', 'context': {'cluster': 'default', 'user': 'default'}}],
           'users': [{'name': 'default', 'user': {'client-certificate-data': b64(cert_pem), 'client-key-data': b64(key_pem)}}]}
    return k3s_yaml.dump(cfg)


class PKI(dict):
    """Files of server/tls by name; one still being generated (the RSA service key) is waited for when read."""

    def __init__(self):
        super().__init__()
        self.pending = {}

    def __getitem__(self, name):
        ev = self.pending.get(name)
        if ev:
            ev.wait()
        return super().__getitem__(name)

    def items(self):
        for ev in list(self.pending.values()):
            ev.wait()
        return super().items()

    def generate_later(self, name, path, make):
        ev = threading.Event()
        self.pending[name] = ev

        def work():
            text = make()
            write_file(path, text, 0o600)
            dict.__setitem__(self, name, text)
            ev.set()
        threading.Thread(target=work, name='keygen', daemon=True).start()


class Server:
    def __init__(self, argv):
        self.argv = argv
        try:
            self.v, positional, unknown = resolve_flags(argv, SERVER_FLAGS)
        except UsageError as e:
            sys.stderr.write('Incorrect Usage: %s\n\n' % e)
            sys.exit(1)
        for k in unknown:
            warn('Unknown flag --%s found in config.yaml, skipping' % k)
        self.data = os.path.join(self.v.get('data-dir') or DATA_DIR, 'server')
        self.tls = os.path.join(self.data, 'tls')
        self.pki = PKI()

    # ------------------------------------------------------------------------------------------------ start-up

    def run(self):
        v = self.v
        info('Starting k3s %s (%s)' % (VERSION, version_commit()))
        delay = float(os.environ.get('K3S_STANDIN_START_DELAY') or 0)
        require_memory_cgroup()
        self.name, self.ip = node_identity(v)
        os.makedirs(self.data, mode=0o700, exist_ok=True)
        os.chmod(self.data, 0o700)
        os.makedirs(self.tls, mode=0o700, exist_ok=True)
        os.makedirs(os.path.join(self.data, 'cred'), mode=0o700, exist_ok=True)
        os.makedirs(os.path.join(self.data, 'db'), mode=0o700, exist_ok=True)
        os.makedirs(os.path.join(self.data, 'manifests'), mode=0o755, exist_ok=True)
        token = read_token(v)
        self.leader_url = v.get('server', '').rstrip('/')
        if self.leader_url and not self.leader_url.startswith('https://'):
            fatal('Error: only https:// URLs are supported, invalid scheme: %s' % self.leader_url)
        if self.leader_url and not token:
            fatal('Error: --token is required when --server is set')
        if self.leader_url and not os.path.exists(os.path.join(self.tls, 'server-ca.crt')):
            self.join(token)
        self.load_or_create_pki()
        self.password = self.reconcile_token(token)
        agent_token = read_token(v, 'agent-token', 'agent-token-file')
        self.agent_password = parse_token(agent_token)[2] if agent_token else ''
        self.write_tokens(agent_token)
        if delay:
            time.sleep(delay)    # K3S_STANDIN_START_DELAY: let tests see a server that takes a while
        self.start_api()
        self.write_kubeconfig()
        info('Node token is available at %s/token' % self.data)
        info('To join server node to cluster: k3s server -s https://%s:6443 -t ${SERVER_NODE_TOKEN}' % self.ip)
        if agent_token:
            info('Agent node token is available at %s/agent-token' % self.data)
        info('To join agent node to cluster: k3s agent -s https://%s:6443 -t ${NODE_TOKEN}' % self.ip)
        self.start_embedded_agent()
        info('k3s is up and running')
        sd_notify('READY=1\n')
        self.wait()

    def join(self, token):
        """A joining server copies the cluster's CA and keys (k3s's bootstrap data) from the server it names."""
        try:
            want_hash, _, password = parse_token(token)
        except ValueError as e:
            fatal('Error: preparing server: failed to normalize server token; must be in format '
                  'K10<CA-HASH>::<USERNAME>:<PASSWORD> or <PASSWORD>: %s' % e)
        url = self.leader_url
        try:
            _, _, _, cacerts = request('GET', url + '/cacerts')
            if want_hash and ca_hash(cacerts) != want_hash:
                fatal('Error: preparing server: token CA hash does not match the Cluster CA certificate hash: %s != %s'
                      % (want_hash, ca_hash(cacerts)))
            ctx = client_context(ca_pem=cacerts.decode())
            status, reason, _, body = request('GET', url + '/v1-k3s/server-bootstrap', ctx=ctx,
                                              headers=basic_auth('server', password))
        except RequestError as e:
            fatal('Error: preparing server: failed to bootstrap cluster data: %s' % e)
        if status != 200:
            fatal('Error: preparing server: failed to bootstrap cluster data: %s/v1-k3s/server-bootstrap: %d %s'
                  % (url, status, reason))
        boot = json.loads(body)
        if not boot.get('clusterInit'):
            fatal('Error: preparing server: %s is not using embedded etcd: start the first server with --cluster-init '
                  'to add servers [k3s stand-in]' % url)
        mine = {k: self.v.get(k) for k in CRITICAL}
        theirs = boot.get('critical') or {}
        diff = [k for k in CRITICAL if theirs.get(k) not in (None, mine.get(k))]
        if diff:
            fatal('Error: preparing server: failed to validate server configuration: critical configuration value '
                  'mismatch between servers: %s' % ', '.join(diff))
        for name, content in boot['files'].items():
            write_file(os.path.join(self.tls, name), base64.b64decode(content), 0o600)
        write_file(os.path.join(self.data, 'standin-leader'), url + '\n', 0o600)
        info('Managed etcd cluster membership has been joined through %s' % url)

    def load_or_create_pki(self):
        files = ('server-ca.crt', 'server-ca.key', 'client-ca.crt', 'client-ca.key', 'service.key')
        if not os.path.exists(os.path.join(self.tls, 'server-ca.crt')):
            stamp = int(time.time())
            crt, key = make_cert('k3s-server-ca@%d' % stamp)
            write_file(os.path.join(self.tls, 'server-ca.crt'), crt, 0o644)
            write_file(os.path.join(self.tls, 'server-ca.key'), key, 0o600)
            crt, key = make_cert('k3s-client-ca@%d' % stamp)
            write_file(os.path.join(self.tls, 'client-ca.crt'), crt, 0o644)
            write_file(os.path.join(self.tls, 'client-ca.key'), key, 0o600)
        for f in files:
            path = os.path.join(self.tls, f)
            if f == 'service.key' and not os.path.exists(path):
                self.pki.generate_later(f, path, make_rsa_key)   # RSA 2048 takes seconds on a busy machine
            else:
                self.pki[f] = _read(path) + '\n'
        admin_crt = os.path.join(self.tls, 'client-admin.crt')
        if not os.path.exists(admin_crt):
            crt, key = make_cert('system:admin', ['system:masters'], (self.pki['client-ca.crt'], self.pki['client-ca.key']),
                                 usage='client')
            write_file(admin_crt, crt, 0o644)
            write_file(os.path.join(self.tls, 'client-admin.key'), key, 0o600)
        self.ensure_serving_cert()

    def sans(self):
        v = self.v
        names = ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local',
                 'localhost', hostname(), self.name, '127.0.0.1', '::1', '10.43.0.1', self.ip]
        names += (v.get('node-external-ip') or []) + ([v['advertise-address']] if v.get('advertise-address') else [])
        names += v.get('tls-san') or []
        out = []
        for n in names:
            if n and n not in out:
                out.append(n)
        return out

    def ensure_serving_cert(self):
        """The listener's certificate, made again when the wanted SANs change (as k3s's dynamic listener does)."""
        sans = self.sans()
        meta = os.path.join(self.tls, 'dynamic-cert.json')
        current = json.loads(_read(meta) or '{}').get('sans')
        crt_path = os.path.join(self.tls, 'serving-kube-apiserver.crt')
        if current != sans or not os.path.exists(crt_path):
            crt, key = make_cert('k3s', ['k3s'], (self.pki['server-ca.crt'], self.pki['server-ca.key']), sans=sans)
            write_file(crt_path, crt, 0o644)
            write_file(os.path.join(self.tls, 'serving-kube-apiserver.key'), key, 0o600)
            write_file(meta, json.dumps({'sans': sans}), 0o600)
            if current is not None:
                info('Updating TLS secret for kube-system/k3s-serving (count: %d): %s' % (len(sans), sans))

    def reconcile_token(self, token):
        """The stored token wins; a different one given later is refused as k3s refuses it (bootstrap data is
        encrypted with the first token)."""
        stored = _read(os.path.join(self.data, 'token'))
        given = None
        if token:
            try:
                given = parse_token(token)
            except ValueError as e:
                fatal('Error: preparing server: failed to normalize server token; must be in format '
                      'K10<CA-HASH>::<USERNAME>:<PASSWORD> or <PASSWORD>: %s' % e)
        if stored:
            password = parse_token(stored)[2]
            if given and (given[2] != password or (given[0] and given[0] != ca_hash(self.pki['server-ca.crt']))):
                fatal('Error: preparing server: failed to bootstrap cluster data: failed to reconcile with local '
                      'datastore: bootstrap data already found and encrypted with different token')
            return password
        if given and given[0] and given[0] != ca_hash(self.pki['server-ca.crt']):
            fatal('Error: preparing server: token CA hash does not match the Cluster CA certificate hash: %s != %s'
                  % (given[0], ca_hash(self.pki['server-ca.crt'])))
        return given[2] if given else random_hex(16)

    def write_tokens(self, agent_token):
        full = 'K10%s::server:%s' % (ca_hash(self.pki['server-ca.crt']), self.password)
        write_file(os.path.join(self.data, 'token'), full + '\n', 0o600)
        link = os.path.join(self.data, 'node-token')
        if not os.path.islink(link):
            if os.path.exists(link):
                os.remove(link)
            os.symlink('token', link)
        if agent_token:
            agent_full = agent_token if agent_token.startswith('K10') else \
                'K10%s::node:%s' % (ca_hash(self.pki['server-ca.crt']), self.agent_password)
            write_file(os.path.join(self.data, 'agent-token'), agent_full + '\n', 0o600)
        passwd = '%s,server,server,k3s:server\n%s,node,node,k3s:agent\n' % (self.password, self.agent_password or self.password)
        write_file(os.path.join(self.data, 'cred', 'passwd'), passwd, 0o600)

    # ------------------------------------------------------------------------------------------------ serving

    def start_api(self):
        v = self.v
        port = int(v.get('https-listen-port') or 6443)
        self.grace = float(os.environ.get('K3S_STANDIN_GRACE') or 15)
        disabled = [d for d in v.get('disable') or []]
        for d in disabled:
            if d not in ('coredns', 'servicelb', 'traefik', 'local-storage', 'metrics-server', 'runtimes'):
                warn('Unknown component %s in --disable; ignoring' % d)
        ctx = k3s_http.server_context(os.path.join(self.tls, 'serving-kube-apiserver.crt'),
                                      os.path.join(self.tls, 'serving-kube-apiserver.key'), self.pki['client-ca.crt'])
        self.cluster = None
        if self.leader_url or os.path.exists(os.path.join(self.data, 'standin-leader')):
            self.leader_url = self.leader_url or _read(os.path.join(self.data, 'standin-leader'))
            backend = k3s_http.FollowerBackend(self.leader_url, self.pki, self.password)
        else:
            store = api.Store(os.path.join(self.data, 'db', 'standin-state.json'))
            store.start_saver()
            self.store = store
            settings = {'password': self.password, 'agent_password': self.agent_password, 'grace': self.grace,
                        'disabled': disabled, 'cluster_init': bool(v.get('cluster-init')), 'node_name': self.name,
                        'token_delay': float(os.environ.get('K3S_STANDIN_TOKEN_DELAY') or 0.3)}
            self.cluster = k3s_cluster.Cluster(store, self.pki, settings)
            self.cluster.ensure_system_objects()
            config = {'ServerURL': 'https://%s:%d' % (self.ip, port), 'SupervisorPort': port, 'HTTPSPort': port,
                      'ClusterDNS': v.get('cluster-dns'), 'ClusterDomain': v.get('cluster-domain'),
                      'ClusterIPRange': v.get('cluster-cidr'), 'ServiceIPRange': v.get('service-cidr'),
                      'FlannelBackend': v.get('flannel-backend'), 'StandinGrace': self.grace,
                      'StandinClusterInit': bool(v.get('cluster-init')),
                      'StandinCritical': {k: v.get(k) for k in CRITICAL}}
            supervisor = k3s_http.Supervisor(self.cluster, self.pki, config, self.ip, self.apiservers)
            backend = k3s_http.LeaderBackend(self.cluster, self.pki, supervisor)
            self.cluster.start_controllers()
        bind = v.get('bind-address') or '0.0.0.0'
        try:
            k3s_http.serve(bind, port, ctx, backend)
        except OSError as e:
            fatal('Error: starting kubernetes: preparing server: init cluster datastore and https: listen tcp %s:%d: '
                  'bind: %s' % (bind, port, e.strerror.lower() if e.strerror else e))
        info('Running kube-apiserver --advertise-address=%s --advertise-port=%d --anonymous-auth=false '
             '--authorization-mode=Node,RBAC --bind-address=127.0.0.1 --secure-port=6444 --service-cluster-ip-range=%s'
             % (self.ip, port, v.get('service-cidr')))
        info('Tunnel server egress proxy mode: agent')
        info('Waiting for API server to become available')

    def apiservers(self):
        out = []
        for n in self.store.list('nodes'):
            if n['metadata'].get('labels', {}).get('node-role.kubernetes.io/control-plane') == 'true':
                ip = next((a['address'] for a in n['status'].get('addresses', []) if a['type'] == 'InternalIP'), None)
                if ip:
                    out.append('%s:%s' % (ip, self.v.get('https-listen-port') or 6443))
        return out or ['%s:%s' % (self.ip, self.v.get('https-listen-port') or 6443)]

    def write_kubeconfig(self):
        v = self.v
        path = v.get('write-kubeconfig') or os.path.join(CONFIG_DIR, 'k3s.yaml')
        mode_text = v.get('write-kubeconfig-mode') or ''
        try:
            mode = int(mode_text, 8) if mode_text else 0o600
        except ValueError:
            fatal('Error: invalid write-kubeconfig-mode %s' % mode_text)
        text = kubeconfig_yaml(self.pki['server-ca.crt'], _read(os.path.join(self.tls, 'client-admin.crt')) + '\n',
                               _read(os.path.join(self.tls, 'client-admin.key')) + '\n')
        write_file(path, text, mode)
        if v.get('write-kubeconfig-group'):
            import grp
            try:
                os.chown(path, -1, grp.getgrnam(v['write-kubeconfig-group']).gr_gid)
            except KeyError:
                warn('Unable to set group %s on %s: no such group' % (v['write-kubeconfig-group'], path))
        info('Wrote kubeconfig %s' % path)

    # ------------------------------------------------------------------------------------------------ embedded agent

    def start_embedded_agent(self):
        v = self.v
        cluster_init = bool(v.get('cluster-init')) or bool(self.leader_url)
        images = k3s_node.import_airgap_images(self.data.rsplit('/server', 1)[0], info)
        try:
            labels, taints = k3s_node.parse_labels(v.get('node-label')), k3s_node.parse_taints(v.get('node-taint'))
        except ValueError as e:
            fatal('Error: %s' % e)
        annotations = k3s_node.node_annotations(self.name, self.ip, ['server'] + redacted_args(self.argv),
                                                k3s_node.k3s_env_for_annotation())
        ext = (v.get('node-external-ip') or [None])[0]
        node = k3s_node.node_object(self.name, self.ip, 'server', labels, taints, annotations, images, ext, cluster_init)
        node['status']['conditions'] = _not_ready_conditions()
        if self.cluster:
            client = LocalNodeClient(self.cluster)
            # The embedded agent registers its node password too (kube-system/<node>.node-password.k3s).
            import k3s_agent
            while not self.cluster.node_password_check(self.name, k3s_agent.ensure_node_password()):
                info('Waiting to retrieve agent configuration; server is not ready: Node password rejected, duplicate '
                     "hostname or contents of '/etc/rancher/node/password' may not match server node-passwd entry, try "
                     'enabling a unique node name with the --with-node-id flag')
                time.sleep(5)
        else:
            client = k3s_node_client_remote(self.leader_url, self.pki, self.password, self.name)
        self.node_client = client
        interval = k3s_node.heartbeat_interval(self.grace if self.cluster else float(os.environ.get('K3S_STANDIN_GRACE') or 15))
        threading.Thread(target=_kubelet_loop, args=(client, node, interval, images), name='kubelet', daemon=True).start()

    def wait(self):
        def stop(signum, frame):
            info('Received %s; shutting down' % ('SIGTERM' if signum == signal.SIGTERM else 'SIGINT'))
            if self.cluster:
                try:
                    self.store.save()
                except OSError:
                    pass
            os._exit(0)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while True:
            signal.pause()


def _not_ready_conditions():
    conds = k3s_node.ready_conditions()
    for c in conds:
        if c['type'] == 'Ready':
            c.update({'status': 'False', 'reason': 'KubeletNotReady',
                      'message': 'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady '
                                 'message:Network plugin returns error: cni plugin not initialized'})
    return conds


class LocalNodeClient:
    """The leader's own kubelet talks to its cluster directly."""

    def __init__(self, cluster):
        self.cluster = cluster

    def register(self, node):
        self.cluster.register_node(node)

    def heartbeat(self, name, conditions, images):
        self.cluster.heartbeat(name, conditions, images_status(images))


class RemoteNodeClient:
    """A kubelet talking to the API at `base` (through the agent's load balancer, or a joined server's leader)."""

    def __init__(self, base, ctx, headers):
        self.base, self.ctx, self.headers = base.rstrip('/'), ctx, headers

    def _call(self, method, path, body, ctype='application/json'):
        h = dict(self.headers)
        h['Content-Type'] = ctype
        status, reason, _, payload = request(method, self.base + path, body, self.ctx, h)
        return status, reason, payload

    def register(self, node):
        name = node['metadata']['name']
        status, reason, payload = self._call('POST', '/api/v1/nodes', node)
        if status == 409:
            patch = {'metadata': {'labels': node['metadata']['labels'], 'annotations': node['metadata']['annotations']}}
            status, reason, payload = self._call('PATCH', '/api/v1/nodes/' + name, patch, 'application/merge-patch+json')
            if status == 200:
                status, reason, payload = self._call('PATCH', '/api/v1/nodes/%s/status' % name,
                                                     {'status': node['status']}, 'application/merge-patch+json')
        if status not in (200, 201):
            raise RuntimeError('Unable to register node with API server: %s' % _status_message(payload, status, reason))

    def heartbeat(self, name, conditions, images):
        status, reason, payload = self._call('PATCH', '/api/v1/nodes/%s/status' % name,
                                             {'status': {'conditions': conditions, 'images': images_status(images)}},
                                             'application/merge-patch+json')
        if status != 200:
            raise RuntimeError('error getting node "%s": %s' % (name, _status_message(payload, status, reason)))


def images_status(images):
    return [{'names': [i], 'sizeBytes': 1000000 + 7919 * n} for n, i in enumerate(images)]


def _status_message(payload, status, reason):
    try:
        return json.loads(payload).get('message') or '%d %s' % (status, reason)
    except ValueError:
        return '%d %s' % (status, reason)


def k3s_node_client_remote(leader_url, pki, password, name):
    headers = basic_auth('server', password)
    headers.update({'X-Remote-User': 'system:node:' + name, 'X-Remote-Group': 'system:nodes'})
    return RemoteNodeClient(leader_url, client_context(ca_pem=pki['server-ca.crt']), headers)


def _kubelet_loop(client, node, interval, images, ready_delay=None):
    """Registers the node (NotReady until the CNI is up), then posts Ready every `interval` seconds."""
    name = node['metadata']['name']
    ready_delay = float(os.environ.get('K3S_STANDIN_READY_DELAY') or 1.0) if ready_delay is None else ready_delay
    while True:
        try:
            client.register(node)
            info('Successfully registered node', node=name)
            break
        except (RuntimeError, RequestError, api.APIError) as e:
            error('Unable to register node with API server', err=str(e), node=name)
            time.sleep(2)
    ready_at = time.monotonic() + ready_delay
    failing = False
    while True:
        now = time.monotonic()
        # The first Ready post comes as soon as the "CNI" is up, later ones every interval.
        time.sleep(interval if now >= ready_at else min(interval, ready_at - now))
        conds = _not_ready_conditions() if time.monotonic() < ready_at else k3s_node.ready_conditions()
        try:
            client.heartbeat(name, conds, images)
            if failing:
                info('Node status updated again', node=name)
            failing = False
        except (RuntimeError, RequestError, api.APIError) as e:
            if not failing:
                error('Error updating node status, will retry', err=str(e))
            failing = True


def main(argv):
    Server(argv).run()
