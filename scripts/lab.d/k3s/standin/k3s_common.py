"""What the server, the agent and kubectl share: build identity, logrus-style logs, flags and config files,
facts about the host, certificates (through the openssl CLI), an HTTPS client with Go-like errors, sd_notify."""
import base64
import datetime
import glob
import hashlib
import http.client
import json
import os
import random
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

import k3s_yaml

try:  # written by make-bundle; absent when run from the source tree
    import _build as _BUILD
except ImportError:
    _BUILD = None

VERSION = getattr(_BUILD, 'VERSION', None) or os.environ.get('K3S_STANDIN_VERSION', 'v1.32.5+k3s1')
BINARY_ARCH = getattr(_BUILD, 'ARCH', None) or os.environ.get('K3S_STANDIN_ARCH', '')

# The commits of releases we know; any other version gets one derived from its name.
_KNOWN_COMMITS = {'v1.32.5+k3s1': '8e8f2a47'}
DATA_DIR = '/var/lib/rancher/k3s'
CONFIG_DIR = '/etc/rancher/k3s'


def version_commit(version=VERSION):
    return _KNOWN_COMMITS.get(version) or hashlib.sha256(version.encode()).hexdigest()[:8]


def go_version(version=VERSION):
    """The Go toolchain of the release line ([I] for lines other than 1.32)."""
    m = re.match(r'^v1\.(\d+)\.', version)
    minor = int(m.group(1)) if m else 32
    return {30: 'go1.22.12', 31: 'go1.22.12', 32: 'go1.23.8', 33: 'go1.24.4'}.get(minor, 'go1.23.8')


def kube_minor(version=VERSION):
    m = re.match(r'^v(\d+)\.(\d+)\.', version)
    return (m.group(1), m.group(2)) if m else ('1', '32')


def valid_version(version):
    return re.match(r'^v\d+\.\d+\.\d+(-rc\d+)?\+k3s\d+$', version) is not None


# ---------------------------------------------------------------------------------------------------- logging

def _go_time(t=None):
    dt = datetime.datetime.fromtimestamp(t or time.time()).astimezone()
    text = dt.replace(microsecond=0).isoformat()
    return text[:-6] + 'Z' if text.endswith('+00:00') else text


def _quote(msg):
    if msg and re.match(r'^[A-Za-z0-9\-._/@^+]+$', msg):
        return msg
    return json.dumps(msg, ensure_ascii=False)


def log(level, msg, **fields):
    """A line as logrus prints it without a terminal: time="..." level=info msg="..." key=value."""
    extra = ''.join(' %s=%s' % (k, _quote(str(v))) for k, v in fields.items())
    sys.stderr.write('time="%s" level=%s msg=%s%s\n' % (_go_time(), level, _quote(msg), extra))
    sys.stderr.flush()


def info(msg, **kw):
    log('info', msg, **kw)


def warn(msg, **kw):
    log('warning', msg, **kw)


def error(msg, **kw):
    log('error', msg, **kw)


def fatal(msg, **kw):
    log('fatal', msg, **kw)
    sys.stdout.flush()
    os._exit(1)


# ---------------------------------------------------------------------------------------------------- flags

class Flag:
    def __init__(self, name, kind='str', env=None, aliases=(), split=False, default=None):
        self.name, self.kind, self.env, self.aliases, self.split, self.default = name, kind, env, aliases, split, default


class UsageError(Exception):
    pass


def parse_flags(args, specs):
    """urfave/cli v1 style: --name value, --name=value, -n value, single-dash long names, bools bare or =true.
    Returns {name: value} for the flags given (lists accumulate) and the positional arguments."""
    by_name = {}
    for f in specs:
        by_name[f.name] = f
        for a in f.aliases:
            by_name[a] = f
    values, positional, i = {}, [], 0
    while i < len(args):
        a = args[i]
        if a == '--':
            positional.extend(args[i + 1:])
            break
        if not a.startswith('-') or a == '-':
            positional.append(a)
            i += 1
            continue
        name, _, inline = a.lstrip('-').partition('=')
        has_inline = '=' in a
        f = by_name.get(name)
        if f is None:
            raise UsageError('flag provided but not defined: -%s' % name)
        if f.kind == 'bool':
            value = (inline.lower() in ('1', 't', 'true')) if has_inline else True
        else:
            if has_inline:
                value = inline
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                raise UsageError('flag needs an argument: -%s' % name)
        _set_flag(values, f, value)
        i += 1
    return values, positional


