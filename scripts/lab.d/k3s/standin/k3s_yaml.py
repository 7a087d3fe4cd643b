"""The YAML subset that k3s config files and Kubernetes manifests use, a YAML printer, and kubectl's JSONPath.

Parsing covers block mappings and sequences (also `- key: v` items and sequences at the parent's indent),
flow `[a, b]` / `{k: v}`, quoted and plain scalars, `|` / `>` block scalars, comments and `---` documents.
"""
import json
import re

_INT = re.compile(r'^[-+]?(0|[1-9][0-9]*)$')
_FLOAT = re.compile(r'^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$')


class YAMLError(ValueError):
    pass


def load_all(text):
    """Every document in `text`, empty documents skipped."""
    docs, current = [], []
    for line in text.replace('\r\n', '\n').split('\n'):
        if re.match(r'^---(\s|$)', line):
            docs.append(current)
            current = []
            rest = line[3:].strip()
            if rest and not rest.startswith('#'):
                current.append(rest)
        elif re.match(r'^\.\.\.(\s|$)', line):
            docs.append(current)
            current = []
        else:
            current.append(line)
    docs.append(current)
    out = []
    for lines in docs:
        value = _Parser(lines).parse()
        if value is not None:
            out.append(value)
    return out


def load(text):
    docs = load_all(text)
    return docs[0] if docs else None


def _strip_comment(s):
    """Drops a trailing `# comment` that is outside quotes."""
    quote = None
    for i, c in enumerate(s):
        if quote:
            if c == quote:
                quote = None
        elif c in '"\'' and (i == 0 or s[i - 1] in ' \t[{,:'):
            quote = c
        elif c == '#' and (i == 0 or s[i - 1] in ' \t'):
            return s[:i].rstrip()
    return s.rstrip()


class _Parser:
    def __init__(self, lines):
        self.raw = lines
        # (indent, text) of meaningful lines; block scalars read self.raw by index.
        self.lines = []
        for n, line in enumerate(lines):
            if '\t' in line[:len(line) - len(line.lstrip())]:
                raise YAMLError('line %d: tabs are not allowed for indentation' % (n + 1))
            body = _strip_comment(line)
            if body.strip():
                self.lines.append((len(body) - len(body.lstrip(' ')), body.strip(), n))
        self.i = 0

    def parse(self):
        if not self.lines:
            return None
        value = self.block(self.lines[0][0])
        if self.i < len(self.lines):
            raise YAMLError('line %d: unexpected indentation' % (self.lines[self.i][2] + 1))
        return value

    def block(self, indent):
        _, text, _ = self.lines[self.i]
        if text == '-' or text.startswith('- '):
            return self.sequence(indent)
        if text[0] not in '[{' and _mapping_key(text) is not None:
            return self.mapping(indent)
        self.i += 1
        return flow(text, self.lines[self.i - 1][2])

    def sequence(self, indent):
        items = []
        while self.i < len(self.lines):
            ind, text, n = self.lines[self.i]
            if ind != indent or not (text == '-' or text.startswith('- ')):
                break
            rest = text[1:].strip()
            if not rest:
                self.i += 1
                if self.i < len(self.lines) and self.lines[self.i][0] > indent:
                    items.append(self.block(self.lines[self.i][0]))
                else:
                    items.append(None)
                continue
            # "- key: v" or "- - x": the item is a block whose first line starts after the dash.
            inner = ind + (len(text) - len(rest))
            self.lines[self.i] = (inner, rest, n)
            items.append(self.block(inner))
        return items

    def mapping(self, indent):
        out = {}
        while self.i < len(self.lines):
            ind, text, n = self.lines[self.i]
            if ind != indent:
                if ind > indent:
                    raise YAMLError('line %d: unexpected indentation' % (n + 1))
                break
            kv = _mapping_key(text)
            if kv is None:
                break
            key, rest = kv
            self.i += 1
            if rest in ('', None):
                nxt = self.lines[self.i] if self.i < len(self.lines) else None
                if nxt and nxt[0] > indent:
                    out[key] = self.block(nxt[0])
                elif nxt and nxt[0] == indent and (nxt[1] == '-' or nxt[1].startswith('- ')):
                    out[key] = self.sequence(indent)
                else:
                    out[key] = None
            elif rest[0] in '|>':
                out[key] = self.block_scalar(rest, n, indent)
            else:
                out[key] = flow(rest, n)
        return out

    def block_scalar(self, header, n, indent):
        folded, chomp = header[0] == '>', '-' if '-' in header else ('+' if '+' in header else '')
        body, j = [], n + 1
        block_indent = None
        while j < len(self.raw):
            line = self.raw[j]
            if line.strip():
                lead = len(line) - len(line.lstrip(' '))
                if lead <= indent:
                    break
                if block_indent is None:
                    block_indent = lead
                body.append(line[block_indent:])
            else:
                body.append('')
            j += 1
        while self.i < len(self.lines) and self.lines[self.i][2] < j:
            self.i += 1
        while body and body[-1] == '' and chomp != '+':
            body.pop()
        if folded:
            text, prev_blank = '', True
            for line in body:
                if line == '':
                    text += '\n'
                    prev_blank = True
                else:
                    text += ('' if prev_blank else ' ') + line
                    prev_blank = False
        else:
            text = '\n'.join(body)
        return text if chomp == '-' else text + '\n'


