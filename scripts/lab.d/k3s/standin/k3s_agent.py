"""`k3s agent`: the client load balancer on 127.0.0.1:6444, the token check, the agent-configuration loop that
a wrong token never leaves, node credentials, registration and heartbeats."""
import json
import os
import random
import select
import socket
import sys
import threading
import time

import k3s_node
import k3s_server
from k3s_common import (DATA_DIR, VERSION, UsageError, basic_auth, ca_hash, client_context, error, fatal, info,
                        parse_token, random_hex, redacted_args, request, RequestError, require_memory_cgroup,
                        resolve_flags, sd_notify, version_commit, warn, write_file)

LB_NAME = 'k3s-agent-load-balancer'


class LoadBalancer:
    """k3s's agent load balancer: a local TCP port that forwards to the first server that answers."""

    def __init__(self, port, servers):
        self.port, self.servers, self.lock = port, list(servers), threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', port))
        self.sock.listen(64)
        threading.Thread(target=self._accept, name='lb', daemon=True).start()

    def set_servers(self, servers):
        with self.lock:
            for s in servers:
                if s not in self.servers:
                    info('Adding server to load balancer %s: %s' % (LB_NAME, s))
                    self.servers.append(s)

    def _accept(self):
        while True:
            client, _ = self.sock.accept()
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client):
        upstream = None
        with self.lock:
            servers = list(self.servers)
        for s in servers:
            host, _, port = s.rpartition(':')
            try:
                upstream = socket.create_connection((host, int(port)), timeout=5)
                break
            except OSError:
                continue
        if upstream is None:
            client.close()
            return
        upstream.settimeout(None)
        socks = [client, upstream]
        try:
            while True:
                readable, _, _ = select.select(socks, [], [], 300)
                if not readable:
                    break
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is client else client).sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()


def ensure_node_password(path='/etc/rancher/node/password'):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        password = random_hex(16)
        write_file(path, password + '\n', 0o600)
        return password


