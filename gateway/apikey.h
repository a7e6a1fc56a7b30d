/*
 * apikey: the pure parts of API-key identity (issue #19). Whether a
 * presented key is well formed (checked before any lookup), the key's id
 * (hex HMAC-SHA256 of the key under [limits] hash_secret: the only form in
 * which a key is stored, cached, logged or counted), the Redis key that
 * holds its record, the record parsed from an HGETALL reply, the keys file
 * of the embedded default (no [redis]) as an immutable table, a per-worker
 * cache of records with negative entries, and scope matching. No I/O but
 * apikey_file_load reading its file; no clock (callers pass the time).
 * docs/apikeys.md is the operator's side: formats, layout, the CLI.
 *
 * Decisions:
 * - A key is 1 to APIKEY_MAX bytes of token68 (RFC 7235: A-Z a-z 0-9
 *   - . _ ~ + /, then optional trailing '='), so a key fits in
 *   "Authorization: Bearer" and nothing else reaches the HMAC. With a
 *   required prefix, the key starts with it and has at least one byte more.
 * - A record's status is "active" or "revoked", exactly. A record with
 *   fields but no status, another status, or a bad value in a field the
 *   gateway reads is APIKEY_BAD_RECORD: refused (fail closed) and worth a
 *   warning, as the operator has to fix it. A revoked record is
 *   APIKEY_REVOKED whatever its other fields say. An active record needs a
 *   non-empty org. Unknown fields are ignored in Redis (other tools may add
 *   some: created_at, note) but refused in the keys file, where they are
 *   typos.
 * - expires_at is unix seconds, 0 or absent for never; a key is expired from
 *   that second on. Expiry is evaluated at every lookup, cached or not.
 * - Values: org 1-127 bytes of A-Z a-z 0-9 . _ : @ -; plan 0-63 bytes of
 *   A-Z a-z 0-9 . _ - (a conf name); scopes up to 511 bytes, tokens of
 *   A-Z a-z 0-9 . _ : / - separated by commas and/or spaces, kept
 *   normalized as "a,b,c". Nothing outside these sets is ever copied, so a
 *   record's values are safe in headers and logs.
 */
#ifndef ENVELOPD_APIKEY_H
#define ENVELOPD_APIKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define APIKEY_MAX 256 /* a presented key longer than this is malformed */
#define APIKEY_ID_LEN 64 /* hex digits of an id */
#define APIKEY_ORG_MAX 128 /* sizes of the record's strings, NUL included */
#define APIKEY_SCOPES_MAX 512
#define APIKEY_PLAN_MAX 64
#define APIKEY_FILE_MAX_KEYS (1u << 20)
#define APIKEY_FILE_LINE_MAX 2048

enum apikey_status {
    APIKEY_ACTIVE,
    APIKEY_REVOKED,
    APIKEY_EXPIRED,
    APIKEY_UNKNOWN, /* no record for the id */
    APIKEY_MALFORMED, /* the presented key is not well formed: never looked up */
    APIKEY_BAD_RECORD, /* a record the gateway cannot use: refused, the operator must fix it */
    APIKEY_UNDECIDED, /* the lookup failed (Redis error or no reply): no verdict, never cached */
};

/* Static text for a status ("active", "bad record"...), for logs. */
const char *apikey_status_str(enum apikey_status s);

struct apikey_record {
    enum apikey_status status;
    char id[APIKEY_ID_LEN + 1]; /* hex of the HMAC: the key's name in logs and limits */
    char org[APIKEY_ORG_MAX];
    char scopes[APIKEY_SCOPES_MAX]; /* normalized "a,b,c"; "" none */
    char plan[APIKEY_PLAN_MAX]; /* "" none */
    uint64_t expires_at; /* unix s, 0 never */
};

/* Syntax check before any lookup: token68 bytes, 1..APIKEY_MAX of them,
 * starting with PREFIX_REQUIRED (NULL or "": none) and longer than it. */
bool apikey_well_formed(const char *key, size_t len, const char *prefix_required);

/*
 * The key's id: 64 lowercase hex digits of HMAC-SHA256(SECRET, KEY), NUL
 * terminated. The secret is [limits] hash_secret's bytes (no NUL). False
 * (OUT "") only if OpenSSL fails. One-shot: OpenSSL 3 fetches the digest on
 * every call; the request path uses an apikey_hasher.
 */
bool apikey_id(const unsigned char *secret, size_t secret_len, const char *key, size_t len,
               char out[APIKEY_ID_LEN + 1]);

