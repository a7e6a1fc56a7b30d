/*
 * httphead: what requests and responses share about an HTTP/1.x head: finding
 * where it ends in a byte stream (so it can be parsed contiguously, in one
 * pass, the way nginx does), the table of header lines it holds, the token
 * rules the parser does not enforce, and the hop-by-hop list. Pure; no I/O.
 */
#ifndef ENVELOPD_HTTPHEAD_H
#define ENVELOPD_HTTPHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#define HTTPHEAD_MAX_HEADERS 128

struct httphead_field {
    const char *name;
    const char *value;
    uint32_t name_len;
    uint32_t value_len;
    bool hop;            /* hop-by-hop: never forwarded */
};

struct httphead {
    size_t n;
    /* parse-time bookkeeping for the parser callbacks */
    bool in_value;       /* the last callback was a value */
    bool bad;            /* a rule the parser does not check was broken */
    const char *why;     /* static text: what was wrong */
    /* Last and never cleared: only f[0..n) is ever read, and each entry is
     * written whole before n counts it (clearing 4 KiB cost 10% of a request). */
    struct httphead_field f[HTTPHEAD_MAX_HEADERS];
};

/* Ready H for a new head without touching the field table. */
void httphead_reset(struct httphead *h);

/*
 * Incremental search for the end of a head (CRLFCRLF, or bare LFs as nginx
 * accepts them). Feed successive bytes of the stream from offset *pos;
 * returns the head length including the blank line, or 0 when not yet found.
 * *pos and *state carry progress between calls.
 */
size_t httphead_scan(const char *data, size_t len, size_t *pos, unsigned *state);

/*
 * Is the framing of the complete head BUF[0..LEN) unambiguous? A CR that is
 * not followed by LF, or a line that starts with SP or HTAB after the start
 * line (obs-fold), is judged differently by http_parser, by our own head
 * scanner and by whatever sits in front of or behind us: such a head is
 * refused whole (a desync primitive otherwise). Returns NULL, or why not.
 */
const char *httphead_framing_error(const char *buf, size_t len);

/* Parser callbacks' helpers: append a field name / value fragment. */
int httphead_on_field(struct httphead *h, const char *at, size_t len);
int httphead_on_value(struct httphead *h, const char *at, size_t len);

/* The first field named NAME (case-insensitive), or NULL; count of them in *count. */
const struct httphead_field *httphead_get(const struct httphead *h, const char *name,
                                          size_t *count);

bool httphead_name_is(const struct httphead_field *f, const char *name);
/* Is VALUE a comma list containing TOKEN (case-insensitive)? */
bool httphead_list_has(const char *value, size_t len, const char *token);
/* Mark hop-by-hop fields, including those named by Connection. */
void httphead_mark_hop(struct httphead *h);
/* The value of hex digit C, or -1. */
int httphead_hexval(unsigned char c);
/* RFC 9110 tchar. */
bool httphead_is_tchar(unsigned char c);

/*
 * A message body being decoded. Our own decoder rather than http_parser's:
 * Debian builds http_parser non-strict, which takes any two bytes after
 * chunk data as the CRLF (a smuggling vector), and it learns a chunk is
 * too large only as its bytes arrive. Chunk sizes are checked against the
 * limit when announced; every framing line must end in CRLF.
 */
enum httpbody_mode { HTTPBODY_LENGTH, HTTPBODY_CHUNKED, HTTPBODY_EOF };

struct httpbody {
    enum httpbody_mode mode;
    int (*on_data)(void *arg, const char *at, size_t len);  /* nonzero aborts */
    void *arg;
    uint64_t left;        /* LENGTH: bytes to go; CHUNKED: of the current chunk */
    uint64_t total;       /* decoded bytes so far */
    uint64_t max;         /* 0: unlimited; more -> too_large */
    unsigned state;       /* chunked decoder state */
    unsigned digits;      /* hex digits of the current size line */
    unsigned line;        /* bytes of the current extension/trailer line */
    unsigned trailer;     /* bytes of trailers so far */
    bool done;
    bool too_large;
    bool error;
};

void httpbody_init(struct httpbody *b, enum httpbody_mode mode, uint64_t length, uint64_t max,
                   int (*on_data)(void *, const char *, size_t), void *arg);
/*
 * Feed stream bytes; returns how many were consumed (the rest belong to the
 * next message once done is set). On a framing error or a body over max
 * returns (size_t)-1. len == 0 signals EOF: it ends an EOF-delimited body
 * and is an error for the others.
 */
size_t httpbody_feed(struct httpbody *b, const char *data, size_t len);

#endif
