/*
 * envelope: renders the client-facing JSON error body in one of the six
 * profiles (nested, flat, simple, status, i18n, problem) with jsonw (the
 * gateway's one JSON writer, see jsonw.h), and owns the status tables
 * (reason phrase, default machine code). Pure: no I/O, no global state.
 * Every string written is valid UTF-8 (invalid sequences become U+FFFD).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "envelope.h"
#include "jsonw.h"

struct status_row {
    int status;
    const char *reason;
    const char *code;  /* NULL: the class default */
};

static const struct status_row status_table[] = {
    {100, "Continue", NULL},
    {101, "Switching Protocols", NULL},
    {200, "OK", NULL},
    {201, "Created", NULL},
    {202, "Accepted", NULL},
    {204, "No Content", NULL},
    {301, "Moved Permanently", NULL},
    {302, "Found", NULL},
    {303, "See Other", NULL},
    {304, "Not Modified", NULL},
    {307, "Temporary Redirect", NULL},
    {308, "Permanent Redirect", NULL},
    {400, "Bad Request", "BAD_REQUEST"},
    {401, "Unauthorized", "UNAUTHORIZED"},
    {402, "Payment Required", NULL},
    {403, "Forbidden", "FORBIDDEN"},
    {404, "Not Found", "NOT_FOUND"},
    {405, "Method Not Allowed", "METHOD_NOT_ALLOWED"},
    {406, "Not Acceptable", "NOT_ACCEPTABLE"},
    {407, "Proxy Authentication Required", NULL},
    {408, "Request Timeout", "REQUEST_TIMEOUT"},
    {409, "Conflict", "CONFLICT"},
    {410, "Gone", "GONE"},
    {411, "Length Required", "LENGTH_REQUIRED"},
    {412, "Precondition Failed", NULL},
    {413, "Payload Too Large", "PAYLOAD_TOO_LARGE"},
    {414, "URI Too Long", "URI_TOO_LONG"},
    {415, "Unsupported Media Type", "UNSUPPORTED_MEDIA_TYPE"},
    {416, "Range Not Satisfiable", NULL},
    {417, "Expectation Failed", NULL},
    {418, "I'm a teapot", NULL},
    {421, "Misdirected Request", "MISDIRECTED_REQUEST"},
    {422, "Unprocessable Entity", "VALIDATION_ERROR"},
    {423, "Locked", NULL},
    {424, "Failed Dependency", NULL},
    {425, "Too Early", NULL},
    {426, "Upgrade Required", NULL},
    {428, "Precondition Required", NULL},
    {429, "Too Many Requests", "RATE_LIMITED"},
    {431, "Request Header Fields Too Large", "HEADERS_TOO_LARGE"},
    {451, "Unavailable For Legal Reasons", NULL},
    {500, "Internal Server Error", "INTERNAL_ERROR"},
    {501, "Not Implemented", "NOT_IMPLEMENTED"},
    {502, "Bad Gateway", "BAD_GATEWAY"},
    {503, "Service Unavailable", "SERVICE_UNAVAILABLE"},
    {504, "Gateway Timeout", "GATEWAY_TIMEOUT"},
    {505, "HTTP Version Not Supported", "HTTP_VERSION_NOT_SUPPORTED"},
    {506, "Variant Also Negotiates", NULL},
    {507, "Insufficient Storage", NULL},
    {508, "Loop Detected", NULL},
    {510, "Not Extended", NULL},
    {511, "Network Authentication Required", NULL},
};

static const struct status_row *status_find(int status)
{
    for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
        if (status_table[i].status == status)
            return &status_table[i];
    return NULL;
}

const char *envelope_code_for_status(int status)
{
    const struct status_row *r = status_find(status);
    if (r && r->code)
        return r->code;
    if (status >= 400 && status <= 499)
        return "CLIENT_ERROR";
    if (status >= 500 && status <= 599)
        return "INTERNAL_ERROR";
    return "UNKNOWN_ERROR";
}

