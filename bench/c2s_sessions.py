#!/usr/bin/env python3
"""Memory per connected session: N clients logged in over STARTTLS with SCRAM-SHA-256 (by default),
bound and available, idle; the server's RSS is read from /proc before and after. Loopback only,
bounded by N and by a deadline; stops by itself.

Two modes:

  * hearthd started here (the default), on ephemeral loopback ports, accounts registered in band:

        HEARTHD=build/hearthd HEARTHCTL=build/hearthctl python3 bench/c2s_sessions.py [N]

  * an already-running server (Prosody, ejabberd, a hearthd started elsewhere), named by host, port
    and the pid whose RSS is measured. Accounts u00000.. with password password-<i> are registered
    in band (XEP-0077) unless --no-register says they exist already (created with the server's own
    tool). TLS certificate verification is OFF in this mode (bench only: self-signed loopback certs):

        python3 bench/c2s_sessions.py 1000 --port 15222 --pid 1234 [--host 127.0.0.1] [--domain localhost]

With --burst R, once every session is up each client i sends R messages of --body bytes to client
i+1 (one round at a time: every client sends one, then every client reads one), the clients go quiet,
and the server's RSS is read again ("after burst"): memory taken during traffic and not given back.

HEARTHD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 runs the hearthd started here with that
library preloaded (hearthd only, not this client); HEARTHD_ENV='GLIBC_TUNABLES=...' adds variables
to its environment the same way, HEARTHD_SET='c2s.idle_release=0 ...' adds --set options. HEARTHD_WRAP='heaptrack -o /tmp/h' puts a command before it (the RSS
read is then the wrapper's, not hearthd's: for profiles only).

Prints what was negotiated (TLS version and cipher, SASL mechanisms offered and used), RSS idle, RSS
with the sessions, per-session KiB ((with - idle) / sessions) and the marginal per-session KiB over the
second half of the sessions, then one RESULT line of JSON for scripts (bench/run_sessions_compare.sh).
"""
import argparse
import json
import os
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'tests', 'integration'))
from hearth import NS_BIND, NS_TLS, Client, Server, q, to_str  # noqa: E402
from muc_load import hearthd_config_keys  # noqa: E402

NS_REG = 'jabber:iq:register'


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


class BenchClient(Client):
    """The integration-test client, optionally without certificate verification."""

    def __init__(self, server=None, host='127.0.0.1', insecure=False):
        Client.__init__(self, server, host=host)
        self.insecure = insecure

    def ssl_context(self):
        if not self.insecure:
            return Client.ssl_context(self)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # bench only: loopback servers with self-signed certificates
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if hasattr(ssl, 'OP_IGNORE_UNEXPECTED_EOF'):
            ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
        return ctx


def session(args, srv, i, port, info):
    c = BenchClient(srv, host=args.host, insecure=srv is None)
    c.connect(port)
    _, feats = c.open_stream(to=args.domain)
    if args.tls:
        if feats.find(q(NS_TLS, 'starttls')) is None:
            raise AssertionError('STARTTLS not offered')
        c.starttls()
        _, feats = c.open_stream(to=args.domain)
    user = 'u%05d' % i
    pw = 'password-%d' % i
    tries = 0
    while args.register:
        c.send("<iq type='set' id='r'><query xmlns='%s'><username>%s</username>"
               "<password>%s</password></query></iq>" % (NS_REG, user, pw))
        r = c.recv_stanza(timeout=30)
        if r.get('type') == 'result':
            break
        text = to_str(r)
        if 'resource-constraint' in text and tries < 100:  # registrations in flight are bounded
            tries += 1
            time.sleep(0.1)
            continue
        raise AssertionError('%s: registration failed: %s' % (user, text))
    mechs = Client.mechanisms(feats)
    if i == 0:
        info['mechanisms_offered'] = mechs
        info['tls'] = '%s %s' % (c.tls_version(), c.sock.cipher()[0]) if c.tls else 'none'
    if args.mech not in mechs:
        raise AssertionError('%s not offered (offered: %s)' % (args.mech, mechs))
    if args.mech == 'PLAIN':
        c.auth_plain(user, pw)
    else:
        c.auth_scram(user, pw, args.mech)  # verifies the server signature too
    if i == 0:
        info['sasl'] = args.mech + ' (no channel binding)' if args.mech.startswith('SCRAM') else args.mech
    c._new_parser()
    _, feats = c.open_stream(to=args.domain)
    if feats.find(q(NS_BIND, 'bind')) is None:
        raise AssertionError('bind not offered')
    c.bind('bench')
    c.send('<presence/>')
    return c


