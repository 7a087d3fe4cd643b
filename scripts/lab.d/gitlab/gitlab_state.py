"""The fake GitLab's data: the seed (users, memberships, access tokens, settings), the state built from it (runners,
managers, variables, agents), its clock, and persistence (state.json in the state directory, replaced atomically)."""
import json
import math
import os
import secrets
import string
import tempfile
import time

SEED_FILE = 'seed.json'
STATE_FILE = 'state.json'
FORMAT = 1

ROLES = {'Guest': 10, 'Reporter': 20, 'Developer': 30, 'Maintainer': 40, 'Owner': 50}
SCOPES = ('api', 'read_api', 'read_user', 'create_runner', 'manage_runner', 'k8s_proxy', 'sudo', 'admin_mode')

ONLINE_TIMEOUT = 2 * 3600          # Ci::Runner::ONLINE_CONTACT_TIMEOUT
STALE_TIMEOUT = 7 * 24 * 3600      # Ci::Runner::STALE_TIMEOUT
LEGACY_SYSTEM_ID = '<legacy>'      # the manager of a runner that sends no system_id


class SeedError(Exception):
    pass


def random_token(prefix, length=20):
    alphabet = string.ascii_letters + string.digits + '-_'
    return prefix + ''.join(secrets.choice(alphabet) for _ in range(length))


def same_secret(a, b):
    """Constant-time comparison that also takes non-ASCII input (compare_digest refuses such str)."""
    return secrets.compare_digest(a.encode('utf-8', 'replace'), b.encode('utf-8', 'replace'))


def iso(t):
    """GitLab's API timestamp: UTC with milliseconds, e.g. 2026-11-24T10:00:00.123Z."""
    if t is None:
        return None
    whole = math.floor(t)
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole)) + '.%03dZ' % int((t - whole) * 1000)


def default_seed(allow_registration_token=False, registration_token=True):
    """Users, one group with one project inside, and tokens for each case a client meets. Tokens are random."""
    users = [
        {'id': 1, 'username': 'root', 'name': 'Administrator', 'admin': True},
        {'id': 2, 'username': 'owner', 'name': 'Group Owner'},
        {'id': 3, 'username': 'maintainer', 'name': 'Project Maintainer'},
        {'id': 4, 'username': 'developer', 'name': 'Project Developer'},
        {'id': 5, 'username': 'outsider', 'name': 'No Membership'},
    ]
    # Group and project ids differ so that a client mixing them up gets a 404, not a lucky hit.
    groups = [{'id': 100, 'path': 'lab', 'name': 'lab', 'members': [{'user': 'owner', 'role': 'Owner'}]}]
    projects = [{'id': 200, 'path': 'cluster', 'name': 'cluster', 'group': 100,
                 'members': [{'user': 'maintainer', 'role': 'Maintainer'},
                             {'user': 'developer', 'role': 'Developer'}]}]
    tokens = [
        {'name': 'root-api', 'user': 'root', 'scopes': ['api']},
        {'name': 'root-read-api', 'user': 'root', 'scopes': ['read_api']},
        {'name': 'owner-api', 'user': 'owner', 'scopes': ['api']},
        {'name': 'owner-create-runner', 'user': 'owner', 'scopes': ['create_runner']},
        {'name': 'owner-manage-runner', 'user': 'owner', 'scopes': ['manage_runner']},
        {'name': 'owner-read-api', 'user': 'owner', 'scopes': ['read_api']},
        {'name': 'maintainer-api', 'user': 'maintainer', 'scopes': ['api']},
        {'name': 'developer-api', 'user': 'developer', 'scopes': ['api']},
        {'name': 'outsider-api', 'user': 'outsider', 'scopes': ['api']},
        {'name': 'project-bot', 'project': 200, 'role': 'Maintainer',
         'scopes': ['api', 'create_runner', 'manage_runner']},
        {'name': 'group-bot', 'group': 100, 'role': 'Owner', 'scopes': ['api', 'create_runner', 'manage_runner']},
    ]
    for t in tokens:
        t['token'] = random_token('glpat-')
    return {
        'settings': {'allow_registration_token': allow_registration_token,
                     'registration_token': random_token('GR1348941') if registration_token else None},
        'users': users, 'groups': groups, 'projects': projects, 'tokens': tokens,
    }


