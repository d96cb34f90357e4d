"""Wire-level test harness for hearthd: starts a real server per test and
speaks raw XMPP to it with exact expectations (the role of Mosquitto's
test/mosq_test.py). Standard library only; run by the system python3."""

import atexit
import base64
import hashlib
import hmac
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

NS_CLIENT = 'jabber:client'
NS_STREAM = 'http://etherx.jabber.org/streams'
NS_STREAMS_ERR = 'urn:ietf:params:xml:ns:xmpp-streams'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls'
NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'
NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind'
NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session'
NS_PING = 'urn:xmpp:ping'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_SASL_CB = 'urn:xmpp:sasl-cb:0'

DOMAIN = 'localhost'
SKIP_EXIT = 77  # the exit code of a test file whose every test skipped (CMakeLists.txt)
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


# --------------------------------------------------------------------------
# The storage driver the servers use: HEARTH_TEST_STORAGE=pgsql with a server
# DSN in HEARTH_TEST_PG_DSN (scripts/pg-test-cluster.sh run gives both) puts
# each Server on a database of its own, created with it and dropped at close.

STORAGE = os.environ.get('HEARTH_TEST_STORAGE') or 'sqlite'
PG_DSN = os.environ.get('HEARTH_TEST_PG_DSN') or ''
_pg_databases = [0]


def pg_dsn_for(db):
    """The test server's DSN with its database replaced by db."""
    if re.match(r'postgres(ql)?://', PG_DSN):
        base = PG_DSN.split('?', 1)
        head = re.sub(r'^(postgres(?:ql)?://[^/]*)(/[^?]*)?$', r'\1', base[0])
        return head + '/' + db + ('?' + base[1] if len(base) > 1 else '')
    rest = re.sub(r"\bdbname\s*=\s*('[^']*'|\S+)", '', PG_DSN).strip()
    return (rest + ' dbname=%s' % db).strip()


def pg_sql(db, sql, variables=None, dsn=None):
    """Runs sql (psql's script input: :'name' interpolates variables, quoted) on
    database db of the test server, or on dsn; returns the rows as lists of
    strings."""
    cmd = ['psql', '-X', '-q', '-A', '-t', '-F', '\x1f', '-v', 'ON_ERROR_STOP=1', '-d',
           dsn or pg_dsn_for(db)]
    for k, v in (variables or {}).items():
        cmd += ['-v', '%s=%s' % (k, v)]
    r = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError('psql failed (%d) on %r: %s' % (r.returncode, sql, r.stderr))
    return [line.split('\x1f') for line in r.stdout.splitlines() if line != '']


_PG_CLUSTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'scripts',
                           'pg-test-cluster.sh')