const char *envelope_reason(int status)
{
    const struct status_row *r = status_find(status);
    if (r)
        return r->reason;
    switch (status / 100) {
    case 1: return "Informational";
    case 2: return "Success";
    case 3: return "Redirection";
    case 4: return "Client Error";
    case 5: return "Server Error";
    default: return "Unknown";
    }
}

static const char *const profile_names[] = {
    [ENVELOPE_NESTED] = "nested",
    [ENVELOPE_FLAT] = "flat",
    [ENVELOPE_SIMPLE] = "simple",
    [ENVELOPE_STATUS] = "status",
    [ENVELOPE_I18N] = "i18n",
    [ENVELOPE_PROBLEM] = "problem",
};

#define N_PROFILES (sizeof profile_names / sizeof profile_names[0])

bool envelope_profile_parse(const char *name, enum envelope_profile *out)
{
    if (!name || !out)
        return false;
    for (size_t i = 0; i < N_PROFILES; i++) {
        if (strcasecmp(name, profile_names[i]) == 0) {
            *out = (enum envelope_profile)i;
            return true;
        }
    }
    return false;
}

const char *envelope_profile_name(enum envelope_profile profile)
{
    if ((unsigned)profile < N_PROFILES)
        return profile_names[profile];
    return "unknown";
}

const char *envelope_content_type(enum envelope_profile profile)
{
    if (profile == ENVELOPE_PROBLEM)
        return "application/problem+json";
    return "application/json; charset=utf-8";
}

/* ---- members ------------------------------------------------------------ */

/* A string value; NULL is "". */
static int gen_str(struct jsonw *g, const char *s)
{
    return jsonw_string(g, s, s ? strlen(s) : 0);
}

static int gen_kv_str(struct jsonw *g, const char *k, const char *v)
{
    if (jsonw_key(g, k) < 0 || gen_str(g, v) < 0)
        return -1;
    return 0;
}

static int gen_kv_int(struct jsonw *g, const char *k, long v)
{
    if (jsonw_key(g, k) < 0 || jsonw_integer(g, v) < 0)
        return -1;
    return 0;
}

/* ---- shared pieces ------------------------------------------------------ */

/*
 * The human name of a rate-limit window: "second", "minute", "hour", "day"
 * for exactly one unit, else "N days"/"N hours"/"N minutes"/"N seconds" in
 * the largest unit that divides it.
 */
static void window_name(long s, char *buf, size_t size)
{
    static const struct { long s; const char *one; const char *many; } units[] = {
        {86400, "day", "days"},
        {3600, "hour", "hours"},
        {60, "minute", "minutes"},
        {1, "second", "seconds"},
    };
    if (s <= 0) {
        snprintf(buf, size, "%s", "second");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (s % units[i].s == 0) {
            long n = s / units[i].s;
            if (n == 1)
                snprintf(buf, size, "%s", units[i].one);
            else
                snprintf(buf, size, "%ld %s", n, units[i].many);
            return;
        }
    }
    snprintf(buf, size, "%ld seconds", s);
}

/* retry_after, limit, window as members of the open map (429 only). */
static int gen_limit_members(struct jsonw *g, const struct envelope *e)
{
    const struct envelope_limit *l = &e->limit;
    if (!l->set)
        return 0;
    if (gen_kv_int(g, "retry_after", l->retry_after_s < 0 ? 0 : l->retry_after_s) < 0)
        return -1;
    if (l->limit > 0 && gen_kv_int(g, "limit", l->limit) < 0)
        return -1;
    if (l->window_s > 0) {
        char w[64];
        window_name(l->window_s, w, sizeof w);
        if (gen_kv_str(g, "window", w) < 0)
            return -1;
    }
    return 0;
}

static const char *field_name(const struct envelope_field *f)
{
    return f->field ? f->field : "";
}

