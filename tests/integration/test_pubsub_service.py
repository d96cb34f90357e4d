"""The publish-subscribe service (XEP-0060) at pubsub.<domain>: disco, nodes created with and
without a configuration form and instant nodes, configuration (form, submit, cancel, changes
notified), publish with publish-options, retract, purge, delete with a redirect, items (all,
max_items, by id), subscribe and unsubscribe, subscriptions approved by the owner (access model
authorize), the requester's subscriptions and affiliations, the owner's management of both, the
access models open, presence, roster (the owner's roster), whitelist and the publish models;
bad input with the XEP's errors and nothing stored, limits and the creation policy from
configuration keys, and persistence across a restart. Also PEP's answer to <subscriptions/>.

Several clients per test: an owner (alice), a publisher (bob), subscribers (carol, dave) and an
outsider (eve); dave subscribes (through the owner) while offline and logs in later."""

from hearth import DOMAIN, main, q, to_str, xml_escape
from imlib import MESSAGE, IMTestCase, app_error, err, make_state

NS_PS = 'http://jabber.org/protocol/pubsub'
NS_EV = NS_PS + '#event'
NS_OWNER = NS_PS + '#owner'
NS_ERRS = NS_PS + '#errors'
NS_DATA = 'jabber:x:data'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'
NS_DELAY = 'urn:xmpp:delay'
ENTRY = 'urn:example:entry'
PS = 'pubsub.' + DOMAIN
AJ, BJ, CJ, DJ, EJ = ('%s@%s' % (u, DOMAIN) for u in ('alice', 'bob', 'carol', 'dave', 'eve'))

FEATURES = ['access-authorize', 'access-open', 'access-presence', 'access-roster', 'access-whitelist',
            'config-node', 'config-node-max', 'create-and-configure', 'create-nodes', 'delete-items',
            'delete-nodes', 'instant-nodes', 'item-ids', 'last-published',
            'manage-subscriptions', 'member-affiliation', 'meta-data', 'modify-affiliations',
            'outcast-affiliation', 'persistent-items', 'publish', 'publish-only-affiliation',
            'publish-options', 'publisher-affiliation', 'purge-nodes', 'retract-items',
            'retrieve-affiliations', 'retrieve-default', 'retrieve-default-sub', 'retrieve-items',
            'retrieve-subscriptions', 'subscribe', 'subscription-notifications', 'subscription-options']


def entry(text):
    return "<entry xmlns='%s'>%s</entry>" % (ENTRY, xml_escape(text))


def form(fields, form_type=NS_PS + '#node_config', type_='submit'):
    inner = ''
    for k, v in fields.items():
        vals = v if isinstance(v, (list, tuple)) else [v]
        inner += "<field var='%s'>%s</field>" % (k, ''.join('<value>%s</value>' % xml_escape(x) for x in vals))
    ft = "<field var='FORM_TYPE' type='hidden'><value>%s</value></field>" % form_type if form_type else ''
    return "<x xmlns='%s' type='%s'>%s%s</x>" % (NS_DATA, type_, ft, inner)


def ps(inner, ns=NS_PS):
    return "<pubsub xmlns='%s'>%s</pubsub>" % (ns, inner)


def publish_xml(node, payload, item_id=None, options=None):
    idattr = " id='%s'" % xml_escape(item_id) if item_id is not None else ''
    opts = ''
    if options is not None:
        opts = '<publish-options>%s</publish-options>' % form(options, NS_PS + '#publish-options')
    return ps("<publish node='%s'><item%s>%s</item></publish>%s" % (xml_escape(node), idattr, payload, opts))


def is_event(node=None, kind='items'):
    def pred(s):
        if s.tag != MESSAGE or s.get('from') != PS:
            return False
        ev = s.find(q(NS_EV, 'event'))
        el = ev.find(q(NS_EV, kind)) if ev is not None else None
        return el is not None and (node is None or el.get('node') == node)
    return pred


def event_el(s, kind):
    return s.find(q(NS_EV, 'event')).find(q(NS_EV, kind))


