#!/usr/bin/python3
"""Bounded multi-user chat load run on loopback: N occupants (default 1,000)
join one room, a few of them send groupchat messages at a fixed rate, and
every occupant timestamps what it receives. Reports join time, messages/s
sent and delivered, and delivery latency (p50/p90/p99/max) over every
(message, recipient) pair.

Standard library only (asyncio, raw XMPP without TLS so that the client side
stays cheap): SASL PLAIN on an unencrypted loopback stream, accounts created
in band (XEP-0077) or already present. Runs against a hearthd it starts
itself (--hearthd) or against any server already listening on loopback,
such as Debian's Prosody (see docs/bench-muc.md). Refuses non-loopback
addresses; every phase has a deadline.

  bench/muc_load.py --hearthd build/hearthd --users 1000 --messages 200 --rate 100
  bench/muc_load.py --port 5222 --domain localhost --muc conference.localhost --register
"""

import argparse
import asyncio
import base64
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

MAX_USERS = 5000  # one process holds ~19,000 sockets here (ARCHITECTURE.md); stay well below

RE_BODY = re.compile(rb'<body>b:(\d+):(\d+)</body>')
RE_SELF = re.compile(rb'''code=['"]110['"]''')
RE_PRES_ERR = re.compile(rb'''<presence[^>]*type=['"]error['"][^>]*>.*?</presence>''', re.S)
RE_SUBJECT = re.compile(rb'<subject')


def die(msg):
    sys.stderr.write('muc_load: %s\n' % msg)
    sys.exit(2)


class Conn:
    def __init__(self, args, user, index):
        self.args = args
        self.user = user
        self.index = index
        self.reader = self.writer = None
        self.buf = b''
        self.latencies = []
        self.received = 0
        self.bytes = 0

    async def read_until(self, pattern, deadline):
        """Reads until pattern (bytes regex) matches the buffer; returns the match and keeps
        what follows it."""
        while True:
            m = pattern.search(self.buf)
            if m:
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError('%s: waited for %r; have %r' % (self.user, pattern.pattern, self.buf[-300:]))
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except asyncio.TimeoutError:
                raise TimeoutError('%s: waited for %r; have %r'
                                   % (self.user, pattern.pattern, self.buf[-300:])) from None
            if not data:
                raise ConnectionError('%s: connection closed; last bytes %r' % (self.user, self.buf[-300:]))
            self.buf += data

    def send(self, s):
        self.writer.write(s.encode() if isinstance(s, str) else s)

    def header(self):
        self.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>" % self.args.domain)

    async def open(self, deadline):
        self.header()
        m = await self.read_until(re.compile(rb'</stream:features>'), deadline)
        feats = self.buf[:m.end()]
        self.buf = self.buf[m.end():]
        return feats

    async def login(self, deadline):
        self.reader, self.writer = await asyncio.open_connection(self.args.host, self.args.port)
        feats = await self.open(deadline)
        pw = self.args.password_prefix + self.user
        while self.args.register:
            self.send("<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>%s</username>"
                      "<password>%s</password></query></iq>" % (self.user, pw))
            m = await self.read_until(re.compile(rb'''<iq[^>]*id=['"]reg['"][^>]*(/>|>.*?</iq>)''', re.S), deadline)
            reply = m.group(0)
            self.buf = self.buf[m.end():]
            if b'resource-constraint' in reply:
                await asyncio.sleep(0.1)  # the server bounds registrations in flight
                continue
            if b'error' in reply and b'conflict' not in reply:
                raise RuntimeError('%s: registration failed: %r' % (self.user, reply))
            break
        if b'PLAIN' not in feats:
            raise RuntimeError('%s: PLAIN is not offered on this stream (enable it for loopback runs): %r'
                               % (self.user, feats))
        token = base64.b64encode(('\0%s\0%s' % (self.user, pw)).encode()).decode()
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" % token)
        m = await self.read_until(re.compile(rb'<(success|failure)[^>]*(/>|>.*?</(success|failure)>)', re.S),
                                  deadline)
        if m.group(1) != b'success':
            raise RuntimeError('%s: authentication failed: %r' % (self.user, m.group(0)))
        self.buf = b''
        await self.open(deadline)
        self.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  "<resource>bench</resource></bind></iq>")
        m = await self.read_until(re.compile(rb'''<iq[^>]*id=['"]bind['"].*?</iq>''', re.S), deadline)
        self.buf = self.buf[m.end():]
        self.send('<presence/>')

    async def join(self, nick, deadline, create=False):
        room = self.args.room
        while True:
            self.buf = b''
            self.send("<presence to='%s/%s'><x xmlns='http://jabber.org/protocol/muc'>"
                      "<history maxstanzas='0'/></x></presence>" % (room, nick))
            done = re.compile(RE_SELF.pattern + b'|' + RE_PRES_ERR.pattern, re.S)
            m = await self.read_until(done, deadline)
            if b'error' in m.group(0) and b'110' not in m.group(0):
                if b'resource-constraint' in m.group(0) or b'policy-violation' in m.group(0):
                    await asyncio.sleep(0.2)  # the room's join-rate limit: back off and retry
                    continue
                raise RuntimeError('%s: join refused: %r' % (self.user, m.group(0)))
            break
        await self.read_until(RE_SUBJECT, deadline)
        if create and re.search(rb'''code=['"]201['"]''', self.buf):
            self.send("<iq type='set' id='cfg' to='%s'><query xmlns='http://jabber.org/protocol/muc#owner'>"
                      "<x xmlns='jabber:x:data' type='submit'/></query></iq>" % room)
            await self.read_until(re.compile(rb'''<iq[^>]*id=['"]cfg['"]'''), deadline)
        self.buf = b''

    async def receive(self, stop):
        """Counts bodies and their latency until stop is set."""
        tail = b''
        while not stop.is_set():
            try:
                data = await asyncio.wait_for(self.reader.read(262144), 0.5)
            except asyncio.TimeoutError:
                continue
            if not data:
                return
            now = time.monotonic_ns()
            self.bytes += len(data)
            data = tail + data
            last = 0
            for m in RE_BODY.finditer(data):
                self.received += 1
                self.latencies.append(now - int(m.group(2)))
                last = m.end()
            tail = data[max(last, len(data) - 200):]