static const char *field_message(const struct envelope_field *f)
{
    return f->message ? f->message : "Invalid value";
}

static const char *field_type(const struct envelope_field *f)
{
    return f->type && f->type[0] ? f->type : "invalid_value";
}

/* [{"field","message","type"}...] (TYPE false: without "type"). */
static int gen_field_array(struct jsonw *g, const struct envelope *e, bool with_type)
{
    if (jsonw_array_open(g) < 0)
        return -1;
    for (size_t i = 0; i < e->n_fields; i++) {
        const struct envelope_field *f = &e->fields[i];
        if (jsonw_map_open(g) < 0 || gen_kv_str(g, "field", field_name(f)) < 0 ||
            gen_kv_str(g, "message", field_message(f)) < 0)
            return -1;
        if (with_type && gen_kv_str(g, "type", field_type(f)) < 0)
            return -1;
        if (jsonw_map_close(g) < 0)
            return -1;
    }
    return jsonw_array_close(g);
}

static bool field_seen_before(const struct envelope *e, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(field_name(&e->fields[j]), field_name(&e->fields[i])) == 0)
            return true;
    return false;
}

static int gen_request_id(struct jsonw *g, const struct envelope *e)
{
    if (!e->request_id)
        return 0;
    return gen_kv_str(g, "request_id", e->request_id);
}

/* ---- profiles ----------------------------------------------------------- */

/* seed 004: {"error":{"code","message","details":{errors|limit facts, request_id}}} */
static int render_nested(struct jsonw *g, const struct envelope *e, const char *code,
                         const char *msg)
{
    if (jsonw_map_open(g) < 0 || jsonw_key(g, "error") < 0 || jsonw_map_open(g) < 0 ||
        gen_kv_str(g, "code", code) < 0 || gen_kv_str(g, "message", msg) < 0 ||
        jsonw_key(g, "details") < 0 || jsonw_map_open(g) < 0)
        return -1;
    if (e->n_fields > 0) {
        if (jsonw_key(g, "errors") < 0 || gen_field_array(g, e, true) < 0)
            return -1;
    }
    if (gen_limit_members(g, e) < 0 || gen_request_id(g, e) < 0)
        return -1;
    if (jsonw_map_close(g) < 0 || jsonw_map_close(g) < 0 || jsonw_map_close(g) < 0)
        return -1;
    return 0;
}

/*
 * seed 001: {"error":msg,"code":CODE,"details":{field: message..., request_id}}.
 * Repeated fields are joined with "; "; a field literally named "request_id"
 * yields to the correlation ID.
 */
static int render_flat(struct jsonw *g, const struct envelope *e, const char *code, const char *msg)
{
    if (jsonw_map_open(g) < 0 || gen_kv_str(g, "error", msg) < 0 ||
        gen_kv_str(g, "code", code) < 0 || jsonw_key(g, "details") < 0 || jsonw_map_open(g) < 0)
        return -1;
    for (size_t i = 0; i < e->n_fields; i++) {
        const char *name = field_name(&e->fields[i]);
        if (field_seen_before(e, i))
            continue;
        if (e->request_id && strcmp(name, "request_id") == 0)
            continue;
        if (e->status == 429 && e->limit.set &&
            (!strcmp(name, "retry_after") || !strcmp(name, "limit") || !strcmp(name, "window")))
            continue;
        /* Join every message of this field. */
        size_t total = 0, count = 0;
        for (size_t j = i; j < e->n_fields; j++) {
            if (strcmp(field_name(&e->fields[j]), name) == 0) {
                total += strlen(field_message(&e->fields[j])) + 2;
                count++;
            }
        }
        if (count == 1) {
            if (gen_kv_str(g, name, field_message(&e->fields[i])) < 0)
                return -1;
            continue;
        }
        char *joined = malloc(total + 1);
        if (!joined)
            return -1;
        size_t o = 0;
        for (size_t j = i; j < e->n_fields; j++) {
            if (strcmp(field_name(&e->fields[j]), name) != 0)
                continue;
            const char *m = field_message(&e->fields[j]);
            size_t ml = strlen(m);
            if (o > 0) {
                memcpy(joined + o, "; ", 2);
                o += 2;
            }
            memcpy(joined + o, m, ml);
            o += ml;
        }
        joined[o] = '\0';
        int rc = gen_kv_str(g, name, joined);
        free(joined);
        if (rc < 0)
            return -1;
    }
    if (gen_limit_members(g, e) < 0 || gen_request_id(g, e) < 0)
        return -1;
    if (jsonw_map_close(g) < 0 || jsonw_map_close(g) < 0)
        return -1;
    return 0;
}

