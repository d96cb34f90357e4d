"""Interop of the server's conversions with Debian's python3-slixmpp (1.8.x), clients of both
generations on one server:

- avatars (XEP-0398): a modern client publishes its avatar with xep_0084 only; an old client
  with xep_0153 hears the avatar's hash in the modern client's presence (put there by the
  server) and reads the picture from the vCard with xep_0054; the other way, an old client sets
  its avatar with xep_0153's set_avatar (a vCard), and a client with xep_0084 is notified of the
  metadata and fetches the data by its id;
- bookmarks (XEP-0402 5.3, #compat): one account with an old-style resource storing XEP-0048
  bookmarks through xep_0048 in private XML (xep_0049) and a new-style one using the XEP-0402
  node through xep_0060 (slixmpp 1.8 has no xep_0402 plugin): the new one is notified of what
  the old one writes and fetches it; what the new one publishes, the old one reads;
- bookmarks (XEP-0402 5.3, #compat-pep; XEP-0411): the same with an old-style resource whose
  xep_0048 keeps the list in PEP (storage_method 'xep_0223': the node storage:bookmarks): its
  list reaches XEP-0402, and what the new one publishes comes back to it as a storage:bookmarks
  notification and in what it reads."""

import asyncio
import hashlib
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slixlib import SlixBot, SlixTestCase, main, slixmpp  # noqa: E402

AVATAR_METADATA = 'urn:xmpp:avatar:metadata'
BOOKMARKS = 'urn:xmpp:bookmarks:1'
CONVERSION = 'urn:xmpp:pep-vcard-conversion:0'
# A 1x1 PNG and a few JPEG-looking bytes: what matters is that the bytes come back exactly.
PNG = bytes.fromhex('89504e470d0a1a0a0000000d4948445200000001000000010806000000'
                    '1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e5270ede0000000049454e44ae426082')
JPEG = b'\xff\xd8\xff\xe0' + bytes(range(200))


class Bot(SlixBot):
    plugins = ('xep_0030', 'xep_0004', 'xep_0060', 'xep_0115', 'xep_0163', 'xep_0054', 'xep_0084')

    def __init__(self, jid, password, cafile, notify=()):
        super().__init__(jid, password, cafile)
        self.notify = notify
        self.auto_authorize = True
        self.auto_subscribe = True
        self.avatars = asyncio.Queue()  # (publisher, metadata item id, <info/> attributes)
        self.hashes = asyncio.Queue()  # (from bare JID, photo) from vcard_avatar_update
        self.events = asyncio.Queue()  # (node, item id, payload)
        self.add_event_handler('avatar_metadata_publish', self._on_avatar)
        self.add_event_handler('vcard_avatar_update', lambda p: self.hashes.put_nowait(
            (p['from'].bare, p['vcard_temp_update']['photo'])))
        self.add_event_handler('pubsub_publish', self._on_publish)

    def _on_avatar(self, msg):
        item = msg['pubsub_event']['items']['item']
        info = item['payload'].find('{%s}info' % AVATAR_METADATA)
        self.avatars.put_nowait((msg['from'].bare, item['id'], dict(info.attrib) if info is not None else None))

    def _on_publish(self, msg):
        items = msg['pubsub_event']['items']
        self.events.put_nowait((items['node'], items['item']['id'], items['item']['payload']))

    async def setup_session(self):
        for node in self.notify:
            self['xep_0163'].add_interest(node)
        await self['xep_0115'].update_caps(broadcast=False)
        await self.get_roster()
        self.send_presence()


class OldBot(Bot):
    """A client of vCard avatars (xep_0153) and private XML bookmarks (xep_0048)."""
    plugins = Bot.plugins + ('xep_0153', 'xep_0049', 'xep_0048')


class LegacyPepBot(Bot):
    """A client of XEP-0048 bookmarks kept in PEP (xep_0048 through xep_0223)."""
    plugins = Bot.plugins + ('xep_0045', 'xep_0049', 'xep_0223')

    def __init__(self, jid, password, cafile, notify=()):
        super().__init__(jid, password, cafile, notify)
        self.register_plugin('xep_0048', {'storage_method': 'xep_0223'})
        self.lists = asyncio.Queue()  # storage:bookmarks notifications: {room: (name, nick, autojoin)}
        self.add_event_handler('bookmarks_publish', lambda msg: self.lists.put_nowait(
            confs_of(msg['pubsub_event']['items']['item']['bookmarks'])))


