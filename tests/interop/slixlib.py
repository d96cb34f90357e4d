"""What the slixmpp interop tests (test_slixmpp*.py) share: a bot base class
on Debian's python3-slixmpp (1.8.x) that trusts the test server's cert.pem,
records its SASL attempts and errors and resolves a `started` future once its
session is up (or fails it with the reason), and a TestCase base that runs a
hearthd, drives slixmpp's event loop with deadlines and tears the bots down.

Not a test itself (ctest runs only test_*.py). A test file imports it after
putting this directory on sys.path; `main` is hearth's ('N passed, N failed')."""

import asyncio
import logging
import os
import sys
import unittest
from pathlib import Path

from hearth import Server, main  # noqa: F401 - main is re-exported for the test files

try:
    import slixmpp
except ImportError:  # pragma: no cover - the package is a build dependency
    slixmpp = None

__all__ = ['slixmpp', 'main', 'SlixBot', 'SlixTestCase']

if os.environ.get('HEARTH_SLIXMPP_DEBUG'):
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)


class SlixBot(slixmpp.ClientXMPP if slixmpp else object):
    """A slixmpp client for the test server.

    `started` resolves to the bound full JID once the session has started and
    `setup_session()` has run; one of `fail_events` (or an exception from
    `setup_session()`) fails it, and every future in `awaited`, with the
    reason instead. `sasl_failures` lists (mechanism, condition) for each
    failed SASL attempt (slixmpp then tries the next mechanism),
    `chosen_mech` is the one that succeeded, `errors` lists (event, text) for
    each fail event seen."""

    plugins = ()
    fail_events = ('failed_all_auth', 'connection_failed', 'stream_error')

    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ca_certs = Path(cafile)
        for p in self.plugins:
            self.register_plugin(p)
        self.started = self.loop.create_future()
        self.awaited = [self.started]
        self.chosen_mech = None
        self.sasl_failures = []
        self.errors = []
        # a plain setup_session() runs inside the session_start event, a coroutine one as a task
        # after it, as slixmpp runs handlers: that timing matters (e.g. to xep_0198's counts)
        self.add_event_handler('session_start', self._on_session_start_async
                               if asyncio.iscoroutinefunction(self.setup_session) else self._on_session_start)
        self.add_event_handler('auth_success', self._on_auth)
        self.add_event_handler('failed_auth', lambda f: self.sasl_failures.append(
            (self['feature_mechanisms'].mech.name, f['condition'])))
        for ev in self.fail_events:
            self.add_event_handler(ev, lambda arg, ev=ev: self.fail(ev, arg))

    @staticmethod
    def resolve(fut, value):
        if not fut.done():
            fut.set_result(value)

    def _on_auth(self, _):
        self.chosen_mech = self['feature_mechanisms'].mech.name

    def setup_session(self):
        """Run at session_start before `started` resolves (may be a coroutine function):
        nothing by default."""

    def _on_session_start(self, _):
        try:
            self.setup_session()
        except Exception as e:
            self.fail('session setup failed', repr(e))
            return
        self.resolve(self.started, self.boundjid.full)

    async def _on_session_start_async(self, _):
        try:
            await self.setup_session()
        except Exception as e:  # IqError / IqTimeout / AssertionError: reported to the test
            self.fail('session setup failed', repr(e))
            return
        self.resolve(self.started, self.boundjid.full)

    def fail(self, what, arg):
        self.errors.append((what, str(arg)))
        for fut in self.awaited:
            if fut is not None and not fut.done():
                fut.set_exception(AssertionError('%s: %s: %s (SASL failures: %s)'
                                                 % (self.boundjid.full, what, arg, self.sasl_failures)))


@unittest.skipIf(slixmpp is None, 'python3-slixmpp is not installed')
class SlixTestCase(unittest.TestCase):
    """Runs a hearthd (Server(**server_args)) and a fresh event loop per test;
    bots made with bot() are disconnected (or aborted) and raw harness clients
    in self.raw closed at tearDown, which then checks the server is alive."""

    bot_class = SlixBot
    server_args = {'users': {}}
    timeout = 20          # default deadline of run_until() and until(), seconds
    poll_interval = 0.05  # until()'s polling step, seconds

    def setUp(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.bots = []
        self.raw = []
        self.s = Server(**self.server_args)
        self.addCleanup(self.s.close)
        self.s.start()

    def tearDown(self):
        for c in self.raw:
            c.close()
        for b in self.bots:
            try:
                self.loop.run_until_complete(asyncio.wait_for(b.disconnect(wait=1), 5))
            except Exception:
                b.abort()
        for b in self.bots:
            b.abort()
        pending = asyncio.all_tasks(self.loop)
        for t in pending:
            t.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()
        asyncio.set_event_loop(None)
        self.s.assert_alive()

    def bot(self, user, resource, password=None, **kw):
        """A bot_class for user@localhost/resource (password: server_args' users[user]),
        not yet connected."""
        if password is None:
            password = self.server_args['users'][user]
        b = self.bot_class('%s@localhost/%s' % (user, resource), password, self.s.cert, **kw)
        self.bots.append(b)
        return b

    def connect(self, *bots, direct_tls=False):
        """Connect each bot to the server's STARTTLS port, or its direct TLS one."""
        port = self.s.tls_port if direct_tls else self.s.port
        for b in bots:
            b.connect(('127.0.0.1', port), use_ssl=direct_tls)

    def run_until(self, aw, timeout=None):
        return self.loop.run_until_complete(asyncio.wait_for(aw, self.timeout if timeout is None else timeout))

    def until(self, cond, what, timeout=None):
        timeout = self.timeout if timeout is None else timeout

        async def poll():
            while not cond():
                await asyncio.sleep(self.poll_interval)
        try:
            self.run_until(poll(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError('timed out after %ds waiting for %s%s' % (timeout, what, self.until_detail()))

    def until_detail(self):
        """Appended to until()'s timeout message."""
        return ''