/*
 * seed 000: {"error":msg} plus, with field errors, "errors":{field:[messages]}.
 * No request_id (the correlation header carries it) and no limit facts (the
 * seed points clients at Retry-After and X-RateLimit-Reset).
 */
static int render_simple(struct jsonw *g, const struct envelope *e, const char *msg)
{
    if (jsonw_map_open(g) < 0 || gen_kv_str(g, "error", msg) < 0)
        return -1;
    if (e->n_fields > 0) {
        if (jsonw_key(g, "errors") < 0 || jsonw_map_open(g) < 0)
            return -1;
        for (size_t i = 0; i < e->n_fields; i++) {
            const char *name = field_name(&e->fields[i]);
            if (field_seen_before(e, i))
                continue;
            if (jsonw_key(g, name) < 0 || jsonw_array_open(g) < 0)
                return -1;
            for (size_t j = i; j < e->n_fields; j++)
                if (strcmp(field_name(&e->fields[j]), name) == 0 &&
                    gen_str(g, field_message(&e->fields[j])) < 0)
                    return -1;
            if (jsonw_array_close(g) < 0)
                return -1;
        }
        if (jsonw_map_close(g) < 0)
            return -1;
    }
    return jsonw_map_close(g);
}

/*
 * seed 002: {"code":status,"message":msg}; with field errors message is the
 * reason phrase, "cause" the upstream's message and
 * "errors":[{"resource","field","code","message"}].
 */
static int render_status(struct jsonw *g, const struct envelope *e, const char *msg)
{
    if (jsonw_map_open(g) < 0 || gen_kv_int(g, "code", e->status) < 0)
        return -1;
    if (e->n_fields == 0)
        return gen_kv_str(g, "message", msg) < 0 ? -1 : jsonw_map_close(g);

    if (gen_kv_str(g, "message", envelope_reason(e->status)) < 0 ||
        gen_kv_str(g, "cause", e->message ? msg : "Validation failed") < 0 ||
        jsonw_key(g, "errors") < 0 || jsonw_array_open(g) < 0)
        return -1;
    for (size_t i = 0; i < e->n_fields; i++) {
        const struct envelope_field *f = &e->fields[i];
        const char *type = f->type && f->type[0] ? f->type : "invalid";
        if (jsonw_map_open(g) < 0 || gen_kv_str(g, "resource", "Request") < 0 ||
            gen_kv_str(g, "field", field_name(f)) < 0 || gen_kv_str(g, "code", type) < 0 ||
            gen_kv_str(g, "message", field_message(f)) < 0 || jsonw_map_close(g) < 0)
            return -1;
    }
    if (jsonw_array_close(g) < 0)
        return -1;
    return jsonw_map_close(g);
}

/* "api-errors." + lowerCamelCase of CODE ("TICKET_NOT_FOUND" -> "ticketNotFound"). */
static char *i18n_key(const char *code)
{
    static const char prefix[] = "api-errors.";
    size_t n = strlen(code);
    char *k = malloc(sizeof prefix + n + 5);
    if (!k)
        return NULL;
    memcpy(k, prefix, sizeof prefix - 1);
    size_t o = sizeof prefix - 1, start = o;
    bool upper_next = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)code[i];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum) {
            upper_next = o > start;
            continue;
        }
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (upper_next && c >= 'a' && c <= 'z')
            c = (unsigned char)(c - 'a' + 'A');
        upper_next = false;
        k[o++] = (char)c;
    }
    if (o == start) {
        memcpy(k + o, "error", 5);
        o += 5;
    }
    k[o] = '\0';
    return k;
}

