"""Conversions between PEP and older storage, as clients of both kinds see them.

Avatars (XEP-0398 with XEP-0084 and XEP-0153): an avatar published in PEP becomes the vCard's
PHOTO and its hash goes in the account's available presence (broadcast and directed); a vCard
with a PHOTO becomes the XEP-0084 data and metadata items, notified to the owner's resources and
contacts with +notify; the same avatar again changes nothing (no loop); quotas give clear
errors; urn:xmpp:pep-vcard-conversion:0 is advertised exactly while pep.vcard_conversion is on.

Bookmarks (XEP-0402 5.3, urn:xmpp:bookmarks:1#compat): one account, an old-style resource that
keeps XEP-0048 bookmarks in private XML (XEP-0049) and a new-style one that uses XEP-0402 in
PEP: each sees what the other writes, the new-style one by notifications (only for the rooms
that changed), and what else the private XML holds (<url/>) stays."""

import base64
import hashlib

import test_pep as tp
from hearth import DOMAIN, main, q, to_str, wait_for, xml_escape
from imlib import PRESENCE, TIMEOUT, IMTestCase, make_state
from test_pep import (BOOKMARK_OPTIONS, BOOKMARKS, NS_DISCO_INFO, NS_EV, NS_PS, event_items, is_event,
                      publish_xml, result_items)

NS_VCARD = 'vcard-temp'
NS_UPDATE = 'vcard-temp:x:update'
NS_PRIVATE = 'jabber:iq:private'
NS_STORAGE = 'storage:bookmarks'
AV_DATA = 'urn:xmpp:avatar:data'
AV_META = 'urn:xmpp:avatar:metadata'
CONVERSION = 'urn:xmpp:pep-vcard-conversion:0'
COMPAT = BOOKMARKS + '#compat'
COMPAT_PEP = BOOKMARKS + '#compat-pep'
CONVERSION_0411 = 'urn:xmpp:bookmarks-conversion:0'

AJ, BJ, CJ = ('%s@%s' % (u, DOMAIN) for u in ('alice', 'bob', 'carol'))
ROOM1, ROOM2, ROOM3 = ('%s@conference.%s' % (r, DOMAIN) for r in ('orchard', 'cellar', 'attic'))

# Two small "images": PNG and JPEG magic and some bytes, enough for a hash and a type.
PNG = b'\x89PNG\r\n\x1a\n' + bytes(range(64))
JPEG = b'\xff\xd8\xff\xe0' + bytes(range(100, 180))


def sha1(b):
    return hashlib.sha1(b).hexdigest()


def b64(b):
    return base64.b64encode(b).decode()


def vcard_xml(photo=None, type_='image/png', fn='Alice', fold=False):
    inner = '<FN>%s</FN>' % xml_escape(fn)
    if photo is not None:
        enc = b64(photo)
        if fold:  # as some old clients write it: lines of 76 characters
            enc = '\n'.join(enc[i:i + 76] for i in range(0, len(enc), 76))
        inner += '<PHOTO>%s<BINVAL>%s</BINVAL></PHOTO>' % (
            '<TYPE>%s</TYPE>' % type_ if type_ else '', enc)
    return "<vCard xmlns='%s'>%s</vCard>" % (NS_VCARD, inner)


def photo_of(vcard_result):
    v = vcard_result.find(q(NS_VCARD, 'vCard'))
    ph = v.find(q(NS_VCARD, 'PHOTO')) if v is not None else None
    if ph is None:
        return None, None
    t = ph.find(q(NS_VCARD, 'TYPE'))
    return base64.b64decode(''.join(ph.find(q(NS_VCARD, 'BINVAL')).text.split())), t.text if t is not None else None


def update_hash(p):
    """What a presence says of the avatar: None (no x), '' (empty photo), or the hash."""
    x = p.find(q(NS_UPDATE, 'x'))
    if x is None:
        return None
    ph = x.find(q(NS_UPDATE, 'photo'))
    return None if ph is None else (ph.text or '')


def is_pres_from(full, hash_=Ellipsis):
    def pred(s):
        if s.tag != PRESENCE or s.get('from') != full or s.get('type'):
            return False
        return hash_ is Ellipsis or update_hash(s) == hash_
    return pred


def data_item(img):
    return "<data xmlns='%s'>%s</data>" % (AV_DATA, b64(img))


def meta_item(img, type_='image/png', url_first=False):
    info = "<info bytes='%d' id='%s' type='%s'/>" % (len(img), sha1(img), type_)
    if url_first:  # XEP-0398 3.1: the info that points to a URL is not the one converted
        info = ("<info bytes='9' id='%s' type='image/gif' url='https://example.org/a.gif'/>"
                % ('0' * 40)) + info
    return "<metadata xmlns='%s'>%s</metadata>" % (AV_META, info)


class CompatBase(IMTestCase):
    """test_pep's helpers, without its tests."""
    users = tp.PepTest.users
    pep = tp.PepTest.pep
    ok = tp.PepTest.ok
    assert_error = tp.PepTest.assert_error
    items = tp.PepTest.items
    config_of = tp.PepTest.config_of
    no_event = tp.PepTest.no_event


