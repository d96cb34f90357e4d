"""Multi-user chat rooms as a whole against a live hearthd: the join sequence
leaving in one write (XEP-0045 §7.2), rooms nobody is in leaving memory and
coming back whole, the per-user cap on rooms, what a removed account leaves
behind in rooms, and stanza ids a room never trusts from an occupant."""

import select
import socket
import struct
import time

from hearth import DOMAIN, NS_CLIENT, main, q, to_str, xml_escape
from imlib import NS_DELAY, NS_SID, is_msg, is_pres
from test_muc import MUC, NS_MUC_ADMIN, NS_MUC_OWNER, MucTestCase, codes, fnv1a, item, room_jid

# struct tcp_info (linux/tcp.h): tcpi_data_segs_in, the segments that carried data, sits at
# byte 152 (kernels since 4.6).
TCPI_DATA_SEGS_IN = 152


def data_segs_in(sock):
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(info) < TCPI_DATA_SEGS_IN + 4:
        return None
    return struct.unpack_from('I', info, TCPI_DATA_SEGS_IN)[0]


def worker_of(jid, workers=2):
    return fnv1a(jid) % workers


class TestJoinInOneWrite(MucTestCase):
    """§7.2: the other occupants' presence, the self-presence (110), the history and the
    subject reach the newcomer in one write: a client that finishes the join on the
    self-presence must not see the join-time subject as a change made later."""

    settings = {'c2s.tls': 'optional'}

    def one_read_join(self, room_name, history):
        a = self.connect(self.srv, 'alice', resource='r1', roster=False, tls=False)
        room = self.create(a, room_name, 'Alice')
        a.send("<message to='%s' type='groupchat'><subject>Set before</subject></message>" % room)
        self.subject_of(a, room)
        for i in range(history):
            self.say(a, room, 'old %d' % i)
            self.got_groupchat(a, room, 'Alice', 'old %d' % i)
        b = self.connect(self.srv, 'bob', resource='r1', roster=False, tls=False)
        b.sync()
        b.take()  # its own presence
        self.assertEqual(b.events, [])
        before = data_segs_in(b.sock)
        if before is None:
            self.skipTest('TCP_INFO without tcpi_data_segs_in')
        self.join_send(b, room, 'Bob')
        r, _, _ = select.select([b.sock], [], [], 5)
        self.assertTrue(r, 'nothing after the join')
        b.sock.settimeout(5)
        data = b.sock.recv(1 << 20)
        segs = data_segs_in(b.sock) - before
        text = data.decode('utf-8', 'replace')
        # everything of the sequence was in that one read ...
        self.assertIn("code='110'", text)
        for i in range(history):
            self.assertIn('old %d' % i, text)
        self.assertIn('<subject>Set before</subject>', text, 'the subject came in a later read')
        self.assertTrue(text.endswith('</message>'), text[-200:])
        # ... because it left the server in one write
        self.assertEqual(segs, 1, 'the join sequence came in %d TCP segments' % segs)
        b._feed(data)
        got = []
        while b.events:
            kind, el = b.events.pop(0)
            if kind == 'stanza':
                got.append(el)
        self.assertTrue(is_pres(got[0], from_=room + '/Alice'), to_str(got[0]))
        self.assertIn(110, codes(got[1]))
        self.assertEqual([m.findtext(q(NS_CLIENT, 'body')) for m in got[2:-1]],
                         ['old %d' % i for i in range(history)])
        self.assertEqual(got[-1].findtext(q(NS_CLIENT, 'subject')), 'Set before')

    def test_join_sequence_in_one_read_room_on_the_other_worker(self):
        bob = worker_of('bob@' + DOMAIN)
        name = next('far%d' % i for i in range(100) if worker_of(room_jid('far%d' % i)) != bob)
        self.one_read_join(name, 4)

    def test_join_sequence_in_one_read_room_on_the_same_worker(self):
        bob = worker_of('bob@' + DOMAIN)
        name = next('near%d' % i for i in range(100) if worker_of(room_jid('near%d' % i)) == bob)
        self.one_read_join(name, 4)


if __name__ == '__main__':
    main()