def free_port():
    """A loopback port with nothing listening right now (bound, then closed), for servers that
    cannot report an ephemeral one."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PgServer:
    """A PostgreSQL server for one test class: the suite's (HEARTH_TEST_PG_DSN) when there is
    one and private is false, else a private cluster of scripts/pg-test-cluster.sh (in
    cluster_dir; action() pauses and resumes it), which stop() removes. Raises SkipTest where
    PostgreSQL is not installed."""

    _made = [0]

    def __init__(self, private=False):
        self.cluster_dir = None
        if PG_DSN and not private:
            self.base = PG_DSN
            return
        r = subprocess.run(['/bin/sh', _PG_CLUSTER, 'start'], capture_output=True, text=True,
                           timeout=120)
        if r.returncode == 77:
            raise unittest.SkipTest('no PostgreSQL here: %s' % r.stderr.strip())
        if r.returncode != 0:
            raise AssertionError('pg-test-cluster.sh start failed: %s' % r.stderr)
        self.cluster_dir, self.base = r.stdout.split()[:2]

    def stop(self):
        if self.cluster_dir:
            subprocess.run(['/bin/sh', _PG_CLUSTER, 'stop', self.cluster_dir], timeout=120)
            self.cluster_dir = None

    def action(self, what):
        """pause or resume the private cluster (a fault test's database going away)."""
        subprocess.run(['/bin/sh', _PG_CLUSTER, what, self.cluster_dir], check=True, timeout=120)

    def dsn(self, db):
        if re.match(r'postgres(ql)?://', self.base):
            head, _, query = self.base.partition('?')
            return head.rsplit('/', 1)[0] + '/' + db + ('?' + query if query else '')
        return re.sub(r"\bdbname\s*=\s*('[^']*'|\S+)", '', self.base).strip() + ' dbname=' + db

    def new_db(self, test):
        """An empty database, dropped when test ends; its DSN."""
        PgServer._made[0] += 1
        db = 'hearth_t_%d_%d' % (os.getpid(), PgServer._made[0])
        pg_sql(None, 'CREATE DATABASE %s' % db, dsn=self.dsn('postgres'))
        test.addCleanup(pg_sql, None, 'DROP DATABASE IF EXISTS %s WITH (FORCE)' % db,
                        dsn=self.dsn('postgres'))
        return self.dsn(db)


class PgTestMixin:
    """Gives a test class cls.pg, a PgServer made once for the class (a private cluster when
    pg_private is true) and stopped after it."""

    pg_private = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg = PgServer(private=cls.pg_private)

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()
        super().tearDownClass()


def q(ns, name):
    """Clark name: q(NS_CLIENT, 'message') -> '{jabber:client}message'."""
    return '{%s}%s' % (ns, name)


def wait_for(cond, timeout, what='condition', interval=0.02):
    """Poll cond() until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError('timed out after %.1fs waiting for %s' % (timeout, what))
        time.sleep(interval)


# --------------------------------------------------------------------------
# Channel-binding data computed on the client side, apart from the server's
# OpenSSL calls: RFC 5929 from the certificate's DER, RFC 9266 from the TLS 1.3
# exporter secret that Python's ssl writes to a key log (RFC 8446 7.5).

# Signature algorithm OIDs (DER content bytes) -> hash for tls-server-end-point,
# with MD5 and SHA-1 replaced by SHA-256 as RFC 5929 4.1 says.
_SIG_OID_HASH = {
    bytes.fromhex('2a8648ce3d040302'): 'sha256',    # ecdsa-with-SHA256
    bytes.fromhex('2a8648ce3d040303'): 'sha384',    # ecdsa-with-SHA384
    bytes.fromhex('2a8648ce3d040304'): 'sha512',    # ecdsa-with-SHA512
    bytes.fromhex('2a8648ce3d0401'): 'sha256',      # ecdsa-with-SHA1
    bytes.fromhex('2a864886f70d010104'): 'sha256',  # md5WithRSAEncryption
    bytes.fromhex('2a864886f70d010105'): 'sha256',  # sha1WithRSAEncryption
    bytes.fromhex('2a864886f70d01010b'): 'sha256',  # sha256WithRSAEncryption
    bytes.fromhex('2a864886f70d01010c'): 'sha384',  # sha384WithRSAEncryption
    bytes.fromhex('2a864886f70d01010d'): 'sha512',  # sha512WithRSAEncryption
}


def _der_tlv(data, off):
    """(tag, content start, content end) of the DER element at off."""
    tag = data[off]
    n = data[off + 1]
    off += 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(data[off:off + k], 'big')
        off += k
    return tag, off, off + n


def tls_server_end_point(der):
    """RFC 5929 4.1 for a DER certificate: Certificate ::= SEQUENCE {
    tbsCertificate, signatureAlgorithm, signatureValue }."""
    _, body, _ = _der_tlv(der, 0)
    _, _, tbs_end = _der_tlv(der, body)
    _, alg, _ = _der_tlv(der, tbs_end)
    tag, oid, oid_end = _der_tlv(der, alg)
    if tag != 0x06:
        raise AssertionError('certificate signatureAlgorithm has no OID')
    name = _SIG_OID_HASH.get(bytes(der[oid:oid_end]))
    if name is None:
        raise AssertionError('no tls-server-end-point hash for signature OID %s' % der[oid:oid_end].hex())
    return hashlib.new(name, der).digest()


def _hkdf_expand_label(hname, secret, label, context, length):
    info = (length.to_bytes(2, 'big') + bytes([len(b'tls13 ' + label)]) + b'tls13 ' + label
            + bytes([len(context)]) + context)
    out, block, i = b'', b'', 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([i]), hname).digest()
        out += block
        i += 1
    return out[:length]


def tls_exporter(keylog_path, cipher_name, label=b'EXPORTER-Channel-Binding', length=32):
    """RFC 8446 7.5 TLS-Exporter(label, "", length) from the EXPORTER_SECRET line
    of a key log holding one TLS 1.3 connection."""
    hname = 'sha384' if cipher_name.endswith('SHA384') else 'sha256'
    secrets = [line.split()[2] for line in open(keylog_path).read().splitlines()
               if line.startswith('EXPORTER_SECRET ')]
    if len(secrets) != 1:
        raise AssertionError('expected one EXPORTER_SECRET in %s, found %d' % (keylog_path, len(secrets)))
    secret = bytes.fromhex(secrets[0])
    empty = hashlib.new(hname, b'').digest()
    derived = _hkdf_expand_label(hname, secret, label, empty, hashlib.new(hname).digest_size)
    return _hkdf_expand_label(hname, derived, b'exporter', empty, length)


def xml_escape(text):
    return (text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
            .replace("'", '&apos;').replace('"', '&quot;'))


def to_str(elem):
    return ET.tostring(elem, encoding='unicode') if elem is not None else 'None'


# --------------------------------------------------------------------------
# Server


def _env_binary(name):
    path = os.environ.get(name)
    if not path:
        raise unittest.SkipTest('%s is not set (run through ctest)' % name)
    if not os.access(path, os.X_OK):
        raise AssertionError('%s=%s is not executable' % (name, path))
    return path


class Server:
    """A hearthd on ephemeral ports in its own temporary data directory.

    Server(users={'alice': 'pw'}, admins={'root': 'pw'}, c2s__tls='optional')
    or Server({'c2s.tls': 'optional'}). Accounts are created with hearthctl
    when the Server is made, before hearthd starts, since hearthctl refuses
    to touch a live server's data directory."""

    all_instances = []  # every Server made in this process, for failure logs

    BASE_SETTINGS = {
        'server.domain': DOMAIN,
        'c2s.port': '0',
        'c2s.direct_tls_port': '0',
        'server.workers': '2',
        'log.level': 'debug',
        'c2s.auth_fail_delay_ms': '0',
        'limits.preauth_per_ip': '0',
        # Failed-login throttling across streams off: many tests fail on
        # purpose from 127.0.0.1 (test_auth_throttle turns it back on).
        'auth.ip_fail_burst': '0',
        'auth.pair_fail_burst': '0',
        'auth.account_fail_burst': '0',
        # Not in the brief's base line: off so that tests can run in parallel
        # (their defaults are the fixed ports 5280 and 9090).
        'http.port': '-1',
        'https.port': '-1',
        'admin.port': '-1',
        'admin.https_port': '-1',
    }

    def __init__(self, settings=None, users=None, admins=None, listeners=('c2s', 'c2s_direct_tls'),
                 **kw):
        self.hearthd = _env_binary('HEARTHD')
        self.hearthctl_path = os.environ.get('HEARTHCTL')
        self.settings = dict(self.BASE_SETTINGS)
        for k, v in (settings or {}).items():
            self.settings[k] = str(v)
        for k, v in kw.items():
            self.settings[k.replace('__', '.')] = self._fmt(v)
        self.users = dict(users or {})
        self.admins = dict(admins or {})
        self.listeners = tuple(listeners)
        self.data_dir = tempfile.mkdtemp(prefix='hearth-it-')
        self.cert = os.path.join(self.data_dir, 'cert.pem')
        self.ports_file = os.path.join(self.data_dir, 'hearthd.ports')
        self.proc = None
        self.ports = {}
        self.port = None
        self.tls_port = None
        self.logs = []          # log file paths, one per start
        self.final_log = None   # captured at close, after the dir is gone
        self.starts = 0
        self.closed = False
        self.dumped = False
        self.shared = False
        self.pg_db = None
        Server.all_instances.append(self)
        try:
            if STORAGE == 'pgsql' and 'storage.driver' not in self.settings:
                self._pg_create(self._pg_account_template())
            else:
                self._seed_accounts()
        except BaseException:
            self.close(failed=True)
            raise

    # Databases holding a set of accounts, made once per process by hearthctl and copied into
    # each server's directory: every account costs a hearthctl run and two PBKDF2 derivations,
    # which under the sanitizers made most of a short test's time (hundreds of servers start).
    _account_dbs = {}

    def _seed_accounts(self):
        if not self.users and not self.admins:
            return
        if self.settings.get('storage.driver', 'sqlite') != 'sqlite' or not self.hearthctl_path:
            self._add_accounts()
            return
        key = (self.settings['server.domain'], self.hearthctl_path,
               tuple(sorted(self.users.items())), tuple(sorted(self.admins.items())))
        db = Server._account_dbs.get(key)
        if db is None:
            made = tempfile.mkdtemp(prefix='hearth-accounts-')
            atexit.register(shutil.rmtree, made, True)
            real, self.data_dir = self.data_dir, made
            try:
                self._add_accounts()
            finally:
                self.data_dir = real
            db = Server._account_dbs[key] = os.path.join(made, 'hearth.db')
        shutil.copyfile(db, os.path.join(self.data_dir, 'hearth.db'))

    def _add_accounts(self):
        """This server's users and admins, made by hearthctl in the database configured now."""
        for user, pw in self.users.items():
            self.adduser(self.jid(user), pw)
        for user, pw in self.admins.items():
            self.adduser(self.jid(user), pw, admin=True)

    def _pg_create(self, template=None):
        if not PG_DSN:
            raise unittest.SkipTest('HEARTH_TEST_STORAGE=pgsql without HEARTH_TEST_PG_DSN')
        _pg_databases[0] += 1
        self.pg_db = 'hearth_it_%d_%d' % (os.getpid(), _pg_databases[0])
        # FILE_COPY: about half the time of the default WAL_LOG copy for a small database.
        pg_sql('postgres', 'CREATE DATABASE %s%s STRATEGY FILE_COPY'
               % (self.pg_db, ' TEMPLATE %s' % template if template else ''))
        self.settings['storage.driver'] = 'pgsql'
        self.settings['storage.dsn'] = pg_dsn_for(self.pg_db)

    pg_templates = []  # databases holding a set of accounts, dropped by main() at the end

    def _pg_account_template(self):
        """The name of a database holding this server's accounts, made once per
        process by hearthctl (as _seed_accounts does for SQLite); None without
        accounts."""
        if not PG_DSN:
            raise unittest.SkipTest('HEARTH_TEST_STORAGE=pgsql without HEARTH_TEST_PG_DSN')
        if not self.users and not self.admins:
            return None
        key = ('pgsql', self.settings['server.domain'], self.hearthctl_path,
               tuple(sorted(self.users.items())), tuple(sorted(self.admins.items())))
        template = Server._account_dbs.get(key)
        if template is None:
            _pg_databases[0] += 1
            template = 'hearth_tpl_%d_%d' % (os.getpid(), _pg_databases[0])
            pg_sql('postgres', 'CREATE DATABASE %s STRATEGY FILE_COPY' % template)
            Server.pg_templates.append(template)
            saved = dict(self.settings)
            self.settings['storage.driver'] = 'pgsql'
            self.settings['storage.dsn'] = pg_dsn_for(template)
            try:
                self._add_accounts()
            finally:
                self.settings = saved
            Server._account_dbs[key] = template
        return template

    pg_drops = []  # DROP DATABASE runs while the next test goes on; main() waits for them

    def _pg_drop(self):
        if self.pg_db is not None:
            db, self.pg_db = self.pg_db, None
            Server.pg_drops.append(subprocess.Popen(
                ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', pg_dsn_for('postgres'), '-c',
                 'DROP DATABASE IF EXISTS %s WITH (FORCE)' % db],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))

    @staticmethod
    def pg_drops_wait():
        """Waits for the databases being dropped; fails on a drop that failed."""
        for db in Server.pg_templates:
            Server.pg_drops.append(subprocess.Popen(
                ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', pg_dsn_for('postgres'), '-c',
                 'DROP DATABASE IF EXISTS %s WITH (FORCE)' % db],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        Server.pg_templates = []
        bad = []
        for p in Server.pg_drops:
            _, err = p.communicate(timeout=60)
            if p.returncode != 0:
                bad.append(err.decode('utf-8', 'replace'))
        Server.pg_drops = []
        if bad:
            raise AssertionError('DROP DATABASE failed: %s' % '; '.join(bad))

    def pgsql(self):
        return self.settings.get('storage.driver') == 'pgsql'

    def _pg_run(self, sql, params):
        """sql with ? placeholders run through psql, the values as variables."""
        names = {}
        parts = sql.split('?')
        text = parts[0]
        for i, part in enumerate(parts[1:]):
            names['p%d' % i] = params[i]
            text += ":'p%d'" % i + part
        return pg_sql(None, text + ';', names, dsn=self.settings['storage.dsn'])

    def db_rows(self, sql, params=()):
        """Rows of a query on this server's database, for either driver: sql
        with ? placeholders (sqlite3's), values in params. PostgreSQL's values
        come back as text, numbers as int."""
        if self.pgsql():
            return [tuple(int(v) if re.fullmatch(r'-?\d+', v) else v for v in row)
                    for row in self._pg_run(sql, params)]
        import sqlite3
        con = sqlite3.connect('file:%s?mode=ro' % os.path.join(self.data_dir, 'hearth.db'),
                              uri=True, timeout=5)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def db_exec(self, sql, params=()):
        """Runs sql on this server's database (? placeholders; without params
        several statements may be given), for either driver, while hearthd runs
        or not: a test's way to make storage fail on purpose or to plant rows."""
        if self.pgsql():
            self._pg_run(sql, params) if params else pg_sql(None, sql, dsn=self.settings['storage.dsn'])
            return
        import sqlite3
        con = sqlite3.connect(os.path.join(self.data_dir, 'hearth.db'), timeout=10)
        try:
            if params:
                con.execute(sql, params)
                con.commit()
            else:
                con.executescript(sql)
        finally:
            con.close()

    def db_tables_with(self, column):
        """The tables of this server's database that have column."""
        if self.pgsql():
            return [r[0] for r in self.db_rows(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = "
                "current_schema() AND column_name = ? ORDER BY table_name", (column,))]
        tables = [r[0] for r in self.db_rows("SELECT name FROM sqlite_master WHERE type='table'")]
        return [t for t in tables
                if column in [r[1] for r in self.db_rows('PRAGMA table_info(%s)' % t)]]

    def db_dump(self):
        """Every row of this server's database as text."""
        if self.pgsql():
            r = subprocess.run(['pg_dump', '--data-only', '-d', self.settings['storage.dsn']],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise AssertionError('pg_dump failed: %s' % r.stderr)
            return r.stdout
        import sqlite3
        con = sqlite3.connect(os.path.join(self.data_dir, 'hearth.db'))
        try:
            return '\n'.join(con.iterdump())
        finally:
            con.close()

    @staticmethod
    def _fmt(v):
        if v is True:
            return 'true'
        if v is False:
            return 'false'
        return str(v)

    # -- lifecycle --------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close(failed=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(failed=exc_type is not None)
        return False

    def command_line(self):
        cmd = [self.hearthd, '--data-dir', self.data_dir]
        for k, v in self.settings.items():
            cmd += ['--set', '%s=%s' % (k, v)]
        return cmd

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, 'hearthd already running'
        try:
            os.unlink(self.ports_file)
        except FileNotFoundError:
            pass
        log_path = os.path.join(self.data_dir, 'hearthd.%d.log' % self.starts)
        self.logs.append(log_path)
        self.starts += 1
        self._log_path = log_path
        with open(log_path, 'wb') as log:
            self.proc = subprocess.Popen(self.command_line(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.data_dir)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError('hearthd exited with %d during start-up:\n%s'
                                     % (rc, self._read(log_path)))
            ports = self._read_ports()
            if ports is not None and re.search(r'\bready\b', self._read(log_path)):
                break
            if time.monotonic() >= deadline:
                raise AssertionError('hearthd not ready after %.0fs (ports file: %r):\n%s'
                                     % (START_TIMEOUT, ports, self._read(log_path)))
            time.sleep(0.02)
        self.ports = ports
        self.port = ports.get('c2s')
        self.tls_port = ports.get('c2s_direct_tls')
        return self

    def _read_ports(self):
        try:
            with open(self.ports_file) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        ports = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                return None
            ports[parts[0]] = int(parts[1])
        if not all(name in ports for name in self.listeners):
            return None
        return ports

    @staticmethod
    def _read(path):
        try:
            with open(path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def log_text(self):
        """The server's output over all starts."""
        if self.closed:
            return self.final_log or ''
        return ''.join(self._read(p) for p in self.logs)

    def current_log(self):
        return self._read(self._log_path) if self.logs else ''

    def wait_log(self, pattern, timeout=5.0, count=1):
        """Wait until the current run's log matches pattern (regex) count times;
        return the list of matches."""
        rx = re.compile(pattern)

        def found():
            m = list(rx.finditer(self.current_log()))
            return m if len(m) >= count else None
        return wait_for(found, timeout, 'log line /%s/' % pattern)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self):
        """hearthd's resident set size now, in KiB (VmRSS of /proc)."""
        with open('/proc/%d/status' % self.proc.pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        raise AssertionError('no VmRSS for hearthd')

    def assert_alive(self):
        if not self.alive():
            raise AssertionError('hearthd is not running (exit code %r)'
                                 % (self.proc.returncode if self.proc else None))

    def terminate(self):
        """Send SIGTERM without waiting."""
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError('hearthd did not exit within %.0fs of SIGTERM; killed' % timeout)

    def stop(self):
        """SIGTERM and wait; the exit code must be 0."""
        if self.proc is None or self.proc.poll() is not None:
            rc = self.proc.returncode if self.proc else 0
            if rc != 0:
                raise AssertionError('hearthd had already exited with %r' % rc)
            return
        self.terminate()
        rc = self.wait_exit()
        if rc != 0:
            raise AssertionError('hearthd exited with %d after SIGTERM' % rc)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        self.stop()
        return self.start()

    def close(self, failed=False):
        if self.closed:
            return
        try:
            if self.alive():
                if failed:
                    self.kill()
                else:
                    self.stop()
        finally:
            if self.alive():
                self.kill()
            self.final_log = ''.join(self._read(p) for p in self.logs)
            self.closed = True
            if failed and not self.dumped:
                dump_log(self)
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._pg_drop()

    # -- hearthctl --------------------------------------------------------

    @staticmethod
    def jid(user):
        return user if '@' in user else '%s@%s' % (user, DOMAIN)

    def ctl(self, *args, input=None, timeout=30):
        """Run hearthctl on this data directory; returns CompletedProcess (text)."""
        if not self.hearthctl_path:
            raise unittest.SkipTest('HEARTHCTL is not set (run through ctest)')
        cmd = [self.hearthctl_path, '--data-dir', self.data_dir,
               '--set', 'server.domain=%s' % self.settings['server.domain']]
        for k in ('storage.driver', 'storage.dsn'):
            if k in self.settings:
                cmd += ['--set', '%s=%s' % (k, self.settings[k])]
        cmd += list(args)
        return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)

    def adduser(self, jid, password, admin=False):
        args = ['adduser', self.jid(jid), '--password-stdin']
        if admin:
            args.append('--admin')
        r = self.ctl(*args, input=password + '\n')
        if r.returncode != 0:
            raise AssertionError('hearthctl %s failed (%d): %s%s'
                                 % (' '.join(args), r.returncode, r.stdout, r.stderr))
        return r

    # -- clients ----------------------------------------------------------

    def client(self, **kw):
        return Client(self, **kw)

    def login(self, user, pw, resource=None, **kw):
        c = Client(self)
        try:
            c.login(user, pw, resource=resource, **kw)
        except BaseException:
            c.close()
            raise
        return c


def dump_log(server, tail=60000):
    if not server.shared:
        server.dumped = True
    text = server.log_text()
    sys.stderr.write('\n----- hearthd log (%s) -----\n%s\n----- end of log -----\n'
                     % (server.data_dir, text[-tail:]))
    sys.stderr.flush()


# --------------------------------------------------------------------------
# Client


class StreamClosed(AssertionError):
    pass


class SaslFailure(AssertionError):
    def __init__(self, element):
        self.element = element
        self.condition = None
        for child in element:
            if child.tag.startswith('{%s}' % NS_SASL) and child.tag != q(NS_SASL, 'text'):
                self.condition = child.tag.split('}', 1)[1]
        AssertionError.__init__(self, 'SASL failure: %s' % to_str(element))


class Client:
    """Raw XMPP over a socket. Every receive has a deadline."""

    def __init__(self, server=None, cafile=None, host='127.0.0.1', source=None):
        self.server = server
        self.cafile = cafile or (server.cert if server else None)
        self.host = host
        self.source = source  # local address to connect from, e.g. '127.0.0.2'
        self.sock = None
        self.tls = False
        self.events = []       # pending ('header'|'stanza'|'close'|'eof', elem)
        self.raw = bytearray()  # everything received on this stream, decrypted
        self.eof = False
        self.jid = None
        self.features = None
        self.header = None
        self._ids = 0
        self.keylog = None  # path: TLS secrets logged there (for tls-exporter)
        self._new_parser()

    # -- socket -----------------------------------------------------------

    def ssl_context(self):
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.cafile)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if hasattr(ssl, 'OP_IGNORE_UNEXPECTED_EOF'):
            ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
        if self.keylog:
            ctx.keylog_filename = self.keylog
        return ctx

    def channel_binding(self, kind):
        """This TLS session's binding data of one XEP-0440 type, computed here."""
        if kind == 'tls-server-end-point':
            return tls_server_end_point(self.sock.getpeercert(binary_form=True))
        if kind == 'tls-exporter':
            if not self.keylog:
                raise AssertionError('set Client.keylog before the handshake for tls-exporter')
            return tls_exporter(self.keylog, self.sock.cipher()[0])
        raise AssertionError('unknown channel-binding type %s' % kind)

    def connect(self, port=None, direct_tls=False, timeout=5):
        if port is None:
            port = self.server.tls_port if direct_tls else self.server.port
        self.sock = socket.create_connection((self.host, port), timeout=timeout,
                                             source_address=(self.source, 0) if self.source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if direct_tls:
            ctx = self.ssl_context()
            ctx.set_alpn_protocols(['xmpp-client'])
            self.sock = ctx.wrap_socket(self.sock, server_hostname=DOMAIN)
            self.tls = True
        return self

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def reset(self):
        """Abrupt close with RST (SO_LINGER 0)."""
        if self.sock is not None:
            raw = self.sock
            try:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
            except OSError:
                pass
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode('utf-8')
        self.sock.sendall(data)

    def send_bytewise(self, data):
        if isinstance(data, str):
            data = data.encode('utf-8')
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])

    # -- parsing ----------------------------------------------------------

    def _new_parser(self):
        self.parser = ET.XMLPullParser(events=('start', 'end'))
        self.depth = 0
        self.root = None
        self.parse_error = None

    def _feed(self, data):
        self.raw += data
        if self.parse_error is not None:
            return
        try:
            self.parser.feed(data)
            for event, elem in self.parser.read_events():
                if event == 'start':
                    self.depth += 1
                    if self.depth == 1:
                        self.root = elem
                        self.events.append(('header', elem))
                else:
                    self.depth -= 1
                    if self.depth == 1:
                        self.events.append(('stanza', elem))
                        if self.root is not None:
                            try:
                                self.root.remove(elem)
                            except ValueError:
                                pass
                    elif self.depth == 0:
                        self.events.append(('close', elem))
        except ET.ParseError as e:
            self.parse_error = e
            self.events.append(('parse-error', e))

    def _recv_some(self, deadline):
        """Read once; False on timeout. Sets eof."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if not (self.tls and self.sock.pending()):
            r, _, _ = select.select([self.sock], [], [], remaining)
            if not r:
                return False
        try:
            self.sock.settimeout(max(remaining, 0.01))
            data = self.sock.recv(65536)
        except ssl.SSLWantReadError:
            return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            data = b''
        except socket.timeout:
            return False
        except ssl.SSLError as e:
            if 'EOF' in str(e) or 'shutdown' in str(e).lower():
                data = b''
            else:
                raise
        if not data:
            self.eof = True
            self.events.append(('eof', None))
        else:
            self._feed(data)
        return True

    def next_event(self, timeout=5):
        deadline = time.monotonic() + timeout
        while not self.events:
            if self.eof:
                return ('eof', None)
            if not self._recv_some(deadline) and time.monotonic() >= deadline:
                raise AssertionError('nothing received within %.1fs; so far: %r'
                                     % (timeout, self._tail()))
        return self.events.pop(0)

    def _tail(self):
        return bytes(self.raw[-600:]).decode('utf-8', 'replace')

    def recv_header(self, timeout=5):
        kind, elem = self.next_event(timeout)
        if kind != 'header':
            raise AssertionError('expected a stream header, got %s %s; raw tail: %r'
                                 % (kind, to_str(elem) if kind == 'stanza' else elem, self._tail()))
        if elem.tag != q(NS_STREAM, 'stream'):
            raise AssertionError('stream header has tag %s' % elem.tag)
        self.header = elem
        return elem

    def recv_stanza(self, timeout=5):
        """The next top-level element. A stream close or EOF fails."""
        kind, elem = self.next_event(timeout)
        if kind != 'stanza':
            raise StreamClosed('expected a stanza, got %s; raw tail: %r' % (kind, self._tail()))
        return elem

    def recv_until(self, pred, timeout=5):
        """Skip stanzas until pred(stanza); returns (match, skipped)."""
        deadline = time.monotonic() + timeout
        skipped = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError('no matching stanza within %.1fs; skipped: %s'
                                     % (timeout, [to_str(s) for s in skipped]))
            s = self.recv_stanza(remaining)
            if pred(s):
                return s
            skipped.append(s)

    def expect_nothing(self, timeout=0.5):
        """Assert that no stanza arrives (and the stream stays open) for timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.events:
                kind, elem = self.events.pop(0)
                raise AssertionError('unexpected %s: %s' % (kind, to_str(elem) if kind == 'stanza' else elem))
            self._recv_some(deadline)
        if self.events:
            kind, elem = self.events.pop(0)
            raise AssertionError('unexpected %s: %s' % (kind, to_str(elem) if kind == 'stanza' else elem))

    def expect_closed(self, timeout=5):
        """Read until EOF; returns the list of (kind, elem) seen on the way."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            while self.events:
                ev = self.events.pop(0)
                if ev[0] == 'eof':
                    return seen
                seen.append(ev)
            if self.eof:
                return seen
            if not self._recv_some(deadline) and time.monotonic() >= deadline:
                raise AssertionError('connection still open after %.1fs; saw %s'
                                     % (timeout, [(k, to_str(e) if k == 'stanza' else e) for k, e in seen]))

    def is_open(self, timeout=0.2):
        """True if the peer has not closed within timeout (events are kept)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.eof:
            self._recv_some(deadline)
        return not self.eof

    def assert_stream_error(self, cond, timeout=5):
        """The next element is <stream:error> with child cond (or one of a
        tuple of conds); then </stream:stream> and EOF. Returns the condition."""
        conds = (cond,) if isinstance(cond, str) else tuple(cond)
        deadline = time.monotonic() + timeout
        while True:
            kind, elem = self.next_event(max(deadline - time.monotonic(), 0.01))
            if kind == 'header':
                self.header = elem
                continue
            break
        if kind != 'stanza' or elem.tag != q(NS_STREAM, 'error'):
            raise AssertionError('expected stream error %s, got %s %s; raw tail: %r'
                                 % ('/'.join(conds), kind, to_str(elem) if kind == 'stanza' else elem,
                                    self._tail()))
        got = stream_error_condition(elem)
        if got not in conds:
            raise AssertionError('expected stream error %s, got %s: %s'
                                 % ('/'.join(conds), got, to_str(elem)))
        # Then </stream:stream>; we answer it (a server may wait for our close
        # tag, RFC 6120 4.4) and the connection must end.
        kind, elem = self.next_event(max(deadline - time.monotonic(), 1.0))
        if kind != 'close':
            raise AssertionError('after the stream error expected </stream:stream>, got %s %s'
                                 % (kind, to_str(elem) if kind == 'stanza' else elem))
        try:
            self.send('</stream:stream>')
        except OSError:
            pass
        rest = self.expect_closed(max(deadline - time.monotonic(), 1.0))
        if rest:
            raise AssertionError('data after </stream:stream>: %s'
                                 % [(k, to_str(e) if k == 'stanza' else e) for k, e in rest])
        return got

    # -- stream -----------------------------------------------------------

    @staticmethod
    def stream_header(to=DOMAIN, version='1.0', xmlns=NS_CLIENT, stream_ns=NS_STREAM,
                      decl="<?xml version='1.0'?>", extra=''):
        attrs = ["xmlns='%s'" % xmlns, "xmlns:stream='%s'" % stream_ns]
        if to is not None:
            attrs.append("to='%s'" % to)
        if version is not None:
            attrs.append("version='%s'" % version)
        if extra:
            attrs.append(extra)
        return '%s<stream:stream %s>' % (decl or '', ' '.join(attrs))

    def open_stream(self, to=DOMAIN, **kw):
        """Send a header; return (header, features)."""
        self.send(self.stream_header(to=to, **kw))
        header = self.recv_header()
        features = self.recv_stanza()
        if features.tag != q(NS_STREAM, 'features'):
            raise AssertionError('expected stream features, got %s' % to_str(features))
        self.features = features
        return header, features

    def close_stream(self):
        self.send('</stream:stream>')

    def starttls(self, send=True):
        if send:
            self.send("<starttls xmlns='%s'/>" % NS_TLS)
        r = self.recv_stanza()
        if r.tag != q(NS_TLS, 'proceed'):
            raise AssertionError('expected <proceed/>, got %s' % to_str(r))
        if self.events:
            raise AssertionError('data after <proceed/>: %r' % self.events)
        ctx = self.ssl_context()
        self.sock.settimeout(5)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=DOMAIN)
        self.tls = True
        self._new_parser()
        return self.sock

    def tls_version(self):
        return self.sock.version() if self.tls else None

    # -- SASL -------------------------------------------------------------

    @staticmethod
    def mechanisms(features):
        m = features.find(q(NS_SASL, 'mechanisms'))
        if m is None:
            return []
        return [e.text for e in m.findall(q(NS_SASL, 'mechanism'))]

    def sasl_auth(self, mech, payload=None):
        if payload is None:
            body = ''
        elif payload == b'':
            body = '='
        else:
            body = base64.b64encode(payload).decode()
        self.send("<auth xmlns='%s' mechanism='%s'>%s</auth>" % (NS_SASL, mech, body))
        return self.recv_stanza()

    def sasl_response(self, payload):
        body = base64.b64encode(payload).decode() if payload else ''
        self.send("<response xmlns='%s'>%s</response>" % (NS_SASL, body))
        return self.recv_stanza()

    @staticmethod
    def _check_sasl_reply(elem, *expect):
        if elem.tag == q(NS_SASL, 'failure'):
            raise SaslFailure(elem)
        if elem.tag not in [q(NS_SASL, e) for e in expect]:
            raise AssertionError('expected SASL %s, got %s' % ('/'.join(expect), to_str(elem)))
        return base64.b64decode(elem.text or '') if (elem.text or '').strip() not in ('', '=') else b''

    @staticmethod
    def saslname(name):
        return name.replace('=', '=3D').replace(',', '=2C')

    def scram_first(self, user, mech='SCRAM-SHA-256', nonce=None, gs2='n,,'):
        """Send client-first; return (client_first_bare, server_first_bytes, fields)."""
        self._scram_nonce = nonce or base64.b64encode(os.urandom(18)).decode()
        bare = 'n=%s,r=%s' % (self.saslname(user), self._scram_nonce)
        reply = self.sasl_auth(mech, (gs2 + bare).encode())
        server_first = self._check_sasl_reply(reply, 'challenge')
        fields = parse_scram(server_first)
        return bare, server_first, fields

    def auth_scram(self, user, password, mech='SCRAM-SHA-256', gs2='n,,', cb_data=b'', nonce_suffix=''):
        """RFC 5802 client side; by default without channel binding (gs2
        header 'n,,'); gs2/cb_data let a test send 'y,,' or a 'p=' binding.
        Raises SaslFailure on <failure/>; verifies the server signature."""
        base = mech[:-5] if mech.endswith('-PLUS') else mech
        hname = {'SCRAM-SHA-1': 'sha1', 'SCRAM-SHA-256': 'sha256', 'SCRAM-SHA-512': 'sha512'}[base]
        bare, server_first, f = self.scram_first(user, mech, gs2=gs2)
        if not f.get('r', '').startswith(self._scram_nonce) or f['r'] == self._scram_nonce:
            raise AssertionError('server nonce does not extend ours: %r' % server_first)
        salt = base64.b64decode(f['s'])
        iters = int(f['i'])
        salted = hashlib.pbkdf2_hmac(hname, password.encode('utf-8'), salt, iters)
        client_key = hmac.new(salted, b'Client Key', hname).digest()
        stored_key = hashlib.new(hname, client_key).digest()
        without_proof = 'c=%s,r=%s' % (base64.b64encode(gs2.encode() + cb_data).decode(),
                                       f['r'] + nonce_suffix)
        auth_message = ('%s,%s,%s' % (bare, server_first.decode(), without_proof)).encode()
        client_sig = hmac.new(stored_key, auth_message, hname).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
        server_key = hmac.new(salted, b'Server Key', hname).digest()
        server_sig = hmac.new(server_key, auth_message, hname).digest()
        final = ('%s,p=%s' % (without_proof, base64.b64encode(proof).decode())).encode()
        reply = self.sasl_response(final)
        data = self._check_sasl_reply(reply, 'success', 'challenge')
        if reply.tag == q(NS_SASL, 'challenge'):
            # RFC 6120 6.3.10 allows the final data in a challenge.
            reply = self.sasl_response(b'')
            self._check_sasl_reply(reply, 'success')
        v = parse_scram(data).get('v')
        if v is None or base64.b64decode(v) != server_sig:
            raise AssertionError('server signature missing or wrong in %r' % data)
        return reply

    def auth_plain(self, user, password, authzid=''):
        reply = self.sasl_auth('PLAIN', ('%s\0%s\0%s' % (authzid, user, password)).encode())
        self._check_sasl_reply(reply, 'success')
        return reply

    # -- resource binding and IQ --------------------------------------------

    def next_id(self, prefix='t'):
        self._ids += 1
        return '%s%d' % (prefix, self._ids)

    def iq(self, type_, payload='', to=None, timeout=5, id_=None):
        """Send an IQ and wait for the reply with the same id (other stanzas
        arriving meanwhile are kept in self.skipped)."""
        id_ = id_ or self.next_id('iq')
        attrs = "type='%s' id='%s'" % (type_, id_)
        if to:
            attrs += " to='%s'" % to
        self.send('<iq %s>%s</iq>' % (attrs, payload))
        match = self.recv_until(lambda s: s.tag == q(NS_CLIENT, 'iq') and s.get('id') == id_
                                and s.get('type') in ('result', 'error'), timeout)
        return match

    def bind_iq(self, resource=None):
        inner = '<resource>%s</resource>' % xml_escape(resource) if resource is not None else ''
        return self.iq('set', "<bind xmlns='%s'>%s</bind>" % (NS_BIND, inner))

    def bind(self, resource=None):
        r = self.bind_iq(resource)
        if r.get('type') != 'result':
            raise AssertionError('bind failed: %s' % to_str(r))
        jid = r.find('%s/%s' % (q(NS_BIND, 'bind'), q(NS_BIND, 'jid')))
        if jid is None or not jid.text:
            raise AssertionError('bind result has no jid: %s' % to_str(r))
        self.jid = jid.text
        return self.jid

    def login(self, user, password, resource=None, tls=True, mech='SCRAM-SHA-256',
              direct_tls=False, bind=True):
        self.connect(direct_tls=direct_tls)
        self.open_stream()
        if tls and not direct_tls:
            self.starttls()
            self.open_stream()
        if mech == 'PLAIN':
            self.auth_plain(user, password)
        else:
            self.auth_scram(user, password, mech)
        self._new_parser()
        self.open_stream()
        if bind:
            return self.bind(resource)
        return None

    def ping(self, to=DOMAIN, timeout=5):
        r = self.iq('get', "<ping xmlns='%s'/>" % NS_PING, to=to, timeout=timeout)
        return r