class AvatarTest(CompatBase):

    def vcard(self, c, to=None):
        return self.ok(c.iq('get', "<vCard xmlns='%s'/>" % NS_VCARD, to=to))

    def publish_avatar(self, c, img, type_='image/png', **kw):
        self.ok(c.iq('set', publish_xml(AV_DATA, data_item(img), sha1(img))))
        self.ok(c.iq('set', publish_xml(AV_META, meta_item(img, type_, **kw), sha1(img))))

    def test_pep_avatar_becomes_vcard_photo_and_presence_hash(self):
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk', notify=[AV_META])
        b = self.pep(s, 'bob', 'b', notify=[AV_META])
        c = self.pep(s, 'carol', 'c')  # not a contact
        make_state(self, a, b, 'both')
        a.sync()
        b.take()

        # The account says it converts (XEP-0398 2).
        info = self.ok(a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=AJ))
        self.assertIn(CONVERSION, {f.get('var') for f in info.iter(q(NS_DISCO_INFO, 'feature'))})

        self.publish_avatar(a, PNG, url_first=True)
        # Contacts hear the avatar's hash in alice's presence, sent again on her behalf.
        p = b.wait(is_pres_from(a.jid, sha1(PNG)), what="alice's presence with the avatar hash")
        self.assertEqual(update_hash(p), sha1(PNG), to_str(p))
        # Anyone reads it from her vCard now (XEP-0153), with its type.
        self.assertEqual(photo_of(self.vcard(c, to=AJ)), (PNG, 'image/png'))
        self.assertEqual(self.vcard(a).find(q(NS_VCARD, 'vCard')).find(q(NS_VCARD, 'FN')), None)

        # One metadata event for the one publish: the conversion does not publish again.
        b.wait(is_event(AV_META), what='metadata event')
        a.wait(is_event(AV_META), what='metadata event to the owner')
        a.expect_none(is_event(AV_META), 'a second metadata event')
        b.expect_none(is_event(AV_META), 'a second metadata event')

        # Every later available presence carries it: broadcast, and directed (to a non-contact).
        b.take()
        a.presence(status='here')
        self.assertEqual(update_hash(b.wait(is_pres_from(a.jid), what='status presence')), sha1(PNG))
        a.presence(to=CJ)
        self.assertEqual(update_hash(c.wait(is_pres_from(a.jid), what='directed presence')), sha1(PNG))
        # An empty <photo/> is the client's own word and stays; an x without photo gets it; a
        # stale hash is replaced (XEP-0398 4).
        a.presence(children="<x xmlns='%s'><photo/></x>" % NS_UPDATE)
        self.assertEqual(update_hash(b.wait(is_pres_from(a.jid), what='presence, empty photo')), '')
        a.presence(children="<x xmlns='%s'/>" % NS_UPDATE)
        self.assertEqual(update_hash(b.wait(is_pres_from(a.jid), what='presence, empty x')), sha1(PNG))
        a.presence(children="<x xmlns='%s'><photo>%s</photo></x>" % (NS_UPDATE, 'f' * 40))
        self.assertEqual(update_hash(b.wait(is_pres_from(a.jid), what='presence, stale hash')), sha1(PNG))

        # A new avatar replaces the PHOTO, keeps the rest of the vCard.
        self.ok(a.iq('set', vcard_xml(PNG, fn='Alice Liddell')))
        self.publish_avatar(a, JPEG, 'image/jpeg')
        b.wait(is_pres_from(a.jid, sha1(JPEG)), what='presence with the new hash')
        v = self.vcard(c, to=AJ)
        self.assertEqual(photo_of(v), (JPEG, 'image/jpeg'))
        self.assertEqual(v.find(q(NS_VCARD, 'vCard')).find(q(NS_VCARD, 'FN')).text, 'Alice Liddell')

        # XEP-0084 4.5: empty metadata switches the avatar off: out of the vCard, empty photo.
        self.ok(a.iq('set', publish_xml(AV_META, "<metadata xmlns='%s'/>" % AV_META)))
        b.wait(is_pres_from(a.jid, ''), what='presence saying there is no avatar')
        self.assertEqual(photo_of(self.vcard(c, to=AJ)), (None, None))

    def test_metadata_naming_other_data_changes_nothing(self):
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk')
        # data under another id than the image's hash: not the image the metadata names
        self.ok(a.iq('set', publish_xml(AV_DATA, data_item(PNG), sha1(JPEG))))
        self.ok(a.iq('set', publish_xml(AV_META, meta_item(JPEG), sha1(JPEG))))
        a.sync()
        self.assertEqual(photo_of(self.vcard(a)), (None, None))

    def test_vcard_photo_becomes_pep_avatar(self):
        s = self.start_server()
        old = self.pep(s, 'alice', 'old')  # a vCard-only client
        new = self.pep(s, 'alice', 'new', notify=[AV_META])
        b = self.pep(s, 'bob', 'b', notify=[AV_META])
        make_state(self, old, b, 'both')
        old.sync()
        b.take()

        self.ok(old.iq('set', vcard_xml(PNG, type_=None, fold=True)))
        for c in (new, b):
            m = c.wait(is_event(AV_META), what='metadata event from the vCard')
            self.assertEqual(m.get('from'), AJ)
            it = event_items(m, AV_META).find(q(NS_EV, 'item'))
            self.assertEqual(it.get('id'), sha1(PNG))
            info = it.find(q(AV_META, 'metadata')).find(q(AV_META, 'info'))
            # no TYPE in the vCard: the type is what the image says it is
            self.assertEqual((info.get('id'), info.get('bytes'), info.get('type')),
                             (sha1(PNG), str(len(PNG)), 'image/png'))
        got = result_items(self.ok(self.items(new, AV_DATA, inner="<item id='%s'/>" % sha1(PNG))), AV_DATA)
        self.assertEqual([(i, base64.b64decode(it.find(q(AV_DATA, 'data')).text)) for i, it in got],
                         [(sha1(PNG), PNG)])
        self.assertEqual(update_hash(b.wait(is_pres_from(old.jid, sha1(PNG)), what='hash in presence')),
                         sha1(PNG))

        # The same vCard again: nothing to convert, nothing notified (and no loop back).
        self.ok(old.iq('set', vcard_xml(PNG, type_=None, fold=True)))
        new.expect_none(is_event(AV_META), 'metadata event for an unchanged avatar')
        b.expect_none(is_event(AV_META), 'metadata event for an unchanged avatar')

        # A vCard without a PHOTO: the avatar is off in PEP too (XEP-0084 4.5).
        b.take()
        self.ok(old.iq('set', vcard_xml(None)))
        m = new.wait(is_event(AV_META), what='empty metadata')
        meta = event_items(m, AV_META).find(q(NS_EV, 'item')).find(q(AV_META, 'metadata'))
        self.assertEqual(list(meta), [], to_str(m))
        b.wait(is_pres_from(old.jid, ''), what='presence saying there is no avatar')

    def test_hash_read_at_login(self):
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk')
        b = self.pep(s, 'bob', 'b')
        make_state(self, a, b, 'both')
        self.ok(a.iq('set', vcard_xml(JPEG, 'image/jpeg')))
        a.close()
        b.close()
        s.restart()  # nothing in memory: the hash comes from the stored vCard
        b = self.pep(s, 'bob', 'b')
        a = self.pep(s, 'alice', 'again', notify=[AV_META])  # a modern client: its PEP is used
        self.assertEqual(update_hash(b.wait(is_pres_from(a.jid, sha1(JPEG)), what='hash after restart')),
                         sha1(JPEG))

    def test_avatar_published_before_the_conversion_reaches_the_vcard(self):
        s = self.start_server(pep__vcard_conversion=False)
        a = self.pep(s, 'alice', 'desk')
        b = self.pep(s, 'bob', 'b')
        make_state(self, a, b, 'both')
        self.publish_avatar(a, PNG)
        a.close()
        b.close()
        s.settings['pep.vcard_conversion'] = 'true'
        s.restart()
        b = self.pep(s, 'bob', 'b')
        a = self.pep(s, 'alice', 'again', notify=[AV_META])  # a modern client: its PEP is used
        # alice's first session finds the avatar in PEP, not in the vCard: it goes there, and
        # its hash into her presence
        b.wait(is_pres_from(a.jid, sha1(PNG)), what='presence with the hash of the PEP avatar')
        self.assertEqual(photo_of(self.vcard(b, to=AJ)), (PNG, 'image/png'))

    def test_quotas(self):
        # pep.max_item_size: the vCard is refused whole, before anything is stored.
        s = self.start_server(pep__max_item_size=1024)
        a = self.pep(s, 'alice', 'desk', notify=[AV_META])
        self.ok(a.iq('set', vcard_xml(None, fn='Kept')))
        big = bytes(range(256)) * 4  # 1368 bytes of base64
        r = a.iq('set', vcard_xml(big))
        self.assert_error(r, 'not-acceptable', etype='modify')
        self.assertIn('pep.max_item_size', to_str(r))
        self.assertEqual(self.vcard(a).find(q(NS_VCARD, 'vCard')).find(q(NS_VCARD, 'FN')).text, 'Kept')
        # Not base64: bad-request, nothing stored.
        self.assert_error(a.iq('set', "<vCard xmlns='%s'><PHOTO><BINVAL>not*base64</BINVAL></PHOTO></vCard>"
                               % NS_VCARD), 'bad-request')
        self.assertEqual(self.vcard(a).find(q(NS_VCARD, 'vCard')).find(q(NS_VCARD, 'FN')).text, 'Kept')
        a.expect_none(is_event(AV_META), 'metadata event')

    def test_quota_of_bytes(self):
        # pep.max_bytes: the vCard is stored, and the client is told its avatar is not in PEP.
        s = self.start_server(pep__max_item_size=8192, pep__max_bytes=4096)
        a = self.pep(s, 'alice', 'desk', notify=[AV_META])
        img = bytes(range(256)) * 15  # 5120 bytes of base64
        r = a.iq('set', vcard_xml(img))
        self.assert_error(r, 'policy-violation')
        self.assertIn('pep.max_bytes', to_str(r))
        self.assertEqual(photo_of(self.vcard(a))[0], img)
        a.expect_none(is_event(AV_META), 'metadata event')
        self.assert_error(self.items(a, AV_DATA), 'item-not-found')

    def test_switched_off(self):
        s = self.start_server(pep__vcard_conversion=False)
        a = self.pep(s, 'alice', 'desk', notify=[AV_META])
        b = self.pep(s, 'bob', 'b')
        make_state(self, a, b, 'both')
        info = self.ok(a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=AJ))
        self.assertNotIn(CONVERSION, {f.get('var') for f in info.iter(q(NS_DISCO_INFO, 'feature'))})
        self.ok(a.iq('set', vcard_xml(PNG)))
        self.publish_avatar(a, JPEG, 'image/jpeg')
        a.wait(is_event(AV_META))
        a.expect_none(is_event(AV_META), 'a metadata event from the vCard')
        self.assertEqual(photo_of(self.vcard(b, to=AJ)), (PNG, 'image/png'))
        b.take()
        a.presence(status='plain')
        self.assertIsNone(update_hash(b.wait(is_pres_from(a.jid), what='presence')))


