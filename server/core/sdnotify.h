/* systemd's readiness protocol (sd_notify(3)): one datagram to $NOTIFY_SOCKET, so that a unit of
 * Type=notify knows when every listener is up and when the service is stopping. Written here
 * rather than linked from libsystemd: the protocol is a documented, stable datagram of
 * "KEY=VALUE" lines and a few lines of code, where the library would be one more dependency. */
#ifndef HEARTH_CORE_SDNOTIFY_H
#define HEARTH_CORE_SDNOTIFY_H

/* Sends state (e.g. "READY=1") to the service manager. 0 when sent or when not run under one
 * ($NOTIFY_SOCKET unset); HEARTH_EINVAL for a socket address that is not a path or an abstract
 * name ('@...'), HEARTH_EIO when the socket cannot be reached. Never blocks for long: the
 * datagram is small and the socket is the manager's. */
int sdnotify(const char *state);

#endif