def parse_scram(data):
    if isinstance(data, bytes):
        data = data.decode('utf-8')
    out = {}
    for part in data.split(','):
        if '=' in part:
            k, v = part.split('=', 1)
            out[k] = v
    return out


def stream_error_condition(elem):
    for child in elem:
        if child.tag.startswith('{%s}' % NS_STREAMS_ERR) and child.tag != q(NS_STREAMS_ERR, 'text'):
            return child.tag.split('}', 1)[1]
    return None


def stanza_error(elem):
    """(type, condition) of a stanza's <error/>, or None."""
    err = elem.find(q(NS_CLIENT, 'error'))
    if err is None:
        return None
    cond = None
    for child in err:
        if child.tag.startswith('{%s}' % NS_STANZAS) and child.tag != q(NS_STANZAS, 'text'):
            cond = child.tag.split('}', 1)[1]
    return err.get('type'), cond


# --------------------------------------------------------------------------
# Running a test file


class _Result(unittest.TextTestResult):
    def startTest(self, test):
        self._servers_before = len(Server.all_instances)
        super().startTest(test)

    def _dump(self):
        # Called as soon as a test part fails, before its cleanups run: print
        # the log of every server this test started, without stopping them.
        before = getattr(self, '_servers_before', 0)
        for i, s in enumerate(Server.all_instances):
            if i >= before and not s.dumped:
                dump_log(s)
            elif i < before and s.shared and not s.closed:
                dump_log(s, tail=20000)  # a class's shared server: its recent lines

    def _say(self, err):
        # The failure first, before the logs: a CI excerpt that keeps only the lines near the
        # failing test's name still shows what failed.
        sys.stderr.write('\n----- %s: %s\n' % (err[0].__name__, str(err[1])[:3000]))
        sys.stderr.flush()

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._say(err)
        self._dump()

    def addError(self, test, err):
        super().addError(test, err)
        self._say(err)
        self._dump()

    def stopTest(self, test):
        super().stopTest(test)
        # a test that forgot to close its servers must not leave processes behind
        for s in Server.all_instances[getattr(self, '_servers_before', 0):]:
            if not s.closed and not s.shared:
                s.close(failed=True)