def private_set(c, inner):
    return c.iq('set', "<query xmlns='%s'><storage xmlns='%s'>%s</storage></query>" % (NS_PRIVATE, NS_STORAGE, inner))


def private_bookmarks(tc, c):
    r = tc.ok(c.iq('get', "<query xmlns='%s'><storage xmlns='%s'/></query>" % (NS_PRIVATE, NS_STORAGE)))
    st = r.find(q(NS_PRIVATE, 'query')).find(q(NS_STORAGE, 'storage'))
    confs = {}
    for cf in st.findall(q(NS_STORAGE, 'conference')):
        nick = cf.find(q(NS_STORAGE, 'nick'))
        confs[cf.get('jid')] = (cf.get('name'), cf.get('autojoin') in ('true', '1'),
                                nick.text if nick is not None else None)
    return confs, st


def legacy_conf(jid, name, autojoin=True, nick='al'):
    return ("<conference jid='%s' name='%s' autojoin='%s'><nick>%s</nick></conference>"
            % (jid, xml_escape(name), 'true' if autojoin else 'false', nick))


def pep_bookmarks(r):
    out = {}
    for i, it in result_items(r, BOOKMARKS):
        cf = it.find(q(BOOKMARKS, 'conference'))
        nick = cf.find(q(BOOKMARKS, 'nick'))
        out[i] = (cf.get('name'), cf.get('autojoin') in ('true', '1'), nick.text if nick is not None else None)
    return out