def write_private(path, data):
    """Writes `data` (str) to `path` with mode 0600 through a temporary file and a rename: never half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def build_state(seed):
    """The initial state from a seed: validated, ids assigned, bot users made for project and group tokens."""
    if not isinstance(seed, dict):
        raise SeedError('the seed must be a JSON object')
    settings = seed.get('settings') or {}
    state = {
        'format': FORMAT,
        'settings': {'allow_registration_token': bool(settings.get('allow_registration_token', False)),
                     'registration_token': settings.get('registration_token'),
                     'version': settings.get('version', '18.5.1')},
        'users': [], 'groups': [], 'projects': [], 'tokens': [],
        'runners': [], 'variables': [], 'agents': [], 'agent_tokens': [],
        'next_id': {'runner': 1, 'manager': 1, 'variable': 1, 'agent': 1, 'agent_token': 1},
        'clock_offset': 0.0,
        'created_at': time.time(),
    }
    names = set()
    for i, u in enumerate(seed.get('users') or [], start=1):
        if not isinstance(u, dict) or not u.get('username'):
            raise SeedError('users[%d]: a user needs a username' % (i - 1))
        if u['username'] in names:
            raise SeedError('users[%d]: duplicate username %s' % (i - 1, u['username']))
        names.add(u['username'])
        state['users'].append({'id': int(u.get('id', i)), 'username': u['username'],
                               'name': u.get('name', u['username']), 'admin': bool(u.get('admin', False)),
                               'bot': False})
    next_user_id = max([u['id'] for u in state['users']] + [0]) + 1

    def members(owner, where):
        out = []
        for m in owner.get('members') or []:
            if m.get('user') not in names:
                raise SeedError('%s: member %r is not a user' % (where, m.get('user')))
            if m.get('role') not in ROLES:
                raise SeedError('%s: role %r is not one of %s' % (where, m.get('role'), ', '.join(ROLES)))
            out.append({'user': m['user'], 'role': m['role']})
        return out

    for g in seed.get('groups') or []:
        if 'id' not in g or 'path' not in g:
            raise SeedError('a group needs an id and a path')
        state['groups'].append({'id': int(g['id']), 'path': g['path'], 'name': g.get('name', g['path']),
                                'members': members(g, 'group %s' % g['path'])})
    group_ids = {g['id'] for g in state['groups']}
    for p in seed.get('projects') or []:
        if 'id' not in p or 'path' not in p:
            raise SeedError('a project needs an id and a path')
        if p.get('group') is not None and int(p['group']) not in group_ids:
            raise SeedError('project %s: group %s does not exist' % (p['path'], p['group']))
        state['projects'].append({'id': int(p['id']), 'path': p['path'], 'name': p.get('name', p['path']),
                                  'group_id': int(p['group']) if p.get('group') is not None else None,
                                  'members': members(p, 'project %s' % p['path'])})
    project_ids = {p['id'] for p in state['projects']}
    for i, t in enumerate(seed.get('tokens') or [], start=1):
        where = 'tokens[%d]' % (i - 1)
        if not t.get('token'):
            raise SeedError('%s: no token value' % where)
        scopes = t.get('scopes') or []
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise SeedError('%s: scopes must be a non-empty list of %s' % (where, ', '.join(SCOPES)))
        record = {'id': i, 'name': t.get('name', 'token-%d' % i), 'token': t['token'], 'scopes': list(scopes),
                  'revoked': bool(t.get('revoked', False)), 'expires_at': t.get('expires_at'), 'kind': 'personal'}
        if 'project' in t or 'group' in t:
            # Project and group access tokens belong to a bot user that is a member with the token's role.
            kind = 'project' if 'project' in t else 'group'
            target = int(t[kind])
            if target not in (project_ids if kind == 'project' else group_ids):
                raise SeedError('%s: %s %s does not exist' % (where, kind, target))
            role = t.get('role', 'Maintainer')
            if role not in ROLES:
                raise SeedError('%s: role %r is not one of %s' % (where, role, ', '.join(ROLES)))
            bot = '%s_%d_bot_%s' % (kind, target, secrets.token_hex(4))
            state['users'].append({'id': next_user_id, 'username': bot, 'name': record['name'], 'admin': False,
                                   'bot': True})
            next_user_id += 1
            names.add(bot)
            collection = state['projects'] if kind == 'project' else state['groups']
            next(o for o in collection if o['id'] == target)['members'].append({'user': bot, 'role': role})
            record.update(kind=kind, user=bot)
        else:
            if t.get('user') not in names:
                raise SeedError('%s: user %r does not exist' % (where, t.get('user')))
            record['user'] = t['user']
        state['tokens'].append(record)
    return state


class Store:
    """The state and where it lives. Callers hold `lock` around reads and changes (the HTTP layer does)."""

    def __init__(self, directory):
        self.directory = directory
        self.state = None

    @property
    def seed_path(self):
        return os.path.join(self.directory, SEED_FILE)

    @property
    def state_path(self):
        return os.path.join(self.directory, STATE_FILE)

    def load(self):
        if os.path.exists(self.state_path):
            with open(self.state_path) as f:
                self.state = json.load(f)
            if self.state.get('format') != FORMAT:
                raise SeedError('%s: unknown format %r (delete it to start from the seed)' %
                                (self.state_path, self.state.get('format')))
        else:
            self.reset()

    def reset(self):
        """Back to the seed: no runners, variables or agents; the clock at real time."""
        if not os.path.exists(self.seed_path):
            raise SeedError('%s: no seed (write one with `fake-gitlab seed --state %s`)' %
                            (self.seed_path, self.directory))
        with open(self.seed_path) as f:
            try:
                seed = json.load(f)
            except ValueError as e:
                raise SeedError('%s: %s' % (self.seed_path, e))
        self.state = build_state(seed)
        self.save()

    def save(self):
        write_private(self.state_path, json.dumps(self.state, indent=1, sort_keys=True) + '\n')

    # -- clock

    def now(self):
        return time.time() + self.state.get('clock_offset', 0.0)

    def advance(self, seconds):
        self.state['clock_offset'] = self.state.get('clock_offset', 0.0) + float(seconds)

    def next_id(self, kind):
        value = self.state['next_id'][kind]
        self.state['next_id'][kind] = value + 1
        return value

    # -- look-ups

    def user(self, username):
        return next((u for u in self.state['users'] if u['username'] == username), None)

    def user_by_id(self, user_id):
        return next((u for u in self.state['users'] if u['id'] == user_id), None)

    def token(self, value):
        if not value:
            return None
        return next((t for t in self.state['tokens'] if same_secret(t['token'], value)), None)

    def project(self, ident):
        """A project by numeric id or full path (`lab/cluster`), as the API's :id accepts both."""
        for p in self.state['projects']:
            if str(p['id']) == ident or self.project_full_path(p) == ident:
                return p
        return None

    def group(self, ident):
        for g in self.state['groups']:
            if str(g['id']) == ident or g['path'] == ident:
                return g
        return None

    def group_by_id(self, group_id):
        return next((g for g in self.state['groups'] if g['id'] == group_id), None)

    def project_by_id(self, project_id):
        return next((p for p in self.state['projects'] if p['id'] == project_id), None)

    def project_full_path(self, project):
        group = self.group_by_id(project.get('group_id'))
        return (group['path'] + '/' if group else '') + project['path']

    def runner(self, runner_id):
        return next((r for r in self.state['runners'] if r['id'] == runner_id), None)

    def runner_by_token(self, value):
        if not value:
            return None
        return next((r for r in self.state['runners'] if same_secret(r['token'], value)), None)

    # -- roles

    def group_role(self, user, group):
        """A user's access level in a group (0 when not a member); admins count as owners."""
        if user['admin']:
            return ROLES['Owner']
        return max([ROLES[m['role']] for m in group['members'] if m['user'] == user['username']] + [0])

    def project_role(self, user, project):
        """Direct membership or inherited from the project's group, whichever is higher."""
        if user['admin']:
            return ROLES['Owner']
        direct = max([ROLES[m['role']] for m in project['members'] if m['user'] == user['username']] + [0])
        group = self.group_by_id(project.get('group_id'))
        return max(direct, self.group_role(user, group) if group else 0)

    # -- runner status (Ci::Runner#status and #deprecated_rest_status)

    def online(self, record):
        c = record.get('contacted_at')
        return None if c is None else c > self.now() - ONLINE_TIMEOUT

    def stale(self, record):
        return max(record['created_at'], record.get('contacted_at') or 0) <= self.now() - STALE_TIMEOUT

    def status(self, record):
        if self.stale(record):
            return 'stale'
        if record.get('contacted_at') is None:
            return 'never_contacted'
        return 'online' if self.online(record) else 'offline'

    def rest_status(self, runner):
        """What the REST entities show as `status`: a paused runner that has been seen reads `paused`."""
        s = self.status(runner)
        if s in ('stale', 'never_contacted') or runner['active']:
            return s
        return 'paused'

    # -- secrets, for redaction

    def secrets(self):
        """Every secret the fake knows of; the request log and stderr are scrubbed of each."""
        values = [t['token'] for t in self.state['tokens']]
        values += [r['token'] for r in self.state['runners']]
        values += [t['token'] for t in self.state['agent_tokens']]
        values += [v['value'] for v in self.state['variables'] if v.get('value')]
        if self.state['settings'].get('registration_token'):
            values.append(self.state['settings']['registration_token'])
        return [v for v in values if isinstance(v, str) and len(v) >= 6]