/*
 * seed 003: {"key":"api-errors.xxx","params":{...},"fallbackMessage":msg}.
 * params: "errors":[{field,message,type}] for field errors, the limit facts
 * for 429, and request_id.
 */
static int render_i18n(struct jsonw *g, const struct envelope *e, const char *code, const char *msg)
{
    char *key = i18n_key(code);
    if (!key)
        return -1;
    int rc = jsonw_map_open(g) < 0 || gen_kv_str(g, "key", key) < 0 ? -1 : 0;
    free(key);
    if (rc < 0)
        return -1;
    if (jsonw_key(g, "params") < 0 || jsonw_map_open(g) < 0)
        return -1;
    if (e->n_fields > 0 && (jsonw_key(g, "errors") < 0 || gen_field_array(g, e, true) < 0))
        return -1;
    if (gen_limit_members(g, e) < 0 || gen_request_id(g, e) < 0 || jsonw_map_close(g) < 0)
        return -1;
    if (gen_kv_str(g, "fallbackMessage", msg) < 0)
        return -1;
    return jsonw_map_close(g);
}

/*
 * RFC 9457: {"type":"about:blank","title":reason,"status":N,"detail":msg,
 * "code":CODE,"request_id":…} plus "errors":[{field,message}] and the limit
 * facts as extension members.
 */
static int render_problem(struct jsonw *g, const struct envelope *e, const char *code,
                          const char *msg)
{
    if (jsonw_map_open(g) < 0 || gen_kv_str(g, "type", "about:blank") < 0 ||
        gen_kv_str(g, "title", envelope_reason(e->status)) < 0 ||
        gen_kv_int(g, "status", e->status) < 0 || gen_kv_str(g, "detail", msg) < 0 ||
        gen_kv_str(g, "code", code) < 0 || gen_request_id(g, e) < 0)
        return -1;
    if (e->n_fields > 0 && (jsonw_key(g, "errors") < 0 || gen_field_array(g, e, false) < 0))
        return -1;
    if (gen_limit_members(g, e) < 0)
        return -1;
    return jsonw_map_close(g);
}

int envelope_render(const struct envelope *e, enum envelope_profile profile, char **body,
                    size_t *len)
{
    if (!e || !body || !len)
        return -1;
    *body = NULL;
    *len = 0;

    struct envelope safe;
    if (e->n_fields > 0 && !e->fields) {
        safe = *e;
        safe.n_fields = 0;
        e = &safe;
    }
    const char *code = e->code && e->code[0] ? e->code : envelope_code_for_status(e->status);
    const char *msg = e->message && e->message[0] ? e->message : envelope_reason(e->status);

    struct jsonw jw;
    jsonw_init(&jw);
    struct jsonw *g = &jw;

    int rc;
    switch (profile) {
    case ENVELOPE_FLAT:
        rc = render_flat(g, e, code, msg);
        break;
    case ENVELOPE_SIMPLE:
        rc = render_simple(g, e, msg);
        break;
    case ENVELOPE_STATUS:
        rc = render_status(g, e, msg);
        break;
    case ENVELOPE_I18N:
        rc = render_i18n(g, e, code, msg);
        break;
    case ENVELOPE_PROBLEM:
        rc = render_problem(g, e, code, msg);
        break;
    case ENVELOPE_NESTED:
    default:
        rc = render_nested(g, e, code, msg);
        break;
    }

    if (rc == 0)
        rc = jsonw_take(g, body, len);
    jsonw_free(g);
    return rc;
}
