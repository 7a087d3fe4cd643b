#!/usr/bin/env python3
"""The side-by-side benchmark of scripts/bench (issue 7): provision, Ansible, pyinfra and plain OpenSSH on one lab.

Per lab size N: `scripts/lab up` N hosts, a k3s inventory (lab-1 server, the rest agents, airgap stand-in bundle;
lab-2 and lab-3 also Docker + gitlab-runner with one runner registered in the fake GitLab), one converging
`provision apply` (the fresh converge, timed), then each measurement alternating the tools run by run. Every figure
printed or written into docs/benchmarks.md comes from this run; nothing is typed in."""
import argparse
import json
import os
import re
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(REPO, 'scripts', 'bench.d')
BIN = os.path.join(REPO, '.build', 'release', 'provision')
LAB = ['bash', os.path.join(REPO, 'scripts', 'lab')]
K3S_VERSION = 'v1.31.4+k3s1'
RUNNER_VERSION = '17.7.1'
IMAGES = '/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst'
# What provision renders per host (fetched from the converged hosts, the other tools' content source).
RENDERED = ['etc/sysctl.d/90-provision-k3s.conf', 'etc/rancher/k3s/config.yaml']
RENDERED_RUNNER = ['etc/systemd/system/docker.service.d/provision-k3s-forward.conf', 'etc/gitlab-runner/config.toml']
BASE_PACKAGES = ['curl', 'ca-certificates', 'iptables', 'gnupg']
RUNNER_PACKAGES = ['docker.io', f'gitlab-runner={RUNNER_VERSION}-1', f'gitlab-runner-helper-images={RUNNER_VERSION}-1']


def log(*words):
    print('bench:', *words, file=sys.stderr, flush=True)


def die(message):
    log(message)
    sys.exit(1)


def now():
    return time.monotonic_ns()


def run(argv, env=None, check=True, capture=True, **kw):
    done = subprocess.run(argv, env=env, text=True, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.STDOUT if capture else subprocess.DEVNULL, **kw)
    if check and done.returncode != 0:
        die(f'{shlex.join(argv)} exited {done.returncode}:\n{(done.stdout or "")[-3000:]}')
    return done