class BookmarksTest(CompatBase):

    def test_private_xml_bookmarks_reach_pep(self):
        s = self.start_server()
        old = self.pep(s, 'alice', 'old')  # XEP-0048 in private XML only
        new = self.pep(s, 'alice', 'new', notify=[BOOKMARKS])
        b = self.pep(s, 'bob', 'b', notify=[BOOKMARKS])
        make_state(self, old, b, 'both')
        new.sync()
        new.take()

        info = self.ok(new.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=AJ))
        self.assertIn(COMPAT, {f.get('var') for f in info.iter(q(NS_DISCO_INFO, 'feature'))})

        self.ok(private_set(old, legacy_conf(ROOM1, 'Orchard') + legacy_conf(ROOM2, 'Cellar', False, 'ally')
                            + "<url name='home' url='https://example.org/'/>"))
        got = {}
        for m in new.wait_n(is_event(BOOKMARKS), 2, what='bookmark events from private XML'):
            self.assertEqual(m.get('from'), AJ)
            it = event_items(m, BOOKMARKS).find(q(NS_EV, 'item'))
            cf = it.find(q(BOOKMARKS, 'conference'))
            got[it.get('id')] = (cf.get('name'), cf.get('autojoin'), cf.find(q(BOOKMARKS, 'nick')).text)
        self.assertEqual(got, {ROOM1: ('Orchard', 'true', 'al'), ROOM2: ('Cellar', 'false', 'ally')})
        self.no_event(b)  # a private node: contacts hear nothing
        self.assertEqual(pep_bookmarks(self.ok(self.items(new, BOOKMARKS))),
                         {ROOM1: ('Orchard', True, 'al'), ROOM2: ('Cellar', False, 'ally')})
        cfg = self.config_of(new, BOOKMARKS)  # the node XEP-0402 3.3 asks for
        self.assertEqual((cfg['pubsub#access_model'], cfg['pubsub#max_items'], cfg['pubsub#persist_items'],
                          cfg['pubsub#send_last_published_item']), (['whitelist'], ['max'], ['1'], ['never']))

        # A new list: one room renamed, one gone, one added, and one unchanged that is not
        # notified again (XEP-0402 5.3.2).
        self.ok(private_set(old, legacy_conf(ROOM1, 'Orchard') + legacy_conf(ROOM2, 'Wine cellar', False, 'ally')
                            + legacy_conf(ROOM3, 'Attic')))
        evs = new.wait_n(is_event(BOOKMARKS), 2, what='changed bookmark events')
        self.assertEqual(sorted(event_items(m, BOOKMARKS).find(q(NS_EV, 'item')).get('id') for m in evs),
                         sorted([ROOM2, ROOM3]))
        self.ok(private_set(old, legacy_conf(ROOM2, 'Wine cellar', False, 'ally') + legacy_conf(ROOM3, 'Attic')))
        m = new.wait(is_event(BOOKMARKS), what='retraction of a removed room')
        self.assertEqual(event_items(m, BOOKMARKS).find(q(NS_EV, 'retract')).get('id'), ROOM1)
        new.expect_none(is_event(BOOKMARKS), 'a bookmark event for an unchanged room')
        self.assertEqual(pep_bookmarks(self.ok(self.items(new, BOOKMARKS))),
                         {ROOM2: ('Wine cellar', False, 'ally'), ROOM3: ('Attic', True, 'al')})

    def test_pep_bookmarks_reach_private_xml(self):
        s = self.start_server()
        old = self.pep(s, 'alice', 'old')
        new = self.pep(s, 'alice', 'new', notify=[BOOKMARKS])
        self.ok(private_set(old, "<url name='home' url='https://example.org/'/>"))

        def add(room, name, nick):
            item = ("<conference xmlns='%s' name='%s' autojoin='true'><nick>%s</nick>"
                    "<extensions><pinned xmlns='urn:xmpp:bookmarks-pinning:0'/></extensions></conference>"
                    % (BOOKMARKS, name, nick))
            return self.ok(new.iq('set', publish_xml(BOOKMARKS, item, room, BOOKMARK_OPTIONS)))
        add(ROOM1, 'Orchard', 'al')
        add(ROOM2, 'Cellar', 'ally')
        new.sync()

        def private_now(want):
            # the conversion runs after the publish's reply: read until it has landed, bounded
            box = {}

            def ok():
                box['v'] = private_bookmarks(self, old)
                return box['v'][0] == want
            wait_for(ok, TIMEOUT, what='private XML with %s' % sorted(want))
            return box['v'][1]
        st = private_now({ROOM1: ('Orchard', True, 'al'), ROOM2: ('Cellar', True, 'ally')})
        self.assertIsNotNone(st.find(q(NS_STORAGE, 'url')), to_str(st))  # what else it held stays

        # Retraction (XEP-0402 3.4) removes it from private XML too.
        self.ok(new.iq('set', "<pubsub xmlns='%s'><retract node='%s' notify='true'><item id='%s'/></retract>"
                       "</pubsub>" % (NS_PS, BOOKMARKS, ROOM1)))
        private_now({ROOM2: ('Cellar', True, 'ally')})

        # The old client renames the room: PEP keeps the item's <extensions/> (XEP-0048 has none).
        new.sync()
        new.take()
        self.ok(private_set(old, legacy_conf(ROOM2, 'Cellar door', True, 'ally')))
        m = new.wait(is_event(BOOKMARKS), what='renamed bookmark')
        cf = event_items(m, BOOKMARKS).find(q(NS_EV, 'item')).find(q(BOOKMARKS, 'conference'))
        self.assertEqual(cf.get('name'), 'Cellar door')
        self.assertIsNotNone(cf.find(q(BOOKMARKS, 'extensions')), to_str(m))
        # and the conversion did not come back into private XML as another change
        new.expect_none(is_event(BOOKMARKS), 'a second event')

    def test_pep_bookmarks_reach_empty_private_xml(self):
        # Regression: with nothing in private XML yet, its read came back "not found", taken for a
        # failure, and the XEP-0402 bookmarks never reached private XML.
        s = self.start_server()
        old = self.pep(s, 'alice', 'old')
        new = self.pep(s, 'alice', 'new', notify=[BOOKMARKS])
        self.ok(new.iq('set', publish_xml(BOOKMARKS, tp.bookmark('Orchard'), ROOM1, BOOKMARK_OPTIONS)))
        wait_for(lambda: private_bookmarks(self, old)[0] == {ROOM1: ('Orchard', True, 'al')}, TIMEOUT,
                 'the bookmark in private XML')

    def test_bookmarks_kept_before_the_conversion_are_not_lost(self):
        # Private XML bookmarks stored while the conversion is off (or before it existed) ...
        s = self.start_server(pep__bookmarks_compat=False)
        old = self.pep(s, 'alice', 'old')
        self.ok(private_set(old, legacy_conf(ROOM1, 'Orchard') + "<url name='home' url='https://example.org/'/>"))
        old.close()
        s.settings['pep.bookmarks_compat'] = 'true'
        s.restart()
        # ... are in PEP when a new-style client comes (its login brings them there) ...
        new = self.pep(s, 'alice', 'new', notify=[BOOKMARKS])
        m = new.wait(is_event(BOOKMARKS), what='the old bookmark, now in PEP')
        self.assertEqual(event_items(m, BOOKMARKS).find(q(NS_EV, 'item')).get('id'), ROOM1)
        self.assertEqual(pep_bookmarks(self.ok(self.items(new, BOOKMARKS))), {ROOM1: ('Orchard', True, 'al')})
        # ... and a room the new client adds does not push them out of private XML.
        self.ok(new.iq('set', publish_xml(BOOKMARKS, "<conference xmlns='%s' name='Cellar'/>" % BOOKMARKS, ROOM2,
                                          BOOKMARK_OPTIONS)))
        old = self.pep(s, 'alice', 'old')

        def both():
            confs, st = private_bookmarks(self, old)
            return set(confs) == {ROOM1, ROOM2} and st
        st = wait_for(both, TIMEOUT, 'both rooms in private XML')
        self.assertIsNotNone(st.find(q(NS_STORAGE, 'url')), to_str(st))

    def test_switched_off(self):
        s = self.start_server(pep__bookmarks_compat=False)
        old = self.pep(s, 'alice', 'old', notify=[NS_STORAGE])
        new = self.pep(s, 'alice', 'new', notify=[BOOKMARKS])
        info = self.ok(new.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=AJ))
        feats = {f.get('var') for f in info.iter(q(NS_DISCO_INFO, 'feature'))}
        self.assertEqual({COMPAT, COMPAT_PEP, CONVERSION_0411} & feats, set())
        self.ok(private_set(old, legacy_conf(ROOM1, 'Orchard')))
        new.expect_none(is_event(BOOKMARKS), 'a bookmark event')
        old.expect_none(is_event(NS_STORAGE), 'a storage:bookmarks event')
        self.assert_error(self.items(new, BOOKMARKS), 'item-not-found')
        self.assert_error(self.items(new, NS_STORAGE), 'item-not-found')
        # a legacy PEP list is a node like any other: not converted, not checked
        self.ok(old.iq('set', legacy_publish("<storage xmlns='%s'>%s</storage>"
                                             % (NS_STORAGE, legacy_conf(ROOM2, 'Cellar')))))
        new.expect_none(is_event(BOOKMARKS), 'a bookmark event')
        self.assert_error(self.items(new, BOOKMARKS), 'item-not-found')
        self.ok(old.iq('set', legacy_publish("<other xmlns='urn:example'/>")))


