"""hearthd under a service manager: the sd_notify(3) datagrams a Type=notify unit waits for
(READY=1 once every listener is up, STOPPING=1 at shutdown; path and abstract sockets), and a
SIGHUP (the unit's ExecReload) that leaves the server running."""

import os
import signal
import socket
import tempfile
import unittest

from hearth import Client, Server, main, wait_for

TIMEOUT = 10.0


class NotifySocket:
    """The manager's end: a datagram socket named by a path, or abstract when abstract."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.dir = tempfile.mkdtemp(prefix='hearth-notify-')
        if abstract:
            name = 'hearth-test-notify-%d-%d' % (os.getpid(), id(self))
            self.sock.bind('\0' + name)
            self.env = '@' + name
        else:
            self.env = os.path.join(self.dir, 'notify')
            self.sock.bind(self.env)
        self.sock.settimeout(TIMEOUT)
        self.got = []

    def recv(self):
        data = self.sock.recv(4096).decode()
        self.got.append(data)
        return data

    def close(self):
        self.sock.close()
        try:
            os.unlink(os.path.join(self.dir, 'notify'))
        except FileNotFoundError:
            pass
        os.rmdir(self.dir)


class ServiceTest(unittest.TestCase):
    def start_notified(self, abstract=False):
        ns = NotifySocket(abstract)
        self.addCleanup(ns.close)
        s = Server()
        self.addCleanup(s.close)
        os.environ['NOTIFY_SOCKET'] = ns.env
        try:
            s.start()
        finally:
            del os.environ['NOTIFY_SOCKET']
        return ns, s

    def check_ready_then_stopping(self, abstract):
        ns, s = self.start_notified(abstract)
        self.assertEqual(ns.recv(), 'READY=1')
        # READY comes after every listener is bound: the ports file is written by then.
        self.assertTrue(os.path.exists(s.ports_file))
        s.terminate()
        self.assertEqual(ns.recv(), 'STOPPING=1')
        self.assertEqual(s.wait_exit(), 0)

    def test_ready_and_stopping_on_a_path_socket(self):
        self.check_ready_then_stopping(abstract=False)

    def test_ready_and_stopping_on_an_abstract_socket(self):
        self.check_ready_then_stopping(abstract=True)

    def test_no_notify_socket_no_harm(self):
        with Server() as s:
            c = Client(s)
            c.connect()
            c.close()

    def test_sighup_leaves_the_server_running(self):
        with Server(users={'alice': 'pw'}) as s:
            s.proc.send_signal(signal.SIGHUP)
            # SIGHUP's default action ends the process: either it dies or it logs the signal.
            wait_for(lambda: not s.alive() or 'SIGHUP' in s.current_log(), TIMEOUT,
                     'hearthd to log SIGHUP or die of it')
            s.assert_alive()
            c = Client(s)
            c.connect()
            c.close()
            s.assert_alive()


if __name__ == '__main__':
    main()
