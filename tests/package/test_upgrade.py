"""The Debian packages installed on this machine and upgraded, as an operator would: packages
built from an older commit (HEARTH_PACKAGE_OLD, default: see default_old) and from the working
tree; the
older installed with dpkg -i; hearthd started the way its unit starts it (user hearth, the
unit's paths, no capability, READY=1 on $NOTIFY_SOCKET) on ephemeral loopback ports; accounts,
a roster and an offline message made; the conffile edited; the newer package installed over it;
hearthd started again; everything found intact. Then remove keeps /var/lib/hearth and purge
deletes it. Whatever happens, the machine is left as it was found (packages purged, user and
group hearth removed). Needs root and dpkg-buildpackage (else exits 77, skipped); one run at a
time (a lock). Run by ctest (label package) with the build directory as argument."""

import fcntl
import glob
import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else os.path.join(ROOT, 'build')
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))

from hearth import DOMAIN, wait_for  # noqa: E402
from imlib import IMClient, is_msg, NS_ROSTER  # noqa: E402

SKIP = 77
LOCK = '/run/lock/hearth-package-test.lock'
# Present while this test has something installed: a later run knows the leftovers are its own.
MARK = '/run/lock/hearth-package-test.installed'
PACKAGES = ['hearthd', 'hearth-client', 'libhearth-dev', 'libhearth0']
CONF = '/etc/hearth/hearthd.conf'
DATA = '/var/lib/hearth'
HEARTHD = '/usr/sbin/hearthd'
HEARTHCTL = '/usr/sbin/hearthctl'
BUILD_TIMEOUT = 1200
START_TIMEOUT = 30
CONF_EDIT = '\n# edited by tests/package/test_upgrade.py: kept across the upgrade\n'
USERS = {'alice': 'alice-pw-1', 'bob': 'bob-pw-2'}


