#!/usr/bin/env python3
"""Memory per connected session: hearthd on loopback, N clients registered in band, logged in
over STARTTLS with SCRAM-SHA-256, bound and available; hearthd's RSS is read from /proc before
and after. Loopback only, bounded by N and by a deadline; stops by itself.

    HEARTHD=build/hearthd HEARTHCTL=build/hearthctl python3 bench/c2s_sessions.py [N]
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'tests', 'integration'))
from hearth import Client, Server  # noqa: E402

NS_REG = 'jabber:iq:register'


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    deadline = time.monotonic() + 600
    with Server(settings={'registration.open': 'true', 'registration.rate_limit': '0',
                          'log.level': 'warn', 'limits.preauth_per_ip': '0',
                          'auth.scram_iterations': '4096'}) as srv:
        time.sleep(0.2)  # let the workers settle before the first reading
        base = rss_kib(srv.proc.pid)
        clients = []
        t0 = time.monotonic()
        for i in range(n):
            if time.monotonic() > deadline:
                break
            c = Client(srv)
            c.connect(srv.port)
            c.open_stream()
            c.starttls()
            c.open_stream()
            user = 'u%05d' % i
            c.send("<iq type='set' id='r'><query xmlns='%s'><username>%s</username>"
                   "<password>password-%d</password></query></iq>" % (NS_REG, user, i))
            r = c.recv_stanza()
            assert r.get('type') == 'result', r
            c.auth_scram(user, 'password-%d' % i)
            c._new_parser()
            c.open_stream()
            c.bind('bench')
            c.send('<presence/>')
            clients.append(c)
        elapsed = time.monotonic() - t0
        for c in clients[-5:]:
            assert c.ping().get('type') == 'result'
        after = rss_kib(srv.proc.pid)
        k = len(clients)
        print('sessions: %d in %.1f s (%.0f logins/s incl. in-band registration)' % (k, elapsed, k / elapsed))
        print('hearthd RSS: %d KiB idle, %d KiB with %d sessions: %.1f KiB per session'
              % (base, after, k, (after - base) / max(k, 1)))
        for c in clients:
            c.close()


if __name__ == '__main__':
    main()