/* A keyed HMAC context, for one thread at a time (one per worker): the same
 * ids as apikey_id, without a provider fetch and key schedule per call. */
struct apikey_hasher;
struct apikey_hasher *apikey_hasher_new(const unsigned char *secret, size_t secret_len)
    __attribute__((warn_unused_result));
void apikey_hasher_free(struct apikey_hasher *h);
bool apikey_hasher_id(struct apikey_hasher *h, const char *key, size_t len,
                      char out[APIKEY_ID_LEN + 1]);

/*
 * The Redis key holding ID's record, PREFIX "{" ID "}:apikey" ([redis]
 * key_prefix; the hash tag keeps the record and anything else of the id
 * on one Cluster slot), NUL terminated in OUT[0..CAP). Returns its length,
 * or 0 (OUT "" if CAP > 0) when it does not fit.
 */
size_t apikey_redis_key(const char *prefix, const char *id, char *out, size_t cap);

/*
 * The record of ID from an HGETALL reply given as its N strings
 * FIELDS[i] (LENS[i] bytes, not NUL terminated), field, value, field,
 * value...; NOW_S decides expiry. N = 0 (no such hash) is APIKEY_UNKNOWN;
 * an odd N is APIKEY_BAD_RECORD. OUT gets the status and the values that
 * parsed (the others ""/0); its id is ID.
 */
enum apikey_status apikey_from_fields(const char *id, const char *const *fields, const size_t *lens,
                                      size_t n, uint64_t now_s, struct apikey_record *out);

/*
 * The same from hiredis' reply to HGETALL: an array of strings (an empty
 * one, or nil: APIKEY_UNKNOWN; an element that is no string, or more than
 * 256 of them: APIKEY_BAD_RECORD). NULL, an error or any other shape is
 * APIKEY_UNDECIDED: Redis did not answer the question.
 */
enum apikey_status apikey_from_reply(const char *id, const redisReply *r, uint64_t now_s,
                                     struct apikey_record *out);

/*
 * The keys file (the embedded default's store, no [redis]): one record a
 * line, "ID status=active org=acme scopes=tasks:read,tasks:write plan=pro
 * expires_at=1767225600", ID being the 64 hex digits of apikey_id (the file
 * holds no key in clear); fields in any order, separated by blanks; status
 * and, when active, org required; '#' starts a comment (at a line's start
 * or after a blank); blank lines and CRLF endings are fine. Any bad line
 * fails the whole load: ERR gets "PATH:LINE: problem". The table is
 * immutable: share it between workers, swap it on SIGHUP.
 */
struct apikey_file;
struct apikey_file *apikey_file_load(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void apikey_file_free(struct apikey_file *f);
size_t apikey_file_count(const struct apikey_file *f);
/* ID's record into OUT (status per NOW_S): true if the file has it; else
 * OUT is an APIKEY_UNKNOWN record. O(1). */
bool apikey_file_find(const struct apikey_file *f, const char *id, uint64_t now_s,
                      struct apikey_record *out);

/*
 * Per-worker cache, id -> record, each entry living TTL ms, bounded LRU
 * (the least recently used goes when full). Negative answers are cached as
 * records too: APIKEY_UNKNOWN, REVOKED, EXPIRED, BAD_RECORD. MALFORMED and
 * UNDECIDED are never stored. Not thread-safe. Capacity 0 caches nothing.
 */
struct apikey_cache;
struct apikey_cache *apikey_cache_new(size_t capacity) __attribute__((warn_unused_result));
void apikey_cache_free(struct apikey_cache *c);
/* Hit: true, OUT the record with its status re-evaluated for NOW_MS (an
 * active key whose expires_at has passed is APIKEY_EXPIRED). */
bool apikey_cache_get(struct apikey_cache *c, const char *id, uint64_t now_ms,
                      struct apikey_record *out);
/* Store (or replace) REC under ID until NOW_MS + TTL_MS; TTL_MS 0 drops the entry. */
void apikey_cache_put(struct apikey_cache *c, const char *id, const struct apikey_record *rec,
                      uint64_t now_ms, uint64_t ttl_ms);
/* Forget every entry (a reload: new secret, new file, new TTLs). */
void apikey_cache_clear(struct apikey_cache *c);
size_t apikey_cache_count(const struct apikey_cache *c);

/*
 * Does SCOPES (tokens separated by commas and/or spaces) grant REQUIRED?
 * Exact, case-sensitive token match: "tasks" does not grant "tasks:write"
 * nor the reverse. An empty REQUIRED, or one holding a separator, is never
 * granted.
 */
bool apikey_scope_granted(const char *scopes, const char *required);

#endif