def _set_flag(values, f, value):
    if f.kind == 'list':
        items = [v.strip() for v in str(value).split(',')] if f.split else [str(value)]
        values.setdefault(f.name, []).extend(v for v in items if v != '')
    elif f.kind == 'bool':
        values[f.name] = value if isinstance(value, bool) else str(value).lower() in ('1', 't', 'true')
    else:
        values[f.name] = str(value)


def read_config_files(path, explicit):
    """config.yaml, then config.yaml.d/*.yaml in lexical order; a later file replaces a key, `key+:` appends."""
    merged = {}
    files = []
    if os.path.exists(path):
        files.append(path)
    elif explicit:
        raise UsageError('open %s: no such file or directory' % path)
    files.extend(sorted(glob.glob(path + '.d/*.yaml')) + sorted(glob.glob(path + '.d/*.yml')))
    for f in files:
        with open(f) as fh:
            try:
                data = k3s_yaml.load(fh.read()) or {}
            except k3s_yaml.YAMLError as e:
                raise UsageError('failed to parse %s: %s' % (f, e))
        if not isinstance(data, dict):
            raise UsageError('%s: expected a mapping of flag names' % f)
        for k, v in data.items():
            key = str(k)
            if key.endswith('+'):
                key = key[:-1]
                prev = merged.get(key, [])
                merged[key] = (prev if isinstance(prev, list) else [prev]) + (v if isinstance(v, list) else [v])
            else:
                merged[key] = v
    return merged


def resolve_flags(args, specs, config_flag='config'):
    """Flags from the CLI, the config file(s) and K3S_* environment variables: CLI beats the config file, which
    beats the environment (k3s inserts config values as arguments before the CLI's). Returns (values, positional,
    config keys that are no flag)."""
    cli, positional = parse_flags(args, specs)
    by_name = {f.name: f for f in specs}
    config_path = cli.get(config_flag) or os.environ.get('K3S_CONFIG_FILE') or CONFIG_DIR + '/config.yaml'
    explicit = bool(cli.get(config_flag) or os.environ.get('K3S_CONFIG_FILE'))
    file_values = read_config_files(config_path, explicit)
    values, unknown = {}, []
    for f in specs:
        if f.env and os.environ.get(f.env) not in (None, ''):
            _set_flag(values, f, os.environ[f.env])
    for k, v in file_values.items():
        f = by_name.get(k)
        if f is None:
            unknown.append(k)
            continue
        values.pop(k, None)
        for item in (v if isinstance(v, list) else [v]):
            _set_flag(values, f, item if not isinstance(item, bool) else str(item).lower())
    for k, v in cli.items():
        f = by_name[k]
        if f.kind == 'list' and k in file_values:
            values[k] = values.get(k, []) + v
        else:
            values[k] = v
    for f in specs:
        if f.name not in values and f.default is not None:
            values[f.name] = f.default
    return values, positional, unknown


def redacted_args(args, secret_flags=('token', 't', 'agent-token', 'datastore-endpoint')):
    """The argument list with secret values replaced by ******** (as in the k3s.io/node-args annotation)."""
    out, hide = [], False
    for a in args:
        if hide:
            out.append('********')
            hide = False
            continue
        name, eq, _ = a.lstrip('-').partition('=')
        if a.startswith('-') and name in secret_flags:
            if eq:
                out.append(a.split('=')[0] + '=********')
            else:
                out.append(a)
                hide = True
        else:
            out.append(a)
    return out


# ---------------------------------------------------------------------------------------------------- host facts

