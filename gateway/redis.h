/*
 * redis: one asynchronous hiredis connection of one worker, on that worker's
 * event base, serving EVALSHA of one Lua script (and HGETALL of API key
 * records, redis_command). Connects, AUTHs, SELECTs and
 * SCRIPT LOADs by itself; reconnects with capped, jittered exponential
 * backoff; gives every call its own deadline (hiredis 0.14 has none) and
 * never lets a late reply reach a caller that was already answered or that
 * cancelled. Logs only connection transitions, once per process however
 * many workers see them: redis_lost when the first connection goes down,
 * redis_back when the last one is up again.
 */
#ifndef ENVELOPD_REDIS_H
#define ENVELOPD_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "conf.h"

struct redis;
struct redis_call;

/*
 * The answer to one call. REPLY is hiredis' reply, valid only during the
 * callback; NULL means failure: deadline passed, connection lost or refused
 * the command. An error reply other than NOSCRIPT is passed as is
 * (type REDIS_REPLY_ERROR): the caller decides what it means.
 * The callback is always run from the event loop, never from inside a
 * redis_* function, and may call any redis_* function, redis_free included.
 * The call's handle is invalid once the callback starts.
 */
typedef void (*redis_reply_cb)(const redisReply *reply, void *arg);

/*
 * A connection for CONF's [redis] (address, password, db, timeout) running
 * SCRIPT (Lua source, copied). Starts connecting at once; never blocks.
 * With conf->redis_enabled false it stays idle until redis_set_conf enables
 * it. Returns NULL on allocation failure.
 */
struct redis *redis_new(struct event_base *base, const struct conf *conf, const char *script)
    __attribute__((warn_unused_result));

/*
 * Close and free. Calls still pending are dropped silently: their callbacks
 * are never run, and their handles become invalid.
 */
void redis_free(struct redis *r);

/*
 * Apply a reloaded conf. The timeout applies to new calls. If address,
 * password, db or enablement changed, the connection is dropped (pending
 * calls are answered NULL, from the loop) and re-established at once.
 */
void redis_set_conf(struct redis *r, const struct conf *conf);

/* Connected, authenticated and the script loaded. */
bool redis_ready(const struct redis *r);

/* The SHA1 (40 hex digits) of the script, as EVALSHA uses it. */
const char *redis_script_sha(const struct redis *r);

/*
 * EVALSHA the script with NKEYS keys followed by the other arguments
 * (ARGV[0..ARGC-1], lengths in ARGVLEN; all copied). On NOSCRIPT the script
 * is loaded again and the call retried once, within the same deadline.
 * Returns a handle: CB will be called exactly once, within the timeout,
 * unless redis_call_cancel() comes first. Returns NULL when the call cannot
 * be made now (no connection, too many calls in flight, no memory): the
 * caller answers itself, CB is never called.
 */
struct redis_call *redis_eval(struct redis *r, int nkeys, int argc, const char **argv,
                              const size_t *argvlen, redis_reply_cb cb, void *arg)
    __attribute__((warn_unused_result));

/*
 * Any other command, ARGV[0..ARGC) (ARGC >= 1, at most 16; copied), with the
 * same deadline, queueing and callback rules as redis_eval (HGETALL of an
 * API key's record). NULL when it cannot be made now.
 */
struct redis_call *redis_command(struct redis *r, int argc, const char **argv,
                                 const size_t *argvlen, redis_reply_cb cb, void *arg)
    __attribute__((warn_unused_result));
/*
 * Forget a call before it is answered: its callback will never run. The
 * handle is invalid afterwards. Must not be called after the callback ran.
 */
void redis_call_cancel(struct redis_call *c);

/* Worker connections to Redis currently down, across the process. */
unsigned redis_process_down(void);

#endif
