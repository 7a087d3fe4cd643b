"""What a kubelet reports: the Node object it registers, its heartbeat conditions, and the images it imported
from the airgap tarballs (or pulled, when installed online). Shared by the agent and the server's embedded agent."""
import glob
import hashlib
import json
import os
import re
import time

from k3s_common import VERSION, go_arch, os_image, now_rfc3339, read_text

# The images a release's airgap tarball holds ([I]: versions approximate the 1.32 line).
SYSTEM_IMAGES = {
    'pause': 'docker.io/rancher/mirrored-pause:3.6',
    'coredns': 'docker.io/rancher/mirrored-coredns-coredns:1.12.1',
    'local-path': 'docker.io/rancher/local-path-provisioner:v0.0.31',
    'metrics-server': 'docker.io/rancher/mirrored-metrics-server:v0.7.2',
    'traefik': 'docker.io/rancher/mirrored-library-traefik:3.3.6',
    'klipper-lb': 'docker.io/rancher/klipper-lb:v0.4.13',
    'klipper-helm': 'docker.io/rancher/klipper-helm:v0.9.5-build20250306',
    'busybox': 'docker.io/rancher/mirrored-library-busybox:1.36.1',
}
IMAGE_MARKER = 'k3s-standin-airgap-images'


def import_airgap_images(data_dir, log):
    """Tarballs in agent/images/ made by make-bundle name their architecture; only this node's counts. A node
    without any tarball was installed online: like a real one it pulls the system images from their registries,
    which the lab plays as always reachable (so it has them all). A node with tarballs is an airgap node: it has
    only what they hold."""
    arch = go_arch()
    found = []
    tarballs = [path for path in sorted(glob.glob(os.path.join(data_dir, 'agent', 'images', '*')))
                if re.search(r'\.(tar|tar\.zst|tar\.gz|tgz|tar\.lz4|tar\.bz2)$', path)]
    if not tarballs:
        return list(SYSTEM_IMAGES.values())
    for path in tarballs:
        try:
            with open(path, 'rb') as f:
                head = f.read(4096).decode('utf-8', 'replace')
        except OSError:
            continue
        m = re.search(IMAGE_MARKER + r' arch=(\w+)', head)
        log('Importing images from %s' % path)
        if m and m.group(1) == arch:
            found = list(SYSTEM_IMAGES.values())
            log('Imported images from %s in 12.345678ms' % path)
        else:
            log('Skipping images in %s: not for %s' % (path, arch))
    return found


def base_labels(name, arch, role, cluster_init=False):
    labels = {
        'beta.kubernetes.io/arch': arch, 'beta.kubernetes.io/instance-type': 'k3s', 'beta.kubernetes.io/os': 'linux',
        'kubernetes.io/arch': arch, 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux',
        'node.kubernetes.io/instance-type': 'k3s',
    }
    if role == 'server':
        labels['node-role.kubernetes.io/control-plane'] = 'true'
        labels['node-role.kubernetes.io/master'] = 'true'
        if cluster_init:
            labels['node-role.kubernetes.io/etcd'] = 'true'
    return labels


def parse_labels(items):
    out = {}
    for item in items or []:
        k, _, v = str(item).partition('=')
        out[k.strip()] = v.strip()
    return out


def parse_taints(items):
    """key=value:Effect or key:Effect, as --node-taint takes them."""
    out = []
    for item in items or []:
        spec, _, effect = str(item).rpartition(':')
        if not spec:
            raise ValueError('invalid taint spec: %s' % item)
        key, _, value = spec.partition('=')
        if effect not in ('NoSchedule', 'PreferNoSchedule', 'NoExecute'):
            raise ValueError('invalid taint effect: %s, unsupported taint effect' % effect)
        taint = {'key': key, 'effect': effect}
        if value:
            taint['value'] = value
        out.append(taint)
    return out


def ready_conditions(t=None):
    now = now_rfc3339(t)
    c = []
    for ctype, reason, message in (
            ('MemoryPressure', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
            ('DiskPressure', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
            ('PIDPressure', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
            ('Ready', 'KubeletReady', 'kubelet is posting ready status')):
        c.append({'type': ctype, 'status': 'True' if ctype == 'Ready' else 'False', 'reason': reason,
                  'message': message, 'lastHeartbeatTime': now, 'lastTransitionTime': now})
    return c


def node_object(name, ip, role, labels, taints, annotations, images, external_ip=None, cluster_init=False):
    arch = go_arch()
    all_labels = base_labels(name, arch, role, cluster_init)
    all_labels.update(labels)
    cpus = str(os.cpu_count() or 1)
    mem_kb = 0
    for line in read_text('/proc/meminfo').splitlines():
        if line.startswith('MemTotal:'):
            mem_kb = int(line.split()[1])
    addresses = [{'type': 'InternalIP', 'address': ip}]
    if external_ip:
        addresses.append({'type': 'ExternalIP', 'address': external_ip})
    addresses.append({'type': 'Hostname', 'address': name})
    capacity = {'cpu': cpus, 'memory': '%dKi' % mem_kb, 'pods': '110', 'ephemeral-storage': '61202244Ki',
                'hugepages-2Mi': '0'}
    return {
        'apiVersion': 'v1', 'kind': 'Node',
        'metadata': {'name': name, 'labels': all_labels, 'annotations': annotations},
        'spec': {'providerID': 'k3s://' + name, 'taints': taints} if taints else {'providerID': 'k3s://' + name},
        'status': {
            'addresses': addresses, 'capacity': capacity, 'allocatable': dict(capacity),
            'conditions': ready_conditions(),
            'daemonEndpoints': {'kubeletEndpoint': {'Port': 10250}},
            'images': [{'names': [i], 'sizeBytes': 1000000 + 7919 * n} for n, i in enumerate(images)],
            'nodeInfo': {
                'architecture': arch, 'bootID': read_text('/proc/sys/kernel/random/boot_id'),
                'containerRuntimeVersion': 'containerd://2.0.5-k3s1.32',
                'kernelVersion': os.uname().release, 'kubeProxyVersion': VERSION, 'kubeletVersion': VERSION,
                'machineID': read_text('/etc/machine-id'), 'operatingSystem': 'linux', 'osImage': os_image(),
                'systemUUID': read_text('/etc/machine-id'),
            },
        },
    }


def node_annotations(name, ip, args, env):
    return {
        'alpha.kubernetes.io/provided-node-ip': ip,
        'k3s.io/hostname': name, 'k3s.io/internal-ip': ip,
        'k3s.io/node-args': json.dumps(args, separators=(',', ':')),
        'k3s.io/node-config-hash': '%s====' % hashlib.sha256(json.dumps(args).encode()).hexdigest()[:52].upper(),
        'k3s.io/node-env': json.dumps(env, separators=(',', ':'), sort_keys=True),
        'node.alpha.kubernetes.io/ttl': '0',
        'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
    }


def k3s_env_for_annotation():
    """The K3S_* environment with secrets hidden, as the k3s.io/node-env annotation shows it."""
    out = {}
    for k, v in os.environ.items():
        if k.startswith('K3S_') and not k.startswith('K3S_STANDIN_'):
            out[k] = '********' if 'TOKEN' in k or k == 'K3S_DATASTORE_ENDPOINT' else v
    return out


def heartbeat_interval(grace):
    return max(0.25, min(2.0, grace / 4.0))


def sleep_until(deadline):
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.5))
