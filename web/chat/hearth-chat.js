// Hearth's configuration of Converse.js for /chat/: every URL is the page's own origin, so the
// same files work behind any host name, port or TLS-terminating proxy, and nothing is fetched
// from the internet (no CDN, web fonts, emoji images, provider lists or sponsor logos).
//
// ?transport=websocket or ?transport=bosh forces one transport for this page load (the browser
// tests log in over each); without it Converse uses WebSocket and falls back to BOSH when the
// WebSocket connection fails.
(function () {
    'use strict';

    var params = new URLSearchParams(window.location.search);
    var transport = params.get('transport');

    // The server's root is one level above /chat/ (for /chat/, /chat/index.html and /chat alike),
    // so a proxy that mounts Hearth under a prefix (/xmpp/chat/) keeps working.
    var root = new URL('../', window.location.href);
    var websocketUrl = new URL('xmpp-websocket', root);
    websocketUrl.protocol = root.protocol === 'https:' ? 'wss:' : 'ws:';
    var boshUrl = new URL('http-bind', root);

    // The fullscreen login page's footer shows sponsor logos loaded from the internet. Converse
    // registers its elements only under names not yet defined (api.elements.register), so an
    // empty element defined first takes the footer's place.
    if (!window.customElements.get('converse-footer')) {
        window.customElements.define('converse-footer', class extends HTMLElement {});
    }

    var settings = {
        view_mode: 'fullscreen',
        authentication: 'login',
        allow_registration: false,
        auto_login: false,
        // XEP-0156 discovery would ask https://<the JID's domain>/.well-known/host-meta, which is
        // not necessarily this server; the page already knows its endpoints.
        discover_connection_methods: false,
        show_connection_url_input: false,
        websocket_url: transport === 'bosh' ? undefined : websocketUrl.href,
        bosh_service_url: transport === 'websocket' ? undefined : boshUrl.href,
        // Chunks (translations, emoji data, OMEMO) load from dist/ beside this page.
        assets_path: new URL('dist/', window.location.href).href,
        sounds_path: new URL('dist/sounds/', window.location.href).href,
        // Emojis drawn by the system's fonts: the Twemoji images would come from a CDN.
        use_system_emojis: true,
        emoji_image_path: new URL('dist/images/', window.location.href).href,
        // The registration form's list of public providers comes from the internet.
        xmpp_providers_url: '',
        // Links in messages are shown as links; nothing is fetched to preview or embed them.
        render_media: false,
        fetch_url_headers: false,
        embed_3rd_party_media_players: false,
        show_client_info: false,
        show_background: false,
        loglevel: params.get('loglevel') || 'info'
    };
    if (params.get('transport') && transport !== 'bosh' && transport !== 'websocket') {
        window.console.warn('hearth-chat: unknown transport ' + transport + '; using both');
    }
    window.converse.initialize(settings);
}());