class Agent:
    def __init__(self, argv):
        self.argv = argv
        try:
            self.v, _, unknown = resolve_flags(argv, k3s_server.COMMON_FLAGS)
        except UsageError as e:
            sys.stderr.write('Incorrect Usage: %s\n\n' % e)
            sys.exit(1)
        for k in unknown:
            warn('Unknown flag --%s found in config.yaml, skipping' % k)
        self.data = self.v.get('data-dir') or DATA_DIR
        self.agent_dir = os.path.join(self.data, 'agent')

    def run(self):
        v = self.v
        info('Starting k3s agent %s (%s)' % (VERSION, version_commit()))
        require_memory_cgroup()
        server = (v.get('server') or '').rstrip('/')
        token = k3s_server.read_token(v)
        if not server:
            fatal('Error: --server is required')
        if not token:
            fatal('Error: --token is required')
        if not server.startswith('https://'):
            fatal('Error: only https:// URLs are supported, invalid scheme: %s' % server)
        os.makedirs(self.agent_dir, mode=0o700, exist_ok=True)
        self.name, self.ip = k3s_server.node_identity(v)
        hostport = server[len('https://'):].split('/')[0]
        if ':' not in hostport:
            hostport += ':443'
        lb_port = int(v.get('lb-server-port') or 6444)
        try:
            self.lb = LoadBalancer(lb_port, [hostport])
        except OSError as e:
            fatal('Error: failed to create load balancer %s: listen tcp 127.0.0.1:%d: bind: %s' % (LB_NAME, lb_port, e.strerror))
        info('Running load balancer %s 127.0.0.1:%d -> [%s] [default: %s]' % (LB_NAME, lb_port, hostport, hostport))
        self.base = 'https://127.0.0.1:%d' % lb_port
        self.cacerts, self.password = self.validate_token(server, token)
        self.ctx = client_context(ca_pem=self.cacerts)
        config = self.retrieve_config()
        images = k3s_node.import_airgap_images(self.data, info)
        info('Running containerd -c %s/etc/containerd/config.toml' % self.agent_dir)
        info('containerd is now running')
        info('Connecting to proxy', url='wss://%s/v1-k3s/connect' % hostport)
        try:
            labels, taints = k3s_node.parse_labels(v.get('node-label')), k3s_node.parse_taints(v.get('node-taint'))
        except ValueError as e:
            fatal('Error: %s' % e)
        annotations = k3s_node.node_annotations(self.name, self.ip, ['agent'] + redacted_args(self.argv),
                                                k3s_node.k3s_env_for_annotation())
        ext = (v.get('node-external-ip') or [None])[0]
        node = k3s_node.node_object(self.name, self.ip, 'agent', labels, taints, annotations, images, ext)
        node['status']['conditions'] = k3s_server._not_ready_conditions()
        client_ctx = client_context(ca_pem=self.cacerts, cert_pem=self.client_cert, key_pem=self.client_key)
        client = k3s_server.RemoteNodeClient(self.base, client_ctx, {})
        interval = k3s_node.heartbeat_interval(float(config.get('StandinGrace') or 15))
        threading.Thread(target=k3s_server._kubelet_loop, args=(client, node, interval, images), name='kubelet',
                         daemon=True).start()
        threading.Thread(target=self._watch_apiservers, daemon=True).start()
        info('k3s agent is up and running')
        sd_notify('READY=1\n')
        while True:
            time.sleep(3600)

    def validate_token(self, server, token):
        """The CA from /cacerts must match the token's hash; until it does (or while the server is away), retry."""
        warned = False
        while True:
            try:
                want, _, password = parse_token(token)
                status, reason, _, body = request('GET', self.base + '/cacerts')
                if status != 200:
                    raise RuntimeError('failed to get CA certs: %s/cacerts: %d %s' % (self.base, status, reason))
                cacerts = body.decode()
                if want and ca_hash(cacerts) != want:
                    raise RuntimeError('token CA hash does not match the Cluster CA certificate hash: %s != %s'
                                       % (want, ca_hash(cacerts)))
                if not want and not warned:
                    warn('Cluster CA certificate is not trusted by the host CA bundle, but the token does not include '
                         'a CA hash. Use the full token from the server\'s node-token file to enable Cluster CA validation.')
                    warned = True
                return cacerts, password
            except RequestError as e:
                error('Failed to validate connection to cluster at %s: failed to get CA certs: %s' % (server, e))
            except (RuntimeError, ValueError) as e:
                error('Failed to validate connection to cluster at %s: %s' % (server, e))
            time.sleep(2)

    def retrieve_config(self):
        """Agent configuration and node certificates, retried with k3s's jitter (5-10 s) until the server accepts
        the token; a wrong token stays here for good, logging 401 Unauthorized."""
        node_password = ensure_node_password()
        while True:
            try:
                return self._try_config(node_password)
            except (RuntimeError, RequestError) as e:
                info('Waiting to retrieve agent configuration; server is not ready: %s' % e)
            time.sleep(5 * (1 + random.random()))

    def _try_config(self, node_password):
        auth = basic_auth('node', self.password)
        status, reason, _, body = request('GET', self.base + '/v1-k3s/config', ctx=self.ctx, headers=auth)
        if status != 200:
            raise RuntimeError('failed to retrieve configuration from server: %s/v1-k3s/config: %d %s'
                               % (self.base, status, reason))
        config = json.loads(body)
        headers = dict(auth)
        headers.update({'k3s-Node-Name': self.name, 'k3s-Node-Password': node_password, 'k3s-Node-IP': self.ip})
        for kind in ('serving', 'client'):
            url = '%s/v1-k3s/%s-kubelet.crt' % (self.base, kind)
            status, reason, _, body = request('GET', url, ctx=self.ctx, headers=headers)
            if status == 403:
                raise RuntimeError("%s/agent/serving-kubelet.crt: Node password rejected, duplicate hostname or contents of "
                                   "'/etc/rancher/node/password' may not match server node-passwd entry, try enabling a "
                                   "unique node name with the --with-node-id flag" % self.data)
            if status != 200:
                raise RuntimeError('%s: %d %s' % (url, status, reason))
            pem = body.decode()
            cut = pem.index('-----BEGIN PRIVATE KEY-----') if '-----BEGIN PRIVATE KEY-----' in pem else pem.index('-----BEGIN')
            cert, key = pem[:cut], pem[cut:]
            write_file(os.path.join(self.agent_dir, '%s-kubelet.crt' % kind), cert, 0o600)
            write_file(os.path.join(self.agent_dir, '%s-kubelet.key' % kind), key, 0o600)
            if kind == 'client':
                self.client_cert, self.client_key = cert, key
        write_file(os.path.join(self.agent_dir, 'server-ca.crt'), self.cacerts, 0o600)
        return config

    def _watch_apiservers(self):
        """The servers list feeds the load balancer, so that the agent survives losing the one it first knew."""
        while True:
            try:
                status, _, _, body = request('GET', self.base + '/v1-k3s/apiservers', ctx=self.ctx,
                                             headers=basic_auth('node', self.password))
                if status == 200:
                    self.lb.set_servers(json.loads(body))
            except (RequestError, ValueError):
                pass
            time.sleep(15)


def main(argv):
    Agent(argv).run()
