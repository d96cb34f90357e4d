"""What the web tests share (tests/interop/test_xmppjs.py, tests/browser/test_converse.py):
finding node, the npm packages of tests/web (installed by scripts/install-deps.sh with npm ci)
and Debian's chromium; the hearthd settings that open its HTTP listener; running a node script
of tests/web with a JSON configuration and a deadline, and reading the JSON object it prints.

Not a test itself: a test file puts this directory on sys.path. Standard library only.

A test skips (ctest shows SKIPPED) only when node or chromium is not installed at all; a node
too old for the pinned packages, or packages missing while npm is there, fail with what to do."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent
REPO = WEB_DIR.parent.parent
NODE_MODULES = WEB_DIR / 'node_modules'
# @xmpp/client 0.14 and playwright-core 1.65 declare node >= 20.10 and >= 20.
NODE_MIN = (20, 10)
CHROMIUM = os.environ.get('HEARTH_CHROMIUM', '/usr/bin/chromium')
# The build tree's web root (CMakeLists.txt sets it; scripts/build-web.sh fills it).
WEB_ROOT = os.environ.get('HEARTH_WEB_ROOT', str(REPO / 'build' / 'web'))
ARTEFACTS = Path(os.environ.get('HEARTH_ARTEFACTS', str(REPO / 'build' / 'test-artefacts')))

# The listener that serves WebSocket, BOSH, XEP-0156 and /chat/, as hearthd.ports names it.
HTTP_LISTENER = 'http'
HTTPS_LISTENER = 'https'


def http_settings(https=False, web_root=False):
    """Server(**kw) settings for a hearthd with its HTTP listener on an ephemeral port.

    ws:// and BOSH over plain HTTP from loopback count as encrypted (http.trusted_proxies is
    loopback by default: a reverse proxy terminating TLS), so the default c2s.tls=required
    holds. With web_root, hearthd serves the Converse.js build at /chat/ (http.chat_root)."""
    kw = {'http__port': 0}
    if https:
        kw['https__port'] = 0
    if web_root:
        kw['http__chat_root'] = os.path.join(WEB_ROOT, 'chat')
    return kw


def require_http(server, *names):
    """The listeners (HTTP_LISTENER, HTTPS_LISTENER) of a started Server, as {name: port};
    fails at once, with the reason, when hearthd did not open them."""
    missing = [n for n in names if n not in server.ports]
    if missing:
        raise AssertionError('hearthd opened no %s listener (hearthd.ports lists %s): its WebSocket/BOSH '
                             'transports are not there' % ('/'.join(missing), sorted(server.ports)))
    return {n: server.ports[n] for n in names}


# --------------------------------------------------------------------------
# node and the npm packages


def node_binary():
    """Path of node; SkipTest when node is not installed, AssertionError when it is too old."""
    path = os.environ.get('HEARTH_NODE') or shutil.which('node')
    if not path:
        raise unittest.SkipTest('node is not installed (scripts/install-deps.sh installs it)')
    version = node_version(path)
    if version < NODE_MIN:
        raise AssertionError('%s is version %s; the pinned packages of tests/web need node >= %s'
                             % (path, '.'.join(map(str, version)), '.'.join(map(str, NODE_MIN))))
    return path


def node_version(path):
    out = subprocess.run([path, '--version'], capture_output=True, text=True, timeout=30).stdout
    m = re.match(r'v(\d+)\.(\d+)', out.strip())
    if not m:
        raise AssertionError('%s --version printed %r' % (path, out))
    return int(m.group(1)), int(m.group(2))


def require_packages(*names):
    """Fails (not skips) when tests/web/node_modules lacks one of the packages."""
    missing = [n for n in names if not (NODE_MODULES / n / 'package.json').is_file()]
    if missing:
        raise AssertionError('%s lacks %s: run `make deps` (scripts/install-deps.sh runs npm ci in %s)'
                             % (NODE_MODULES, ', '.join(missing), WEB_DIR))


def chromium_binary():
    if not os.access(CHROMIUM, os.X_OK):
        raise unittest.SkipTest('%s is not installed (Debian package chromium; scripts/install-deps.sh '
                                'installs it)' % CHROMIUM)
    return CHROMIUM


class NodeRun:
    """A node script of tests/web running in its own process group, its configuration as JSON
    in HEARTH_WEB_CONFIG, its stdout and stderr in files (never a pipe that could fill while
    the test is busy elsewhere). wait() returns the JSON object the script printed last on
    stdout; close() kills the group (chromium included) if it is still running.

        with NodeRun('xmppjs_client.mjs', {...}) as run:
            ... drive the other side ...
            result = run.wait(60)
    """

    def __init__(self, script, config, env=None):
        self.node = node_binary()
        self.script = WEB_DIR / script
        self.config = config
        self.dir = tempfile.mkdtemp(prefix='hearth-web-')
        self.stdout_path = os.path.join(self.dir, 'stdout')
        self.stderr_path = os.path.join(self.dir, 'stderr')
        args = [self.node]
        # Node 20 has a global WebSocket (which @xmpp/websocket uses) only behind this flag;
        # from 22 on it is there by default.
        if node_version(self.node) < (22, 0):
            args.append('--experimental-websocket')
        args.append(str(self.script))
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env['HEARTH_WEB_CONFIG'] = json.dumps(config)
        self.returncode = None
        with open(self.stdout_path, 'wb') as out, open(self.stderr_path, 'wb') as err:
            self.proc = subprocess.Popen(args, cwd=str(WEB_DIR), env=full_env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, start_new_session=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _read(self, path):
        try:
            with open(path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def stderr(self):
        return self._read(self.stderr_path)

    def running(self):
        return self.proc.poll() is None

    def wait(self, timeout):
        """The script's result (a dict with at least 'ok'); AssertionError when it runs past
        timeout seconds or prints no JSON object. A result with ok false is returned, with
        the exit code in self.returncode, for the test to report what failed."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError('%s still running after %.0fs; killed. stderr:\n%s'
                                 % (self.script.name, timeout, self.stderr()[-6000:]))
        lines = [ln for ln in self._read(self.stdout_path).splitlines() if ln.startswith('{')]
        if not lines:
            raise AssertionError('%s exited with %s and printed no result. stderr:\n%s'
                                 % (self.script.name, self.returncode, self.stderr()[-6000:]))
        try:
            result = json.loads(lines[-1])
        except ValueError as e:
            raise AssertionError('%s printed a bad result (%s): %r' % (self.script.name, e, lines[-1][:2000]))
        if bool(result.get('ok')) != (self.returncode == 0):
            raise AssertionError('%s exited with %s but its result says ok=%r'
                                 % (self.script.name, self.returncode, result.get('ok')))
        return result

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        # The group may outlive its leader (a browser's helpers): end what is left of it.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def describe(result, keys=('error', 'steps')):
    """A failure message: the script's error and steps, then the rest of its result."""
    head = '\n'.join('%s: %s' % (k, result.get(k)) for k in keys)
    rest = {k: v for k, v in result.items() if k not in keys}
    return '%s\n%s' % (head, json.dumps(rest, indent=1, ensure_ascii=False)[:12000])


def wait_until(cond, timeout, what):
    """Poll cond() until true, at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            raise AssertionError('timed out after %.1fs waiting for %s' % (timeout, what))
        time.sleep(0.05)