def legacy_publish(payload, item_id='current', options=True):
    # As XEP-0048 3 (through XEP-0223) has it: one item, 'current', on a private node.
    return publish_xml(NS_STORAGE, payload, item_id,
                       LEGACY_OPTIONS if options else None)


LEGACY_OPTIONS = {'pubsub#persist_items': 'true', 'pubsub#access_model': 'whitelist'}


def legacy_storage(c):
    """The storage:bookmarks item in c's event or items result: (id, {jid: (name, autojoin, nick)}, storage)."""
    ps = c.find(q(NS_PS, 'pubsub'))
    items = ps.find(q(NS_PS, 'items')) if ps is not None else c.find(q(NS_EV, 'event')).find(q(NS_EV, 'items'))
    assert items is not None and items.get('node') == NS_STORAGE, to_str(c)
    its = [i for i in items if i.tag in (q(NS_PS, 'item'), q(NS_EV, 'item'))]
    assert len(its) == 1, to_str(c)
    st = its[0].find(q(NS_STORAGE, 'storage'))
    assert st is not None, to_str(c)
    confs = {}
    for cf in st.findall(q(NS_STORAGE, 'conference')):
        nick = cf.find(q(NS_STORAGE, 'nick'))
        confs[cf.get('jid')] = (cf.get('name'), cf.get('autojoin') in ('true', '1'),
                                nick.text if nick is not None else None)
    return its[0].get('id'), confs, st


