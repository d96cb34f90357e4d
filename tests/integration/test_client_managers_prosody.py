"""The client library's managers against Debian's Prosody (with a MUC component), started by
the test on loopback: the same tests as test_client_managers.py, since the library is a general
XMPP client."""

import unittest

from clientlib import Prosody
from hearth import main
from test_client_managers import MUC, USERS, ManagerTests


class ManagersProsodyTest(ManagerTests, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Prosody(USERS, muc=MUC)
        try:
            cls.server.start()
        except BaseException:
            cls.server.close(failed=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.close()


if __name__ == '__main__':
    main()