class Lab:
    def __init__(self, directory, count, runners):
        self.dir, self.count = directory, count
        os.makedirs(directory, exist_ok=True)
        t0 = now()
        run(LAB + ['up', '--dir', directory, '--hosts', str(count)])
        self.up_seconds = (now() - t0) / 1e9
        self.env = {}
        for line in open(os.path.join(directory, 'lab.env')):
            key, _, value = line.rstrip('\n').partition('=')
            self.env[key] = value.strip('"')
        self.hosts = []
        for line in open(os.path.join(directory, 'hosts.tsv')):
            name, address = line.split('\t')[:2]
            self.hosts.append((name, address))
        self.runners = {name for name, _ in self.hosts[1:1 + runners]}
        self.key = os.path.join(directory, 'id_ed25519')
        self.known_hosts = os.path.join(directory, 'known_hosts')
        self.ssh_options = ['-i', self.key, '-o', f'UserKnownHostsFile={self.known_hosts}',
                            '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR',
                            '-o', 'ControlMaster=no', '-o', 'ControlPath=none']

    def down(self):
        run(LAB + ['down', '--dir', self.dir], check=False)

    def ssh(self, address, command, stdin=None, check=True):
        done = subprocess.run(['ssh'] + self.ssh_options + [f'root@{address}', command], input=stdin,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if check and done.returncode != 0:
            die(f'ssh {address} failed ({done.returncode}): {done.stderr.decode(errors="replace")[-500:]}')
        return done.stdout

    def ssh_all(self, hosts, command_for):
        """One OpenSSH connection and one command per host, all at once; True if every one exited 0."""
        procs = [subprocess.Popen(['ssh'] + self.ssh_options + [f'root@{address}', command_for(name)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for name, address in hosts]
        return all(p.wait() == 0 for p in procs)

    def sshd_counts(self):
        """(connections, commands) so far, as the hosts' own sshd logged them (LogLevel VERBOSE)."""
        connections = commands = 0
        for name, _ in self.hosts:
            with open(os.path.join(self.dir, 'hosts', name, 'sshd.log'), errors='replace') as f:
                for line in f:
                    if 'Accepted publickey' in line:
                        connections += 1
                    elif 'Starting session:' in line:   # a command or a subsystem (SFTP)
                        commands += 1
        return connections, commands


def write_inventory(lab, path, bundle, hosts=None):
    lines = [f'ssh: {{user: root, port: 22, keyPath: {lab.key}, knownHosts: {lab.known_hosts}, hostKeyPolicy: strict}}',
             f'k3s: {{version: {K3S_VERSION}, token: "${{env:LAB_K3S_TOKEN}}", airgap: {{directory: {bundle}}}}}']
    if lab.runners:
        lines += ['docker: {package: docker.io}',
                  'gitlab:',
                  f'  url: {lab.env["LAB_GITLAB_URL"]}',
                  '  token: "${env:LAB_GITLAB_TOKEN}"',
                  f'  runnerPackage: {{version: {RUNNER_VERSION}, aptRepository: {lab.env["LAB_RUNNER_REPO"]}}}',
                  '  runners:',
                  '    - {name: bench, projectId: 200, tags: [docker, lab], image: "docker:27"}']
    lines.append('hosts:')
    for i, (name, address) in enumerate(lab.hosts):
        roles = ['server' if i == 0 else 'agent'] + (['runner'] if name in lab.runners else [])
        lines.append(f'  - {{name: {name}, address: {address}, roles: [{", ".join(roles)}]}}')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


# ------------------------------------------------------------------------------------------------ the other tools

def write_ansible(lab, work, bundle, parallel):
    """ansible.cfg (the documented fast path: pipelining, ControlPersist), an INI inventory and the no-op playbook."""
    os.makedirs(os.path.join(work, 'cp'), exist_ok=True)
    cfg = os.path.join(work, 'ansible.cfg')
    ssh_args = (f'-o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile={lab.known_hosts} '
                '-o StrictHostKeyChecking=yes -o BatchMode=yes')
    with open(cfg, 'w') as f:
        f.write(f"""[defaults]
inventory = {work}/ansible-hosts.ini
forks = {parallel}
host_key_checking = True
interpreter_python = /usr/bin/python3
retry_files_enabled = False
stdout_callback = default
deprecation_warnings = False
[ssh_connection]
pipelining = True
ssh_args = {ssh_args}
control_path_dir = {work}/cp
""")
    with open(os.path.join(work, 'ansible-hosts.ini'), 'w') as f:
        f.write('[lab]\n')
        for i, (name, address) in enumerate(lab.hosts):
            f.write(f'{name} ansible_host={address} k3s_unit={"k3s" if i == 0 else "k3s-agent"} '
                    f'runner={"true" if name in lab.runners else "false"}\n')
        f.write(f'[lab:vars]\nansible_user=root\nansible_ssh_private_key_file={lab.key}\n')
    files = os.path.join(work, 'files')
    copies = '\n'.join(f"""    - name: /{path}
      ansible.builtin.copy: {{src: "{files}/{{{{ inventory_hostname }}}}/{path}", dest: /{path}, mode: preserve, owner: root, group: root}}"""
                       for path in RENDERED)
    copies_runner = '\n'.join(f"""    - name: /{path}
      ansible.builtin.copy: {{src: "{files}/{{{{ inventory_hostname }}}}/{path}", dest: /{path}, mode: preserve, owner: root, group: root}}
      when: runner | bool""" for path in RENDERED_RUNNER)
    with open(os.path.join(work, 'noop.yml'), 'w') as f:
        f.write(f"""# The state provision converged, checked the way an Ansible playbook does (one task per thing); changes nothing.
- hosts: lab
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: base packages
      ansible.builtin.apt: {{name: {json.dumps(BASE_PACKAGES)}, state: present}}
    - name: Docker and gitlab-runner at the pinned release
      ansible.builtin.apt: {{name: {json.dumps(RUNNER_PACKAGES)}, state: present}}
      when: runner | bool
{copies}
{copies_runner}
    - name: k3s install script
      ansible.builtin.copy: {{src: {bundle}/install.sh, dest: /usr/local/share/provision/k3s-install.sh, mode: "0755"}}
    - name: k3s binary
      ansible.builtin.copy: {{src: {bundle}/k3s, dest: /usr/local/bin/k3s, mode: "0755"}}
    - name: k3s airgap images
      ansible.builtin.copy: {{src: {bundle}/k3s-airgap-images-amd64.tar.zst, dest: {IMAGES}, mode: "0644"}}
    - name: k3s running and enabled
      ansible.builtin.systemd_service: {{name: "{{{{ k3s_unit }}}}", state: started, enabled: true}}
    - name: Docker and gitlab-runner running and enabled
      ansible.builtin.systemd_service: {{name: "{{{{ item }}}}", state: started, enabled: true}}
      loop: [docker, gitlab-runner]
      when: runner | bool
    - name: k3s at the pinned version
      ansible.builtin.command: k3s --version
      register: k3s_version
      changed_when: false
      failed_when: "'{K3S_VERSION}' not in k3s_version.stdout"
""")
    return cfg


def write_pyinfra(lab, work, bundle):
    with open(os.path.join(work, 'pyinfra_inventory.py'), 'w') as f:
        f.write('# pyinfra inventory of the lab (generated by scripts/bench.d/bench.py)\nlab = [\n')
        for i, (name, address) in enumerate(lab.hosts):
            data = {'ssh_hostname': address, 'ssh_user': 'root', 'ssh_key': lab.key,
                    'ssh_known_hosts_file': lab.known_hosts, 'ssh_strict_host_key_checking': 'yes',
                    'k3s_unit': 'k3s' if i == 0 else 'k3s-agent', 'runner': name in lab.runners}
            f.write(f'    ({name!r}, {data!r}),\n')
        f.write(']\n')
    files = os.path.join(work, 'files')
    with open(os.path.join(work, 'pyinfra_noop.py'), 'w') as f:
        f.write(f'''# The state provision converged, checked the way a pyinfra deploy does; changes nothing.
from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, systemd

apt.packages(name="base packages", packages={BASE_PACKAGES!r})
if host.data.runner:
    apt.packages(name="Docker and gitlab-runner at the pinned release", packages={RUNNER_PACKAGES!r})
for path in {RENDERED!r} + ({RENDERED_RUNNER!r} if host.data.runner else []):
    mode = "600" if path.endswith(("config.yaml", "config.toml")) else "644"
    files.put(name="/" + path, src="{files}/" + host.name + "/" + path, dest="/" + path, mode=mode,
              user="root", group="root")
files.put(name="k3s install script", src="{bundle}/install.sh", dest="/usr/local/share/provision/k3s-install.sh",
          mode="755")
files.put(name="k3s binary", src="{bundle}/k3s", dest="/usr/local/bin/k3s", mode="755")
files.put(name="k3s airgap images", src="{bundle}/k3s-airgap-images-amd64.tar.zst", dest="{IMAGES}", mode="644")
systemd.service(name="k3s running and enabled", service=host.data.k3s_unit, running=True, enabled=True)
if host.data.runner:
    for unit in ("docker", "gitlab-runner"):
        systemd.service(name=unit + " running and enabled", service=unit, running=True, enabled=True)
version = host.get_fact(Command, "k3s --version")
assert "{K3S_VERSION}" in version, f"{{host.name}}: k3s is not at {K3S_VERSION}: {{version}}"
''')


# ------------------------------------------------------------------------------------------------ measuring

def stats(samples):
    ms = sorted(s / 1e6 for s in samples)
    return statistics.median(ms), ms[0], ms[-1]


def fmt(samples):
    med, lo, hi = stats(samples)
    return f'{med:.0f}', f'{lo:.0f}–{hi:.0f}'


def ratio(a, b):
    return f'{stats(a)[0] / stats(b)[0]:.2f}'


class Tools:
    def __init__(self, lab, work, inventory, venv, env):
        self.lab, self.work, self.inventory, self.venv, self.env = lab, work, inventory, venv, env
        self.n = lab.count
        self.ansible_env = dict(env, ANSIBLE_CONFIG=os.path.join(work, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                                ANSIBLE_HOME=os.path.join(work, 'ansible-home'))
        self.pyinfra_inventory = os.path.join(work, 'pyinfra_inventory.py')

    def provision_noop(self):
        done = run([BIN, 'apply', self.inventory, '--parallel', str(self.n), '--output', 'json'], env=self.env,
                   check=False)
        if done.returncode != 0:
            die(f'provision apply (no-op) failed:\n{done.stdout[-3000:]}')
        changed = len(re.findall(r'"status"\s*:\s*"(changed|applied)"', done.stdout))
        if changed:
            die(f'provision apply changed {changed} step(s) on a converged lab:\n{done.stdout[-3000:]}')

    def ansible_noop(self):
        done = run([os.path.join(self.venv, 'bin', 'ansible-playbook'), os.path.join(self.work, 'noop.yml')],
                   env=self.ansible_env, check=False)
        recap = re.findall(r'^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)',
                           done.stdout, re.M)
        if done.returncode != 0 or len(recap) != self.n or any(r[2:] != ('0', '0', '0') for r in recap):
            die(f'ansible-playbook did not find everything converged (exit {done.returncode}):\n{done.stdout[-4000:]}')

    def pyinfra_noop(self):
        done = run([os.path.join(self.venv, 'bin', 'pyinfra'), '-y', '--parallel', str(self.n), '--no-wait',
                    self.pyinfra_inventory, os.path.join(self.work, 'pyinfra_noop.py')], env=self.env, check=False)
        # pyinfra 3's closing table: per host "Success  Error  No change" counts (a change shows under Success).
        changed = pyinfra_changes(done.stdout)
        if done.returncode != 0 or changed is None or changed != 0:
            die(f'pyinfra did not find everything converged (exit {done.returncode}, {changed} changes):\n'
                f'{done.stdout[-4000:]}')

    def floor_noop(self):
        scripts = os.path.join(self.work, 'floor')
        if not self.lab.ssh_all(self.lab.hosts, lambda name: open(os.path.join(scripts, name + '.sh')).read()):
            die('the floor (ssh host "probe script") failed on a host')

    def provision_facts(self):
        run([BIN, 'facts', self.inventory, '--output', 'json', '--parallel', str(self.n)], env=self.env)

    def ansible_facts(self):
        run([os.path.join(self.venv, 'bin', 'ansible'), 'lab', '-m', 'ansible.builtin.setup',
             '-a', 'gather_subset=min'], env=self.ansible_env)

    def pyinfra_facts(self):
        # The fields provision's facts have: hostname, OS and codename, architecture, memory, and in one command the
        # board, memory cgroup row, boot id and the installed k3s / Docker / gitlab-runner versions.
        extra = ('uname -r; dpkg --print-architecture; cat /proc/device-tree/model 2>/dev/null; grep ^memory /proc/cgroups; '
                 'cat /proc/sys/kernel/random/boot_id; k3s --version 2>/dev/null; dockerd --version 2>/dev/null; '
                 'gitlab-runner --version 2>/dev/null; true')
        run([os.path.join(self.venv, 'bin', 'pyinfra'), '--parallel', str(self.n), self.pyinfra_inventory, 'fact',
             'server.Hostname', 'server.LinuxDistribution', 'server.Arch', 'hardware.Memory',
             'server.Command', f'command={extra}'], env=self.env)

    def floor_facts(self):
        script = run([BIN, 'facts', self.inventory, '--print-script']).stdout
        if not self.lab.ssh_all(self.lab.hosts, lambda name: script):
            die('ssh host "facts script" failed on a host')


def pyinfra_changes(output):
    """Operations pyinfra changed or failed, from the 'Grand total' row of its results table (Hosts, Success = changed,
    Error, No Change); None when the row is missing, which counts as a failure."""
    for line in output.splitlines():
        m = re.match(r'^\s*Grand total\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$', re.sub(r'\x1b\[[0-9;]*m', '', line))
        if m:
            total, success, error, unchanged = (0 if v == '-' else int(v) for v in m.groups())
            return None if total == 0 or unchanged != total else success + error
    return None


def alternate(runs, tools):
    """tools: [(label, fn)]; each run calls every tool once, the order rotated run by run. Returns label -> [ns]."""
    samples = {label: [] for label, _ in tools}
    for i in range(runs):
        order = tools[i % len(tools):] + tools[:i % len(tools)]
        for label, fn in order:
            t0 = now()
            fn()
            samples[label].append(now() - t0)
    return samples


def per_host_counts(lab, fn):
    c0, s0 = lab.sshd_counts()
    fn()
    c1, s1 = lab.sshd_counts()
    return (c1 - c0) / lab.count, (s1 - s0) / lab.count


def timed_rss(argv, env, out):
    """Wall, user+system CPU and peak RSS of one provision run (GNU time)."""
    tfile = out + '.time'
    t0 = now()
    done = subprocess.run(['/usr/bin/time', '-o', tfile, '-f', '%U %S %M'] + argv, env=env, text=True,
                          stdout=open(out, 'w'), stderr=subprocess.STDOUT)
    wall = (now() - t0) / 1e9
    user, system, rss = open(tfile).read().split()[-3:]
    return done.returncode, wall, float(user) + float(system), int(rss) / 1024


# ------------------------------------------------------------------------------------------------ one lab size

# Debian's ~/.bashrc returns at once when not interactive, so a hook goes before it; the original is kept aside.
RESTORE_BASHRC = 'if [ -e /root/.bashrc.bench ]; then mv /root/.bashrc.bench /root/.bashrc; else rm -f /root/.bashrc; fi'


def prepend_hook(hook):
    return (f'touch /root/.bashrc && cp -p /root/.bashrc /root/.bashrc.bench && '
            f'{{ printf %s {shlex.quote(hook)}; cat /root/.bashrc.bench; }} > /root/.bashrc')


def capture_floor(lab, tools, work):
    """The floor runs exactly what provision sends: a ~/.bashrc hook on each host records the command of one no-op
    apply (sshd runs it with `bash -c`, and Debian's bash reads ~/.bashrc for it), then goes away again."""
    hook = ('[ -n "${BASH_EXECUTION_STRING:-}" ] && printf %s "$BASH_EXECUTION_STRING" > /tmp/bench-cmd.$$\n')
    ok = lab.ssh_all(lab.hosts, lambda _: prepend_hook(hook))
    if not ok:
        die('cannot install the command-capturing hook')
    tools.provision_noop()
    os.makedirs(os.path.join(work, 'floor'), exist_ok=True)
    for name, address in lab.hosts:
        # The biggest command of that apply is its probe round (facts script plus every step's probe).
        script = lab.ssh(address, 'f=$(ls -S /tmp/bench-cmd.* | head -n 1); cat "$f"; rm -f /tmp/bench-cmd.*; '
                                  + RESTORE_BASHRC)
        if b'@@provision-probe' not in script:
            die(f'{name}: the captured command is not provision\'s probe round')
        with open(os.path.join(work, 'floor', name + '.sh'), 'wb') as f:
            f.write(script)


def fresh_with_intervals(lab, inventory, env, work):
    """A converging apply on fresh hosts, with a ~/.bashrc hook recording when each remote command (sshd runs every
    one, SFTP included, through `bash -c`) starts and ends on the host; all hosts share this machine's clock."""
    hook = ('s=$EPOCHREALTIME; trap \'printf "%s %s\\n" "$s" "$EPOCHREALTIME" >> /var/tmp/bench-intervals\' EXIT\n')
    if not lab.ssh_all(lab.hosts, lambda _: prepend_hook(hook)):
        die('cannot install the interval hook')
    start = time.time()
    rc, wall, cpu, rss = timed_rss([BIN, 'apply', inventory, '--parallel', str(lab.count)], env,
                                   os.path.join(work, 'fresh.log'))
    end = time.time()
    if rc != 0:
        die(f'the converging apply failed (exit {rc}); see {work}/fresh.log:\n' + open(os.path.join(work, 'fresh.log')).read()[-3000:])
    intervals = []
    for name, address in lab.hosts:
        out = lab.ssh(address, 'cat /var/tmp/bench-intervals; rm -f /var/tmp/bench-intervals; ' + RESTORE_BASHRC)
        for line in out.decode().splitlines():
            a, b = line.split()
            if start <= float(a) <= end:
                intervals.append((float(a), min(float(b), end)))
    # Time with at least one remote command running somewhere: the hosts' (stand-ins') own work.
    busy, cursor = 0.0, start
    for a, b in sorted(intervals):
        if b > cursor:
            busy += b - max(a, cursor)
            cursor = b
    return wall, cpu, rss, busy, len(intervals)


def bench_size(n, args, venv):
    directory = os.path.join(args.workdir, f'lab-{n}')
    shutil.rmtree(directory, ignore_errors=True)
    log(f'{n} hosts: lab up in {directory}')
    lab = Lab(directory, n, min(args.runners, n - 1))
    result = {'n': n}
    try:
        work = os.path.join(directory, 'bench')
        os.makedirs(work, exist_ok=True)
        bundle = os.path.join(directory, 'k3s-bundle')
        run([os.path.join(REPO, 'scripts', 'lab.d', 'k3s', 'make-bundle'), bundle, K3S_VERSION])
        inventory = os.path.join(directory, 'bench.yaml')
        write_inventory(lab, inventory, bundle)
        tokens = dict(line.strip().split('=', 1) for line in open(lab.env['LAB_GITLAB_TOKENS']) if '=' in line)
        env = dict(os.environ, LAB_K3S_TOKEN=secrets.token_hex(16), LAB_GITLAB_TOKEN=tokens['project-bot'])

        log(f'{n} hosts: converging apply (fresh hosts)')
        wall, cpu, rss, busy, commands = fresh_with_intervals(lab, inventory, env, work)
        result['fresh'] = {'wall': wall, 'cpu': cpu, 'rss': rss, 'busy': busy, 'commands': commands}
        log(f'{n} hosts: fresh apply {wall:.1f} s, remote commands busy {busy:.1f} s')
        if run([BIN, 'plan', inventory, '--detailed-exitcode'], env=env, check=False).returncode != 0:
            die('the plan after the converging apply is not empty')
        if args.provision_only:
            own_cost(result, n, inventory, env, work)
            return result

        # The files provision rendered, as each host has them: the other tools' content source.
        for name, address in lab.hosts:
            paths = RENDERED + (RENDERED_RUNNER if name in lab.runners else [])
            target = os.path.join(work, 'files', name)
            os.makedirs(target, exist_ok=True)
            tar = lab.ssh(address, 'tar -C / -cf - ' + ' '.join(paths))
            subprocess.run(['tar', '-C', target, '-xpf', '-'], input=tar, check=True)
        write_ansible(lab, work, bundle, n)
        write_pyinfra(lab, work, bundle)
        tools = Tools(lab, work, inventory, venv, env)
        capture_floor(lab, tools, work)

        log(f'{n} hosts: no-op converge, {args.runs} runs each')
        noop = [('provision', tools.provision_noop), ('ansible', tools.ansible_noop),
                ('pyinfra', tools.pyinfra_noop), ('floor', tools.floor_noop)]
        for _, fn in noop:
            fn()   # warm-up: page cache, ARP, ControlPersist masters, Python bytecode
        result['noop'] = alternate(args.runs, noop)
        result['noop_counts'] = {label: per_host_counts(lab, fn) for label, fn in noop}

        log(f'{n} hosts: facts, {args.runs} runs each')
        facts = [('provision', tools.provision_facts), ('ansible', tools.ansible_facts),
                 ('pyinfra', tools.pyinfra_facts), ('floor', tools.floor_facts)]
        for _, fn in facts:
            fn()
        result['facts'] = alternate(args.runs, facts)
        result['facts_counts'] = {label: per_host_counts(lab, fn) for label, fn in facts}
        own_cost(result, n, inventory, env, work)

        if args.upload_mb and n == min(args.sizes):
            result['upload'] = bench_upload(lab, tools, work, inventory, bundle, env, venv, args)
    finally:
        # Ansible's ControlPersist masters would outlive the run by up to 60 s: end them first.
        control = os.path.join(directory, 'bench', 'cp')
        for sock in os.listdir(control) if os.path.isdir(control) else []:
            run(['ssh', '-o', f'ControlPath={os.path.join(control, sock)}', '-O', 'exit', 'lab'], check=False)
        if not args.keep:
            lab.down()
            shutil.rmtree(directory, ignore_errors=True)
    return result


def own_cost(result, n, inventory, env, work):
    """provision's controller CPU and peak RSS for one no-op apply and one facts run on the converged lab."""
    runs = {'noop_rss': (['apply', inventory], 'noop-time.log'),
            'facts_rss': (['facts', inventory, '--output', 'json'], 'facts-time.log')}
    for key, (arguments, output) in runs.items():
        rc, wall, cpu, rss = timed_rss([BIN] + arguments + ['--parallel', str(n)], env, os.path.join(work, output))
        if rc != 0:
            die(f'`provision {arguments[0]}` failed (exit {rc}); see {work}/{output}')
        result[key] = {'wall': wall, 'cpu': cpu, 'rss': rss}


def bench_upload(lab, tools, work, inventory, bundle, env, venv, args):
    """A big airgap images file to the first H hosts: provision (the k3s-assets step is the only work left), scp in
    parallel, and Ansible's copy module. The file is removed from the hosts before every run (not timed)."""
    count = min(args.upload_hosts, lab.count)
    hosts = lab.hosts[:count]
    big = os.path.join(lab.dir, 'k3s-bundle-big')
    shutil.copytree(bundle, big)
    with open(os.path.join(big, 'k3s-airgap-images-amd64.tar.zst'), 'wb') as f:
        f.write(os.urandom(args.upload_mb << 20))
    source = os.path.join(big, 'k3s-airgap-images-amd64.tar.zst')
    big_inventory = os.path.join(lab.dir, 'bench-upload.yaml')
    write_inventory(lab, big_inventory, big)
    selected = [w for name, _ in hosts for w in ('--host', name)]
    limit = ','.join(name for name, _ in hosts)

    def clear():
        if not lab.ssh_all(hosts, lambda _: f'rm -f {IMAGES}'):
            die('cannot remove the images file')

    def provision_upload():
        done = run([BIN, 'apply', big_inventory, '--parallel', str(count)] + selected, env=env, check=False)
        if done.returncode != 0:
            die(f'provision apply (upload) failed:\n{done.stdout[-3000:]}')

    def scp_upload():
        procs = [subprocess.Popen(['scp', '-q'] + lab.ssh_options + [source, f'root@{address}:{IMAGES}'])
                 for _, address in hosts]
        if not all(p.wait() == 0 for p in procs):
            die('scp failed')

    def scp_sync_upload():
        # What provision promises on top of scp: the bytes are on the host's disk (fsync) before the file is used.
        sync = f'sync {IMAGES}'
        procs = [subprocess.Popen(['sh', '-c', shlex.join(['scp', '-q'] + lab.ssh_options + [source, f'root@{address}:{IMAGES}'])
                                  + ' && ' + shlex.join(['ssh'] + lab.ssh_options + [f'root@{address}', sync])])
                 for _, address in hosts]
        if not all(p.wait() == 0 for p in procs):
            die('scp + sync failed')

    def ansible_upload():
        run([os.path.join(venv, 'bin', 'ansible'), 'lab', '--limit', limit, '-m', 'ansible.builtin.copy',
             '-a', f'src={source} dest={IMAGES} mode=0644'], env=tools.ansible_env)

    uploads = [('provision', provision_upload), ('scp', scp_upload), ('scp-sync', scp_sync_upload),
               ('ansible', ansible_upload)]
    samples = {label: [] for label, _ in uploads}
    # The controller's CPU (user + system) per run: provision's own process, or the ssh/scp processes.
    cpu = {label: [] for label, _ in uploads}
    log(f'upload of {args.upload_mb} MB to {count} hosts, {args.runs} runs each')
    for i in range(args.runs):
        for label, fn in uploads[i % len(uploads):] + uploads[:i % len(uploads)]:
            clear()
            before = os.times()
            t0 = now()
            fn()
            samples[label].append(now() - t0)
            after = os.times()
            cpu[label].append(after.children_user - before.children_user + after.children_system - before.children_system)
    # provision's own figure for the transfer: the k3s-assets step (upload and sha256 re-check) in its journal.
    clear()
    provision_upload()
    status = json.loads(run([BIN, 'status', big_inventory, '--output', 'json'], env=env).stdout)
    step_ms = [s.get('durationMs', 0) for h in status.get('hosts', []) for s in h.get('steps', [])
               if s.get('step') == 'k3s-assets']

    # A no-op with the big file in place: every probe round hashes it on the host (provision and the floor alike).
    def provision_big_noop():
        done = run([BIN, 'apply', big_inventory, '--parallel', str(count), '--output', 'json'] + selected, env=env,
                   check=False)
        if done.returncode != 0 or re.search(r'"status"\s*:\s*"changed"', done.stdout):
            die(f'provision apply (no-op with the big images) failed or changed something:\n{done.stdout[-3000:]}')

    def floor_big_noop():
        if not lab.ssh_all(hosts, lambda name: open(os.path.join(work, 'floor', name + '.sh')).read()):
            die('the floor failed on a host')

    big_noop = alternate(args.runs, [('provision', provision_big_noop), ('floor', floor_big_noop)])
    return {'hosts': count, 'mb': args.upload_mb, 'samples': samples, 'step_ms': max(step_ms) if step_ms else None,
            'noop': big_noop, 'cpu': {label: statistics.median(v) for label, v in cpu.items()}}


# ------------------------------------------------------------------------------------------------ report

def side_by_side(out, results, title, key, labels):
    """One table of the four tools per size: medians, spread, connections and commands, provision's ratio."""
    out += [f'### {title}', '',
            '| hosts | tool | median ms | min–max ms | SSH connections / host | commands / host | ratio provision / tool |',
            '|---:|---|---:|---:|---:|---:|---:|']
    for r in results:
        for label in ('provision', 'floor', 'ansible', 'pyinfra'):
            med, spread = fmt(r[key][label])
            conns, cmds = r[key + '_counts'][label]
            out.append(f'| {r["n"]} | {labels[label]} | {med} | {spread} | {conns:.2f} | {cmds:.2f} | '
                       f'{"" if label == "provision" else ratio(r[key]["provision"], r[key][label])} |')


def machine_line(what, command):
    uname = os.uname().release
    mem = next(int(l.split()[1]) for l in open('/proc/meminfo') if l.startswith('MemTotal:')) / 1048576
    return (f'Machine: {os.cpu_count()} cores (shared by the tools and the lab hosts), {mem:.0f} GiB RAM, kernel {uname}; '
            f'{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}; {what}command: `{command}`')


def report(results, args, command):
    out = [machine_line(f'{args.runs} runs per tool, alternating; ', command), '']
    side_by_side(out, results, 'No-op converge (everything already converged; every tool must report 0 changes)',
                 'noop', LABELS)
    out.append('')
    side_by_side(out, results, 'Facts', 'facts', FACT_LABELS)
    uploads = [r for r in results if 'upload' in r]
    for r in uploads:
        u = r['upload']
        total = u['hosts'] * u['mb']
        out += ['', f'### Upload: a {u["mb"]} MB airgap images file to {u["hosts"]} hosts ({total} MB in all)', '',
                '| tool | median ms | min–max ms | aggregate MB/s (median) | provision / tool throughput | '
                'controller CPU s (median) |',
                '|---|---:|---:|---:|---:|---:|']
        for label in ('provision', 'scp', 'scp-sync', 'ansible'):
            med, spread = fmt(u['samples'][label])
            thr = total / (stats(u['samples'][label])[0] / 1000)
            rel = '' if label == 'provision' else \
                f'{stats(u["samples"][label])[0] / stats(u["samples"]["provision"])[0]:.2f}'
            out.append(f'| {UPLOAD_LABELS[label]} | {med} | {spread} | {thr:.0f} | {rel} | {u["cpu"][label]:.2f} |')
        if u['step_ms']:
            thr = total / (u['step_ms'] / 1000)
            rel = stats(u['samples']['scp'])[0] / u['step_ms']
            rel_sync = stats(u['samples']['scp-sync'])[0] / u['step_ms']
            out.append(f'| provision\'s k3s-assets step alone (journal, slowest host, one more run: the upload, its '
                       f'fsync and the probe round that re-checks it) | {u["step_ms"]} | | {thr:.0f} | {rel:.2f} vs scp, '
                       f'{rel_sync:.2f} vs scp + sync | |')
    for r in uploads:
        u = r['upload']
        out += ['', f'### No-op converge with that {u["mb"]} MB images file in place ({u["hosts"]} hosts)', '',
                '| tool | median ms | min–max ms | ratio provision / floor |', '|---|---:|---:|---:|']
        for label in ('provision', 'floor'):
            med, spread = fmt(u['noop'][label])
            out.append(f'| {LABELS[label]} | {med} | {spread} | '
                       f'{"" if label == "provision" else ratio(u["noop"]["provision"], u["noop"]["floor"])} |')
    out.append('')
    own_cost_table(out, results)
    return '\n'.join(out)


def report_own_cost(results, command):
    out = [machine_line('provision alone, one run each; ', command), '']
    own_cost_table(out, results)
    return '\n'.join(out)


def own_cost_table(out, results):
    out += ['### Fresh converge and provision\'s own cost', '',
            '| hosts | fresh apply s | remote commands (fresh) | remote commands busy s | tool overhead s | '
            'controller CPU s (fresh) | peak RSS MiB (fresh) | controller CPU s (no-op) | peak RSS MiB (no-op) | '
            'controller CPU s (facts) | peak RSS MiB (facts) |',
            '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    for r in results:
        f, z, g = r['fresh'], r['noop_rss'], r['facts_rss']
        out.append(f'| {r["n"]} | {f["wall"]:.1f} | {f["commands"]} | {f["busy"]:.1f} | {f["wall"] - f["busy"]:.1f} | '
                   f'{f["cpu"]:.2f} | {f["rss"]:.0f} | {z["cpu"]:.2f} | {z["rss"]:.0f} | {g["cpu"]:.2f} | {g["rss"]:.0f} |')


LABELS = {'provision': '`provision apply`', 'floor': 'floor: OpenSSH, provision\'s probe round as one command',
          'ansible': '`ansible-playbook` (pipelining, ControlPersist)', 'pyinfra': '`pyinfra` deploy'}
FACT_LABELS = {'provision': '`provision facts`', 'floor': 'floor: OpenSSH, the facts script as one command',
               'ansible': '`ansible -m setup -a gather_subset=min`', 'pyinfra': '`pyinfra … fact` (same fields)'}
UPLOAD_LABELS = {'provision': '`provision apply` (k3s-assets the only work left)', 'scp': 'OpenSSH `scp`, all hosts in parallel',
                 'scp-sync': 'OpenSSH `scp`, then `ssh host sync FILE` (on disk, as provision leaves it)',
                 'ansible': '`ansible -m copy`'}


def write_doc(table, block):
    path = os.path.join(REPO, 'docs', 'benchmarks.md')
    begin, end = f'<!-- {block}:begin -->', f'<!-- {block}:end -->'
    text = open(path).read()
    if begin not in text:
        die(f'{path} has no {begin} marker')
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    open(path, 'w').write(head + begin + '\n' + table + '\n' + end + tail)


def main():
    parser = argparse.ArgumentParser(prog='scripts/bench')
    parser.add_argument('--venv', required=True)
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--upload-mb', type=int, default=200)
    parser.add_argument('--upload-hosts', type=int, default=10)
    parser.add_argument('--runners', type=int, default=2, help='hosts with Docker and gitlab-runner (lab-2 on)')
    parser.add_argument('--workdir', default=None, help='where the labs go (default: a new /tmp/provision-bench.*)')
    parser.add_argument('--keep', action='store_true', help='leave the labs up (tear down with scripts/lab down)')
    parser.add_argument('--no-doc', action='store_true', help='print the tables only')
    parser.add_argument('--provision-only', action='store_true',
                        help='only provision\'s fresh converge, CPU and peak RSS (for lab sizes the other tools would '
                             'take hours on); written to its own block of docs/benchmarks.md')
    parser.add_argument('sizes', nargs='*', type=int)
    args = parser.parse_args()
    args.sizes = args.sizes or [10, 30, 50]
    args.venv = os.path.abspath(args.venv)
    made_workdir = args.workdir is None
    args.workdir = args.workdir or tempfile.mkdtemp(prefix='provision-bench.', dir='/tmp')
    command = 'bash scripts/bench ' + ' '.join(sys.argv[3:])
    t0 = now()
    results = [bench_size(n, args, args.venv) for n in args.sizes]
    if args.provision_only:
        table, block = report_own_cost(results, command.strip()), 'bench-provision'
    else:
        table, block = report(results, args, command.strip()), 'bench'
    print(table)
    log(f'done in {(now() - t0) / 1e9:.0f} s')
    if not args.no_doc:
        write_doc(table, block)
    if made_workdir and not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