class LegacyPepBookmarksTest(CompatBase):
    """XEP-0402 5.3's #compat-pep and XEP-0411: XEP-0048 bookmarks kept in PEP (XEP-0223: the node
    storage:bookmarks, one item 'current') kept the same as the XEP-0402 items and private XML."""

    def features(self, c):
        info = self.ok(c.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=AJ))
        return {f.get('var') for f in info.iter(q(NS_DISCO_INFO, 'feature'))}

    def test_legacy_pep_bookmarks_reach_bookmarks2_and_private_xml(self):
        s = self.start_server()
        legacy = self.pep(s, 'alice', 'legacy', notify=[NS_STORAGE])  # XEP-0048 in PEP
        new = self.pep(s, 'alice', 'new', notify=[BOOKMARKS])
        old = self.pep(s, 'alice', 'old')  # XEP-0048 in private XML
        b = self.pep(s, 'bob', 'b', notify=[NS_STORAGE, BOOKMARKS])
        make_state(self, legacy, b, 'both')
        for c in (legacy, new, old):
            c.sync()
            c.take()
        self.assertLessEqual({COMPAT, COMPAT_PEP, CONVERSION_0411}, self.features(new))

        self.ok(legacy.iq('set', legacy_publish(
            "<storage xmlns='%s'>%s%s<url name='home' url='https://example.org/'/></storage>"
            % (NS_STORAGE, legacy_conf(ROOM1, 'Orchard'), legacy_conf(ROOM2, 'Cellar', False, 'ally')))))
        got = {}
        for m in new.wait_n(is_event(BOOKMARKS), 2, what='XEP-0402 events from the legacy PEP list'):
            it = event_items(m, BOOKMARKS).find(q(NS_EV, 'item'))
            cf = it.find(q(BOOKMARKS, 'conference'))
            got[it.get('id')] = (cf.get('name'), cf.get('autojoin'), cf.find(q(BOOKMARKS, 'nick')).text)
        self.assertEqual(got, {ROOM1: ('Orchard', 'true', 'al'), ROOM2: ('Cellar', 'false', 'ally')})
        self.assertEqual(pep_bookmarks(self.ok(self.items(new, BOOKMARKS))),
                         {ROOM1: ('Orchard', True, 'al'), ROOM2: ('Cellar', False, 'ally')})
        box = {}

        def private_is(want):
            def ok():
                box['v'] = private_bookmarks(self, old)
                return box['v'][0] == want
            wait_for(ok, TIMEOUT, what='private XML with %s' % sorted(want))
            return box['v'][1]
        st = private_is({ROOM1: ('Orchard', True, 'al'), ROOM2: ('Cellar', False, 'ally')})
        self.assertIsNotNone(st.find(q(NS_STORAGE, 'url')), to_str(st))
        # the publisher's own event, once: the conversion does not publish the list again
        m = legacy.wait(is_event(NS_STORAGE), what="the publisher's own event")
        self.assertEqual(legacy_storage(m)[0], 'current')
        legacy.expect_none(is_event(NS_STORAGE), 'a second storage:bookmarks event')
        self.no_event(b)  # private nodes: a contact hears nothing
        self.assert_error(self.items(b, NS_STORAGE, to=AJ), 'not-allowed', 'closed-node')

        # A replacement list: one added, one gone, one the same (not notified again).
        new.sync()
        new.take()
        self.ok(legacy.iq('set', legacy_publish("<storage xmlns='%s'>%s%s</storage>" % (
            NS_STORAGE, legacy_conf(ROOM2, 'Cellar', False, 'ally'), legacy_conf(ROOM3, 'Attic')))))
        m = new.wait(is_event(BOOKMARKS), what='the added room')
        self.assertEqual(event_items(m, BOOKMARKS).find(q(NS_EV, 'item')).get('id'), ROOM3)
        m = new.wait(is_event(BOOKMARKS), what='the removed room')
        self.assertEqual(event_items(m, BOOKMARKS).find(q(NS_EV, 'retract')).get('id'), ROOM1)
        new.expect_none(is_event(BOOKMARKS), 'an event for the unchanged room')
        self.assertEqual(pep_bookmarks(self.ok(self.items(new, BOOKMARKS))),
                         {ROOM2: ('Cellar', False, 'ally'), ROOM3: ('Attic', True, 'al')})
        private_is({ROOM2: ('Cellar', False, 'ally'), ROOM3: ('Attic', True, 'al')})

    def test_bookmarks2_and_private_xml_reach_legacy_pep(self):
        s = self.start_server()
        legacy = self.pep(s, 'alice', 'legacy', notify=[NS_STORAGE])
        quiet = self.pep(s, 'alice', 'quiet')  # no +notify: hears nothing
        new = self.pep(s, 'alice', 'new', notify=[BOOKMARKS])
        old = self.pep(s, 'alice', 'old')
        b = self.pep(s, 'bob', 'b', notify=[NS_STORAGE])
        make_state(self, new, b, 'both')

        # XEP-0402 publish -> the legacy node, with its notification
        self.ok(new.iq('set', publish_xml(BOOKMARKS, tp.bookmark('Orchard'), ROOM1, BOOKMARK_OPTIONS)))
        new.wait(is_event(BOOKMARKS), what="the publisher's own event")
        m = legacy.wait(is_event(NS_STORAGE), what='the legacy list after a XEP-0402 publish')
        self.assertEqual(m.get('from'), AJ)
        iid, confs, _ = legacy_storage(m)
        self.assertEqual((iid, confs), ('current', {ROOM1: ('Orchard', True, 'al')}))
        legacy.expect_none(is_event(NS_STORAGE), 'a second storage:bookmarks event')
        new.expect_none(is_event(BOOKMARKS), 'the XEP-0402 item converted back')
        iid, confs, _ = legacy_storage(self.ok(self.items(legacy, NS_STORAGE)))
        self.assertEqual((iid, confs), ('current', {ROOM1: ('Orchard', True, 'al')}))
        cfg = self.config_of(legacy, NS_STORAGE)  # XEP-0223's private node
        self.assertEqual((cfg['pubsub#access_model'], cfg['pubsub#persist_items']), (['whitelist'], ['1']))

        # a second room, then a retraction (XEP-0402 3.4)
        self.ok(new.iq('set', publish_xml(BOOKMARKS, tp.bookmark('Cellar'), ROOM2, BOOKMARK_OPTIONS)))
        m = legacy.wait(is_event(NS_STORAGE), what='the legacy list with two rooms')
        self.assertEqual(set(legacy_storage(m)[1]), {ROOM1, ROOM2})
        self.ok(new.iq('set', "<pubsub xmlns='%s'><retract node='%s' notify='true'><item id='%s'/></retract>"
                       "</pubsub>" % (NS_PS, BOOKMARKS, ROOM1)))
        m = legacy.wait(is_event(NS_STORAGE), what='the legacy list after a retraction')
        self.assertEqual(legacy_storage(m)[1], {ROOM2: ('Cellar', True, 'al')})

        # private XML (XEP-0411 3) -> the legacy node, with its notification
        new.sync()
        new.take()
        self.ok(private_set(old, legacy_conf(ROOM2, 'Cellar', True, 'al') + legacy_conf(ROOM3, 'Attic')
                            + "<url name='home' url='https://example.org/'/>"))
        m = legacy.wait(is_event(NS_STORAGE), what='the legacy list after a private XML change')
        iid, confs, st = legacy_storage(m)
        self.assertEqual((iid, confs), ('current', {ROOM2: ('Cellar', True, 'al'), ROOM3: ('Attic', True, 'al')}))
        self.assertIsNotNone(st.find(q(NS_STORAGE, 'url')), to_str(m))
        m = new.wait(is_event(BOOKMARKS), what='the added room in XEP-0402')
        self.assertEqual(event_items(m, BOOKMARKS).find(q(NS_EV, 'item')).get('id'), ROOM3)
        legacy.expect_none(is_event(NS_STORAGE), 'a second storage:bookmarks event')
        new.expect_none(is_event(BOOKMARKS), 'a second XEP-0402 event')
        self.assertEqual(private_bookmarks(self, old)[0],
                         {ROOM2: ('Cellar', True, 'al'), ROOM3: ('Attic', True, 'al')})
        self.no_event(quiet, old, b)

    def test_legacy_list_kept_while_the_conversion_was_off_reaches_bookmarks2(self):
        # A list published to storage:bookmarks while the conversion is off (or before it
        # existed) ...
        s = self.start_server(pep__bookmarks_compat=False)
        legacy = self.pep(s, 'alice', 'legacy')
        self.ok(legacy.iq('set', legacy_publish("<storage xmlns='%s'>%s%s</storage>" % (
            NS_STORAGE, legacy_conf(ROOM1, 'Orchard'), legacy_conf(ROOM2, 'Cellar', False, 'ally')))))
        legacy.close()
        s.settings['pep.bookmarks_compat'] = 'true'
        s.restart()
        # ... is in XEP-0402 when a new-style client comes (nothing in private XML to take instead)
        new = self.pep(s, 'alice', 'new', notify=[BOOKMARKS])
        evs = new.wait_n(is_event(BOOKMARKS), 2, what='the legacy PEP bookmarks, now in XEP-0402')
        self.assertEqual(sorted(event_items(m, BOOKMARKS).find(q(NS_EV, 'item')).get('id') for m in evs),
                         sorted([ROOM1, ROOM2]))
        self.assertEqual(pep_bookmarks(self.ok(self.items(new, BOOKMARKS))),
                         {ROOM1: ('Orchard', True, 'al'), ROOM2: ('Cellar', False, 'ally')})
        # the legacy list itself is left as it was
        self.assertEqual(legacy_storage(self.ok(self.items(new, NS_STORAGE)))[1],
                         {ROOM1: ('Orchard', True, 'al'), ROOM2: ('Cellar', False, 'ally')})

    def test_malformed_legacy_list_refused(self):
        s = self.start_server()
        legacy = self.pep(s, 'alice', 'legacy', notify=[NS_STORAGE])
        new = self.pep(s, 'alice', 'new', notify=[BOOKMARKS])
        self.ok(private_set(legacy, legacy_conf(ROOM1, 'Orchard')))
        m = legacy.wait(is_event(NS_STORAGE), what='the list from private XML')
        self.assertEqual(legacy_storage(m)[1], {ROOM1: ('Orchard', True, 'al')})
        new.wait(is_event(BOOKMARKS), what='the room in XEP-0402')
        bad = [
            "<other xmlns='urn:example'/>",  # not a <storage/>
            "<storage xmlns='%s'><conference name='no jid'/></storage>" % NS_STORAGE,
            "<storage xmlns='%s'><conference jid='@bad@' name='x'/></storage>" % NS_STORAGE,
            "<storage xmlns='%s'><conference jid='%s' autojoin='maybe'/></storage>" % (NS_STORAGE, ROOM2),
        ]
        for payload in bad:
            self.assert_error(legacy.iq('set', legacy_publish(payload)), 'bad-request', 'invalid-payload')
        legacy.expect_none(is_event(NS_STORAGE), 'an event for a refused list')
        new.expect_none(is_event(BOOKMARKS), 'an event for a refused list')
        self.assertEqual(legacy_storage(self.ok(self.items(legacy, NS_STORAGE)))[1], {ROOM1: ('Orchard', True, 'al')})
        self.assertEqual(pep_bookmarks(self.ok(self.items(new, BOOKMARKS))), {ROOM1: ('Orchard', True, 'al')})
        self.assertEqual(private_bookmarks(self, legacy)[0], {ROOM1: ('Orchard', True, 'al')})


if __name__ == '__main__':
    main()