def _mapping_key(text):
    """(key, rest) when the line is `key: rest` (key plain or quoted), else None."""
    if text[0] in '"\'':
        end = _quoted_end(text, 0)
        if end is None or not text[end + 1:].startswith(':'):
            return None
        after = text[end + 2:]
        if after and not after.startswith(' '):
            return None
        return scalar(text[:end + 1]), after.strip()
    if text[0] in '[{':
        return None
    m = re.match(r'^([^:#][^:]*?|[^:#]*?:[^ ][^:]*?)\s*:(\s+(.*)|)$', text)
    if not m:
        return None
    return m.group(1), (m.group(3) or '').strip()


def _quoted_end(s, start):
    q, i = s[start], start + 1
    while i < len(s):
        if q == '"' and s[i] == '\\':
            i += 2
            continue
        if s[i] == q:
            if q == "'" and i + 1 < len(s) and s[i + 1] == "'":
                i += 2
                continue
            return i
        i += 1
    return None


def scalar(text):
    """A plain or quoted scalar: null, true/false, integers and floats are typed, the rest are strings."""
    t = text.strip()
    if not t:
        return None
    if t[0] == '"' and t.endswith('"') and len(t) > 1:
        return json.loads(re.sub(r'\\x([0-9a-fA-F]{2})', r'\\u00\1', t)) if '\\' in t else t[1:-1]
    if t[0] == "'" and t.endswith("'") and len(t) > 1:
        return t[1:-1].replace("''", "'")
    if t in ('~', 'null', 'Null', 'NULL'):
        return None
    if t in ('true', 'True', 'TRUE'):
        return True
    if t in ('false', 'False', 'FALSE'):
        return False
    if _INT.match(t):
        return int(t)
    if _FLOAT.match(t):
        return float(t)
    return t


def flow(text, line_no=0):
    """A value written on one line: a scalar, or a flow sequence / mapping."""
    text = text.strip()
    if not text or text[0] not in '[{':
        return scalar(text)
    value, end = _flow_value(text, 0, line_no)
    if text[end:].strip():
        raise YAMLError('line %d: unexpected text after %r' % (line_no + 1, text[:end]))
    return value


def _flow_value(s, i, n):
    while i < len(s) and s[i] == ' ':
        i += 1
    if i >= len(s):
        raise YAMLError('line %d: unterminated flow collection' % (n + 1))
    if s[i] == '[':
        items, i = [], i + 1
        while True:
            while i < len(s) and s[i] in ' ':
                i += 1
            if i < len(s) and s[i] == ']':
                return items, i + 1
            v, i = _flow_value(s, i, n)
            items.append(v)
            while i < len(s) and s[i] == ' ':
                i += 1
            if i < len(s) and s[i] == ',':
                i += 1
            elif i < len(s) and s[i] == ']':
                return items, i + 1
            else:
                raise YAMLError('line %d: expected , or ] in %r' % (n + 1, s))
    if s[i] == '{':
        out, i = {}, i + 1
        while True:
            while i < len(s) and s[i] == ' ':
                i += 1
            if i < len(s) and s[i] == '}':
                return out, i + 1
            k, i = _flow_scalar(s, i, n, ':')
            if i >= len(s) or s[i] != ':':
                raise YAMLError('line %d: expected : in %r' % (n + 1, s))
            v, i = _flow_value(s, i + 1, n)
            out[k] = v
            while i < len(s) and s[i] == ' ':
                i += 1
            if i < len(s) and s[i] == ',':
                i += 1
            elif i < len(s) and s[i] == '}':
                return out, i + 1
            else:
                raise YAMLError('line %d: expected , or }} in %r' % (n + 1, s))
    return _flow_scalar(s, i, n, ',]}')