def confs_of(bookmarks):
    return {str(c['jid']): (c['name'], c['nick'], c['autojoin']) for c in bookmarks['conferences']}


class SlixmppCompatTest(SlixTestCase):
    bot_class = Bot
    server_args = {'users': {'alice': 'alice-pw', 'bob': 'bob-pw', 'carol': 'carol-pw'}}
    timeout = 30

    def started(self, user, resource, cls=Bot, **kw):
        self.bot_class = cls
        b = self.bot(user, resource, **kw)
        self.connect(b)
        self.run_until(b.started)
        return b

    def befriend(self, a, b):
        a.send_presence_subscription(pto=b.boundjid.bare)
        self.until(lambda: a.client_roster[b.boundjid.bare]['subscription'] == 'both'
                   and b.client_roster[a.boundjid.bare]['subscription'] == 'both', 'subscription both')

    async def hash_from(self, bot, bare, want):
        while True:
            frm, photo = await bot.hashes.get()
            if frm == bare and photo == want:
                return photo

    def test_avatar_from_xep_0084_to_xep_0153(self):
        alice = self.started('alice', 'modern')  # XEP-0084 only
        bob = self.started('bob', 'old', cls=OldBot)  # vCard avatars
        self.befriend(alice, bob)
        info = self.run_until(alice['xep_0030'].get_info(jid='alice@localhost'))
        self.assertIn(CONVERSION, info['disco_info']['features'])

        avatar_id = hashlib.sha1(PNG).hexdigest()
        self.run_until(alice['xep_0084'].publish_avatar(PNG))
        self.run_until(alice['xep_0084'].publish_avatar_metadata(
            {'id': avatar_id, 'type': 'image/png', 'bytes': len(PNG), 'width': '1', 'height': '1'}))
        # alice's client never put a hash in its presence: the server did (XEP-0398 4).
        self.run_until(self.hash_from(bob, 'alice@localhost', avatar_id))
        vcard = self.run_until(bob['xep_0054'].get_vcard('alice@localhost'))
        self.assertEqual(vcard['vcard_temp']['PHOTO']['BINVAL'], PNG)
        self.assertEqual(vcard['vcard_temp']['PHOTO']['TYPE'], 'image/png')

    def test_avatar_from_xep_0153_to_xep_0084(self):
        carol = self.started('carol', 'old', cls=OldBot)
        bob = self.started('bob', 'modern')  # xep_0084 registers the metadata interest
        self.befriend(carol, bob)
        avatar_id = hashlib.sha1(JPEG).hexdigest()
        self.run_until(carol['xep_0153'].set_avatar(avatar=JPEG, mtype='image/jpeg'))
        publisher, item_id, info = self.run_until(bob.avatars.get())
        self.assertEqual((publisher, item_id), ('carol@localhost', avatar_id))
        self.assertEqual((info['id'], info['type'], info['bytes']), (avatar_id, 'image/jpeg', str(len(JPEG))))
        r = self.run_until(bob['xep_0084'].retrieve_avatar('carol@localhost', avatar_id))
        self.assertEqual(r['pubsub']['items']['item']['avatar_data']['value'], JPEG)

    def add_cellar(self, new):
        """The new client adds a room the XEP-0402 way (one item, XEP-0402's publish-options)."""
        form = new['xep_0004'].make_form(ftype='submit')
        form.add_field(var='FORM_TYPE', ftype='hidden', value='http://jabber.org/protocol/pubsub#publish-options')
        for k, v in (('persist_items', 'true'), ('max_items', 'max'), ('send_last_published_item', 'never'),
                     ('access_model', 'whitelist')):
            form.add_field(var='pubsub#' + k, value=v)
        conf = ET.fromstring("<conference xmlns='%s' name='The Cellar' autojoin='false'><nick>ally</nick>"
                             "</conference>" % BOOKMARKS)
        self.run_until(new['xep_0060'].publish(None, BOOKMARKS, id='cellar@conference.localhost', payload=conf,
                                               options=form))

    def test_bookmarks_private_xml_and_xep_0402(self):
        old = self.started('alice', 'old', cls=OldBot)
        new = self.started('alice', 'new', notify=(BOOKMARKS,))
        info = self.run_until(new['xep_0030'].get_info(jid='alice@localhost'))
        self.assertIn(BOOKMARKS + '#compat', info['disco_info']['features'])

        # The old client writes XEP-0048 bookmarks to private XML ...
        from slixmpp.plugins.xep_0048.stanza import Bookmarks
        bm = Bookmarks()
        bm.add_conference('orchard@conference.localhost', 'al', name='The Orchard', autojoin=True)
        bm.add_url('https://example.org/', name='home')
        self.run_until(old['xep_0048'].set_bookmarks(bm))
        # ... and the new one is told of the room in XEP-0402's node, and finds it there.
        node, item_id, payload = self.run_until(new.events.get())
        self.assertEqual((node, item_id), (BOOKMARKS, 'orchard@conference.localhost'))
        self.assertEqual((payload.get('name'), payload.get('autojoin')), ('The Orchard', 'true'))
        self.assertEqual(payload.find('{%s}nick' % BOOKMARKS).text, 'al')
        r = self.run_until(new['xep_0060'].get_items('alice@localhost', BOOKMARKS))
        self.assertEqual([i['id'] for i in r['pubsub']['items']], ['orchard@conference.localhost'])

        # The new client adds a room the XEP-0402 way; the old one reads both from private XML.
        self.add_cellar(new)

        async def both_rooms():
            while True:
                r = await old['xep_0048'].get_bookmarks()
                confs = {str(c['jid']): (c['name'], c['nick'], c['autojoin'])
                         for c in r['private']['bookmarks']['conferences']}
                if len(confs) == 2:
                    return confs, [u['url'] for u in r['private']['bookmarks']['urls']]
                await asyncio.sleep(0.05)  # the conversion follows the publish's reply
        confs, urls = self.run_until(both_rooms())
        self.assertEqual(confs, {'orchard@conference.localhost': ('The Orchard', 'al', True),
                                 'cellar@conference.localhost': ('The Cellar', 'ally', False)})
        self.assertEqual(urls, ['https://example.org/'])

    def test_bookmarks_legacy_pep_and_xep_0402(self):
        legacy = self.started('alice', 'legacy', cls=LegacyPepBot)
        new = self.started('alice', 'new', notify=(BOOKMARKS,))
        features = self.run_until(new['xep_0030'].get_info(jid='alice@localhost'))['disco_info']['features']
        self.assertIn(BOOKMARKS + '#compat-pep', features)
        self.assertIn('urn:xmpp:bookmarks-conversion:0', features)

        # The legacy client publishes its whole list to storage:bookmarks (no item id, XEP-0223's
        # options) ...
        from slixmpp.plugins.xep_0048.stanza import Bookmarks
        bm = Bookmarks()
        bm.add_conference('orchard@conference.localhost', 'al', name='The Orchard', autojoin=True)
        self.run_until(legacy['xep_0048'].set_bookmarks(bm))
        self.assertEqual(self.run_until(legacy.lists.get()),  # its own notification
                         {'orchard@conference.localhost': ('The Orchard', 'al', True)})
        # ... and the new one is told of the room in XEP-0402's node.
        node, item_id, payload = self.run_until(new.events.get())
        self.assertEqual((node, item_id), (BOOKMARKS, 'orchard@conference.localhost'))
        self.assertEqual((payload.get('name'), payload.get('autojoin')), ('The Orchard', 'true'))

        # The new client adds a room the XEP-0402 way: the legacy one is notified of the whole
        # list, and reads it from PEP.
        self.add_cellar(new)
        both = {'orchard@conference.localhost': ('The Orchard', 'al', True),
                'cellar@conference.localhost': ('The Cellar', 'ally', False)}
        self.assertEqual(self.run_until(legacy.lists.get()), both)
        r = self.run_until(legacy['xep_0048'].get_bookmarks())
        self.assertEqual(confs_of(r['pubsub']['items']['item']['bookmarks']), both)


if __name__ == '__main__':
    main()
