/* XMPP stream error conditions (RFC 6120 §4.9.3) and stanza error conditions (§8.3.3):
 * one table each, giving the enum and the element name put on the wire; and the one writer of a
 * stanza's <error/> (its tree form is hearth_xml_add_stanza_error in xml.h). */
#ifndef HEARTH_XMPP_ERROR_H
#define HEARTH_XMPP_ERROR_H

#include "hearth/buf.h"
#include "hearth/error.h"
#include "hearth/ns.h"

#define HEARTH_STREAM_ERROR_MAP(X)                                                                 \
    X(BAD_FORMAT, "bad-format")                                                                    \
    X(BAD_NAMESPACE_PREFIX, "bad-namespace-prefix")                                                \
    X(CONFLICT, "conflict")                                                                        \
    X(CONNECTION_TIMEOUT, "connection-timeout")                                                    \
    X(HOST_GONE, "host-gone")                                                                      \
    X(HOST_UNKNOWN, "host-unknown")                                                                \
    X(IMPROPER_ADDRESSING, "improper-addressing")                                                  \
    X(INTERNAL_SERVER_ERROR, "internal-server-error")                                              \
    X(INVALID_FROM, "invalid-from")                                                                \
    X(INVALID_NAMESPACE, "invalid-namespace")                                                      \
    X(INVALID_XML, "invalid-xml")                                                                  \
    X(NOT_AUTHORIZED, "not-authorized")                                                            \
    X(NOT_WELL_FORMED, "not-well-formed")                                                          \
    X(POLICY_VIOLATION, "policy-violation")                                                        \
    X(REMOTE_CONNECTION_FAILED, "remote-connection-failed")                                        \
    X(RESET, "reset")                                                                              \
    X(RESOURCE_CONSTRAINT, "resource-constraint")                                                  \
    X(RESTRICTED_XML, "restricted-xml")                                                            \
    X(SEE_OTHER_HOST, "see-other-host")                                                            \
    X(SYSTEM_SHUTDOWN, "system-shutdown")                                                          \
    X(UNDEFINED_CONDITION, "undefined-condition")                                                  \
    X(UNSUPPORTED_ENCODING, "unsupported-encoding")                                                \
    X(UNSUPPORTED_FEATURE, "unsupported-feature")                                                  \
    X(UNSUPPORTED_STANZA_TYPE, "unsupported-stanza-type")                                          \
    X(UNSUPPORTED_VERSION, "unsupported-version")

typedef enum hearth_stream_error {
    HEARTH_STREAM_ERR_NONE = 0,
#define HEARTH_SE_ENUM(id, str) HEARTH_STREAM_ERR_##id,
    HEARTH_STREAM_ERROR_MAP(HEARTH_SE_ENUM)
#undef HEARTH_SE_ENUM
} hearth_stream_error_t;

/* Stanza error conditions with the default error type of RFC 6120 §8.3.3. */
#define HEARTH_STANZA_ERROR_MAP(X)                                                                 \
    X(BAD_REQUEST, "bad-request", "modify")                                                        \
    X(CONFLICT, "conflict", "cancel")                                                              \
    X(FEATURE_NOT_IMPLEMENTED, "feature-not-implemented", "cancel")                                \
    X(FORBIDDEN, "forbidden", "auth")                                                              \
    X(GONE, "gone", "cancel")                                                                      \
    X(INTERNAL_SERVER_ERROR, "internal-server-error", "cancel")                                    \
    X(ITEM_NOT_FOUND, "item-not-found", "cancel")                                                  \
    X(JID_MALFORMED, "jid-malformed", "modify")                                                    \
    X(NOT_ACCEPTABLE, "not-acceptable", "modify")                                                  \
    X(NOT_ALLOWED, "not-allowed", "cancel")                                                        \
    X(NOT_AUTHORIZED, "not-authorized", "auth")                                                    \
    X(POLICY_VIOLATION, "policy-violation", "modify")                                              \
    X(RECIPIENT_UNAVAILABLE, "recipient-unavailable", "wait")                                      \
    X(REDIRECT, "redirect", "modify")                                                              \
    X(REGISTRATION_REQUIRED, "registration-required", "auth")                                      \
    X(REMOTE_SERVER_NOT_FOUND, "remote-server-not-found", "cancel")                                \
    X(REMOTE_SERVER_TIMEOUT, "remote-server-timeout", "wait")                                      \
    X(RESOURCE_CONSTRAINT, "resource-constraint", "wait")                                          \
    X(SERVICE_UNAVAILABLE, "service-unavailable", "cancel")                                        \
    X(SUBSCRIPTION_REQUIRED, "subscription-required", "auth")                                      \
    X(UNDEFINED_CONDITION, "undefined-condition", "cancel")                                        \
    X(UNEXPECTED_REQUEST, "unexpected-request", "wait")

typedef enum hearth_stanza_error {
    HEARTH_STANZA_ERR_NONE = 0,
#define HEARTH_STE_ENUM(id, str, type) HEARTH_STANZA_ERR_##id,
    HEARTH_STANZA_ERROR_MAP(HEARTH_STE_ENUM)
#undef HEARTH_STE_ENUM
} hearth_stanza_error_t;

const char *hearth_stream_error_name(hearth_stream_error_t e);
const char *hearth_stanza_error_name(hearth_stanza_error_t e);
const char *hearth_stanza_error_type(hearth_stanza_error_t e);

/* Appends a stanza's <error/> child (RFC 6120 §8.3.2) for cond to out:
 * <error type='T'><COND xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>, with
 * <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>text</text> (escaped) after the condition when
 * text is not NULL. <error/> carries no xmlns: it is in the stanza's namespace. The same bytes as
 * hearth_xml_add_stanza_error's tree once serialised. On error out is left as it was. */
int hearth_stanza_error_write(hearth_buf_t *out, hearth_stanza_error_t cond,
                              const char *text) HEARTH_MUST_CHECK;

#endif