def _flow_scalar(s, i, n, stops):
    if s[i] in '"\'':
        end = _quoted_end(s, i)
        if end is None:
            raise YAMLError('line %d: unterminated quote' % (n + 1))
        return scalar(s[i:end + 1]), end + 1
    j = i
    while j < len(s) and s[j] not in stops:
        if s[j] == ':' and ':' in stops and (j + 1 >= len(s) or s[j + 1] == ' '):
            break
        j += 1
    return scalar(s[i:j]), j


# ---------------------------------------------------------------------------------------------------- printing

def dump(value, indent=0):
    """YAML as kubectl prints it: keys sorted, two-space indent, lists not indented under their key."""
    return ''.join(_dump(value, indent))


def _needs_quotes(s):
    """Strings that cannot be written plain (go-yaml then uses single quotes)."""
    if s == '' or s != s.strip() or s in ('-', '?') or s[0] in '!&*[]{}|>%@`#,\'"':
        return True
    return bool(re.search(r': |\s#|[\x00-\x1f]|^- |^\? ', s)) or s.endswith(':')


def _resolves_to_non_string(s):
    """Plain text YAML 1.1 would read as a number, bool, null or timestamp (go-yaml then uses double quotes)."""
    if scalar(s) != s:
        return True
    if s.lower() in ('y', 'n', 'yes', 'no', 'on', 'off'):
        return True
    return bool(re.match(r'^\d{4}-\d{1,2}-\d{1,2}([Tt ].*)?$', s)) or bool(re.match(r'^[-+]?0[0-7x]', s))


def _scalar_text(v):
    if v is None:
        return 'null'
    if v is True:
        return 'true'
    if v is False:
        return 'false'
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if '\n' in s:
        return None
    if _resolves_to_non_string(s):
        return json.dumps(s)
    if _needs_quotes(s):
        return "'%s'" % s.replace("'", "''")
    return s


def _dump(v, ind):
    pad = ' ' * ind
    if isinstance(v, dict):
        if not v:
            yield pad + '{}\n'
            return
        for k in sorted(v):
            yield from _dump_entry(pad + _key_text(k) + ':', v[k], ind, list_under=True)
    elif isinstance(v, list):
        if not v:
            yield pad + '[]\n'
            return
        for item in v:
            if isinstance(item, dict) and item:
                lines = ''.join(_dump(item, ind + 2))
                yield pad + '- ' + lines[ind + 2:]
            elif isinstance(item, list) and item:
                lines = ''.join(_dump(item, ind + 2))
                yield pad + '- ' + lines[ind + 2:]
            else:
                yield from _dump_entry(pad + '-', item, ind, list_under=False)
    else:
        yield from _dump_entry(pad.rstrip() or '', v, ind, list_under=False)


def _dump_entry(prefix, value, ind, list_under):
    if isinstance(value, dict) and value:
        yield prefix + '\n'
        yield from _dump(value, ind + 2)
    elif isinstance(value, list) and value:
        yield prefix + '\n'
        yield from _dump(value, ind if list_under else ind + 2)
    elif isinstance(value, (dict, list)):
        yield prefix + (' {}\n' if isinstance(value, dict) else ' []\n')
    else:
        text = _scalar_text(value)
        if text is None:
            body = str(value)
            head = '|-' if not body.endswith('\n') else '|'
            yield prefix + ' ' + head + '\n'
            for line in body.rstrip('\n').split('\n'):
                yield (' ' * (ind + 2) + line).rstrip() + '\n'
        else:
            yield (prefix + ' ' + text if prefix else text) + '\n'


def _key_text(k):
    s = str(k)
    return "'%s'" % s.replace("'", "''") if _needs_quotes(s) else s


# ---------------------------------------------------------------------------------------------------- jsonpath

class JSONPathError(ValueError):
    pass


def jsonpath(template, data):
    """kubectl's -o jsonpath: `{.a.b}`, `{.items[*].x}`, `{.a.b\\.c}`, `{.c[?(@.type=="Ready")].status}`,
    `{range .items[*]}...{end}`, `{"\\n"}` and literal text between expressions."""
    tokens = _jp_tokens(template)
    out, _ = _jp_render(tokens, 0, data, data)
    return out


def _jp_tokens(template):
    tokens, i = [], 0
    while i < len(template):
        if template[i] == '{':
            j = i + 1
            depth, quote = 1, None
            while j < len(template) and depth:
                c = template[j]
                if quote:
                    if c == '\\':
                        j += 1
                    elif c == quote:
                        quote = None
                elif c in '"\'':
                    quote = c
                elif c == '{':
                    depth += 1
                elif c == '}':
                    depth -= 1
                j += 1
            if depth:
                raise JSONPathError('unclosed action')
            tokens.append(('expr', template[i + 1:j - 1].strip()))
            i = j
        else:
            j = template.find('{', i)
            j = len(template) if j < 0 else j
            tokens.append(('text', template[i:j]))
            i = j
    return tokens