def burst(args, clients, pid):
    """args.burst rounds of one chat message from every client to the next; each client then reads
    the one addressed to it (presences and other stanzas in between are skipped). Returns the RSS
    once the clients are quiet again."""
    body = 'x' * args.body
    n = len(clients)
    for r in range(args.burst):
        for i, c in enumerate(clients):
            to = 'u%05d@%s/bench' % ((i + 1) % n, args.domain)
            c.send("<message type='chat' to='%s' id='b%d'><body>%s</body></message>" % (to, r, body))
        for c in clients:
            while True:
                st = c.recv_stanza(timeout=60)
                if st.tag.endswith('message') and st.get('id') == 'b%d' % r:
                    break
    time.sleep(args.settle)
    return rss_kib(pid)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('n', nargs='?', type=int, default=1000, help='sessions (default 1000)')
    ap.add_argument('--host', default='127.0.0.1', help='server address (loopback)')
    ap.add_argument('--port', type=int, default=0,
                    help='c2s port of an already-running server (without it: start hearthd here)')
    ap.add_argument('--pid', type=int, default=0, help='pid whose RSS is measured (with --port)')
    ap.add_argument('--domain', default='localhost')
    ap.add_argument('--no-register', dest='register', action='store_false',
                    help='the accounts u00000.. (password password-<i>) exist already')
    ap.add_argument('--no-tls', dest='tls', action='store_false', help='skip STARTTLS')
    ap.add_argument('--mech', default='SCRAM-SHA-256', help='SASL mechanism (default SCRAM-SHA-256)')
    ap.add_argument('--settle', type=float, default=2.0,
                    help='seconds to wait before each RSS reading (default 2)')
    ap.add_argument('--burst', type=int, default=0,
                    help='rounds of one message per client to the next client, then RSS again')
    ap.add_argument('--body', type=int, default=512, help='message body bytes in --burst (default 512)')
    ap.add_argument('--hold', type=float, default=0,
                    help='seconds to keep the sessions open after the RESULT line (for a profiler)')
    ap.add_argument('--deadline', type=float, default=600, help='stop logging in after this many seconds')
    args = ap.parse_args()
    if args.host not in ('127.0.0.1', '::1', 'localhost'):
        sys.exit('c2s_sessions: loopback only (--host %s)' % args.host)
    if args.port and not args.pid:
        sys.exit('c2s_sessions: --port needs --pid (the process whose RSS is measured)')

    srv = None
    if not args.port:
        for var in ('HEARTHD', 'HEARTHCTL'):  # hearthd runs in its data directory
            if os.environ.get(var):
                os.environ[var] = os.path.abspath(os.environ[var])
        settings = {'registration.open': 'true', 'registration.rate_limit': '0',
                    'log.level': 'warn', 'limits.preauth_per_ip': '0',
                    'auth.scram_iterations': '4096'}
        if not args.tls:
            settings['c2s.tls'] = 'optional'
        for kv in os.environ.get('HEARTHD_SET', '').split():  # extra --set KEY=VALUE for hearthd
            k, _, v = kv.partition('=')
            settings[k] = v
        srv = Server(settings=settings)
        env = [v for v in os.environ.get('HEARTHD_ENV', '').split() if v]
        if os.environ.get('HEARTHD_PRELOAD'):
            env.append('LD_PRELOAD=' + os.environ['HEARTHD_PRELOAD'])
        wrap = os.environ.get('HEARTHD_WRAP', '').split()
        if env or wrap:  # env(1) execs hearthd: the pid measured stays hearthd's
            plain_command_line = srv.command_line
            srv.command_line = lambda: ['env'] + env + wrap + plain_command_line()
        # the harness turns off listeners a newer hearthd has (https.port): an older build run
        # against this client (HEARTHD_BEFORE in bench/run_sessions_compare.sh) has no such
        # listener and refuses the unknown key
        known = hearthd_config_keys(srv.hearthd)
        for k in [k for k, v in srv.settings.items() if k.endswith('.port') and v == '-1']:
            if k not in known:
                del srv.settings[k]
        try:
            srv.start()
        except BaseException:
            srv.close(failed=True)
            raise
        port, pid, name = srv.port, srv.proc.pid, 'hearthd'
        args.domain = 'localhost'
    else:
        port, pid, name = args.port, args.pid, 'server pid %d' % args.pid
    clients = []
    try:
        time.sleep(args.settle)  # let the server settle before the first reading
        base = rss_kib(pid)
        info = {}
        deadline = time.monotonic() + args.deadline
        half_at, half_rss = 0, 0
        t0 = time.monotonic()
        for i in range(args.n):
            if time.monotonic() > deadline:
                print('deadline reached after %d sessions' % i)
                break
            clients.append(session(args, srv, i, port, info))
            if i + 1 == args.n // 2:
                half_at, half_rss = i + 1, rss_kib(pid)
        elapsed = time.monotonic() - t0
        for c in clients[-5:]:
            r = c.ping(to=args.domain, timeout=10)
            assert r.get('type') == 'result', r
        time.sleep(args.settle)
        after = rss_kib(pid)
        k = len(clients)
        after_burst = burst(args, clients, pid) if args.burst and k > 1 else None
        per = (after - base) / max(k, 1)
        marginal = (after - half_rss) / (k - half_at) if half_at and k > half_at else None
        print('negotiated: TLS %s; SASL %s; offered %s'
              % (info.get('tls'), info.get('sasl'), ' '.join(info.get('mechanisms_offered', []))))
        print('sessions: %d in %.1f s (%.0f logins/s%s)'
              % (k, elapsed, k / elapsed, ' incl. in-band registration' if args.register else ''))
        print('%s RSS: %d KiB idle, %d KiB with %d sessions: %.1f KiB per session'
              % (name, base, after, k, per))
        if after_burst is not None:
            print('after burst: RSS %d KiB: %.1f KiB per session'
                  % (after_burst, (after_burst - base) / k))
        if marginal is not None:
            print('marginal: %.1f KiB per session over sessions %d..%d' % (marginal, half_at + 1, k))
        print('RESULT ' + json.dumps({
            'sessions': k, 'rss_idle_kib': base, 'rss_sessions_kib': after,
            'per_session_kib': round(per, 2),
            'marginal_kib': round(marginal, 2) if marginal is not None else None,
            'login_s': round(elapsed, 2),
            'rss_after_burst_kib': after_burst,
            'per_session_after_burst_kib': round((after_burst - base) / k, 2) if after_burst else None, 'tls': info.get('tls'), 'sasl': info.get('sasl'),
            'mechanisms_offered': info.get('mechanisms_offered')}))
        sys.stdout.flush()
        time.sleep(args.hold)
        if k < args.n:
            sys.exit(1)
    finally:
        for c in clients:
            c.close()
        if srv is not None:
            srv.close()


if __name__ == '__main__':
    main()