def run(cmd, timeout=600, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError('%s failed (%d):\n%s%s' % (' '.join(cmd), r.returncode, r.stdout,
                                                         r.stderr))
    return r


def installed_version(pkg):
    r = run(['dpkg-query', '-W', '-f=${Status} ${Version}', pkg], check=False)
    if r.returncode != 0:
        return None
    status = r.stdout.rsplit(' ', 1)
    return status[1] if status[0] == 'install ok installed' else ('state: ' + r.stdout)


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def build_packages(out, rev=None):
    """The .debs of the working tree (rev None: lintian checks them) or of a commit (cached by
    commit). No debug-symbol packages: the test does not install them."""
    debs = sorted(glob.glob(os.path.join(out, '*.deb')))
    if rev and len(ours(debs)) == len(PACKAGES):
        return debs
    cmd = ['sh', os.path.join(ROOT, 'scripts', 'make-deb.sh'), ROOT, out] + ([rev] if rev else [])
    env = dict(os.environ, DEB_BUILD_OPTIONS='parallel=2 noddebs',
               HEARTH_DEB_LINTIAN='no' if rev else 'yes')
    t0 = time.monotonic()
    run(cmd, timeout=BUILD_TIMEOUT, env=env)
    print('built the packages of %s in %.0f s' % (rev or 'the working tree', time.monotonic() - t0))
    return sorted(glob.glob(os.path.join(out, '*.deb')))


def ours(debs):
    return [d for d in debs if os.path.basename(d).split('_')[0] in PACKAGES]


def git(*args):
    return run(['git', '-C', ROOT] + list(args)).stdout.strip()


def default_old():
    """The commit before the newest change to storage (so the upgrade runs the newest
    migrations), or the first commit with debian/ when that one has none. It stays the same
    from one commit to the next until storage changes again, so its packages, cached by
    commit, are built once. None when no commit before HEAD has debian/."""
    newest = git('log', '-1', '--format=%H', 'HEAD', '--', 'server/storage')
    if newest:
        parents = git('log', '-1', '--format=%P', newest).split()
        if parents and run(['git', '-C', ROOT, 'cat-file', '-e', parents[0] + ':debian/control'],
                           check=False).returncode == 0:
            return parents[0]
    firsts = git('log', '--reverse', '--format=%H', '--diff-filter=A', 'HEAD', '--',
                 'debian/control').split()
    head = git('rev-parse', 'HEAD')
    return firsts[0] if firsts and firsts[0] != head else None


class Hearthd:
    """hearthd as hearthd.service runs it: user and group hearth, no capability, no new
    privileges, in /var/lib/hearth, the unit's --config and --data-dir, READY=1 awaited on an
    abstract notify socket; ports ephemeral and on loopback through --set."""

    def __init__(self):
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify_name = 'hearth-package-test-%d' % os.getpid()
        self.notify.bind('\0' + self.notify_name)
        self.notify.settimeout(START_TIMEOUT)
        self.proc = None
        self.log = os.path.join(BUILD, 'package-test', 'hearthd.log')

    def start(self):
        settings = {'c2s.bind': '127.0.0.1', 'c2s.port': '0', 'c2s.direct_tls_port': '-1',
                    'http.port': '-1', 'https.port': '-1', 'admin.bind': '127.0.0.1',
                    'admin.port': '0', 'admin.https_port': '-1', 'server.workers': '2',
                    'limits.preauth_per_ip': '0', 'c2s.auth_fail_delay_ms': '0'}
        cmd = ['setpriv', '--reuid=hearth', '--regid=hearth', '--init-groups',
               '--no-new-privs', '--inh-caps=-all', '--bounding-set=-all', '--',
               HEARTHD, '--config', CONF, '--data-dir', DATA]
        for k, v in settings.items():
            cmd += ['--set', '%s=%s' % (k, v)]
        env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'NOTIFY_SOCKET': '@' + self.notify_name}
        with open(self.log, 'ab') as log:
            self.proc = subprocess.Popen(cmd, cwd=DATA, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        try:
            ready = self.notify.recv(4096).decode()
        except socket.timeout:
            raise AssertionError('no READY=1 from hearthd within %d s:\n%s'
                                 % (START_TIMEOUT, self.log_text()))
        if ready != 'READY=1':
            raise AssertionError('hearthd notified %r, not READY=1' % ready)
        ports = {}
        with open(os.path.join(DATA, 'hearthd.ports')) as f:
            for line in f:
                name, port = line.split()
                ports[name] = int(port)
        self.port = ports['c2s']
        self.tls_port = None
        self.cert = os.path.join(DATA, 'cert.pem')
        return self

    def log_text(self):
        with open(self.log, encoding='utf-8', errors='replace') as f:
            return f.read()[-20000:]

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        stopping = self.notify.recv(4096).decode()
        rc = self.proc.wait(30)
        if (stopping, rc) != ('STOPPING=1', 0):
            raise AssertionError('hearthd stopped with %r, exit %d:\n%s'
                                 % (stopping, rc, self.log_text()))

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def close(self):
        self.kill()
        self.notify.close()


class UpgradeTest(unittest.TestCase):
    def setUp(self):
        self.server = None
        os.makedirs(os.path.join(BUILD, 'package-test'), exist_ok=True)
        self.lock = open(LOCK, 'w')
        deadline = time.monotonic() + BUILD_TIMEOUT
        while True:
            try:
                fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self.fail('another package test holds %s' % LOCK)
                time.sleep(1)
        self.addCleanup(self.lock.close)
        if os.path.exists(MARK):
            self.leave_clean()  # a run killed before its cleanup left this behind
        for pkg in PACKAGES:
            self.assertIsNone(installed_version(pkg),
                              '%s is installed on this machine: the test would replace it' % pkg)
        for path in (DATA, '/etc/hearth'):
            self.assertFalse(os.path.exists(path), '%s exists: the test would delete it' % path)
        self.assertFalse(user_exists('hearth'), 'a user hearth exists: the test would remove it')
        self.addCleanup(self.leave_clean)

    def leave_clean(self):
        """Purge, remove the user and group, whether the test passed or not."""
        if self.server is not None:
            self.server.close()
            self.server = None
        with open(MARK, 'w'):
            pass
        run(['dpkg', '--purge'] + PACKAGES, check=False)
        if user_exists('hearth'):
            run(['userdel', 'hearth'], check=False)
        if group_exists('hearth'):
            run(['groupdel', 'hearth'], check=False)
        for path in (DATA, '/etc/hearth'):
            shutil.rmtree(path, ignore_errors=True)
        os.unlink(MARK)

    def dpkg_install(self, debs, *options):
        with open(MARK, 'w'):
            pass
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        return run(['dpkg', '-i'] + list(options) + ours(debs), env=env, stdin=subprocess.DEVNULL)

    def start(self):
        self.server = Hearthd().start()
        return self.server

    def stop(self):
        self.server.stop()
        self.server.close()
        self.server = None

    def login(self, user, presence=True):
        c = IMClient(self.server)
        self.addCleanup(c.close)
        c.login(user, USERS[user], resource='pkg')
        c.user, c.password = user, USERS[user]
        if presence:
            c.presence()
        return c

    def test_install_use_upgrade_remove_purge(self):
        old_rev = os.environ.get('HEARTH_PACKAGE_OLD') or default_old()
        if old_rev is None:
            self.skipTest('no commit before HEAD has debian/: nothing to upgrade from')
        old_hash = git('rev-parse', old_rev)
        print('upgrading from the packages of %s' % old_hash)
        old = build_packages(os.path.join(BUILD, 'package-test', 'old-' + old_hash), old_hash)
        new = build_packages(os.path.join(BUILD, 'package-test', 'new'))
        version = lambda debs: [os.path.basename(d).split('_')[1] for d in ours(debs)][0]
        old_v, new_v = version(old), version(new)
        run(['dpkg', '--compare-versions', new_v, 'gt', old_v])

        # The older package: the user, its data directory, the conffile, the man pages.
        self.dpkg_install(old)
        self.assertEqual(installed_version('hearthd'), old_v)
        st = os.stat(DATA)
        self.assertEqual((pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name),
                         ('hearth', 'hearth'))
        self.assertIn(CONF, run(['dpkg-query', '-W', '-f=${Conffiles}', 'hearthd']).stdout)
        man = run(['man', '-w', 'hearthd']).stdout.strip()
        self.assertEqual(man, '/usr/share/man/man8/hearthd.8.gz')
        page = run(['man', 'hearthd'], env=dict(os.environ, MANPAGER='cat', MANWIDTH='80')).stdout
        self.assertIn('--data-dir', page.replace('\u2010', '-'))
        run(['man', '-w', '5', 'hearthd.conf'])
        run(['man', '-w', 'hearth-bench'])
        # The installed unit, as systemd would load it (its Documentation= pages included).
        if shutil.which('systemd-analyze'):
            r = run(['systemd-analyze', 'verify', '/lib/systemd/system/hearthd.service'])
            self.assertEqual(r.stdout + r.stderr, '')

        # Accounts, with the server stopped, as the service's user.
        for user, pw in USERS.items():
            run(['runuser', '-u', 'hearth', '--', HEARTHCTL, '--config', CONF, '--data-dir', DATA,
                 'adduser', '%s@%s' % (user, DOMAIN), '--password-stdin'], input=pw + '\n')
        # The first start makes the certificate and the setup token, as a plain run does.
        self.start()
        for f in ('cert.pem', 'key.pem', 'setup.token', 'hearth.db'):
            path = os.path.join(DATA, f)
            self.assertTrue(os.path.exists(path), '%s missing after the first start' % path)
            self.assertEqual(pwd.getpwuid(os.stat(path).st_uid).pw_name, 'hearth', path)
        self.assertRegex(self.server.log_text(), r'setup token|setup\.token')
        alice = self.login('alice')
        alice.iq_ok('set', "<query xmlns='%s'>%s</query>"
                    % (NS_ROSTER, alice.item_xml('bob@' + DOMAIN, 'Bob', ('Friends',))))
        alice.message('bob@' + DOMAIN, 'sent before the upgrade', id_='before-upgrade')
        alice.roster()  # a round trip: the message was handled before it
        alice.logout()
        self.stop()  # the shutdown writes what storage still holds

        with open(CONF, 'a') as f:
            f.write(CONF_EDIT)
        with open(CONF) as f:
            edited = f.read()

        # The newer package over it, without a question about the conffile.
        self.dpkg_install(new, '--force-confdef', '--force-confold')
        self.assertEqual(installed_version('hearthd'), new_v)
        with open(CONF) as f:
            self.assertEqual(f.read(), edited)
        self.assertFalse(os.path.exists(CONF + '.dpkg-new'))
        r = run([HEARTHD, '--version'])
        self.assertIn(new_v, r.stdout)

        self.start()
        bob = self.login('bob', presence=False)
        bob.presence(priority=0)
        m = bob.wait(lambda s: is_msg(s), what='the offline message')
        self.assertEqual(m.get('id'), 'before-upgrade')
        self.assertEqual(m.findtext('{jabber:client}body'), 'sent before the upgrade')
        bob.logout()
        alice = self.login('alice')
        item = alice.roster().get('bob@' + DOMAIN)
        self.assertIsNotNone(item, 'the roster lost bob')
        self.assertEqual(item.get('name'), 'Bob')
        r = run([HEARTHCTL, '--config', CONF, '--data-dir', DATA, 'listusers'])
        self.assertEqual(sorted(r.stdout.split()), sorted('%s@%s' % (u, DOMAIN) for u in USERS))
        alice.logout()
        self.stop()

        # remove keeps the data and the conffile; purge deletes both.
        run(['dpkg', '--remove'] + PACKAGES)
        self.assertTrue(os.path.exists(os.path.join(DATA, 'hearth.db')))
        self.assertTrue(os.path.exists(CONF))
        run(['dpkg', '--purge'] + PACKAGES)
        self.assertFalse(os.path.exists(DATA))
        self.assertFalse(os.path.exists('/etc/hearth'))
        self.assertFalse(os.path.exists(
            '/etc/systemd/system/multi-user.target.wants/hearthd.service'))


def main():
    if os.geteuid() != 0:
        print('not root: the package test installs system-wide; skipped')
        sys.exit(SKIP)
    for tool in ('dpkg-buildpackage', 'dh', 'setpriv', 'runuser', 'man'):
        if not shutil.which(tool):
            print('%s is missing (scripts/install-deps.sh --package): skipped' % tool)
            sys.exit(SKIP)
    # ctest's timeout sends SIGTERM first: clean up on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit('terminated'))
    result = unittest.main(verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.skipped and len(result.skipped) == result.testsRun:
        sys.exit(SKIP)  # shown as skipped by ctest, not as passed


if __name__ == '__main__':
    main()
