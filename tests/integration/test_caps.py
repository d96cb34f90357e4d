"""The server's own entity capabilities (XEP-0115): the caps element in the stream features
after authentication carries a verification string that matches the server's disco#info, and
the caps node is answered with the same identity and features."""
import base64
import hashlib
import sys
import unittest

from hearth import NS_CLIENT, Server, q, to_str

NS_CAPS = 'http://jabber.org/protocol/caps'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_STREAM = 'http://etherx.jabber.org/streams'


def ver_of(query):
    """XEP-0115 §5.1 for a disco#info result without extended forms."""
    ids = sorted('%s/%s/%s/%s' % (i.get('category'), i.get('type'), i.get(
        '{http://www.w3.org/XML/1998/namespace}lang', ''), i.get('name', ''))
        for i in query.findall(q(NS_DISCO_INFO, 'identity')))
    feats = sorted(f.get('var') for f in query.findall(q(NS_DISCO_INFO, 'feature')))
    s = ''.join(x + '<' for x in ids + feats)
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


class CapsTest(unittest.TestCase):
    def test_stream_caps_match_disco(self):
        with Server(users={'alice': 'pw'}) as srv:
            c = srv.login('alice', 'pw', 'r')
            feats = c.features  # the features of the stream restarted after SASL
            caps = feats.find(q(NS_CAPS, 'c'))
            self.assertIsNotNone(caps, to_str(feats))
            self.assertEqual(caps.get('hash'), 'sha-1')
            node, ver = caps.get('node'), caps.get('ver')
            c.send("<iq type='get' id='d1' to='localhost'><query xmlns='%s'/></iq>" % NS_DISCO_INFO)
            r = c.recv_until(lambda e: e.get('id') == 'd1')
            self.assertEqual(r.get('type'), 'result', to_str(r))
            info = r.find(q(NS_DISCO_INFO, 'query'))
            feats_list = [f.get('var') for f in info.findall(q(NS_DISCO_INFO, 'feature'))]
            self.assertEqual(len(feats_list), len(set(feats_list)), 'duplicate features')
            self.assertEqual(ver_of(info), ver)
            # The caps node is answered with the same information and the node echoed.
            c.send("<iq type='get' id='d2' to='localhost'><query xmlns='%s' node='%s#%s'/></iq>"
                   % (NS_DISCO_INFO, node, ver))
            r2 = c.recv_until(lambda e: e.get('id') == 'd2')
            self.assertEqual(r2.get('type'), 'result', to_str(r2))
            info2 = r2.find(q(NS_DISCO_INFO, 'query'))
            self.assertEqual(info2.get('node'), '%s#%s' % (node, ver))
            self.assertEqual(ver_of(info2), ver)
            # Any other node does not exist.
            c.send("<iq type='get' id='d3' to='localhost'><query xmlns='%s' node='nope'/></iq>"
                   % NS_DISCO_INFO)
            r3 = c.recv_until(lambda e: e.get('id') == 'd3')
            self.assertEqual(r3.get('type'), 'error', to_str(r3))
            self.assertIsNotNone(r3.find('.//{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found'))


def main():
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print('%d passed, %d failed' % (result.testsRun - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
