#!/usr/bin/python3
"""Instructions per login and per delivered message, counted by callgrind: a cost figure that
the machine's other load does not move, unlike CPU seconds.

hearthd runs under `valgrind --tool=callgrind` with instrumentation off; the script switches it
on (callgrind_control) around each phase of a fixed scenario and reads the phase's instruction
count (Ir, every thread: workers and storage) from the dump:

  login     N accounts log in: stream, SCRAM-SHA-256 (no TLS, so the figure is XMPP's, not
            OpenSSL's), bind, roster get, initial presence;
  message   N/2 senders each send M chat messages to a partner, who receives them all: routed,
            stamped with a stanza id, archived for both parties (the default), delivered.

    bench/cost.py [--hearthd PATH] [--users N] [--messages M] [--json]
    bench/cost.py --check bench/cost-baseline.json    # exit 1 past the baseline's margin

The check is what `make test` runs (ctest bench/cost): it fails when a figure has grown by
more than the baseline's margin, so a change that makes the message path dearer is seen at
once. Regenerate the baseline with --write-baseline after a change that is meant to cost more
(or less), and say why in the commit.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
import hearth  # noqa: E402

PASSWORD = 'cost-pw'


class CallgrindServer(hearth.Server):
    """A hearthd under callgrind, instrumentation off until a phase switches it on."""

    def __init__(self, outdir, **kw):
        self.outdir = outdir
        super().__init__(**kw)

    def command_line(self):
        return ['valgrind', '--tool=callgrind', '--instr-atstart=no',
                '--callgrind-out-file=%s/callgrind.out.%%p' % self.outdir,
                '--dump-instr=no', '--compress-strings=no'] + super().command_line()

    def control(self, *args):
        r = subprocess.run(['callgrind_control'] + list(args) + [str(self.proc.pid)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise AssertionError('callgrind_control %s: %s' % (' '.join(args), r.stdout))
        return r.stdout

    def phase_start(self):
        self.control('--instr=on')
        self.control('--zero')

    def phase_end(self, name):
        """The instructions counted since phase_start, from the dump named after the phase."""
        before = set(os.listdir(self.outdir))
        self.control('--dump=%s' % name)
        self.control('--instr=off')
        for f in sorted(set(os.listdir(self.outdir)) - before):
            with open(os.path.join(self.outdir, f)) as fh:
                text = fh.read()
            if 'desc: Trigger: Client Request: %s' % name not in text and name not in text:
                continue
            m = re.search(r'^summary:\s+(\d+)', text, re.M) or \
                re.search(r'^totals:\s+(\d+)', text, re.M)
            if m:
                return int(m.group(1))
        raise AssertionError('no callgrind dump for phase %s in %s' % (name, self.outdir))


def measure(hearthd, users, messages, keep=None):
    os.environ['HEARTHD'] = hearthd
    ctl = os.path.join(os.path.dirname(hearthd), 'hearthctl')
    if os.path.exists(ctl):
        os.environ.setdefault('HEARTHCTL', ctl)
    hearth.START_TIMEOUT = 120.0
    outdir = keep or tempfile.mkdtemp(prefix='hearth-cost-')
    os.makedirs(outdir, exist_ok=True)
    names = ['cost%d' % i for i in range(1, users + 1)]
    clients = []
    try:
        srv = CallgrindServer(outdir, users={n: PASSWORD for n in names},
                              settings={'server.workers': '1', 'c2s.tls': 'optional',
                                        'log.level': 'warn'})
        with srv:
            # Warm up, uncounted: the first login loads the storage's statements and caches.
            warm = hearth.Client(srv)
            warm.login(names[0], PASSWORD, resource='warm', tls=False)
            warm.close()

            srv.phase_start()
            for n in names:
                c = hearth.Client(srv)
                c.login(n, PASSWORD, resource='cost', tls=False)
                c.iq('get', "<query xmlns='jabber:iq:roster'/>", timeout=30)
                c.send("<presence/>")
                clients.append(c)
            # Each client's own presence comes back to it once the server has handled it.
            for c in clients:
                c.recv_until(lambda s: s.tag == hearth.q(hearth.NS_CLIENT, 'presence'), 30)
            login_ir = srv.phase_end('login')

            half = users // 2
            senders, receivers = clients[:half], clients[half:half * 2]
            srv.phase_start()
            for i in range(messages):
                for s, r in zip(senders, receivers):
                    s.send("<message type='chat' to='%s' id='m%d'><body>cost %d</body></message>"
                           % (r.jid, i, i))
            for r in receivers:
                got = 0
                while got < messages:
                    r.recv_until(lambda s: s.tag == hearth.q(hearth.NS_CLIENT, 'message'), 60)
                    got += 1
            # Archive writes are asynchronous, after delivery. The storage thread runs its
            # requests in order, and each user's archive requests wait in order for the user's
            # preferences: a one-item archive query by the last receiver, answered, comes after
            # every write these messages queued (one worker queued them all).
            r = receivers[-1].iq('set', "<query xmlns='urn:xmpp:mam:2'><set xmlns="
                                 "'http://jabber.org/protocol/rsm'><max>1</max></set></query>",
                                 timeout=120)
            if r.get('type') != 'result':
                raise AssertionError('archive query failed: %s' % hearth.to_str(r))
            message_ir = srv.phase_end('message')
            for c in clients:
                c.close()
        return {
            'users': users,
            'messages_delivered': messages * half,
            'instructions_per_login': round(login_ir / users),
            'instructions_per_message': round(message_ir / (messages * half)),
        }
    finally:
        for c in clients:
            try:
                c.close()
            except Exception:
                pass
        if not keep:
            shutil.rmtree(outdir, ignore_errors=True)


def build_type(hearthd):
    """CMAKE_BUILD_TYPE of the build directory hearthd lives in, or None if it is not one."""
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(hearthd)), 'CMakeCache.txt')) as f:
            for line in f:
                if line.startswith('CMAKE_BUILD_TYPE:'):
                    return line.split('=', 1)[1].strip()
    except FileNotFoundError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--hearthd', default=os.environ.get('HEARTHD', 'build/hearthd'))
    ap.add_argument('--users', type=int, default=20)
    ap.add_argument('--messages', type=int, default=25, help='per sender')
    ap.add_argument('--json', action='store_true')
    ap.add_argument('--keep', metavar='DIR', help='keep the callgrind dumps there, for callgrind_annotate')
    ap.add_argument('--check', metavar='BASELINE')
    ap.add_argument('--write-baseline', metavar='BASELINE')
    args = ap.parse_args()
    if shutil.which('valgrind') is None or shutil.which('callgrind_control') is None:
        print('cost.py: valgrind is not installed (Debian package valgrind)', file=sys.stderr)
        return 77 if args.check else 2
    base = None
    if args.check:
        kind = build_type(args.hearthd)
        if kind not in (None, 'RelWithDebInfo'):
            print('cost.py: the baseline is for the RelWithDebInfo build that make test makes; '
                  '%s is a %s build: skipped' % (args.hearthd, kind))
            return 77
        with open(args.check) as f:
            base = json.load(f)
        args.users, args.messages = base['users'], base['messages_per_sender']
    r = measure(os.path.abspath(args.hearthd), args.users, args.messages, args.keep)
    if args.json:
        print(json.dumps(r))
    else:
        print('%d logins: %d instructions each; %d messages delivered: %d instructions each'
              % (r['users'], r['instructions_per_login'], r['messages_delivered'],
                 r['instructions_per_message']))
    if args.write_baseline:
        with open(args.write_baseline, 'w') as f:
            json.dump({'users': args.users, 'messages_per_sender': args.messages,
                       'margin': 0.15,
                       'instructions_per_login': r['instructions_per_login'],
                       'instructions_per_message': r['instructions_per_message']}, f, indent=2)
            f.write('\n')
    if base:
        bad = []
        for k in ('instructions_per_login', 'instructions_per_message'):
            limit = base[k] * (1 + base['margin'])
            print('%s: %d (baseline %d, limit %d)' % (k, r[k], base[k], limit))
            if r[k] > limit:
                bad.append(k)
        if bad:
            print('cost.py: grown past the baseline by more than %d %%: %s'
                  % (base['margin'] * 100, ', '.join(bad)), file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
