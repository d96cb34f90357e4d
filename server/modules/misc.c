/* Small answers about the server itself: XEP-0092 Software Version and XEP-0202 Entity Time, both
 * for IQs to the server's domain only. Reads the settings and the clock; no storage, no state
 * but the OS string fixed at start-up. */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "modules/im.h"

/* "Linux 6.8.0-45-generic": set once by misc_init on the main thread, read-only afterwards. */
static char os_name[2 * sizeof(((struct utsname *)0)->release) + 2];

static int misc_init(server_t *srv)
{
    (void)srv;
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(os_name, sizeof(os_name), "%s %s", u.sysname, u.release);
    else
        os_name[0] = '\0'; /* <os/> is optional (XEP-0092 §2): left out */
    return 0;
}

static void add_text_child(hearth_arena_t *a, hearth_xml_node_t *parent, const char *name,
                           const char *text)
{
    hearth_xml_node_t *n = hearth_xml_add_child(a, parent, name, NULL);
    if (n && text && *text)
        hearth_xml_add_text(a, n, text, strlen(text));
}

/* XEP-0092 §2: <name/> and <version/> are required in a result, <os/> optional; §5 asks for a
 * way to withhold the OS. With server.hide_version both version and OS are withheld: the
 * required <version/> is sent empty rather than left out, so that strict parsers still accept
 * the result while it tells nothing. */
static void version(iq_ctx_t *ctx)
{
    if (ctx->set) {
        iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "software version is a get");
        return;
    }
    int hide = ctx->s->w->set.hide_version;
    hearth_arena_t *a = ctx->arena;
    hearth_xml_node_t *r = iq_result(ctx);
    hearth_xml_node_t *q = hearth_xml_add_child(a, r, "query", HEARTH_NS_VERSION);
    add_text_child(a, q, "name", "Hearth");
    add_text_child(a, q, "version", hide ? NULL : HEARTH_VERSION);
    if (!hide && os_name[0])
        add_text_child(a, q, "os", os_name);
    iq_send(ctx, r);
}

/* XEP-0202 §3: <tzo/> is the zone offset in the TZD form of XEP-0082 (+hh:mm or -hh:mm) and
 * <utc/> the dateTime profile of XEP-0082 in UTC. */
static void entity_time(iq_ctx_t *ctx)
{
    if (ctx->set) {
        iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "entity time is a get");
        return;
    }
    time_t now = time(NULL);
    struct tm utc, local;
    if (!gmtime_r(&now, &utc) || !localtime_r(&now, &local)) {
        iq_error(ctx, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        return;
    }
    char utc_s[32], tzo[16];
    strftime(utc_s, sizeof(utc_s), "%Y-%m-%dT%H:%M:%SZ", &utc);
    long off = local.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(tzo, sizeof(tzo), "%c%02ld:%02ld", sign, (off / 3600) % 100, (off % 3600) / 60);

    hearth_arena_t *a = ctx->arena;
    hearth_xml_node_t *r = iq_result(ctx);
    hearth_xml_node_t *t = hearth_xml_add_child(a, r, "time", HEARTH_NS_TIME);
    add_text_child(a, t, "tzo", tzo);
    add_text_child(a, t, "utc", utc_s);
    iq_send(ctx, r);
}

static const iq_route_t misc_iqs[] = {
    {HEARTH_NS_VERSION, "query", IQ_TO_SERVER, version},
    {HEARTH_NS_TIME, "time", IQ_TO_SERVER, entity_time},
    {NULL, NULL, 0, NULL},
};
static const char *const misc_server_features[] = {HEARTH_NS_VERSION, HEARTH_NS_TIME, NULL};

const module_t module_misc = {
    .name = "misc",
    .iqs = misc_iqs,
    .server_features = misc_server_features,
    .init = misc_init,
};