def uname_machine():
    """`uname -m` through PATH, so that the lab's Raspberry Pi wrapper (aarch64) is honoured."""
    try:
        return subprocess.run(['uname', '-m'], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return os.uname().machine


def go_arch(machine=None):
    m = machine or uname_machine()
    if m in ('x86_64', 'amd64'):
        return 'amd64'
    if m in ('aarch64', 'arm64'):
        return 'arm64'
    if m.startswith('arm'):
        return 'arm'
    return m


def check_binary_arch(argv0):
    """A binary built for another architecture does not start: the shell's Exec format error."""
    if not BINARY_ARCH:
        return
    host = go_arch()
    ok = BINARY_ARCH == host or (BINARY_ARCH == 'arm' and host == 'arm64')
    if not ok:
        sys.stderr.write('%s: cannot execute binary file: Exec format error\n' % argv0)
        sys.exit(126)


def hostname():
    return socket.gethostname().lower()


def default_route():
    """(interface, gateway) of the IPv4 default route, or None."""
    try:
        with open('/proc/net/route') as f:
            next(f)
            for line in f:
                parts = line.split()
                if len(parts) > 2 and parts[1] == '00000000':
                    gw = socket.inet_ntoa(int(parts[2], 16).to_bytes(4, 'little'))
                    return parts[0], gw
    except OSError:
        pass
    return None


def node_ip():
    """The address k3s picks: the one on the default route's interface (no packet is sent)."""
    route = default_route()
    if route is None:
        raise RuntimeError('no default routes found in "/proc/net/route" or "/proc/net/ipv6_route"')
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((route[1], 9))
        ip = s.getsockname()[0]
    except OSError:
        raise RuntimeError('unable to select an IP from default routes.')
    finally:
        s.close()
    if ip.startswith('127.') or ip == '0.0.0.0':
        raise RuntimeError('unable to select an IP from default routes.')
    return ip


def os_image():
    try:
        with open('/etc/os-release') as f:
            m = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', f.read(), re.M)
            return m.group(1) if m else 'Linux'
    except OSError:
        return 'Linux'


def read_text(path, default=''):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def memory_cgroup_enabled():
    """The memory row of /proc/cgroups: subsys_name hierarchy num_cgroups enabled."""
    try:
        with open('/proc/cgroups') as f:
            for line in f:
                parts = line.split()
                if parts and parts[0] == 'memory':
                    return len(parts) >= 4 and parts[3] == '1'
    except OSError:
        pass
    return False


MEMCG_MESSAGE = ('ailed to find memory cgroup, you may need to add "cgroup_memory=1 cgroup_enable=memory" to your '
                 'linux cmdline (/boot/cmdline.txt on a Raspberry Pi)')


def require_memory_cgroup():
    """k3s's cgroup v1 validation: an error line, then the fatal one (pkg/cgroups)."""
    if not memory_cgroup_enabled():
        error('F' + MEMCG_MESSAGE)
        fatal('f' + MEMCG_MESSAGE)


def write_file(path, data, mode=0o600):
    """Replaces path atomically with mode set before the content lands."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = '%s.tmp-%d' % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, 'wb') as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def now_rfc3339(t=None):
    return datetime.datetime.fromtimestamp(t or time.time(), datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def parse_rfc3339(s):
    try:
        return datetime.datetime.strptime(s, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return time.time()


def random_hex(nbytes):
    return os.urandom(nbytes).hex()


def random_suffix(n=5):
    return ''.join(random.choice('bcdfghjklmnpqrstvwxz2456789') for _ in range(n))


# ---------------------------------------------------------------------------------------------------- certificates

def _openssl(args, stdin=None):
    r = subprocess.run(['openssl'] + args, input=stdin, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError('openssl %s: %s' % (args[0], r.stderr.decode(errors='replace').strip()))
    return r.stdout


def _ext_config(cn, orgs, extensions):
    dn = ''.join('%d.O = %s\n' % (i, o) for i, o in enumerate(orgs)) + 'CN = %s\n' % cn
    return ('[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n%s[ext]\n%s\n' % (dn, '\n'.join(extensions)))


def make_cert(cn, orgs=(), ca=None, sans=(), usage='server', days=3650, rsa=False):
    """(cert_pem, key_pem): a self-signed CA when ca is None, else a leaf signed by ca=(cert_pem, key_pem).
    Keys are EC P-256 as in k3s and never appear on a command line."""
    with tempfile.TemporaryDirectory(prefix='k3s-standin-') as d:
        os.chmod(d, 0o700)
        if ca is None:
            ext = ['basicConstraints = critical, CA:TRUE', 'keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign',
                   'subjectKeyIdentifier = hash']
        else:
            eku = {'server': 'serverAuth', 'client': 'clientAuth', 'both': 'serverAuth, clientAuth'}[usage]
            ext = ['basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature, keyEncipherment',
                   'extendedKeyUsage = ' + eku, 'authorityKeyIdentifier = keyid']
            if sans:
                ext.append('subjectAltName = ' + ', '.join(('IP:' if _is_ip(s) else 'DNS:') + s for s in sans))
        with open(d + '/req.cnf', 'w') as f:
            f.write(_ext_config(cn, orgs, ext))
        keyopt = ['-newkey', 'rsa:2048'] if rsa else ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']
        args = ['req', '-x509', '-new', '-nodes'] + keyopt + ['-keyout', d + '/k.pem', '-out', d + '/c.pem',
                                                             '-days', str(days), '-config', d + '/req.cnf', '-extensions', 'ext',
                                                             '-set_serial', str(int.from_bytes(os.urandom(8), 'big'))]
        if ca is not None:
            with open(d + '/ca.pem', 'w') as f:
                f.write(ca[0])
            fd = os.open(d + '/ca.key', os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, 'w') as f:
                f.write(ca[1])
            args += ['-CA', d + '/ca.pem', '-CAkey', d + '/ca.key']
        _openssl(args)
        with open(d + '/c.pem') as f:
            cert = f.read()
        with open(d + '/k.pem') as f:
            key = f.read()
    return cert, key


def make_rsa_key():
    return _openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']).decode()


def rsa_sign(key_pem, data):
    """An RS256 signature (for service-account JWTs); the key reaches openssl through a private temp file."""
    with tempfile.TemporaryDirectory(prefix='k3s-standin-') as d:
        fd = os.open(d + '/key', os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(key_pem)
        return _openssl(['dgst', '-sha256', '-sign', d + '/key'], stdin=data)


def public_key_der(key_pem):
    with tempfile.TemporaryDirectory(prefix='k3s-standin-') as d:
        fd = os.open(d + '/key', os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(key_pem)
        return _openssl(['pkey', '-in', d + '/key', '-pubout', '-outform', 'DER'])


def cert_sans(cert_pem):
    """The subjectAltName entries of a PEM certificate, as openssl prints them (DNS:x, IP Address:y)."""
    out = _openssl(['x509', '-noout', '-ext', 'subjectAltName'], stdin=cert_pem.encode()).decode()
    entries = []
    for line in out.splitlines()[1:]:
        entries.extend(e.strip() for e in line.split(',') if e.strip())
    return entries


def _is_ip(s):
    try:
        socket.inet_pton(socket.AF_INET6 if ':' in s else socket.AF_INET, s)
        return True
    except OSError:
        return False


def b64(data):
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


# ---------------------------------------------------------------------------------------------------- HTTPS client

class RequestError(Exception):
    """A failed request, worded as Go's net/http words it (`Get "URL": dial tcp ...: connect: connection refused`)."""

    def __init__(self, method, url, reason, kind):
        super().__init__('%s "%s": %s' % (method.capitalize(), url, reason))
        self.reason, self.kind = reason, kind


def _memfd(data):
    fd = os.memfd_create('k3s-standin-cred')
    os.write(fd, data.encode())
    return fd


def client_context(ca_pem=None, cert_pem=None, key_pem=None, insecure=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca_pem:
        ctx.load_verify_locations(cadata=ca_pem)
    else:
        ctx.load_default_certs()
    if cert_pem and key_pem:
        fds = [_memfd(cert_pem), _memfd(key_pem)]
        try:
            ctx.load_cert_chain('/proc/self/fd/%d' % fds[0], '/proc/self/fd/%d' % fds[1])
        finally:
            for fd in fds:
                os.close(fd)
    return ctx


def request(method, url, body=None, ctx=None, headers=None, timeout=10.0):
    """(status, reason, headers, body bytes); RequestError when no HTTP answer came back."""
    u = urllib.parse.urlsplit(url)
    host, port = u.hostname, u.port or (443 if u.scheme == 'https' else 80)
    path = (u.path or '/') + ('?' + u.query if u.query else '')
    hdrs = {'User-Agent': 'k3s/%s' % VERSION, 'Accept': 'application/json, */*'}
    hdrs.update(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        hdrs.setdefault('Content-Type', 'application/json')
    if u.scheme == 'https':
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx or client_context(insecure=True))
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    where = '%s:%d' % ('[::1]' if host == 'localhost' else host, port)   # Go dials localhost's IPv6 first
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        return resp.status, resp.reason, dict(resp.getheaders()), payload
    except ssl.SSLCertVerificationError as e:
        raise RequestError(method, url, 'tls: failed to verify certificate: ' + _x509_reason(e, host, port), 'tls')
    except ConnectionRefusedError:
        raise RequestError(method, url, 'dial tcp %s: connect: connection refused' % where, 'refused')
    except socket.timeout:
        raise RequestError(method, url, 'dial tcp %s: i/o timeout' % where, 'timeout')
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected, ssl.SSLEOFError):
        raise RequestError(method, url, 'EOF', 'eof')
    except OSError as e:
        reason = {113: 'connect: no route to host', 101: 'connect: network is unreachable'}.get(e.errno, str(e))
        raise RequestError(method, url, 'dial tcp %s: %s' % (where, reason), 'dial')
    finally:
        conn.close()


def _x509_reason(e, host, port):
    if 'mismatch' in str(e):
        try:
            pem = fetch_server_cert(host, port)
            names = [s.split(':', 1)[1] for s in cert_sans(pem)]
            return 'x509: certificate is valid for %s, not %s' % (', '.join(names), host)
        except (OSError, RuntimeError):
            return 'x509: certificate is not valid for %s' % host
    if 'expired' in str(e):
        return 'x509: certificate has expired or is not yet valid'
    return 'x509: certificate signed by unknown authority'


def fetch_server_cert(host, port):
    ctx = client_context(insecure=True)
    with socket.create_connection((host, port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            return ssl.DER_cert_to_PEM_cert(s.getpeercert(binary_form=True))


def basic_auth(user, password):
    return {'Authorization': 'Basic ' + b64('%s:%s' % (user, password))}


# ---------------------------------------------------------------------------------------------------- tokens

def parse_token(token):
    """k3s's token forms: K10<ca-hash>::<user>:<password>, K10::<user>:<password>, or a bare password.
    Returns (ca_hash or '', username or '', password)."""
    if not token:
        raise ValueError('token must not be empty')
    t = token if token.startswith('K10') else 'K10:::' + token
    t = t[3:]
    ca_hash, sep, creds = t.partition('::')
    if not sep:
        creds, ca_hash = ca_hash, ''
    if ca_hash and len(ca_hash) != 64:
        raise ValueError('invalid token CA hash length')
    user, sep, password = creds.partition(':')
    if not sep or not password:
        raise ValueError('invalid token format')
    return ca_hash, user, password


def ca_hash(ca_pem):
    return hashlib.sha256(ca_pem.encode() if isinstance(ca_pem, str) else ca_pem).hexdigest()


# ---------------------------------------------------------------------------------------------------- systemd

def sd_notify(state):
    """Tells a Type=notify supervisor that we are ready, when it gave us NOTIFY_SOCKET."""
    path = os.environ.get('NOTIFY_SOCKET')
    if not path:
        return False
    if path.startswith('@'):
        path = '\0' + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(path)
            s.sendall(state.encode())
        return True
    except OSError as e:
        warn('Failed to notify systemd: %s' % e)
        return False
