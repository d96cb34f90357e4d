"""The certificate through /api/v1/certificate against a live hearthd: shown (from its file),
replaced (checked: it parses, the key matches, it is valid now; written atomically, the key
with mode 0600) and used for new TLS connections while open ones go on; refused ones change
nothing; SIGHUP loads the files on disk the same way."""

import datetime
import hashlib
import os
import signal
import socket
import ssl
import stat

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hearth import Client, main, wait_for
from test_admin_api import Admin, AdminCase

USERS = {'alice': 'wonderland'}


def make_cert(cn, days=30, start_days=-1, names=('localhost',)):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=start_days))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    kpem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
    return pem, kpem, hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def served_fingerprint(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(('127.0.0.1', port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname='localhost') as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def colon_hex(h):
    return ':'.join(h[i:i + 2] for i in range(0, len(h), 2)).upper()


class CertificateTest(AdminCase):
    def setUp(self):
        self.s = self.server(users=USERS, extra=('c2s_direct_tls',),
                             settings={'c2s.direct_tls_port': '0'})
        self.a = Admin(self.s, auth='Bearer ' + self.local_key(self.s))

    def files(self):
        with open(self.s.cert) as f, open(os.path.join(self.s.data_dir, 'key.pem')) as g:
            return f.read(), g.read()

    def alive(self, c):
        r = c.iq('get', "<ping xmlns='urn:xmpp:ping'/>", to='localhost')
        self.assertEqual(r.get('type'), 'result')

    def test_show_and_replace(self):
        code, _, doc = self.a.req('GET', '/api/v1/certificate')
        self.assertEqual(code, 200, doc)
        self.assertEqual(set(doc), {'subject', 'issuer', 'not_before', 'not_after', 'sha256',
                                    'san', 'self_signed', 'path'})
        self.assertTrue(doc['self_signed'])
        self.assertEqual(doc['path'], self.s.cert)
        self.assertEqual(set(doc['san']), {'localhost', '*.localhost', 'conference.localhost'})
        self.assertRegex(doc['not_after'], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
        port = self.s.ports['c2s_direct_tls']
        self.assertEqual(doc['sha256'], colon_hex(served_fingerprint(port)))
        before = Client(self.s)
        self.addCleanup(before.close)
        before.login('alice', USERS['alice'])
        pem, kpem, fp = make_cert('new.example', names=('localhost', 'new.example'))
        code, _, doc = self.a.req('PUT', '/api/v1/certificate', {'cert': pem, 'key': kpem})
        self.assertEqual(code, 200, doc)
        self.assertEqual((doc['subject'], doc['san'], doc['sha256']),
                         ('CN=new.example', ['localhost', 'new.example'], colon_hex(fp)))
        self.assertEqual(self.files(), (pem, kpem))
        mode = stat.S_IMODE(os.stat(os.path.join(self.s.data_dir, 'key.pem')).st_mode)
        self.assertEqual(mode, 0o600)
        self.assertEqual(served_fingerprint(port), fp)  # new connections
        self.alive(before)                              # the open one goes on
        after = Client(self.s)
        self.addCleanup(after.close)
        after.login('alice', USERS['alice'], resource='after')  # STARTTLS with the new one
        self.alive(after)
        self.assertEqual(self.a.req('GET', '/api/v1/certificate')[2]['sha256'], colon_hex(fp))

    def test_refusals_change_nothing(self):
        old = self.files()
        port = self.s.ports['c2s_direct_tls']
        served = served_fingerprint(port)
        pem, kpem, _ = make_cert('a.example')
        pem2, kpem2, _ = make_cert('b.example')
        expired = make_cert('old.example', days=-1, start_days=-10)
        future = make_cert('soon.example', days=30, start_days=2)
        for body, words in (({'cert': pem, 'key': kpem2}, 'does not match'),
                            ({'cert': 'nonsense', 'key': kpem}, 'not a PEM certificate'),
                            ({'cert': pem, 'key': 'nonsense'}, 'private key'),
                            ({'cert': expired[0], 'key': expired[1]}, 'expired'),
                            ({'cert': future[0], 'key': future[1]}, 'not valid yet'),
                            ({'cert': pem}, 'PEM strings'),
                            ({'cert': pem, 'key': 5}, 'PEM strings')):
            r = self.a.req('PUT', '/api/v1/certificate', body)
            self.assert_error(r, 400)
            self.assertIn(words, r[2]['error'])
        self.assert_error(self.a.req('PUT', '/api/v1/certificate', raw=b'x', ctype='text/plain'),
                          415)
        self.assert_error(self.a.req('POST', '/api/v1/certificate', {}), 405)
        self.assert_error(self.a.req('GET', '/api/v1/certificate', auth=None), 401)
        self.assertEqual(self.files(), old)
        self.assertEqual(served_fingerprint(port), served)
        api = self.a.req('GET', '/api/v1/openapi.json')[2]
        self.assertEqual(set(api['paths']['/certificate']), {'get', 'put'})

    def test_sighup_loads_the_files(self):
        port = self.s.ports['c2s_direct_tls']
        before = Client(self.s)
        self.addCleanup(before.close)
        before.login('alice', USERS['alice'])
        pem, kpem, fp = make_cert('disk.example')
        with open(self.s.cert, 'w') as f:
            f.write(pem)
        with open(os.path.join(self.s.data_dir, 'key.pem'), 'w') as f:
            f.write(kpem)
        os.kill(self.s.proc.pid, signal.SIGHUP)
        self.s.wait_log(r'\breloaded\b')
        self.assertEqual(served_fingerprint(port), fp)
        self.alive(before)
        # Files that do not load leave the certificate as it was.
        with open(os.path.join(self.s.data_dir, 'key.pem'), 'w') as f:
            f.write(make_cert('x')[1])
        os.kill(self.s.proc.pid, signal.SIGHUP)
        self.s.wait_log(r'certificate was not read again')
        self.assertEqual(served_fingerprint(port), fp)
        self.assertTrue(self.s.alive())


if __name__ == '__main__':
    main()