def proc_status(pid):
    """(VmRSS KiB, VmHWM KiB, CPU seconds user+system) of a local process, or Nones."""
    rss = hwm = cpu = None
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    rss = int(line.split()[1])
                elif line.startswith('VmHWM:'):
                    hwm = int(line.split()[1])
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    except (OSError, ValueError, IndexError):
        pass
    return rss, hwm, cpu


def percentile(sorted_vals, p):
    if not sorted_vals:
        return float('nan')
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


async def run(args):
    users = ['%s%d' % (args.user_prefix, i) for i in range(args.users)]
    conns = [Conn(args, u, i) for i, u in enumerate(users)]
    sem = asyncio.Semaphore(args.concurrency)
    t0 = time.monotonic()
    deadline = t0 + args.login_timeout

    async def login(c):
        async with sem:
            await c.login(deadline)
    await asyncio.gather(*(login(c) for c in conns))
    t_login = time.monotonic() - t0
    print('logged in %d clients in %.1fs' % (len(conns), t_login))

    t1 = time.monotonic()
    deadline = t1 + args.join_timeout
    await conns[0].join('n0', deadline, create=True)

    async def join(c):
        async with sem:
            await c.join('n%d' % c.index, deadline)
    await asyncio.gather(*(join(c) for c in conns[1:]))
    t_join = time.monotonic() - t1
    print('joined %d occupants in %.1fs (%.0f joins/s)' % (len(conns), t_join, len(conns) / max(t_join, 1e-9)))

    stop = asyncio.Event()
    readers = [asyncio.ensure_future(c.receive(stop)) for c in conns]
    # Settle: the joins left presence broadcasts (N^2/2 of them) queued towards the occupants;
    # read them away before the first message so that the latencies measure groupchat only.
    ts = time.monotonic()
    last, quiet_since = -1, ts
    while time.monotonic() - ts < args.settle_timeout:
        await asyncio.sleep(0.1)
        now_bytes = sum(c.bytes for c in conns)
        if now_bytes != last:
            last, quiet_since = now_bytes, time.monotonic()
        elif time.monotonic() - quiet_since >= 1.0:
            break
    print('settled in %.1fs (%d bytes of join traffic read)' % (time.monotonic() - ts, max(last, 0)))
    senders = conns[:args.senders]
    cpu_client0 = time.process_time()
    srv0 = proc_status(args.server_pid) if args.server_pid else (None, None, None)
    interval = 1.0 / args.rate
    t2 = time.monotonic()
    for seq in range(args.messages):
        target = t2 + seq * interval
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        s = senders[seq % len(senders)]
        s.send("<message to='%s' type='groupchat'><body>b:%d:%d</body></message>"
               % (args.room, seq, time.monotonic_ns()))
    t_sent = time.monotonic() - t2
    expected = args.messages * len(conns)
    end = time.monotonic() + args.drain_timeout
    while time.monotonic() < end and sum(c.received for c in conns) < expected:
        await asyncio.sleep(0.05)
    t_all = time.monotonic() - t2
    srv1 = proc_status(args.server_pid) if args.server_pid else (None, None, None)
    cpu_client = time.process_time() - cpu_client0
    stop.set()
    await asyncio.gather(*readers, return_exceptions=True)
    got = sum(c.received for c in conns)
    lat = sorted(x for c in conns for x in c.latencies)
    ms = lambda ns: ns / 1e6
    print('sent %d messages in %.2fs (%.0f msg/s offered, %d senders)'
          % (args.messages, t_sent, args.messages / max(t_sent, 1e-9), len(senders)))
    print('delivered %d of %d (%.2f%%) in %.2fs: %.0f deliveries/s'
          % (got, expected, 100.0 * got / max(expected, 1), t_all, got / max(t_all, 1e-9)))
    print('latency ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f'
          % (ms(percentile(lat, 50)), ms(percentile(lat, 90)), ms(percentile(lat, 99)),
             ms(lat[-1]) if lat else float('nan')))
    result = {
        'users': len(conns), 'messages': args.messages, 'rate_offered': args.rate,
        'login_s': round(t_login, 2), 'join_s': round(t_join, 2), 'send_s': round(t_sent, 3),
        'delivered': got, 'expected': expected, 'deliver_s': round(t_all, 3),
        'deliveries_per_s': round(got / max(t_all, 1e-9), 1),
        'p50_ms': round(ms(percentile(lat, 50)), 1), 'p90_ms': round(ms(percentile(lat, 90)), 1),
        'p99_ms': round(ms(percentile(lat, 99)), 1), 'max_ms': round(ms(lat[-1]), 1) if lat else None,
        'client_cpu_s': round(cpu_client, 2),
    }
    if args.server_pid:
        result.update({'server_rss_kib': srv1[0], 'server_hwm_kib': srv1[1],
                       'server_cpu_s': round(srv1[2] - srv0[2], 2) if None not in (srv0[2], srv1[2]) else None})
        print('server pid %d: RSS %s KiB (peak %s KiB), %s CPU s during the message phase'
              % (args.server_pid, srv1[0], srv1[1], result['server_cpu_s']))
    print('client: %.2f CPU s during the message phase' % cpu_client)
    print('RESULT ' + json.dumps(result, sort_keys=True))
    for c in conns:
        try:
            c.send('</stream:stream>')
            c.writer.close()
        except Exception:
            pass
    return 0 if got == expected else 1