class PubsubServiceTest(IMTestCase):
    users = {'alice': 'wonderland', 'bob': 'builder', 'carol': 'singer', 'dave': 'diver', 'eve': 'evening'}

    # -- helpers ------------------------------------------------------------

    def ok(self, r):
        self.assertEqual(r.get('type'), 'result', to_str(r))
        return r

    def assert_error(self, r, cond, app=None, feature=None):
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertEqual(err(r)[1], cond, to_str(r))
        a = app_error(r, NS_ERRS)
        if app is None:
            self.assertIsNone(a, to_str(r))
        else:
            self.assertIsNotNone(a, to_str(r))
            self.assertEqual(a.tag, q(NS_ERRS, app), to_str(r))
            if feature:
                self.assertEqual(a.get('feature'), feature, to_str(r))

    def iq(self, c, type_, inner, ns=NS_PS):
        return c.iq(type_, ps(inner, ns), to=PS)

    def create(self, c, node, config=None):
        conf = '<configure>%s</configure>' % form(config) if config is not None else ''
        return self.iq(c, 'set', "<create node='%s'/>%s" % (node, conf))

    def publish(self, c, node, text, item_id=None, options=None):
        return c.iq('set', publish_xml(node, entry(text), item_id, options), to=PS)

    def items(self, c, node, extra='', inner=''):
        return self.iq(c, 'get', "<items node='%s'%s>%s</items>" % (node, extra, inner))

    def item_texts(self, r, node):
        items = r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'items'))
        self.assertEqual(items.get('node'), node, to_str(r))
        return [(i.get('id'), i.find(q(ENTRY, 'entry')).text) for i in items.findall(q(NS_PS, 'item'))]

    def stored(self, c, node):
        return self.item_texts(self.ok(self.items(c, node)), node)

    def subscribe(self, c, node, jid=None):
        return self.iq(c, 'set', "<subscribe node='%s' jid='%s'/>" % (node, jid or c.jid))

    def subscription(self, r):
        return r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'subscription'))

    def config_of(self, c, node):
        r = self.ok(self.iq(c, 'get', "<configure node='%s'/>" % node, NS_OWNER))
        x = r.find(q(NS_OWNER, 'pubsub')).find(q(NS_OWNER, 'configure')).find(q(NS_DATA, 'x'))
        return {f.get('var'): [v.text or '' for v in f.findall(q(NS_DATA, 'value'))]
                for f in x.findall(q(NS_DATA, 'field'))}

    def configure(self, c, node, fields, **kw):
        return self.iq(c, 'set', "<configure node='%s'>%s</configure>" % (node, form(fields, **kw)), NS_OWNER)

    def set_affs(self, c, node, affs):
        inner = ''.join("<affiliation jid='%s' affiliation='%s'/>" % a for a in affs)
        return self.iq(c, 'set', "<affiliations node='%s'>%s</affiliations>" % (node, inner), NS_OWNER)

    def affs_of(self, c, node):
        r = self.ok(self.iq(c, 'get', "<affiliations node='%s'/>" % node, NS_OWNER))
        a = r.find(q(NS_OWNER, 'pubsub')).find(q(NS_OWNER, 'affiliations'))
        return {x.get('jid'): x.get('affiliation') for x in a.findall(q(NS_OWNER, 'affiliation'))}

    def subs_of(self, c, node):
        r = self.ok(self.iq(c, 'get', "<subscriptions node='%s'/>" % node, NS_OWNER))
        a = r.find(q(NS_OWNER, 'pubsub')).find(q(NS_OWNER, 'subscriptions'))
        return {x.get('jid'): x.get('subscription') for x in a.findall(q(NS_OWNER, 'subscription'))}

    def no_event(self, *clients):
        for c in clients:
            c.expect_none(is_event(), 'pubsub event')

    # -- disco ----------------------------------------------------------------

    def test_disco_lists_the_service_and_its_features(self):
        s = self.start_server()
        a = self.connect(s, 'alice')
        r = self.ok(a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=DOMAIN))
        found = {i.get('jid'): i.get('name') for i in r.find(q(NS_DISCO_ITEMS, 'query'))}
        self.assertEqual(found.get(PS), 'Publish-Subscribe', to_str(r))
        self.assertIn('conference.' + DOMAIN, found)
        r = self.ok(a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=PS))
        qy = r.find(q(NS_DISCO_INFO, 'query'))
        ids = [(i.get('category'), i.get('type')) for i in qy.findall(q(NS_DISCO_INFO, 'identity'))]
        self.assertEqual(ids, [('pubsub', 'service')])
        feats = sorted(f.get('var') for f in qy.findall(q(NS_DISCO_INFO, 'feature')))
        self.assertEqual(feats, sorted([NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PS] +
                                       ['%s#%s' % (NS_PS, f) for f in FEATURES]))
        # A node: its identity and metadata; the service's items list it.
        self.ok(self.create(a, 'news', {'pubsub#title': 'The News'}))
        r = self.ok(a.iq('get', "<query xmlns='%s' node='news'/>" % NS_DISCO_INFO, to=PS))
        qy = r.find(q(NS_DISCO_INFO, 'query'))
        self.assertEqual(qy.find(q(NS_DISCO_INFO, 'identity')).get('type'), 'leaf')
        meta = {f.get('var'): [v.text for v in f.findall(q(NS_DATA, 'value'))]
                for f in qy.find(q(NS_DATA, 'x')).findall(q(NS_DATA, 'field'))}
        self.assertEqual(meta['pubsub#owner'], [AJ])
        self.assertEqual(meta['pubsub#title'], ['The News'])
        r = self.ok(a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=PS))
        self.assertEqual([(i.get('node'), i.get('name')) for i in r.find(q(NS_DISCO_ITEMS, 'query'))],
                         [('news', 'The News')])
        self.assert_error(a.iq('get', "<query xmlns='%s' node='nope'/>" % NS_DISCO_INFO, to=PS),
                          'item-not-found')
        # An address under the service's domain is nobody.
        self.assert_error(a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to='x@' + PS),
                          'service-unavailable')

    def test_service_can_be_switched_off(self):
        s = self.start_server(pubsub__enabled=False)
        a = self.connect(s, 'alice')
        c = self.connect(s, 'carol')
        r = self.ok(a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=DOMAIN))
        self.assertNotIn(PS, [i.get('jid') for i in r.find(q(NS_DISCO_ITEMS, 'query'))])
        # The service does not exist: its domain is no domain of this server (as upload's).
        self.assert_error(a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=PS), 'remote-server-not-found')
        self.assert_error(self.create(a, 'n'), 'remote-server-not-found')
        self.assert_error(self.publish(a, 'n', 'nobody hears this', 'x'), 'remote-server-not-found')
        self.assert_error(self.subscribe(c, 'n', jid=CJ), 'remote-server-not-found')
        self.no_event(c)

    # -- create, configure, delete -------------------------------------------

    def test_create_configure_and_delete(self):
        s = self.start_server()
        a = self.connect(s, 'alice')
        c = self.connect(s, 'carol')
        e = self.connect(s, 'eve')
        self.ok(self.create(a, 'plain'))
        self.assert_error(self.create(a, 'plain'), 'conflict')
        self.assert_error(self.create(e, 'plain'), 'conflict')
        # Create and configure in one request.
        self.ok(self.create(a, 'conf', {'pubsub#max_items': '3', 'pubsub#notify_config': '1',
                                        'pubsub#title': 'Configured'}))
        conf = self.config_of(a, 'conf')
        self.assertEqual(conf['pubsub#max_items'], ['3'])
        self.assertEqual(conf['pubsub#title'], ['Configured'])
        self.assertEqual(conf['pubsub#access_model'], ['open'])
        # An instant node gets a name from the service.
        r = self.ok(self.iq(a, 'set', '<create/>'))
        name = r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'create')).get('node')
        self.assertTrue(name)
        self.assertIn(name, [x.get('node') for x in self.ok(
            a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=PS)).find(q(NS_DISCO_ITEMS, 'query'))])
        # Bad forms: nothing changes, nothing is created.
        self.assert_error(self.create(a, 'badform', {'pubsub#access_model': 'secret'}),
                          'not-acceptable', 'unsupported-access-model')
        self.assert_error(self.iq(a, 'set', "<create node='badtype'/><configure>%s</configure>"
                                  % form({'pubsub#max_items': '2'}, form_type=NS_PS + '#publish-options')),
                          'bad-request')
        self.assert_error(self.iq(a, 'get', "<configure node='badform'/>", NS_OWNER), 'item-not-found')
        self.assert_error(self.iq(a, 'get', "<configure node='badtype'/>", NS_OWNER), 'item-not-found')
        # Subscribed carol hears of configuration changes (notify_config).
        self.ok(self.subscribe(c, 'conf'))
        self.ok(self.configure(a, 'conf', {'pubsub#title': 'Renamed'}))
        ev = c.wait(is_event('conf', 'configuration'))
        fields = {f.get('var'): [v.text for v in f.findall(q(NS_DATA, 'value'))]
                  for f in event_el(ev, 'configuration').find(q(NS_DATA, 'x')).findall(q(NS_DATA, 'field'))}
        self.assertEqual(fields['pubsub#title'], ['Renamed'])
        # Cancel keeps it; a malformed submission and a non-owner change nothing.
        self.ok(self.iq(a, 'set', "<configure node='conf'><x xmlns='%s' type='cancel'/></configure>"
                        % NS_DATA, NS_OWNER))
        self.assert_error(self.configure(a, 'conf', {'pubsub#max_items': 'many'}), 'not-acceptable')
        self.assert_error(self.configure(a, 'conf', {'pubsub#access_model': 'nobody'}),
                          'not-acceptable', 'unsupported-access-model')
        self.assert_error(self.iq(a, 'set', "<configure node='conf'><x xmlns='%s' type='form'/></configure>"
                                  % NS_DATA, NS_OWNER), 'bad-request')
        self.assert_error(self.configure(e, 'conf', {'pubsub#title': 'Mine'}), 'forbidden')
        self.assert_error(self.iq(e, 'get', "<configure node='conf'/>", NS_OWNER), 'forbidden')
        self.assert_error(self.iq(a, 'get', "<configure/>", NS_OWNER), 'bad-request', 'nodeid-required')
        conf = self.config_of(a, 'conf')
        self.assertEqual(conf['pubsub#title'], ['Renamed'])
        self.assertEqual(conf['pubsub#max_items'], ['3'])
        c.take()
        self.no_event(c)
        # Default configuration.
        r = self.ok(self.iq(a, 'get', '<default/>', NS_OWNER))
        self.assertIsNotNone(r.find(q(NS_OWNER, 'pubsub')).find(q(NS_OWNER, 'default')).find(q(NS_DATA, 'x')))
        # Delete: not by a non-owner (the node stays); by the owner, subscribers told, with a redirect.
        self.ok(self.publish(a, 'conf', 'kept'))
        c.wait(is_event('conf'))
        self.assert_error(self.iq(e, 'set', "<delete node='conf'/>", NS_OWNER), 'forbidden')
        self.assertEqual([t for _, t in self.stored(a, 'conf')], ['kept'])
        self.ok(self.iq(a, 'set', "<delete node='conf'><redirect uri='xmpp:%s?;node=plain'/></delete>" % PS,
                        NS_OWNER))
        ev = c.wait(is_event('conf', 'delete'))
        self.assertEqual(event_el(ev, 'delete').find(q(NS_EV, 'redirect')).get('uri'),
                         'xmpp:%s?;node=plain' % PS)
        self.assert_error(self.items(a, 'conf'), 'item-not-found')
        self.assert_error(self.iq(a, 'set', "<delete node='conf'/>", NS_OWNER), 'item-not-found')

    # -- publish, items, retract, purge ---------------------------------------

    def test_publish_items_retract_purge(self):
        s = self.start_server(pubsub__max_item_size='1024')
        a = self.connect(s, 'alice')
        b = self.connect(s, 'bob')
        c = self.connect(s, 'carol')
        e = self.connect(s, 'eve')
        self.ok(self.create(a, 'blog', {'pubsub#max_items': '5'}))
        r = self.ok(self.subscribe(c, 'blog', jid=CJ))
        sub = self.subscription(r)
        self.assertEqual((sub.get('node'), sub.get('jid'), sub.get('subscription')), ('blog', CJ, 'subscribed'))
        self.assertTrue(sub.get('subid'))
        # The owner publishes: the subscriber (bare JID) is told, with the payload.
        r = self.ok(self.publish(a, 'blog', 'first', 'one'))
        self.assertEqual(r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'publish')).find(q(NS_PS, 'item')).get('id'), 'one')
        ev = c.wait(is_event('blog'))
        it = event_el(ev, 'items').find(q(NS_EV, 'item'))
        self.assertEqual((it.get('id'), it.find(q(ENTRY, 'entry')).text), ('one', 'first'))
        # Not a publisher: forbidden, nothing stored.
        self.assert_error(self.publish(e, 'blog', 'spam', 'x'), 'forbidden')
        self.assert_error(self.publish(b, 'blog', 'early', 'y'), 'forbidden')
        # A publisher, then.
        self.ok(self.set_affs(a, 'blog', [(BJ, 'publisher')]))
        r = self.ok(self.publish(b, 'blog', 'second'))
        gen = r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'publish')).find(q(NS_PS, 'item')).get('id')
        self.assertTrue(gen)
        c.wait(is_event('blog'))
        # Bad input, each with its error and nothing stored.
        self.assert_error(self.publish(a, 'blog', 'x' * 2000, 'big'), 'not-acceptable', 'payload-too-big')
        self.assert_error(a.iq('set', ps("<publish node='blog'><item id='two'>%s%s</item></publish>"
                                         % (entry('a'), entry('b'))), to=PS), 'bad-request', 'invalid-payload')
        self.assert_error(a.iq('set', ps("<publish node='blog'><item id='none'/></publish>"), to=PS),
                          'bad-request', 'payload-required')
        self.assert_error(a.iq('set', ps("<publish node='blog'/>"), to=PS), 'bad-request', 'item-required')
        self.assert_error(a.iq('set', ps("<publish><item>%s</item></publish>" % entry('n')), to=PS),
                          'bad-request', 'nodeid-required')
        self.assert_error(self.publish(a, 'nosuch', 'lost'), 'item-not-found')
        self.assert_error(self.publish(a, 'blog', 'pre', 'pre', {'pubsub#access_model': 'whitelist'}),
                          'conflict', 'precondition-not-met')
        self.assert_error(self.publish(a, 'blog', 'pre', 'pre', {'pubsub#unknown_option': '1'}),
                          'conflict', 'precondition-not-met')
        self.assertEqual(self.stored(a, 'blog'), [('one', 'first'), (gen, 'second')])
        self.assertEqual(self.stored(e, 'blog'), [('one', 'first'), (gen, 'second')])  # open access
        # A precondition that holds.
        self.ok(self.publish(a, 'blog', 'third', 'three', {'pubsub#access_model': 'open', 'pubsub#max_items': '5'}))
        c.wait(is_event('blog'))
        # Items: max_items, by id.
        self.assertEqual(self.item_texts(self.ok(self.items(c, 'blog', " max_items='2'")), 'blog'),
                         [(gen, 'second'), ('three', 'third')])
        self.assertEqual(self.item_texts(self.ok(self.items(c, 'blog', inner="<item id='one'/>")), 'blog'),
                         [('one', 'first')])
        self.assert_error(self.items(c, 'blog', " max_items='0'"), 'bad-request')
        self.assert_error(self.items(c, 'nosuch'), 'item-not-found')
        # max_items=5 keeps the newest five.
        for i in range(4):
            self.ok(self.publish(a, 'blog', 'more %d' % i, 'm%d' % i))
        self.assertEqual([i for i, _ in self.stored(a, 'blog')], ['three', 'm0', 'm1', 'm2', 'm3'])
        c.wait_n(is_event('blog'), 4)
        # Retract: not by the outsider; by the owner, with notify.
        self.assert_error(self.iq(e, 'set', "<retract node='blog'><item id='m0'/></retract>"), 'forbidden')
        self.assert_error(self.iq(a, 'set', "<retract node='blog'><item id='gone'/></retract>"), 'item-not-found')
        self.assert_error(self.iq(a, 'set', "<retract node='blog'/>"), 'bad-request', 'item-required')
        self.ok(self.iq(a, 'set', "<retract node='blog' notify='true'><item id='m0'/></retract>"))
        ev = c.wait(is_event('blog'))
        self.assertEqual(event_el(ev, 'items').find(q(NS_EV, 'retract')).get('id'), 'm0')
        self.assertEqual([i for i, _ in self.stored(a, 'blog')], ['three', 'm1', 'm2', 'm3'])
        # Purge: not by a publisher; by the owner, one <purge/>.
        self.assert_error(self.iq(b, 'set', "<purge node='blog'/>", NS_OWNER), 'forbidden')
        self.assertEqual(len(self.stored(a, 'blog')), 4)
        self.ok(self.iq(a, 'set', "<purge node='blog'/>", NS_OWNER))
        c.wait(is_event('blog', 'purge'))
        self.assertEqual(self.stored(a, 'blog'), [])
        self.no_event(e, b)

    # -- subscriptions and affiliations ----------------------------------------

    def test_subscriptions_and_affiliations(self):
        s = self.start_server()
        a = self.connect(s, 'alice')
        b = self.connect(s, 'bob')
        c = self.connect(s, 'carol')
        e = self.connect(s, 'eve')
        self.ok(self.create(a, 'feed'))
        self.ok(self.create(a, 'other'))
        self.assert_error(self.subscribe(c, 'feed', jid=EJ), 'bad-request', 'invalid-jid')
        self.assert_error(self.subscribe(c, 'nosuch'), 'item-not-found')
        self.assert_error(self.iq(c, 'set', "<subscribe jid='%s'/>" % CJ), 'bad-request', 'nodeid-required')
        self.assert_error(self.iq(c, 'set', "<subscribe node='feed' jid='%s'/><options>%s</options>"
                                  % (CJ, form({'pubsub#deliver': 'perhaps'}, NS_PS + '#subscribe_options'))),
                          'bad-request', 'invalid-options')
        self.assertEqual(self.subs_of(a, 'feed'), {})
        r = self.ok(self.subscribe(c, 'feed'))  # the full JID
        subid = self.subscription(r).get('subid')
        self.assertEqual(self.subscription(r).get('jid'), c.jid)
        # Subscribed again: the same subscription.
        self.assertEqual(self.subscription(self.ok(self.subscribe(c, 'feed'))).get('subid'), subid)
        self.ok(self.subscribe(c, 'other', jid=CJ))
        r = self.ok(self.iq(c, 'get', '<subscriptions/>'))
        got = sorted((x.get('node'), x.get('jid'), x.get('subscription'))
                     for x in r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'subscriptions')))
        self.assertEqual(got, [('feed', c.jid, 'subscribed'), ('other', CJ, 'subscribed')])
        r = self.ok(self.iq(c, 'get', "<subscriptions node='other'/>"))
        self.assertEqual(len(r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'subscriptions'))), 1)
        r = self.ok(self.iq(a, 'get', '<affiliations/>'))
        got = sorted((x.get('node'), x.get('affiliation'))
                     for x in r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'affiliations')))
        self.assertEqual(got, [('feed', 'owner'), ('other', 'owner')])
        self.assertEqual(len(self.ok(self.iq(e, 'get', '<affiliations/>')).find(q(NS_PS, 'pubsub'))
                             .find(q(NS_PS, 'affiliations'))), 0)
        # Unsubscribe errors, then unsubscribe.
        self.assert_error(self.iq(c, 'set', "<unsubscribe node='feed' jid='%s' subid='wrong'/>" % c.jid),
                          'not-acceptable', 'invalid-subid')
        self.assert_error(self.iq(e, 'set', "<unsubscribe node='feed' jid='%s'/>" % EJ),
                          'unexpected-request', 'not-subscribed')
        self.assert_error(self.iq(e, 'set', "<unsubscribe node='feed' jid='%s'/>" % c.jid), 'forbidden')
        self.ok(self.iq(c, 'set', "<unsubscribe node='other' jid='%s'/>" % CJ))
        self.assertEqual(self.subs_of(a, 'other'), {})
        # The owner's view and management of subscriptions: dave, offline, is subscribed.
        self.assertEqual(self.subs_of(a, 'feed'), {c.jid: 'subscribed'})
        self.assert_error(self.iq(e, 'get', "<subscriptions node='feed'/>", NS_OWNER), 'forbidden')
        self.ok(self.iq(a, 'set', "<subscriptions node='feed'><subscription jid='%s' subscription='subscribed'/>"
                        "</subscriptions>" % DJ, NS_OWNER))
        self.assert_error(self.iq(a, 'set', "<subscriptions node='feed'><subscription jid='%s' "
                                  "subscription='maybe'/></subscriptions>" % EJ, NS_OWNER), 'not-acceptable')
        self.assertEqual(self.subs_of(a, 'feed'), {c.jid: 'subscribed', DJ: 'subscribed'})
        self.ok(self.publish(a, 'feed', 'while dave was away', 'w'))
        c.wait(is_event('feed'))
        d = self.connect(s, 'dave')
        r = self.ok(self.iq(d, 'get', '<subscriptions/>'))
        self.assertEqual([(x.get('node'), x.get('jid')) for x in
                          r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'subscriptions'))], [('feed', DJ)])
        self.assertEqual(self.stored(d, 'feed'), [('w', 'while dave was away')])
        self.ok(self.publish(a, 'feed', 'now dave is here', 'h'))
        ev = d.wait(is_event('feed'))
        self.assertEqual(event_el(ev, 'items').find(q(NS_EV, 'item')).get('id'), 'h')
        # Affiliations: every kind; unknown ones and a node without owner refused, nothing changed.
        self.ok(self.set_affs(a, 'feed', [(BJ, 'owner'), (CJ, 'member'), (DJ, 'publish-only'),
                                          ('x@elsewhere.example', 'publisher')]))
        self.assertEqual(self.affs_of(a, 'feed'), {AJ: 'owner', BJ: 'owner', CJ: 'member',
                                                   DJ: 'publish-only', 'x@elsewhere.example': 'publisher'})
        self.assert_error(self.set_affs(a, 'feed', [(EJ, 'superuser')]), 'not-acceptable')
        self.assert_error(self.set_affs(e, 'feed', [(EJ, 'owner')]), 'forbidden')
        self.assert_error(self.set_affs(a, 'feed', [(AJ, 'none'), (BJ, 'member')]), 'not-acceptable')
        self.ok(self.set_affs(b, 'feed', [(AJ, 'none'), ('x@elsewhere.example', 'none')]))
        self.assertEqual(self.affs_of(b, 'feed'), {BJ: 'owner', CJ: 'member', DJ: 'publish-only'})
        self.assert_error(self.iq(a, 'get', "<affiliations node='feed'/>", NS_OWNER), 'forbidden')
        # publish-only publishes but does not see items.
        self.ok(self.publish(d, 'feed', 'from dave', 'd'))
        self.assert_error(self.items(d, 'feed'), 'forbidden')
        # An outcast loses its subscription and access.
        self.ok(self.set_affs(b, 'feed', [(CJ, 'outcast')]))
        self.assertNotIn(c.jid, self.subs_of(b, 'feed'))
        self.assert_error(self.items(c, 'feed'), 'forbidden')
        self.assert_error(self.subscribe(c, 'feed'), 'forbidden')

    # -- access and publish models ---------------------------------------------

    def test_access_models(self):
        s = self.start_server()
        a = self.connect(s, 'alice')
        b = self.connect(s, 'bob')
        c = self.connect(s, 'carol')
        e = self.connect(s, 'eve')
        make_state(self, a, b, 'both')
        make_state(self, a, c, 'both')
        a.roster_set(CJ, groups=['friends'])
        a.wait(lambda st: st.find(q('jabber:iq:roster', 'query')) is not None and st.get('type') == 'set')
        self.ok(self.create(a, 'pres', {'pubsub#access_model': 'presence'}))
        self.ok(self.create(a, 'rost', {'pubsub#access_model': 'roster',
                                        'pubsub#roster_groups_allowed': ['friends']}))
        self.ok(self.create(a, 'white', {'pubsub#access_model': 'whitelist'}))
        for n in ('pres', 'rost', 'white'):
            self.ok(self.publish(a, n, 'secret', 's'))
        # presence: bob and carol see alice's presence, eve does not.
        self.assertEqual(self.stored(b, 'pres'), [('s', 'secret')])
        self.assert_error(self.items(e, 'pres'), 'not-authorized', 'presence-subscription-required')
        self.assert_error(self.subscribe(e, 'pres'), 'not-authorized', 'presence-subscription-required')
        self.ok(self.subscribe(b, 'pres'))
        # roster: only the group alice allows.
        self.assertEqual(self.stored(c, 'rost'), [('s', 'secret')])
        self.assert_error(self.items(b, 'rost'), 'not-authorized', 'not-in-roster-group')
        # whitelist: members only.
        self.assert_error(self.items(b, 'white'), 'not-allowed', 'closed-node')
        self.assert_error(self.subscribe(b, 'white'), 'not-allowed', 'closed-node')
        self.ok(self.set_affs(a, 'white', [(BJ, 'member')]))
        self.assertEqual(self.stored(b, 'white'), [('s', 'secret')])
        r = self.ok(self.subscribe(b, 'white', jid=BJ))
        # The last item comes to a new subscriber (send_last_published_item on_sub), with its delay.
        ev = b.wait(is_event('white'))
        self.assertIsNotNone(ev.find(q(NS_DELAY, 'delay')), to_str(ev))
        self.no_event(e)

    def test_access_rechecked_at_notification(self):
        """A subscriber of a presence or roster node that the owner's roster no longer lets in
        gets no more notifications (XEP-0060 4.5: the access model is checked when notifying)."""
        s = self.start_server()
        a = self.connect(s, 'alice')
        b = self.connect(s, 'bob')
        c = self.connect(s, 'carol')
        make_state(self, a, b, 'both')
        make_state(self, a, c, 'both')
        a.roster_set(BJ, groups=['friends'])
        a.roster_set(CJ, groups=['friends'])
        self.ok(self.create(a, 'pres', {'pubsub#access_model': 'presence'}))
        self.ok(self.create(a, 'rost', {'pubsub#access_model': 'roster',
                                        'pubsub#roster_groups_allowed': ['friends']}))
        for n in ('pres', 'rost'):
            self.ok(self.subscribe(b, n, jid=BJ))
            self.ok(self.subscribe(c, n, jid=CJ))
        self.ok(self.publish(a, 'pres', 'one', 'p1'))
        self.ok(self.publish(a, 'rost', 'one', 'r1'))
        for x in (b, c):
            x.wait(is_event('pres'))
            x.wait(is_event('rost'))
        # carol leaves the group; bob loses his presence subscription from alice.
        self.ok(a.iq('set', "<query xmlns='jabber:iq:roster'><item jid='%s'><group>work</group></item></query>" % CJ))
        a.sub('unsubscribed', BJ)
        self.wait_view(a, BJ, 'to')
        self.ok(self.publish(a, 'pres', 'two', 'p2'))
        self.ok(self.publish(a, 'rost', 'two', 'r2'))
        ev = c.wait(is_event('pres'))
        self.assertEqual(event_el(ev, 'items').find(q(NS_EV, 'item')).get('id'), 'p2')
        self.ok(self.iq(a, 'set', "<retract node='pres' notify='1'><item id='p1'/></retract>"))
        c.wait(is_event('pres'))
        c.expect_none(is_event('rost'), 'a roster-node event after leaving the group')
        b.expect_none(is_event(), 'an event after losing the presence subscription')

    def test_closed_node_stops_notifications(self):
        """A node made whitelist after its subscriptions: only members hear of it."""
        s = self.start_server()
        a = self.connect(s, 'alice')
        b = self.connect(s, 'bob')
        c = self.connect(s, 'carol')
        self.ok(self.create(a, 'n'))
        self.ok(self.subscribe(b, 'n', jid=BJ))
        self.ok(self.subscribe(c, 'n', jid=CJ))
        self.ok(self.set_affs(a, 'n', [(BJ, 'member')]))
        self.ok(self.configure(a, 'n', {'pubsub#access_model': 'whitelist'}))
        self.ok(self.publish(a, 'n', 'members', 'm'))
        b.wait(is_event('n'))
        c.expect_none(is_event(), 'an event of a node closed to it')
        self.assert_error(self.items(c, 'n'), 'not-allowed', 'closed-node')
        # A deleted node's every subscriber hears of it.
        self.ok(self.iq(a, 'set', "<delete node='n'/>", NS_OWNER))
        b.wait(is_event('n', 'delete'))
        c.wait(is_event('n', 'delete'))

    def test_transient_notification_only_node(self):
        s = self.start_server()
        a = self.connect(s, 'alice')
        c = self.connect(s, 'carol')
        self.ok(self.create(a, 'ping', {'pubsub#persist_items': '0', 'pubsub#deliver_payloads': '0'}))
        self.ok(self.subscribe(c, 'ping', jid=CJ))
        self.assert_error(self.publish(a, 'ping', 'with an item', 'x'), 'bad-request', 'item-forbidden')
        c.expect_none(is_event(), 'an event of a refused publish')
        r = self.ok(self.iq(a, 'set', "<publish node='ping'/>"))
        self.assertEqual(r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'publish')).get('node'), 'ping')
        ev = c.wait(is_event('ping'))
        self.assertEqual(len(event_el(ev, 'items')), 0, to_str(ev))
        self.assertEqual(self.stored(a, 'ping'), [])
        # A node that keeps items wants one.
        self.ok(self.create(a, 'keeps'))
        self.assert_error(self.iq(a, 'set', "<publish node='keeps'/>"), 'bad-request', 'item-required')

    def test_notifications_without_payloads_on_a_node_that_keeps_items(self):
        # XEP-0060 7.1.2.2: deliver_payloads off, persist_items on: the event names the item and
        # holds nothing else; the items stay, a fetch returns them; a new subscriber's last item
        # comes without its payload too.
        s = self.start_server()
        a = self.connect(s, 'alice')
        c = self.connect(s, 'carol')
        d = self.connect(s, 'dave')
        self.ok(self.create(a, 'quiet', {'pubsub#persist_items': '1', 'pubsub#deliver_payloads': '0',
                                         'pubsub#max_items': '5'}))
        self.ok(self.subscribe(c, 'quiet', jid=CJ))
        c.sync()
        c.take()
        self.ok(self.publish(a, 'quiet', 'first', 'q1'))
        ev = c.wait(is_event('quiet'), what='notification without payload')
        items = event_el(ev, 'items')
        self.assertEqual([(i.tag, i.get('id'), list(i), i.text) for i in items],
                         [(q(NS_EV, 'item'), 'q1', [], None)], to_str(ev))
        self.assertEqual(self.stored(c, 'quiet'), [('q1', 'first')])
        self.ok(self.publish(a, 'quiet', 'second', 'q2'))
        c.wait(is_event('quiet'))
        self.assertEqual(self.stored(c, 'quiet'), [('q1', 'first'), ('q2', 'second')])
        self.ok(self.subscribe(d, 'quiet', jid=DJ))
        ev = d.wait(is_event('quiet'), what='last item at subscription')
        self.assertEqual([(i.get('id'), list(i)) for i in event_el(ev, 'items')], [('q2', [])], to_str(ev))

    def test_subscription_options(self):
        s = self.start_server()
        a = self.connect(s, 'alice')
        c = self.connect(s, 'carol')
        d = self.connect(s, 'dave')
        e = self.connect(s, 'eve')
        self.ok(self.create(a, 'opt'))
        self.ok(self.publish(a, 'opt', 'before', 'b'))
        # Subscribe and configure (6.3.7): carol asks for no delivery, so no last item either.
        r = self.ok(self.iq(c, 'set', "<subscribe node='opt' jid='%s'/><options>%s</options>"
                            % (CJ, form({'pubsub#deliver': 'false'}, NS_PS + '#subscribe_options'))))
        subid = self.subscription(r).get('subid')
        self.ok(self.subscribe(d, 'opt', jid=DJ))
        d.wait(is_event('opt'))  # the last item
        def deliver_of(cl, jid):
            r = self.ok(self.iq(cl, 'get', "<options node='opt' jid='%s'/>" % jid))
            o = r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'options'))
            fields = {f.get('var'): [v.text for v in f.findall(q(NS_DATA, 'value'))]
                      for f in o.find(q(NS_DATA, 'x')).findall(q(NS_DATA, 'field'))}
            self.assertEqual(fields['FORM_TYPE'], [NS_PS + '#subscribe_options'])
            return fields['pubsub#deliver']
        self.assertEqual(deliver_of(c, CJ), ['0'])
        self.assertEqual(deliver_of(a, CJ), ['0'])  # the owner sees any
        self.assert_error(self.iq(e, 'get', "<options node='opt' jid='%s'/>" % CJ), 'forbidden')
        self.assert_error(self.iq(e, 'get', "<options node='opt' jid='%s'/>" % EJ), 'unexpected-request', 'not-subscribed')
        self.assert_error(self.iq(c, 'get', "<options node='opt' jid='%s' subid='nope'/>" % CJ),
                          'not-acceptable', 'invalid-subid')
        self.ok(self.publish(a, 'opt', 'quiet', 'q'))
        d.wait(is_event('opt'))
        c.expect_none(is_event(), 'an event with delivery off')
        # Bad options change nothing; good ones turn delivery on.
        self.assert_error(self.iq(c, 'set', "<options node='opt' jid='%s'>%s</options>"
                                  % (CJ, form({'pubsub#deliver': 'maybe'}, NS_PS + '#subscribe_options'))),
                          'bad-request', 'invalid-options')
        self.assert_error(self.iq(c, 'set', "<options node='opt' jid='%s'>%s</options>"
                                  % (CJ, form({'pubsub#deliver': '1'}, NS_PS + '#node_config'))),
                          'bad-request', 'invalid-options')
        self.assertEqual(deliver_of(c, CJ), ['0'])
        self.ok(self.iq(c, 'set', "<options node='opt' jid='%s' subid='%s'>%s</options>"
                        % (CJ, subid, form({'pubsub#deliver': 'true'}, NS_PS + '#subscribe_options'))))
        self.ok(self.publish(a, 'opt', 'loud', 'l'))
        ev = c.wait(is_event('opt'))
        self.assertEqual(event_el(ev, 'items').find(q(NS_EV, 'item')).get('id'), 'l')
        # The default options.
        r = self.ok(self.iq(c, 'get', "<default node='opt'/>"))
        self.assertIsNotNone(r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'default')).find(q(NS_DATA, 'x')))
        # Kept across a restart.
        self.ok(self.iq(c, 'set', "<options node='opt' jid='%s'>%s</options>"
                        % (CJ, form({'pubsub#deliver': '0'}, NS_PS + '#subscribe_options'))))
        for x in (a, c, d, e):
            x.close()
        s.restart()
        c = self.connect(s, 'carol')
        self.assertEqual(deliver_of(c, CJ), ['0'])

    def test_collections_refused(self):
        s = self.start_server()
        a = self.connect(s, 'alice')
        self.assert_error(self.create(a, 'coll', {'pubsub#node_type': 'collection'}),
                          'feature-not-implemented', 'unsupported', 'collections')
        self.assert_error(self.iq(a, 'get', "<configure node='coll'/>", NS_OWNER), 'item-not-found')
        self.ok(self.create(a, 'leaf', {'pubsub#node_type': 'leaf'}))
        self.assert_error(self.configure(a, 'leaf', {'pubsub#node_type': 'collection'}),
                          'feature-not-implemented', 'unsupported', 'collections')

    def test_authorize_access_model(self):
        s = self.start_server()
        a = self.connect(s, 'alice')
        c = self.connect(s, 'carol')
        e = self.connect(s, 'eve')
        self.ok(self.create(a, 'club', {'pubsub#access_model': 'authorize'}))
        self.ok(self.publish(a, 'club', 'members only', 'm'))
        self.assert_error(self.items(c, 'club'), 'not-authorized', 'not-subscribed')
        r = self.ok(self.subscribe(c, 'club', jid=CJ))
        self.assertEqual(self.subscription(r).get('subscription'), 'pending')
        subid = self.subscription(r).get('subid')
        self.assert_error(self.subscribe(c, 'club', jid=CJ), 'not-authorized', 'pending-subscription')
        self.assert_error(self.items(c, 'club'), 'not-authorized', 'not-subscribed')
        r = self.ok(self.iq(c, 'get', "<subscriptions node='club'/>"))
        self.assertEqual(r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'subscriptions'))[0].get('subscription'),
                         'pending')
        # The owner is asked with the XEP's form.
        m = a.wait(lambda st: st.tag == MESSAGE and st.get('from') == PS and st.find(q(NS_DATA, 'x')) is not None)
        x = m.find(q(NS_DATA, 'x'))
        vals = {f.get('var'): [v.text for v in f.findall(q(NS_DATA, 'value'))] for f in x.findall(q(NS_DATA, 'field'))}
        self.assertEqual(vals['FORM_TYPE'], [NS_PS + '#subscribe_authorization'])
        self.assertEqual(vals['pubsub#node'], ['club'])
        self.assertEqual(vals['pubsub#subscriber_jid'], [CJ])
        self.assertEqual(vals['pubsub#subid'], [subid])
        answer = form({'pubsub#node': 'club', 'pubsub#subscriber_jid': CJ, 'pubsub#subid': subid,
                       'pubsub#allow': 'true'}, NS_PS + '#subscribe_authorization')
        # Not from an owner: refused, still pending.
        e.send("<message to='%s' id='fake'>%s</message>" % (PS, answer))
        r = e.wait(lambda st: st.tag == MESSAGE and st.get('type') == 'error')
        self.assertEqual(err(r)[1], 'forbidden')
        self.assert_error(self.items(c, 'club'), 'not-authorized', 'not-subscribed')
        a.send("<message to='%s' id='ok'>%s</message>" % (PS, answer))
        ev = c.wait(is_event('club', 'subscription'))
        self.assertEqual(event_el(ev, 'subscription').get('subscription'), 'subscribed')
        self.assertEqual(self.stored(c, 'club'), [('m', 'members only')])
        self.ok(self.publish(a, 'club', 'news', 'n'))
        c.wait(is_event('club'))
        # Denied: the subscription goes.
        self.ok(self.subscribe(e, 'club', jid=EJ))
        m = a.wait(lambda st: st.tag == MESSAGE and st.get('from') == PS and st.find(q(NS_DATA, 'x')) is not None)
        sid = [f.find(q(NS_DATA, 'value')).text for f in m.find(q(NS_DATA, 'x')).findall(q(NS_DATA, 'field'))
               if f.get('var') == 'pubsub#subid'][0]
        a.send("<message to='%s'>%s</message>" % (PS, form({'pubsub#node': 'club', 'pubsub#subscriber_jid': EJ,
                                                           'pubsub#subid': sid, 'pubsub#allow': 'false'},
                                                          NS_PS + '#subscribe_authorization')))
        ev = e.wait(is_event('club', 'subscription'))
        self.assertEqual(event_el(ev, 'subscription').get('subscription'), 'none')
        self.assertEqual(self.subs_of(a, 'club'), {CJ: 'subscribed'})
        # An owner who is away finds the request waiting when it comes back (offline storage);
        # the owner may also approve through its subscription list (§8.8.2).
        a.logout()
        b = self.connect(s, 'bob')
        r = self.ok(self.subscribe(b, 'club', jid=BJ))
        self.assertEqual(self.subscription(r).get('subscription'), 'pending')
        a = self.connect(s, 'alice')
        m = a.wait(lambda st: st.tag == MESSAGE and st.get('from') == PS and st.find(q(NS_DATA, 'x')) is not None)
        self.assertIn(BJ, [v.text for v in m.find(q(NS_DATA, 'x')).iter(q(NS_DATA, 'value'))])
        self.assertEqual(self.subs_of(a, 'club'), {CJ: 'subscribed', BJ: 'pending'})
        self.ok(self.iq(a, 'set', "<subscriptions node='club'><subscription jid='%s' subscription='subscribed'/>"
                        "</subscriptions>" % BJ, NS_OWNER))
        ev = b.wait(is_event('club', 'subscription'))
        self.assertEqual(event_el(ev, 'subscription').get('subscription'), 'subscribed')
        self.assertEqual(self.stored(b, 'club'), [('m', 'members only'), ('n', 'news')])

    def test_publish_models(self):
        s = self.start_server()
        a = self.connect(s, 'alice')
        c = self.connect(s, 'carol')
        e = self.connect(s, 'eve')
        self.ok(self.create(a, 'subs', {'pubsub#publish_model': 'subscribers'}))
        self.ok(self.create(a, 'wall', {'pubsub#publish_model': 'open'}))
        self.assert_error(self.create(a, 'odd', {'pubsub#publish_model': 'everyone'}), 'not-acceptable')
        self.assert_error(self.publish(c, 'subs', 'not yet'), 'forbidden')
        self.ok(self.subscribe(c, 'subs', jid=CJ))
        self.ok(self.publish(c, 'subs', 'as a subscriber', 'c'))
        self.assert_error(self.publish(e, 'subs', 'outsider'), 'forbidden')
        self.assertEqual(self.stored(a, 'subs'), [('c', 'as a subscriber')])
        self.ok(self.publish(e, 'wall', 'anyone', 'e'))
        self.assertEqual(self.stored(a, 'wall'), [('e', 'anyone')])
        self.assertEqual(self.config_of(a, 'wall')['pubsub#publish_model'], ['open'])

    # -- configuration keys ----------------------------------------------------

    def test_max_items_max_and_above_the_cap(self):
        s = self.start_server(pubsub__max_items='50')
        a = self.connect(s, 'alice')
        # 'max' is kept as 'max' (XEP-0060 16.4.4 config-node-max), and means the cap
        self.ok(self.create(a, 'all', {'pubsub#max_items': 'max'}))
        self.assertEqual(self.config_of(a, 'all')['pubsub#max_items'], ['max'])
        for i in range(52):
            self.ok(self.publish(a, 'all', 'e%d' % i, 'i%d' % i))
        self.assertEqual(len(self.stored(a, 'all')), 50)
        self.ok(self.create(a, 'cap', {'pubsub#max_items': '50'}))
        self.assertEqual(self.config_of(a, 'cap')['pubsub#max_items'], ['50'])
        # above pubsub.max_items: not-acceptable, nothing created or changed
        self.assert_error(self.create(a, 'big', {'pubsub#max_items': '51'}), 'not-acceptable')
        self.assert_error(self.items(a, 'big'), 'item-not-found')
        self.assert_error(self.configure(a, 'cap', {'pubsub#max_items': '51'}), 'not-acceptable')
        self.assertEqual(self.config_of(a, 'cap')['pubsub#max_items'], ['50'])
        # publish-options on an existing node are preconditions (7.1.5): not met
        self.assert_error(self.publish(a, 'cap', 'x', 'x', {'pubsub#max_items': '51'}), 'conflict',
                          'precondition-not-met')
        self.assertEqual(len(self.stored(a, 'cap')), 0)

    def test_create_policy_and_limits(self):
        s = self.start_server(admins={'root': 'rootpw'}, pubsub__create_policy='admin',
                              pubsub__max_nodes_per_user='2', pubsub__max_subscriptions='1')
        a = self.connect(s, 'alice')
        c = self.connect(s, 'carol')
        root = self.connect(s, 'root', pw='rootpw')
        self.assert_error(self.create(a, 'mine'), 'forbidden')
        self.assert_error(self.iq(a, 'get', "<configure node='mine'/>", NS_OWNER), 'item-not-found')
        self.ok(self.create(root, 'one'))
        self.ok(self.create(root, 'two'))
        self.assert_error(self.create(root, 'three'), 'policy-violation')
        self.ok(self.subscribe(c, 'one'))
        self.assert_error(self.subscribe(a, 'one'), 'policy-violation', 'too-many-subscriptions')
        self.assertEqual(list(self.subs_of(root, 'one')), [c.jid])

    def test_node_bytes_bounded(self):
        s = self.start_server(pubsub__max_node_bytes='4096', pubsub__max_item_size='2048')
        a = self.connect(s, 'alice')
        self.ok(self.create(a, 'big', {'pubsub#max_items': '10'}))
        self.ok(self.publish(a, 'big', 'a' * 1500, 'a'))
        self.ok(self.publish(a, 'big', 'b' * 1500, 'b'))
        self.assert_error(self.publish(a, 'big', 'c' * 1500, 'c'), 'policy-violation')
        self.assertEqual([i for i, _ in self.stored(a, 'big')], ['a', 'b'])
        self.ok(self.publish(a, 'big', 'B' * 1500, 'b'))  # a replacement counts what it replaces
        self.ok(self.iq(a, 'set', "<configure node='big'>%s</configure>" % form({'pubsub#max_items': '2'}),
                        NS_OWNER))
        self.ok(self.publish(a, 'big', 'c' * 1500, 'c'))  # and what it drops
        self.assertEqual([i for i, _ in self.stored(a, 'big')], ['b', 'c'])

    def test_local_users_create_by_default_and_anyone_when_open(self):
        s = self.start_server()
        a = self.connect(s, 'alice')
        self.ok(self.create(a, 'x'))
        s2 = self.start_server(pubsub__create_policy='open', pubsub__max_nodes_per_user='1')
        e = self.connect(s2, 'eve')
        self.ok(self.create(e, 'y'))
        self.assert_error(self.iq(e, 'set', '<create/>'), 'policy-violation')

    # -- persistence -------------------------------------------------------------

    def test_state_survives_a_restart(self):
        s = self.start_server()
        a = self.connect(s, 'alice')
        c = self.connect(s, 'carol')
        self.ok(self.create(a, 'keep', {'pubsub#max_items': '4', 'pubsub#title': 'Kept',
                                        'pubsub#access_model': 'whitelist'}))
        self.ok(self.set_affs(a, 'keep', [(BJ, 'publisher'), (CJ, 'member')]))
        self.ok(self.subscribe(c, 'keep', jid=CJ))
        for i in range(3):
            self.ok(self.publish(a, 'keep', 'item %d' % i, 'i%d' % i))
        self.ok(self.create(a, 'club', {'pubsub#access_model': 'authorize', 'pubsub#persist_items': '0'}))
        self.ok(self.publish(a, 'club', 'not kept', 'gone'))
        self.assertEqual(self.subscription(self.ok(self.subscribe(c, 'club', jid=CJ))).get('subscription'),
                         'pending')
        a.close()
        c.close()
        s.restart()
        a = self.connect(s, 'alice')
        c = self.connect(s, 'carol')
        b = self.connect(s, 'bob')
        self.assertEqual(self.stored(c, 'keep'), [('i0', 'item 0'), ('i1', 'item 1'), ('i2', 'item 2')])
        conf = self.config_of(a, 'keep')
        self.assertEqual((conf['pubsub#max_items'], conf['pubsub#title'], conf['pubsub#access_model']),
                         (['4'], ['Kept'], ['whitelist']))
        self.assertEqual(self.affs_of(a, 'keep'), {AJ: 'owner', BJ: 'publisher', CJ: 'member'})
        self.assertEqual(self.subs_of(a, 'keep'), {CJ: 'subscribed'})
        self.ok(self.publish(b, 'keep', 'after', 'after'))
        c.wait(is_event('keep'))
        self.assertEqual(self.subs_of(a, 'club'), {CJ: 'pending'})
        self.assertEqual(self.config_of(a, 'club')['pubsub#access_model'], ['authorize'])
        self.assertEqual(self.stored(a, 'club'), [])  # an item not kept does not outlive a restart

    def test_removed_account_loses_subscriptions_and_affiliations(self):
        s = self.start_server()
        a = self.connect(s, 'alice')
        d = self.connect(s, 'dave')
        c = self.connect(s, 'carol')
        self.ok(self.create(a, 'n'))
        self.ok(self.set_affs(a, 'n', [(DJ, 'member'), (CJ, 'publisher')]))
        self.ok(self.subscribe(d, 'n', jid=DJ))
        self.ok(self.subscribe(c, 'n', jid=CJ))
        d.send("<iq type='set' id='unreg'><query xmlns='jabber:iq:register'><remove/></query></iq>")
        d.wait(lambda st: st.get('id') == 'unreg' or st.tag.endswith('error'), what='the removal')
        self.assertEqual(self.affs_of(a, 'n'), {AJ: 'owner', CJ: 'publisher'})
        self.assertEqual(self.subs_of(a, 'n'), {CJ: 'subscribed'})
        a.close()
        c.close()
        s.restart()
        a = self.connect(s, 'alice')
        self.assertEqual(self.affs_of(a, 'n'), {AJ: 'owner', CJ: 'publisher'})
        self.assertEqual(self.subs_of(a, 'n'), {CJ: 'subscribed'})

    # -- PEP answers <subscriptions/> too ------------------------------------------

    def test_pep_subscriptions_query(self):
        s = self.start_server()
        a = self.connect(s, 'alice')
        b = self.connect(s, 'bob')
        e = self.connect(s, 'eve')
        make_state(self, a, b, 'both')
        self.ok(a.iq('set', publish_xml('urn:example:mood', entry('happy'))))
        r = self.ok(b.iq('get', ps('<subscriptions/>'), to=AJ))
        got = [(x.get('node'), x.get('jid'), x.get('subscription'))
               for x in r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'subscriptions'))]
        self.assertEqual(got, [('urn:example:mood', BJ, 'subscribed')])
        r = self.ok(e.iq('get', ps('<subscriptions/>'), to=AJ))
        self.assertEqual(len(r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'subscriptions'))), 0)
        r = self.ok(b.iq('get', ps('<affiliations/>'), to=AJ))
        self.assertEqual(len(r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'affiliations'))), 0)


if __name__ == '__main__':
    main()