def main():
    """unittest entry point for a standalone script: prints 'N passed, N failed'
    and exits non-zero on any failure."""
    argv = sys.argv[1:]
    loader = unittest.TestLoader()
    module = sys.modules['__main__']
    if argv:
        suite = loader.loadTestsFromNames(argv, module)
    else:
        suite = loader.loadTestsFromModule(module)
    runner = unittest.TextTestRunner(verbosity=2, resultclass=_Result, stream=sys.stdout)
    try:
        result = runner.run(suite)
    finally:
        for s in Server.all_instances:
            if not s.closed:
                s.close(failed=True)
        Server.pg_drops_wait()
    # A test can fail more than once (its body and a cleanup); count tests.
    # Errors in setUpClass come as holders that were never "run".
    bad = result.failures + result.errors + [(t, None) for t in result.unexpectedSuccesses]
    failed_ids = {t.id() for t, _ in bad}
    failed_run = {t.id() for t, _ in bad if isinstance(t, unittest.TestCase)}
    skipped = len({t.id() for t, _ in result.skipped} - failed_ids)
    failed = len(failed_ids)
    passed = max(result.testsRun - len(failed_run) - skipped, 0)
    if skipped:
        print('%d skipped' % skipped)
    if result.expectedFailures:
        print('%d known failures (expectedFailure, counted as passed): %s'
              % (len(result.expectedFailures), ', '.join(t.id().split('.')[-1] for t, _ in result.expectedFailures)))
    print('%d passed, %d failed' % (passed, failed))
    sys.stdout.flush()
    if not failed and not passed and skipped:
        # Everything skipped (a client program or module is missing): ctest shows the file
        # as skipped (SKIP_RETURN_CODE), never as passed.
        sys.exit(SKIP_EXIT)
    sys.exit(1 if failed or result.testsRun == 0 else 0)