def hearthd_config_keys(binary):
    """The configuration keys a hearthd binary knows (its --config-doc table), so that one client can
    start builds from before and after a key was added (bench/run_*_compare.sh, HEARTHD_BEFORE)."""
    doc = subprocess.run([binary, '--config-doc'], capture_output=True, text=True, timeout=30).stdout
    return set(re.findall(r'^\| `([a-z0-9_.]+)`', doc, re.M))


def start_hearthd(args):
    data = tempfile.mkdtemp(prefix='muc-bench-')
    sets = {
        'server.domain': args.domain, 'muc.domain': args.muc, 'c2s.port': '0', 'c2s.direct_tls_port': '-1',
        'c2s.bind': '127.0.0.1', 'c2s.tls': 'optional', 'c2s.plain_without_tls': 'true',
        'registration.open': 'true', 'registration.rate_limit': '0', 'limits.preauth_per_ip': '0',
        'http.port': '-1', 'admin.port': '-1', 'log.level': 'warn', 'server.workers': str(args.workers),
        'c2s.auth_fail_delay_ms': '0',
    }
    # keys of newer builds, set only when the binary knows them (so that older builds still run)
    newer = {
        'https.port': '-1',  # default 5443 on every address: loopback only, and no port clash
        # every login in flight holds one attempt of its address's failure budget (burst 30), so
        # that 1,000 simultaneous logins from 127.0.0.1 are refused unchecked past the 30th
        'auth.ip_fail_burst': '0', 'auth.pair_fail_burst': '0', 'auth.account_fail_burst': '0',
    }
    known = hearthd_config_keys(args.hearthd)
    sets.update((k, v) for k, v in newer.items() if k in known)
    cmd = [args.hearthd, '--data-dir', data]
    for k, v in sets.items():
        cmd += ['--set', '%s=%s' % (k, v)]
    log = open(os.path.join(data, 'hearthd.log'), 'wb')
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    ports = os.path.join(data, 'hearthd.ports')
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            die('hearthd exited: see %s' % os.path.join(data, 'hearthd.log'))
        if os.path.exists(ports):
            for line in open(ports):
                name, port = line.split()
                if name == 'c2s':
                    args.port = int(port)
                    return proc, data
        time.sleep(0.05)
    proc.kill()
    die('hearthd did not start')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--hearthd', help='start this hearthd on ephemeral loopback ports (implies --register)')
    ap.add_argument('--workers', type=int, default=2, help='server.workers of the started hearthd')
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, default=5222)
    ap.add_argument('--domain', default='localhost')
    ap.add_argument('--muc', default=None, help='MUC service (default conference.<domain>)')
    ap.add_argument('--room', default=None, help='room JID (default bench@<muc>)')
    ap.add_argument('--users', type=int, default=1000)
    ap.add_argument('--user-prefix', default='mucbench')
    ap.add_argument('--password-prefix', default='pw-')
    ap.add_argument('--register', action='store_true', help='create the accounts in band (XEP-0077)')
    ap.add_argument('--senders', type=int, default=10)
    ap.add_argument('--messages', type=int, default=200)
    ap.add_argument('--rate', type=float, default=100.0, help='messages per second offered')
    ap.add_argument('--concurrency', type=int, default=100, help='logins and joins in flight')
    ap.add_argument('--login-timeout', type=float, default=120)
    ap.add_argument('--join-timeout', type=float, default=120)
    ap.add_argument('--drain-timeout', type=float, default=60)
    ap.add_argument('--settle-timeout', type=float, default=60,
                    help='at most this long reading the join traffic away before the first message')
    ap.add_argument('--server-pid', type=int, default=0,
                    help='local server process whose RSS and CPU time are reported (set by --hearthd)')
    args = ap.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback:
        die('refusing %s: this load run is for loopback only' % args.host)
    if not 1 <= args.users <= MAX_USERS:
        die('--users must be 1..%d' % MAX_USERS)
    if not 1 <= args.senders <= args.users or args.messages < 1 or args.rate <= 0:
        die('bad --senders/--messages/--rate')
    args.muc = args.muc or 'conference.' + args.domain
    args.room = args.room or 'bench@' + args.muc
    proc = data = None
    if args.hearthd:
        args.register = True
        proc, data = start_hearthd(args)
        args.server_pid = proc.pid
    try:
        rc = asyncio.run(run(args))
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            shutil.rmtree(data, ignore_errors=True)
    sys.exit(rc)


if __name__ == '__main__':
    main()
