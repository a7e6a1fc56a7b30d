/*
 * server: the main thread. Starts the workers, turns signals (through
 * evsignal, never a raw handler) into reload, drain and log reopen, and
 * reports readiness, reload and stop to systemd.
 */
#ifndef ENVELOPD_SERVER_H
#define ENVELOPD_SERVER_H

#include "conf.h"

/* Run until stopped; takes ownership of CONF. Returns the exit status. */
int server_run(const char *conf_path, struct conf *conf);

#endif