def _jp_render(tokens, pos, root, cur):
    out = ''
    while pos < len(tokens):
        kind, body = tokens[pos]
        if kind == 'text':
            out += body
        elif body == 'end':
            return out, pos
        elif body.startswith('range '):
            items = _jp_eval(body[6:].strip(), root, cur)
            start = pos + 1
            end = start
            if not items:
                _, end = _jp_render(tokens, start, root, None)
            for item in items:
                text, end = _jp_render(tokens, start, root, item)
                out += text
            pos = end
        elif body.startswith('"') or body.startswith("'"):
            out += json.loads(body, strict=False) if body.startswith('"') else body[1:-1]
        else:
            values = _jp_eval(body, root, cur)
            out += ' '.join(_jp_text(v) for v in values)
        pos += 1
    return out, pos


def _jp_text(v):
    if isinstance(v, str):
        return v
    if v is True or v is False:
        return 'true' if v else 'false'
    if v is None:
        return ''
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(',', ':'), sort_keys=True)
    return str(v)


def _jp_eval(expr, root, cur):
    """Values selected by a path such as `.items[*].metadata.name` (`$` is the root, `@` the current item)."""
    if expr.startswith('$'):
        values, expr = [root], expr[1:]
    elif expr.startswith('@'):
        values, expr = [cur], expr[1:]
    else:
        values = [cur if cur is not None else root]
    i = 0
    while i < len(expr):
        c = expr[i]
        if c == '.':
            if expr[i + 1:i + 2] == '.':
                raise JSONPathError('recursive descent is not supported by the k3s stand-in')
            j, name = i + 1, ''
            while j < len(expr) and expr[j] not in '.[':
                if expr[j] == '\\' and j + 1 < len(expr):
                    name += expr[j + 1]
                    j += 2
                    continue
                name += expr[j]
                j += 1
            if name:
                values = _jp_field(values, name)
            i = j
        elif c == '[':
            j = _bracket_end(expr, i)
            values = _jp_index(values, expr[i + 1:j].strip())
            i = j + 1
        else:
            raise JSONPathError('unrecognized character in action: %r' % c)
    return values


def _bracket_end(expr, i):
    depth, quote = 0, None
    for j in range(i, len(expr)):
        c = expr[j]
        if quote:
            if c == quote:
                quote = None
        elif c in '"\'':
            quote = c
        elif c == '[':
            depth += 1
        elif c == ']':
            depth -= 1
            if depth == 0:
                return j
    raise JSONPathError('unterminated array')


def _jp_field(values, name):
    out = []
    for v in values:
        if isinstance(v, dict):
            if name == '*':
                out.extend(v[k] for k in sorted(v))
            elif name in v:
                out.append(v[name])
        elif isinstance(v, list) and name == '*':
            out.extend(v)
    return out


def _jp_index(values, sel):
    out = []
    for v in values:
        if sel.startswith('?'):
            m = re.match(r'^\?\(\s*@\.([\w.\-/\\]+)\s*(==|!=)\s*(?:"([^"]*)"|\'([^\']*)\'|(\S+))\s*\)$', sel)
            if not m or not isinstance(v, list):
                if not m:
                    raise JSONPathError('unsupported filter %s' % sel)
                continue
            path, op = m.group(1).replace('\\.', '\x00'), m.group(2)
            want = next(g for g in (m.group(3), m.group(4), m.group(5)) if g is not None)
            for item in v:
                got = item
                for part in path.split('.'):
                    part = part.replace('\x00', '.')
                    got = got.get(part) if isinstance(got, dict) else None
                if (_jp_text(got) == want) == (op == '=='):
                    out.append(item)
        elif sel in ('*', ':'):
            out.extend(v if isinstance(v, list) else (list(v.values()) if isinstance(v, dict) else []))
        elif sel[0] in '"\'':
            if isinstance(v, dict) and sel[1:-1] in v:
                out.append(v[sel[1:-1]])
        elif ':' in sel:
            a, b = (sel.split(':') + [''])[:2]
            if isinstance(v, list):
                out.extend(v[int(a) if a else None:int(b) if b else None])
        else:
            try:
                k = int(sel)
            except ValueError:
                raise JSONPathError('unsupported index %s' % sel)
            if isinstance(v, list):
                if -len(v) <= k < len(v):
                    out.append(v[k])
                else:
                    raise JSONPathError('array index out of bounds: index %d, length %d' % (k, len(v)))
    return out
