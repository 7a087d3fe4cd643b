"""The k3s stand-in's entry point: one program answers as k3s (server, agent, kubectl, --version) and, through
the install script's symlinks, as kubectl, crictl and ctr."""
import os
import sys

import k3s_common


def main():
    argv0 = sys.argv[0]
    name = os.path.basename(argv0)
    k3s_common.check_binary_arch(argv0)
    args = sys.argv[1:]
    if name == 'kubectl':
        import k3s_kubectl
        return k3s_kubectl.main(args)
    if name in ('crictl', 'ctr'):
        return stub(name, args)
    if not args or args[0] in ('-h', '--help', 'help', 'h'):
        sys.stdout.write(HELP % k3s_common.VERSION)
        return 0
    cmd = args[0]
    if cmd in ('-v', '--version', 'version'):
        sys.stdout.write('k3s version %s (%s)\ngo version %s\n' % (k3s_common.VERSION, k3s_common.version_commit(),
                                                                   k3s_common.go_version()))
        return 0
    if cmd in ('server', 'agent'):
        set_process_name('k3s-' + cmd)
        # Everything from the zip now: a binary replaced under a running k3s must not change its later imports.
        import k3s_agent, k3s_cluster, k3s_http, k3s_server  # noqa: F401
    if cmd == 'server':
        import k3s_server
        k3s_server.main(args[1:])
    elif cmd == 'agent':
        import k3s_agent
        k3s_agent.main(args[1:])
    elif cmd == 'kubectl':
        import k3s_kubectl
        return k3s_kubectl.main(args[1:])
    elif cmd in ('crictl', 'ctr'):
        return stub(cmd, args[1:])
    elif cmd in ('token', 'etcd-snapshot', 'secrets-encrypt', 'certificate', 'check-config', 'completion'):
        sys.stderr.write('k3s %s is not supported by the provision lab\'s k3s stand-in\n' % cmd)
        return 1
    else:
        sys.stderr.write('Incorrect Usage. No such command "%s"\n' % cmd)
        return 1
    return 0


def set_process_name(name):
    """ps and pgrep see k3s-server / k3s-agent, as with the real binary (the interpreter is python3)."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)   # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def stub(name, args):
    """crictl and ctr see no containers: the stand-in runs none."""
    if name == 'crictl' and args[:1] in (['ps'], ['pods']):
        columns = (['CONTAINER', 'IMAGE', 'CREATED', 'STATE', 'NAME', 'ATTEMPT', 'POD ID', 'POD'] if args[0] == 'ps'
                   else ['POD ID', 'CREATED', 'STATE', 'NAME', 'NAMESPACE', 'ATTEMPT', 'RUNTIME'])
        sys.stdout.write(''.join(c.ljust(20) for c in columns[:-1]) + columns[-1] + '\n')
        return 0
    if args[:1] in (['--version'], ['-v'], ['version']):
        sys.stdout.write('%s version v1.32.0-k3s1\n' % name)
        return 0
    sys.stderr.write('%s %s: not supported by the provision lab\'s k3s stand-in (it runs no containers)\n' % (name, ' '.join(args)))
    return 1


HELP = '''NAME:
   k3s - Kubernetes, but small and simple

USAGE:
   k3s [global options] command [command options] [arguments...]

VERSION:
   %s

COMMANDS:
   server           Run management server
   agent            Run node agent
   kubectl          Run kubectl
   crictl           Run crictl
   ctr              Run ctr
   help, h          Shows a list of commands or help for one command

GLOBAL OPTIONS:
   --debug                     (logging) Turn on debug logs [$K3S_DEBUG]
   --data-dir value, -d value  (data) Folder to hold state (default: /var/lib/rancher/k3s)
   --help, -h                  show help
   --version, -v               print the version

(provision lab stand-in: speaks k3s's interfaces, runs no containers)
'''

if __name__ == '__main__':
    sys.exit(main() or 0)
