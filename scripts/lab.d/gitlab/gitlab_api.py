"""GitLab REST v4 as `provision` and gitlab-runner meet it: runners (create, register, verify, unregister, list,
detail, job requests), CI/CD variables of projects and groups, cluster agents and their tokens. Error bodies, status
codes, scopes, roles and pagination follow GitLab's API (lib/api/*.rb, Grape validation messages)."""
import math
import re
import secrets
import urllib.parse

from gitlab_state import LEGACY_SYSTEM_ID, ROLES, iso, random_token, same_secret

RUNNER_TYPES = ('instance_type', 'group_type', 'project_type')
ACCESS_LEVELS = ('not_protected', 'ref_protected')
STATUSES = ('online', 'offline', 'never_contacted', 'stale')
DEPRECATED_STATUSES = ('active', 'paused')
VARIABLE_TYPES = ('env_var', 'file')
TAG_LIST_MAX = 50
MASKABLE = re.compile(r'\A[a-zA-Z0-9_+=/@:.~-]{8,}\Z')
AGENT_NAME = re.compile(r'\A[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z')
TOKEN_PARAMS = ('private_token', 'access_token')


class ApiError(Exception):
    def __init__(self, status, body, headers=None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def api_message(status, text, **extra):
    return ApiError(status, dict({'message': text}, **extra))


def forbidden(reason=None):
    return api_message(403, '403 Forbidden' + (' - %s' % reason if reason else ''))


def bad_request(reason):
    return api_message(400, '400 Bad request - %s' % reason)


def not_found(resource=None):
    return api_message(404, '404 %s Not Found' % resource if resource else '404 Not Found')


def record_not_found():
    """ActiveRecord::RecordNotFound, rescued by GitLab's API root."""
    return api_message(404, '404 Not found')


def unauthorized():
    return api_message(401, '401 Unauthorized')


def to_sentence(items):
    """Rails' Array#to_sentence: `a`, `a and b`, `a, b, and c`."""
    if len(items) <= 1:
        return ''.join(items)
    if len(items) == 2:
        return '%s and %s' % tuple(items)
    return ', '.join(items[:-1]) + ', and ' + items[-1]


def rb_inspect(items):
    """Ruby's Array#to_s of strings, which GitLab puts into some 400 messages verbatim."""
    return '[' + ', '.join('"%s"' % s.replace('\\', '\\\\').replace('"', '\\"') for s in items) + ']'


# -- Grape-like parameter declarations

TRUE = {'1', 'on', 't', 'true', 'y', 'yes'}
FALSE = {'0', 'off', 'f', 'false', 'n', 'no'}


class Params:
    """Declared parameters, coerced as Grape does; errors are collected and raised together as a 400."""

    def __init__(self, raw):
        self.raw = raw
        self.values = {}
        self.errors = []

    def present(self, name):
        return name in self.raw and self.raw[name] is not None

    def _missing(self, name, required):
        if not self.present(name):
            if required:
                self.errors.append('%s is missing' % name)
            return True
        return False

    def string(self, name, required=False, values=None):
        missing = self._missing(name, required)
        if missing:
            if required and values is not None:
                self.errors.append('%s does not have a valid value' % name)
            return None
        v = self.raw[name]
        if isinstance(v, bool):
            v = 'true' if v else 'false'
        elif isinstance(v, (int, float)):
            v = str(v)
        elif not isinstance(v, str):
            self.errors.append('%s is invalid' % name)
            return None
        if values is not None and v not in values:
            self.errors.append('%s does not have a valid value' % name)
            return None
        self.values[name] = v
        return v

    def boolean(self, name, required=False):
        if self._missing(name, required):
            return None
        v = self.raw[name]
        if isinstance(v, bool):
            out = v
        elif isinstance(v, (str, int)) and str(v).lower() in TRUE:
            out = True
        elif isinstance(v, (str, int)) and str(v).lower() in FALSE:
            out = False
        else:
            self.errors.append('%s is invalid' % name)
            return None
        self.values[name] = out
        return out

    def integer(self, name, required=False):
        if self._missing(name, required):
            return None
        v = self.raw[name]
        if isinstance(v, bool):
            self.errors.append('%s is invalid' % name)
            return None
        if isinstance(v, int):
            out = v
        elif isinstance(v, str) and re.fullmatch(r'\s*[-+]?\d+\s*', v):
            out = int(v)
        else:
            self.errors.append('%s is invalid' % name)
            return None
        self.values[name] = out
        return out

    def tags(self, name):
        """Array[String] with CommaSeparatedToArray: `a,b` and [`a`, `b`] (and [`a,b`]) are the same list."""
        if not self.present(name):
            return None
        v = self.raw[name]
        items = v if isinstance(v, list) else [v]
        out = []
        for item in items:
            if isinstance(item, (dict, list)):
                self.errors.append('%s is invalid' % name)
                return None
            for part in str(item).split(','):
                part = part.strip()
                if part and part not in out:
                    out.append(part)
        self.values[name] = out
        return out

    def hash(self, name):
        if not self.present(name):
            return None
        v = self.raw[name]
        if not isinstance(v, dict):
            self.errors.append('%s is invalid' % name)
            return None
        self.values[name] = v
        return v

    def mutually_exclusive(self, *names):
        if sum(1 for n in names if self.present(n)) > 1:
            self.errors.append('%s are mutually exclusive' % ', '.join(names))

    def at_least_one_of(self, *names):
        if not any(self.present(n) for n in names):
            self.errors.append('%s are missing, at least one parameter must be provided' % ', '.join(names))

    def check(self):
        if self.errors:
            raise ApiError(400, {'error': ', '.join(self.errors)})
        return self.values


# -- the API

class Route:
    def __init__(self, method, pattern, handler, scopes=(), user=True):
        self.method, self.handler, self.scopes, self.user = method, handler, tuple(scopes), user
        self.names = re.findall(r':(\w+)', pattern)
        self.regex = re.compile('^' + re.sub(r':(\w+)', r'([^/]+)', pattern) + '$')


class Api:
    """Serves one request at a time (the HTTP layer holds the store's lock). `serve` returns
    (status, body, headers, changed): body is a JSON-able value, a str (text/plain) or None (no body)."""

    def __init__(self, store):
        self.store = store
        R = Route
        self.routes = [
            R('GET', '/version', self.version),
            R('GET', '/user', self.current_user, scopes=['read_user']),
            R('GET', '/personal_access_tokens/self', self.token_self),
            R('POST', '/user/runners', self.create_runner, scopes=['create_runner']),
            # Runner-token endpoints (lib/api/ci/runner.rb): no user, the runner's token in the body.
            R('POST', '/runners', self.register_runner, user=False),
            R('DELETE', '/runners', self.unregister_runner, user=False),
            R('POST', '/runners/verify', self.verify_runner, user=False),
            R('DELETE', '/runners/managers', self.unregister_manager, user=False),
            R('POST', '/jobs/request', self.request_job, user=False),
            # Runners for users (lib/api/ci/runners.rb); manage_runner covers the /runners/:id routes.
            R('GET', '/runners', self.owned_runners),
            R('GET', '/runners/all', self.all_runners),
            R('GET', '/runners/:id', self.show_runner, scopes=['manage_runner']),
            R('PUT', '/runners/:id', self.update_runner, scopes=['manage_runner']),
            R('DELETE', '/runners/:id', self.delete_runner, scopes=['manage_runner']),
            R('GET', '/runners/:id/managers', self.runner_managers, scopes=['manage_runner']),
            R('GET', '/projects/:id', self.show_project),
            R('GET', '/projects/:id/runners', self.project_runners),
            R('GET', '/groups/:id', self.show_group),
            R('GET', '/groups/:id/runners', self.group_runners),
            R('GET', '/projects/:id/variables', self.list_variables),
            R('POST', '/projects/:id/variables', self.create_variable),
            R('GET', '/projects/:id/variables/:key', self.show_variable),
            R('PUT', '/projects/:id/variables/:key', self.update_variable),
            R('DELETE', '/projects/:id/variables/:key', self.delete_variable),
            R('GET', '/groups/:id/variables', self.list_variables),
            R('POST', '/groups/:id/variables', self.create_variable),
            R('GET', '/groups/:id/variables/:key', self.show_variable),
            R('PUT', '/groups/:id/variables/:key', self.update_variable),
            R('DELETE', '/groups/:id/variables/:key', self.delete_variable),
            R('GET', '/projects/:id/cluster_agents', self.list_agents),
            R('POST', '/projects/:id/cluster_agents', self.create_agent),
            R('GET', '/projects/:id/cluster_agents/:agent_id', self.show_agent),
            R('DELETE', '/projects/:id/cluster_agents/:agent_id', self.delete_agent),
            R('GET', '/projects/:id/cluster_agents/:agent_id/tokens', self.list_agent_tokens),
            R('POST', '/projects/:id/cluster_agents/:agent_id/tokens', self.create_agent_token),
            R('GET', '/projects/:id/cluster_agents/:agent_id/tokens/:token_id', self.show_agent_token),
            R('DELETE', '/projects/:id/cluster_agents/:agent_id/tokens/:token_id', self.revoke_agent_token),
        ]

    # -- dispatch

    def serve(self, req):
        """`req`: method, path (below /api/v4, still percent-encoded), params (query and body merged), headers,
        client_ip, base_url. Sets req.user_name for the request log."""
        self.req = req
        self.headers = {}
        self.changed = False
        route, match, other_methods = None, None, []
        for r in self.routes:
            m = r.regex.match(req.path)
            if m:
                if r.method == req.method or (req.method == 'HEAD' and r.method == 'GET'):
                    route, match = r, m
                    break
                other_methods.append(r.method)
        if route is None:
            if other_methods:
                raise ApiError(405, {'error': '405 Not Allowed'}, {'Allow': ', '.join(sorted(set(other_methods)))})
            raise ApiError(404, {'error': '404 Not Found'})
        self.route_params = {n: urllib.parse.unquote(v) for n, v in zip(route.names, match.groups())}
        self.params = dict(req.params)
        self.params.update(self.route_params)
        self.user = self.authenticate(route) if route.user else None
        status, body = route.handler()
        return status, body, self.headers, self.changed

    def authenticate(self, route):
        """PRIVATE-TOKEN, Authorization: Bearer, or the private_token/access_token parameter; then the scopes the
        endpoint accepts (its own, then api, then read_api for reads), as API::APIGuard checks them."""
        h = self.req.headers
        value = h.get('PRIVATE-TOKEN')
        auth = h.get('Authorization') or ''
        if not value and auth[:7].lower() == 'bearer ':
            value = auth[7:].strip()
        if not value:
            value = next((self.req.params[p] for p in TOKEN_PARAMS if isinstance(self.req.params.get(p), str)), None)
        if not value:
            raise unauthorized()
        token = self.store.token(value)
        if token is None:
            raise unauthorized()
        if token['revoked']:
            raise ApiError(401, {'error': 'invalid_token',
                                 'error_description': 'Token was revoked. You have to re-authorize from the user.'})
        if token.get('expires_at') and token['expires_at'] < iso(self.store.now())[:10]:
            raise ApiError(401, {'error': 'invalid_token', 'error_description':
                                 'Token is expired. You can either do re-authorization or token refresh.'})
        allowed = list(route.scopes) + ['api'] + (['read_api'] if self.req.method in ('GET', 'HEAD') else [])
        if not set(allowed) & set(token['scopes']):
            raise ApiError(403, {'error': 'insufficient_scope', 'error_description':
                                 'The request requires higher privileges than provided by the access token.',
                                 'scope': ' '.join(allowed)})
        user = self.store.user(token['user'])
        self.req.user_name = user['username']
        self.token = token
        return user

    def declare(self):
        return Params(self.params)

    # -- pagination (Gitlab::Pagination::OffsetPagination, ordered by id)

    def paginate(self, items):
        p = self.declare()
        page = p.integer('page')
        per_page = p.integer('per_page')
        if per_page == 0:
            p.errors.append('per_page has a value not allowed')
        p.check()
        items = sorted(items, key=lambda i: i['id'])
        page = page if page and page > 0 else 1
        limit = per_page if per_page and per_page > 0 else 20
        limit = min(limit, 100)
        total = len(items)
        real_pages = math.ceil(total / limit)
        total_pages = max(real_pages, 1)
        out_of_range = page > real_pages
        next_page = page + 1 if page < real_pages else None
        prev_page = page - 1 if page > 1 and not out_of_range else None
        query = {k: v for k, v in self.params.items() if k not in TOKEN_PARAMS}
        query['per_page'] = per_page if per_page is not None else 20

        def href(n):
            q = dict(query, page=n)
            return '%s%s?%s' % (self.req.base_url, self.req.full_path, to_query(q))
        links = []
        if prev_page:
            links.append('<%s>; rel="prev"' % href(prev_page))
        if next_page:
            links.append('<%s>; rel="next"' % href(next_page))
        links.append('<%s>; rel="first"' % href(1))
        links.append('<%s>; rel="last"' % href(total_pages))
        self.headers.update({
            'X-Per-Page': str(limit), 'X-Page': str(page), 'X-Next-Page': str(next_page or ''),
            'X-Prev-Page': str(prev_page or ''), 'Link': ', '.join(links), 'X-Total': str(total),
            'X-Total-Pages': str(total_pages),
        })
        return items[(page - 1) * limit: page * limit]

    # -- users and tokens

    def version(self):
        return 200, {'version': self.store.state['settings']['version'], 'revision': 'fake0000',
                     'kas': {'enabled': True, 'externalUrl': None, 'version': self.store.state['settings']['version']},
                     'enterprise': False}

    def user_entity(self, user):
        out = {'id': user['id'], 'username': user['username'], 'name': user['name'], 'state': 'active',
               'locked': False, 'avatar_url': None, 'web_url': '%s/%s' % (self.req.base_url, user['username']),
               'created_at': iso(self.store.state['created_at']), 'bot': user['bot']}
        if self.user and self.user['admin']:
            out['is_admin'] = user['admin']
        return out

    def current_user(self):
        return 200, self.user_entity(self.user)

    def token_self(self):
        t = self.token
        return 200, {'id': t['id'], 'name': t['name'], 'revoked': t['revoked'],
                     'created_at': iso(self.store.state['created_at']), 'description': None, 'scopes': t['scopes'],
                     'user_id': self.user['id'], 'last_used_at': iso(self.store.now()), 'active': True,
                     'expires_at': t.get('expires_at')}

    # -- projects and groups

    def find_project(self, min_role=None):
        """The :id project as the caller sees it: 404 when not a member (projects are private), 403 below
        `min_role`."""
        project = self.store.project(self.route_params['id'])
        if project is None or self.store.project_role(self.user, project) < ROLES['Guest']:
            raise not_found('Project')
        if min_role and self.store.project_role(self.user, project) < ROLES[min_role]:
            raise forbidden()
        return project

    def find_group(self, min_role=None):
        group = self.store.group(self.route_params['id'])
        if group is None or self.store.group_role(self.user, group) < ROLES['Guest']:
            raise not_found('Group')
        if min_role and self.store.group_role(self.user, group) < ROLES[min_role]:
            raise forbidden()
        return group

    def project_identity(self, p):
        group = self.store.group_by_id(p.get('group_id'))
        return {'id': p['id'], 'description': None, 'name': p['name'],
                'name_with_namespace': (group['name'] + ' / ' if group else '') + p['name'], 'path': p['path'],
                'path_with_namespace': self.store.project_full_path(p),
                'created_at': iso(self.store.state['created_at'])}

    def project_entity(self, p):
        out = self.project_identity(p)
        full = self.store.project_full_path(p)
        group = self.store.group_by_id(p.get('group_id'))
        out.update({'default_branch': 'main', 'visibility': 'private', 'web_url': '%s/%s' % (self.req.base_url, full),
                    'http_url_to_repo': '%s/%s.git' % (self.req.base_url, full),
                    'ssh_url_to_repo': 'git@%s:%s.git' % (urllib.parse.urlsplit(self.req.base_url).hostname, full),
                    'namespace': ({'id': group['id'], 'name': group['name'], 'path': group['path'], 'kind': 'group',
                                   'full_path': group['path']} if group else None)})
        return out

    def group_entity(self, g):
        return {'id': g['id'], 'web_url': '%s/groups/%s' % (self.req.base_url, g['path']), 'name': g['name'],
                'path': g['path'], 'full_path': g['path'], 'visibility': 'private', 'parent_id': None}

    def show_project(self):
        return 200, self.project_entity(self.find_project())

    def show_group(self):
        return 200, self.group_entity(self.find_group())

    # -- runners: create (current workflow) and legacy registration

    def runner_attributes(self, p):
        """The optional attributes POST /user/runners and POST /runners share."""
        return {
            'description': p.string('description'),
            'maintenance_note': p.string('maintenance_note'),
            'paused': p.boolean('paused'),
            'locked': p.boolean('locked'),
            'access_level': p.string('access_level', values=ACCESS_LEVELS),
            'run_untagged': p.boolean('run_untagged'),
            'tag_list': p.tags('tag_list'),
            'maximum_timeout': p.integer('maximum_timeout'),
        }

    def new_runner(self, runner_type, attrs, registration_type, projects=(), groups=()):
        now = self.store.now()
        glrt = registration_type == 'authenticated_user'
        runner = {
            'id': None,   # given when saved, so a refused runner uses no id
            'token': random_token('glrt-' if glrt else '', 20 if glrt else 24),
            'registration_type': registration_type, 'runner_type': runner_type,
            'description': attrs.get('description'), 'maintenance_note': attrs.get('maintenance_note'),
            'active': not attrs['paused'] if attrs.get('paused') is not None else attrs.get('active', True),
            'locked': bool(attrs.get('locked')) if attrs.get('locked') is not None else False,
            'run_untagged': attrs['run_untagged'] if attrs.get('run_untagged') is not None else True,
            'access_level': attrs.get('access_level') or 'not_protected',
            'tag_list': attrs.get('tag_list') or [], 'maximum_timeout': attrs.get('maximum_timeout'),
            'name': attrs.get('name'), 'created_at': now, 'contacted_at': None,
            'creator_id': self.user['id'] if self.user else None,
            'project_ids': list(projects), 'group_ids': list(groups), 'managers': [],
        }
        return runner

    def save_runner(self, runner):
        runner['id'] = self.store.next_id('runner')
        self.store.state['runners'].append(runner)

    def runner_errors(self, r):
        """Ci::Runner validations as (attribute, message) pairs."""
        errors = []
        if not r['tag_list'] and not r['run_untagged']:
            errors.append(('tags_list', 'can not be empty when runner is not allowed to pick untagged jobs'))
        if len(r['tag_list']) > TAG_LIST_MAX:
            errors.append(('tags_list',
                           'Too many tags specified. Please limit the number of tags to %d' % TAG_LIST_MAX))
        if r['description'] and len(r['description']) > 1024:
            errors.append(('description', 'is too long (maximum is 1024 characters)'))
        if r['maximum_timeout'] is not None and r['maximum_timeout'] < 600:
            errors.append(('maximum_timeout', 'needs to be at least 10 minutes'))
        if r['maintenance_note'] and len(r['maintenance_note']) > 1024:
            errors.append(('maintenance_note', 'is too long (maximum is 1024 characters)'))
        return errors

    def create_runner(self):
        p = self.declare()
        runner_type = p.string('runner_type', required=True, values=RUNNER_TYPES)
        if runner_type == 'group_type':
            group_id = p.integer('group_id', required=True)
        elif runner_type == 'project_type':
            project_id = p.integer('project_id', required=True)
        attrs = self.runner_attributes(p)
        p.check()
        scope = None
        if runner_type == 'group_type':
            scope = self.store.group_by_id(group_id)
            if scope is None:
                raise bad_request('Missing/invalid group')
            allowed = self.store.group_role(self.user, scope) >= ROLES['Owner']
        elif runner_type == 'project_type':
            scope = self.store.project_by_id(project_id)
            if scope is None:
                raise bad_request('Missing/invalid project')
            allowed = self.store.project_role(self.user, scope) >= ROLES['Maintainer']
        else:
            allowed = self.user['admin']
        if not allowed:
            raise forbidden('Insufficient permissions')
        runner = self.new_runner(runner_type, attrs, 'authenticated_user',
                                 projects=[scope['id']] if runner_type == 'project_type' else [],
                                 groups=[scope['id']] if runner_type == 'group_type' else [])
        errors = self.runner_errors(runner)
        if errors:
            raise bad_request(to_sentence([full_message(a, m) for a, m in errors]))
        self.save_runner(runner)
        self.changed = True
        return 201, {'id': runner['id'], 'token': runner['token'], 'token_expires_at': None}

    def register_runner(self):
        p = self.declare()
        token = p.string('token', required=True)
        attrs = self.runner_attributes(p)
        attrs['active'] = p.boolean('active')
        info = p.hash('info') or {}
        p.mutually_exclusive('active', 'paused')
        p.check()
        settings = self.store.state['settings']
        expected = settings.get('registration_token')
        valid = bool(expected) and same_secret(token, expected)
        if not settings['allow_registration_token']:
            # With registration tokens turned off, every token is refused as Gone, valid or not.
            raise api_message(410, '410 Gone', reason='runner registration disallowed')
        if not valid:
            raise forbidden('invalid token supplied')
        if attrs['active'] is None:
            attrs['active'] = True
        attrs['name'] = info.get('name') if isinstance(info.get('name'), str) else None
        runner = self.new_runner('instance_type', attrs, 'registration_token')
        errors = self.runner_errors(runner)
        if errors:
            raise validation_error(errors)
        self.save_runner(runner)
        self.changed = True
        return 201, {'id': runner['id'], 'token': runner['token'], 'token_expires_at': None}

    # -- runners: their own token

    def authenticate_runner(self, require_system_id=False):
        p = self.declare()
        token = p.string('token', required=True)
        system_id = p.string('system_id')
        info = p.hash('info') or {}
        if require_system_id and token and token.startswith('glrt-') and not system_id:
            p.errors.append('system_id is missing')
        p.check()
        runner = self.store.runner_by_token(token)
        if runner is None:
            raise forbidden()
        self.req.user_name = 'runner#%d' % runner['id']
        return runner, system_id, info

    def heartbeat(self, runner, system_id, info):
        """Ci::Runner#heartbeat and the manager's: contacted_at now, the manager made on first contact."""
        now = self.store.now()
        runner['contacted_at'] = now
        system_id = system_id or LEGACY_SYSTEM_ID
        manager = next((m for m in runner['managers'] if m['system_id'] == system_id), None)
        if manager is None:
            manager = {'id': self.store.next_id('manager'), 'system_id': system_id, 'created_at': now,
                       'contacted_at': None, 'version': None, 'revision': None, 'platform': None,
                       'architecture': None, 'executor': None, 'ip_address': None}
            runner['managers'].append(manager)
        manager['contacted_at'] = now
        manager['ip_address'] = self.req.client_ip
        for key in ('version', 'revision', 'platform', 'architecture', 'executor'):
            if isinstance(info.get(key), str):
                manager[key] = info[key]
        self.changed = True

    def verify_runner(self):
        runner, system_id, info = self.authenticate_runner(require_system_id=True)
        self.heartbeat(runner, system_id, info)
        return 200, {'id': runner['id'], 'token': runner['token'], 'token_expires_at': None}

    def unregister_runner(self):
        runner, _, _ = self.authenticate_runner()
        self.store.state['runners'].remove(runner)
        self.changed = True
        return 204, None

    def unregister_manager(self):
        p = self.declare()
        p.string('token', required=True)
        system_id = p.string('system_id', required=True)
        p.check()
        runner, _, _ = self.authenticate_runner()
        manager = next((m for m in runner['managers'] if m['system_id'] == system_id), None)
        if manager is None:
            raise not_found('Runner manager not found')
        runner['managers'].remove(manager)
        self.changed = True
        return 204, None

    def request_job(self):
        runner, system_id, info = self.authenticate_runner()
        self.heartbeat(runner, system_id, info)
        # The fake has no jobs: every request is answered "nothing for you", as an idle GitLab does.
        self.headers['X-GitLab-Last-Update'] = secrets.token_hex(16)
        return 204, None

    # -- runners: users reading and changing them

    def runner_entity(self, r):
        return {'id': r['id'], 'description': r['description'], 'ip_address': None, 'active': r['active'],
                'paused': not r['active'], 'is_shared': r['runner_type'] == 'instance_type',
                'runner_type': r['runner_type'], 'name': r['name'], 'online': self.store.online(r),
                'status': self.store.rest_status(r)}

    def runner_details(self, r):
        out = self.runner_entity(r)
        latest = max(r['managers'], key=lambda m: m['contacted_at'] or 0, default=None)
        projects = [self.store.project_by_id(i) for i in r['project_ids']]
        groups = [self.store.group_by_id(i) for i in r['group_ids']]
        if not self.user['admin']:
            projects = [p for p in projects if p and self.store.project_role(self.user, p) >= ROLES['Guest']]
            groups = [g for g in groups if g and self.store.group_role(self.user, g) >= ROLES['Guest']]
        out.update({
            'tag_list': list(r['tag_list']), 'run_untagged': r['run_untagged'], 'locked': r['locked'],
            'maximum_timeout': r['maximum_timeout'], 'access_level': r['access_level'],
            'version': latest and latest['version'], 'revision': latest and latest['revision'],
            'platform': latest and latest['platform'], 'architecture': latest and latest['architecture'],
            'contacted_at': iso(r['contacted_at']), 'maintenance_note': r['maintenance_note'],
            'projects': [self.project_entity(p) for p in projects if p],
            'groups': [{'id': g['id'], 'web_url': '%s/groups/%s' % (self.req.base_url, g['path']), 'name': g['name']}
                       for g in groups if g],
        })
        return out

    def manager_entity(self, m):
        return {'id': m['id'], 'system_id': m['system_id'], 'version': m['version'], 'revision': m['revision'],
                'platform': m['platform'], 'architecture': m['architecture'], 'created_at': iso(m['created_at']),
                'contacted_at': iso(m['contacted_at']), 'ip_address': m['ip_address'],
                'status': self.store.status(m)}

    def can_admin_runner(self, r):
        """Read, update and delete rights on a runner (admin_project_runners / admin_group_runners)."""
        if self.user['admin']:
            return True
        if r['runner_type'] == 'project_type':
            return any(p and self.store.project_role(self.user, p) >= ROLES['Maintainer']
                       for p in map(self.store.project_by_id, r['project_ids']))
        if r['runner_type'] == 'group_type':
            return any(g and self.store.group_role(self.user, g) >= ROLES['Owner']
                       for g in map(self.store.group_by_id, r['group_ids']))
        return False

    def owns_runner(self, r):
        """ci_owned_runners: runners of projects the user maintains and groups the user owns (as a member)."""
        user = dict(self.user, admin=False)
        if r['runner_type'] == 'project_type':
            return any(p and self.store.project_role(user, p) >= ROLES['Maintainer']
                       for p in map(self.store.project_by_id, r['project_ids']))
        if r['runner_type'] == 'group_type':
            return any(g and self.store.group_role(user, g) >= ROLES['Owner']
                       for g in map(self.store.group_by_id, r['group_ids']))
        return False

    def filter_runners(self, runners, deprecated_scope=True):
        p = self.declare()
        scope = p.string('scope', values=('specific', 'shared') + RUNNER_TYPES + DEPRECATED_STATUSES + STATUSES) \
            if deprecated_scope else None
        rtype = p.string('type', values=RUNNER_TYPES)
        status = p.string('status', values=DEPRECATED_STATUSES + STATUSES)
        paused = p.boolean('paused')
        tags = p.tags('tag_list')
        p.check()

        def by_status(r, s):
            if s == 'active':
                return r['active']
            if s == 'paused':
                return not r['active']
            if s == 'online':
                return bool(self.store.online(r))
            if s == 'offline':
                return self.store.online(r) is False
            if s == 'never_contacted':
                return r['contacted_at'] is None
            return self.store.stale(r)
        out = []
        for r in runners:
            if scope in RUNNER_TYPES and r['runner_type'] != scope:
                continue
            if scope == 'shared' and r['runner_type'] != 'instance_type':
                continue
            if scope == 'specific' and r['runner_type'] == 'instance_type':
                continue
            if scope and scope not in RUNNER_TYPES + ('shared', 'specific') and not by_status(r, scope):
                continue
            if rtype and r['runner_type'] != rtype:
                continue
            if status and not by_status(r, status):
                continue
            if paused is not None and r['active'] == paused:
                continue
            if tags and not set(tags) <= set(r['tag_list']):
                continue
            out.append(r)
        return out

    def owned_runners(self):
        runners = self.filter_runners([r for r in self.store.state['runners'] if self.owns_runner(r)])
        return 200, [self.runner_entity(r) for r in self.paginate(runners)]

    def all_runners(self):
        if not self.user['admin']:
            raise forbidden()
        runners = self.filter_runners(self.store.state['runners'])
        return 200, [self.runner_entity(r) for r in self.paginate(runners)]

    def project_runners(self):
        project = self.find_project('Maintainer')
        group_id = project.get('group_id')
        runners = [r for r in self.store.state['runners']
                   if project['id'] in r['project_ids'] or group_id in r['group_ids']
                   or r['runner_type'] == 'instance_type']
        runners = self.filter_runners(runners)
        return 200, [self.runner_entity(r) for r in self.paginate(runners)]

    def group_runners(self):
        group = self.find_group('Maintainer')
        project_ids = {p['id'] for p in self.store.state['projects'] if p.get('group_id') == group['id']}
        runners = [r for r in self.store.state['runners']
                   if group['id'] in r['group_ids'] or project_ids & set(r['project_ids'])
                   or r['runner_type'] == 'instance_type']
        runners = self.filter_runners(runners, deprecated_scope=False)
        return 200, [self.runner_entity(r) for r in self.paginate(runners)]

    def get_runner(self):
        p = self.declare()
        runner_id = p.integer('id', required=True)
        p.check()
        runner = self.store.runner(runner_id)
        if runner is None:
            raise record_not_found()
        return runner

    def show_runner(self):
        runner = self.get_runner()
        if runner['runner_type'] != 'instance_type' and not self.can_admin_runner(runner):
            raise forbidden('No access granted')
        return 200, self.runner_details(runner)

    def runner_managers(self):
        runner = self.get_runner()
        if runner['runner_type'] != 'instance_type' and not self.can_admin_runner(runner):
            raise forbidden('No access granted')
        return 200, [self.manager_entity(m) for m in runner['managers']]

    def update_runner(self):
        runner = self.get_runner()
        p = self.declare()
        fields = ('description', 'active', 'paused', 'tag_list', 'run_untagged', 'locked', 'access_level',
                  'maximum_timeout', 'maintenance_note')
        changes = {'description': p.string('description'), 'active': p.boolean('active'),
                   'paused': p.boolean('paused'), 'tag_list': p.tags('tag_list'),
                   'run_untagged': p.boolean('run_untagged'), 'locked': p.boolean('locked'),
                   'access_level': p.string('access_level', values=ACCESS_LEVELS),
                   'maximum_timeout': p.integer('maximum_timeout'), 'maintenance_note': p.string('maintenance_note')}
        p.at_least_one_of(*fields)
        p.mutually_exclusive('active', 'paused')
        p.check()
        if not self.can_admin_runner(runner):
            raise forbidden('No access granted')
        updated = dict(runner)
        for key, value in changes.items():
            if key != 'paused' and p.present(key):
                updated[key] = value
        if changes['paused'] is not None:
            updated['active'] = not changes['paused']
        errors = self.runner_errors(updated)
        if errors:
            raise validation_error(errors)
        runner.update(updated)
        self.changed = True
        return 200, self.runner_details(runner)

    def delete_runner(self):
        runner = self.get_runner()
        if not self.can_admin_runner(runner):
            raise forbidden('No access granted')
        self.store.state['runners'].remove(runner)
        self.changed = True
        return 204, None

    # -- CI/CD variables

    def variable_owner(self):
        """('project' | 'group', id) of the :id in the path, checked for the role that manages variables."""
        if self.req.path.startswith('/projects/'):
            return 'project', self.find_project('Maintainer')['id']
        return 'group', self.find_group('Owner')['id']

    def variable_entity(self, v):
        return {'variable_type': v['variable_type'], 'key': v['key'], 'value': None if v['hidden'] else v['value'],
                'hidden': v['hidden'], 'protected': v['protected'], 'masked': v['masked'], 'raw': v['raw'],
                'environment_scope': v['environment_scope'], 'description': v['description']}

    def variables_of(self, kind, owner_id):
        return [v for v in self.store.state['variables'] if v['owner'] == kind and v['owner_id'] == owner_id]

    def find_variable(self, kind, owner_id, use_filter=True):
        key = self.route_params['key']
        scope = None
        f = self.params.get('filter')
        if use_filter and isinstance(f, dict) and isinstance(f.get('environment_scope'), str):
            scope = f['environment_scope']
        found = [v for v in self.variables_of(kind, owner_id)
                 if v['key'] == key and (scope is None or v['environment_scope'] == scope)]
        if len(found) > 1:
            raise api_message(409, "There are multiple variables with provided parameters. "
                                   "Please use 'filter[environment_scope]'")
        if not found:
            raise not_found('Variable' if kind == 'project' else 'GroupVariable')
        return found[0]

    def variable_errors(self, v, kind, owner_id):
        errors = []
        if not v['key']:
            errors.append(('key', "can't be blank"))
        elif len(v['key']) > 255:
            errors.append(('key', 'is too long (maximum is 255 characters)'))
        elif not re.fullmatch(r'[a-zA-Z0-9_]+', v['key']):
            errors.append(('key', "can contain only letters, digits and '_'."))
        if any(o['id'] != v['id'] and o['key'] == v['key'] and o['environment_scope'] == v['environment_scope']
               for o in self.variables_of(kind, owner_id)):
            errors.append(('key', '(%s) has already been taken' % v['key']))
        if len(v['value']) > 10000:
            errors.append(('value', 'is too long (maximum is 10000 characters)'))
        if v['masked'] and not MASKABLE.match(v['value']):
            errors.append(('value', 'is invalid'))
        if not v['environment_scope']:
            errors.append(('environment_scope', "can't be blank"))
        if v['description'] and len(v['description']) > 255:
            errors.append(('description', 'is too long (maximum is 255 characters)'))
        return errors

    def variable_params(self, p, create):
        out = {
            'key': p.string('key', required=create), 'value': p.string('value', required=create),
            'protected': p.boolean('protected'), 'masked': p.boolean('masked'), 'raw': p.boolean('raw'),
            'variable_type': p.string('variable_type', values=VARIABLE_TYPES),
            'environment_scope': p.string('environment_scope'), 'description': p.string('description'),
        }
        if create:
            out['masked_and_hidden'] = p.boolean('masked_and_hidden')
        return out

    def list_variables(self):
        kind, owner_id = self.variable_owner()
        return 200, [self.variable_entity(v) for v in self.paginate(self.variables_of(kind, owner_id))]

    def show_variable(self):
        kind, owner_id = self.variable_owner()
        return 200, self.variable_entity(self.find_variable(kind, owner_id))

    def create_variable(self):
        kind, owner_id = self.variable_owner()
        p = self.declare()
        given = self.variable_params(p, create=True)
        p.check()
        hidden = bool(given['masked_and_hidden'])
        v = {'id': None, 'owner': kind, 'owner_id': owner_id,
             'key': given['key'].strip(), 'value': given['value'],
             'variable_type': given['variable_type'] or 'env_var', 'protected': bool(given['protected']),
             'masked': hidden or bool(given['masked']), 'hidden': hidden, 'raw': bool(given['raw']),
             'environment_scope': given['environment_scope'] if given['environment_scope'] is not None else '*',
             'description': given['description']}
        errors = self.variable_errors(v, kind, owner_id)
        if errors:
            raise validation_error(errors)
        v['id'] = self.store.next_id('variable')
        self.store.state['variables'].append(v)
        self.changed = True
        return 201, self.variable_entity(v)

    def update_variable(self):
        kind, owner_id = self.variable_owner()
        p = self.declare()
        given = self.variable_params(p, create=False)
        p.check()
        # Group variables: without a filter GitLab updates the first variable with the key, whatever its scope.
        if kind == 'group' and 'filter' not in self.params:
            found = sorted((v for v in self.variables_of(kind, owner_id) if v['key'] == self.route_params['key']),
                           key=lambda v: v['id'])
            if not found:
                raise not_found('GroupVariable')
            variable = found[0]
        else:
            variable = self.find_variable(kind, owner_id)
        updated = dict(variable)
        for name in ('value', 'protected', 'masked', 'raw', 'variable_type', 'environment_scope', 'description'):
            if given[name] is not None:
                updated[name] = given[name]
        errors = self.variable_errors(updated, kind, owner_id)
        if errors:
            raise validation_error(errors)
        variable.update(updated)
        self.changed = True
        return 200, self.variable_entity(variable)

    def delete_variable(self):
        kind, owner_id = self.variable_owner()
        variable = self.find_variable(kind, owner_id)
        self.store.state['variables'].remove(variable)
        self.changed = True
        return 204, None

    # -- agents for Kubernetes

    def agent_entity(self, a):
        return {'id': a['id'], 'name': a['name'],
                'config_project': self.project_identity(self.store.project_by_id(a['project_id'])),
                'created_at': iso(a['created_at']), 'created_by_user_id': a['created_by_user_id']}

    def agent_token_entity(self, t, detail=False, secret=False):
        out = {'id': t['id'], 'name': t['name'], 'description': t['description'], 'agent_id': t['agent_id'],
               'status': t['status'], 'created_at': iso(t['created_at']), 'created_by_user_id': t['created_by_user_id']}
        if detail:
            out['last_used_at'] = iso(t['last_used_at'])
        if secret:
            out['token'] = t['token']
        return out

    def find_agent(self, project):
        p = self.declare()
        agent_id = p.integer('agent_id', required=True)
        p.check()
        agent = next((a for a in self.store.state['agents']
                      if a['id'] == agent_id and a['project_id'] == project['id']), None)
        if agent is None:
            raise record_not_found()
        return agent

    def list_agents(self):
        project = self.find_project()
        if self.store.project_role(self.user, project) < ROLES['Developer']:
            raise not_found('ClusterAgents')
        agents = [a for a in self.store.state['agents'] if a['project_id'] == project['id']]
        return 200, [self.agent_entity(a) for a in self.paginate(agents)]

    def show_agent(self):
        project = self.find_project('Developer')
        return 200, self.agent_entity(self.find_agent(project))

    def create_agent(self):
        project = self.find_project('Maintainer')
        p = self.declare()
        name = p.string('name', required=True)
        p.check()
        errors = []
        if not name:
            errors.append("Name can't be blank")
        elif len(name) > 63:
            errors.append('Name is too long (maximum is 63 characters)')
        if any(a['name'] == name and a['project_id'] == project['id'] for a in self.store.state['agents']):
            errors.append('Name has already been taken')
        if name and not AGENT_NAME.match(name):
            errors.append("Name can contain only lowercase letters, digits, and '-', but cannot start or end with '-'")
        if errors:
            raise bad_request(rb_inspect(errors))
        agent = {'id': self.store.next_id('agent'), 'name': name, 'project_id': project['id'],
                 'created_at': self.store.now(), 'created_by_user_id': self.user['id']}
        self.store.state['agents'].append(agent)
        self.changed = True
        return 201, self.agent_entity(agent)

    def delete_agent(self):
        project = self.find_project('Maintainer')
        agent = self.find_agent(project)
        self.store.state['agents'].remove(agent)
        self.store.state['agent_tokens'] = [t for t in self.store.state['agent_tokens'] if t['agent_id'] != agent['id']]
        self.changed = True
        return 204, None

    def agent_tokens(self, agent, active_only=True):
        return [t for t in self.store.state['agent_tokens']
                if t['agent_id'] == agent['id'] and (t['status'] == 'active' or not active_only)]

    def list_agent_tokens(self):
        project = self.find_project('Developer')
        agent = self.find_agent(project)
        return 200, [self.agent_token_entity(t) for t in self.paginate(self.agent_tokens(agent))]

    def find_agent_token(self, agent, active_only):
        p = self.declare()
        token_id = p.integer('token_id', required=True)
        p.check()
        token = next((t for t in self.agent_tokens(agent, active_only) if t['id'] == token_id), None)
        if token is None:
            raise record_not_found()
        return token

    def show_agent_token(self):
        project = self.find_project('Developer')
        agent = self.find_agent(project)
        return 200, self.agent_token_entity(self.find_agent_token(agent, active_only=True), detail=True)

    def create_agent_token(self):
        project = self.find_project('Maintainer')
        p = self.declare()
        name = p.string('name', required=True)
        description = p.string('description')
        p.check()
        agent = self.find_agent(project)
        if len(self.agent_tokens(agent)) >= 2:
            raise bad_request('An agent can have only two active tokens at a time')
        errors = []
        if not name:
            errors.append("Name can't be blank")
        elif len(name) > 255:
            errors.append('Name is too long (maximum is 255 characters)')
        if description and len(description) > 1024:
            errors.append('Description is too long (maximum is 1024 characters)')
        if errors:
            raise bad_request(rb_inspect(errors))
        token = {'id': self.store.next_id('agent_token'), 'agent_id': agent['id'], 'name': name,
                 'description': description, 'status': 'active', 'token': random_token('glagent-', 50),
                 'created_at': self.store.now(), 'created_by_user_id': self.user['id'], 'last_used_at': None}
        self.store.state['agent_tokens'].append(token)
        self.changed = True
        return 201, self.agent_token_entity(token, detail=True, secret=True)

    def revoke_agent_token(self):
        project = self.find_project('Maintainer')
        agent = self.find_agent(project)
        token = self.find_agent_token(agent, active_only=False)
        token['status'] = 'revoked'
        self.changed = True
        return 204, None


def full_message(attribute, message):
    """ActiveModel's full message: the humanized attribute, then the message."""
    return '%s %s' % (attribute.replace('_', ' ').capitalize(), message)


def validation_error(errors):
    """render_validation_error!: 400 with the model's errors by attribute."""
    messages = {}
    for attribute, message in errors:
        messages.setdefault(attribute, []).append(message)
    return ApiError(400, {'message': messages})


def to_query(params, prefix=None):
    """Rails' Hash#to_query: keys sorted, nested hashes as a[b]=, arrays as a[]=."""
    parts = []
    if isinstance(params, dict):
        for k in sorted(params, key=str):
            parts.extend(to_query(params[k], '%s[%s]' % (prefix, k) if prefix else str(k)).split('&'))
    elif isinstance(params, list):
        for v in params:
            parts.extend(to_query(v, '%s[]' % prefix).split('&'))
    else:
        value = params
        if isinstance(value, bool):
            value = 'true' if value else 'false'
        return '%s=%s' % (urllib.parse.quote(prefix, safe=''), urllib.parse.quote('' if value is None else str(value),
                                                                                  safe=''))
    return '&'.join(p for p in parts if p)
