/*
 * recognize_html: finds the message (and, in an XML error document, the
 * code) in an HTML error page or an XML error body. One forward scan, no
 * tree: the visible text of <title>, <h1>-<h4>, <p>, <pre> and of loose
 * text in <body> is gathered (entities decoded; <script>, <style>, comments,
 * the head, and banners such as <address>, <footer>, <nav> skipped), and
 * each element's text is scored by element, by a bold or "Label:" prefix
 * (Tomcat, Python http.server) and by how many words it has. XML adds
 * <Message>/<Code>-like elements (S3's <Error>). Candidates go to
 * recognize.c, which cleans and keeps the best.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "recognize.h"
#include "recognize_int.h"

struct hbuf {
    char *p;
    size_t len, cap;
};

static void hbuf_putc(struct hbuf *b, char ch)
{
    if (b->len + 1 < b->cap)
        b->p[b->len++] = ch;
}

static void hbuf_put_cp(struct hbuf *b, uint32_t cp)
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        hbuf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        hbuf_putc(b, (char)(0xC0 | (cp >> 6)));
        hbuf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        hbuf_putc(b, (char)(0xE0 | (cp >> 12)));
        hbuf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        hbuf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        hbuf_putc(b, (char)(0xF0 | (cp >> 18)));
        hbuf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
        hbuf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        hbuf_putc(b, (char)(0x80 | (cp & 0x3F)));
    }
}

/* Decode the entity at S (just after '&'); returns bytes consumed, 0 if none. */
static size_t html_entity(const char *s, size_t n, struct hbuf *b)
{
    static const struct { const char *name; uint32_t cp; } ents[] = {
        {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''},
        {"nbsp", ' '}, {"ndash", 0x2013}, {"mdash", 0x2014}, {"hellip", 0x2026},
        {"copy", 0xA9}, {"laquo", 0xAB}, {"raquo", 0xBB}, {"lsquo", 0x2018},
        {"rsquo", 0x2019}, {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"eacute", 0xE9},
    };
    size_t semi = 0;
    for (size_t i = 0; i < n && i < 12; i++) {
        if (s[i] == ';') {
            semi = i;
            break;
        }
    }
    if (semi == 0)
        return 0;
    if (s[0] == '#') {
        uint32_t cp = 0;
        size_t i = 1;
        bool hex = i < semi && (s[i] == 'x' || s[i] == 'X');
        if (hex)
            i++;
        if (i >= semi)
            return 0;
        for (; i < semi; i++) {
            unsigned char ch = (unsigned char)s[i];
            int d;
            if (isdigit(ch))
                d = ch - '0';
            else if (hex && isxdigit(ch))
                d = tolower(ch) - 'a' + 10;
            else
                return 0;
            cp = cp * (hex ? 16 : 10) + (uint32_t)d;
            if (cp > 0x10FFFF)
                cp = 0x110000;
        }
        hbuf_put_cp(b, cp);
        return semi + 1;
    }
    for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
        if (strlen(ents[i].name) == semi && strncmp(s, ents[i].name, semi) == 0) {
            hbuf_put_cp(b, ents[i].cp);
            return semi + 1;
        }
    }
    return 0;
}

enum html_el {
    EL_NONE, EL_TITLE, EL_H1, EL_H2, EL_H3, EL_P, EL_PRE, EL_MESSAGE, EL_CODE,
    EL_LOOSE,   /* text directly in <body> or a <div>, outside the elements above */
};

static enum html_el html_element(const char *name, size_t n, bool xml)
{
    if (ci_eq_n(name, n, "title"))
        return EL_TITLE;
    if (ci_eq_n(name, n, "h1"))
        return EL_H1;
    if (ci_eq_n(name, n, "h2"))
        return EL_H2;
    if (ci_eq_n(name, n, "h3") || ci_eq_n(name, n, "h4"))
        return EL_H3;
    if (ci_eq_n(name, n, "p"))
        return EL_P;
    if (ci_eq_n(name, n, "pre"))
        return EL_PRE;
    /* XML error documents: S3's <Error><Code/><Message/></Error> and the like */
    if (!xml)
        return EL_NONE;
    if (ci_eq_n(name, n, "message") || ci_eq_n(name, n, "errormessage") ||
        ci_eq_n(name, n, "detail"))
        return EL_MESSAGE;
    if (ci_eq_n(name, n, "code") || ci_eq_n(name, n, "errorcode"))
        return EL_CODE;
    return EL_NONE;
}

static bool starts_with_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Score and offer one element's text (raw, entities decoded). */
static void html_offer(struct rctx *c, enum html_el el, char *text, size_t len,
                       const char *label, int p_index)
{
    bool oom = false;
    if (el == EL_PRE) {
        /* the first non-blank line only: the rest of a <pre> is a dump */
        size_t s = 0;
        while (s < len && isspace((unsigned char)text[s]))
            s++;
        size_t e = s;
        while (e < len && text[e] != '\n')
            e++;
        text += s;
        len = e - s;
    }
    char *t = rec_clean_text(text, len, RECOGNIZE_MAX_MESSAGE * 2, &oom);
    if (oom)
        c->oom = true;
    if (!t)
        return;
    char *s = t;
    int w;
    switch (el) {
    case EL_MESSAGE: w = 100; break;
    case EL_PRE: w = 80; break;
    case EL_P: w = 72 - (p_index > 10 ? 10 : p_index); break;
    case EL_H1: w = 62; break;
    case EL_H2: w = 58; break;
    case EL_H3: w = 54; break;
    case EL_LOOSE: w = 58; break;
    case EL_TITLE: w = 50; break;
    case EL_CODE:
        if (!strchr(s, ' '))
            rec_offer_code(c, s, strlen(s), 90, 0);
        free(t);
        return;
    default:
        free(t);
        return;
    }
    /* <p><b>Message</b> text</p> (Tomcat), "Message: text" (Python http.server) */
    static const struct { const char *label; int w; } labels[] = {
        {"Message", 100}, {"Description", 66}, {"Reason", 90}, {"Detail", 90},
        {"Error code explanation", 30}, {"Error code", -1}, {"Type", -1},
        {"Exception", -1}, {"Root Cause", -1}, {"Note", -1}, {"Status", -1},
    };
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        size_t ll = strlen(labels[i].label);
        bool by_bold = label && strcasecmp(label, labels[i].label) == 0;
        bool by_colon = starts_with_ci(s, labels[i].label) && s[ll] == ':';
        if (by_bold || by_colon) {
            if (labels[i].w < 0) {
                free(t);
                return;
            }
            w = labels[i].w;
            if (by_colon)   /* a bold label is not part of the text */
                s += ll + 1;
            while (*s == ' ' || *s == ':')
                s++;
            break;
        }
    }
    /* "404 Not Found", "404 - File or directory not found." */
    char num[16];
    int k = snprintf(num, sizeof num, "%d", c->status);
    if (k > 0 && strncmp(s, num, (size_t)k) == 0 && (s[k] == ' ' || s[k] == '\0')) {
        s += k;
        while (*s == ' ' || *s == '-' || *s == ':')
            s++;
    }
    size_t sl = strlen(s);
    /* the more words, the more specific: "Not Found" < "The requested URL was not found" */
    int words = 0;
    for (size_t q = 0; q < sl; q++)
        if (s[q] != ' ' && (q == 0 || s[q - 1] == ' '))
            words++;
    if (el == EL_LOOSE && words < 3) {
        free(t);
        return;
    }
    w += words > 10 ? 10 : words;
    /* a labelled HTML line ends with a period the message does not need */
    if (sl > 1 && s[sl - 1] == '.' && s[sl - 2] != '.')
        s[--sl] = '\0';
    if (sl > 0)
        rec_offer_message(c, s, sl, w, 0);
    free(t);
}

void rec_html(struct rctx *c, const char *body, size_t len, bool xml)
{
    char textbuf[4096];
    struct hbuf tb = {textbuf, 0, sizeof textbuf};
    char label[64];
    size_t label_len = 0;
    bool in_label = false, label_done = false;
    enum html_el cur = EL_NONE;
    int p_index = 0;
    /* loose text: what sits in <body> outside the elements we read */
    char loosebuf[2048];
    struct hbuf lt = {loosebuf, 0, sizeof loosebuf};
    bool in_head = false;
    int skip = 0;   /* inside <address>, <footer>, <nav>...: server banners, menus */
    static const char *const inline_tags[] = {"a", "span", "b", "i", "em", "strong", "code",
                                              "small", "abbr", "font", "u", "tt", NULL};
    static const char *const skip_tags[] = {"address", "footer", "nav", "button", "select",
                                            "noscript", "label", "option", "header", NULL};
    size_t i = 0;
    while (i < len && !c->oom) {
        char ch = body[i];
        if (ch == '<') {
            /* comments, doctype, CDATA */
            if (i + 3 < len && memcmp(body + i, "<!--", 4) == 0) {
                const char *e = memmem(body + i + 4, len - i - 4, "-->", 3);
                i = e ? (size_t)(e - body) + 3 : len;
                continue;
            }
            size_t j = i + 1;
            bool closing = j < len && body[j] == '/';
            if (closing)
                j++;
            size_t ns = j;
            while (j < len && (isalnum((unsigned char)body[j]) || body[j] == ':' ||
                               body[j] == '-' || body[j] == '_'))
                j++;
            size_t nl = j - ns;
            const char *gt = memchr(body + j, '>', len - j);
            size_t end = gt ? (size_t)(gt - body) + 1 : len;
            if (nl == 0) {
                /* "<!doctype", "<?xml", or a stray '<' in text */
                if (j < len && (body[j] == '!' || body[j] == '?')) {
                    i = end;
                    continue;
                }
                if (cur != EL_NONE)
                    hbuf_putc(&tb, '<');
                i++;
                continue;
            }
            const char *name = body + ns;
            char tag[16];
            size_t tl = nl < sizeof tag - 1 ? nl : sizeof tag - 1;
            memcpy(tag, name, tl);
            tag[tl] = '\0';
            if (!key_in(tag, inline_tags) && lt.len > 0) {
                if (cur == EL_NONE && !xml)
                    html_offer(c, EL_LOOSE, lt.p, lt.len, NULL, 0);
                lt.len = 0;
            }
            if (ci_eq_n(name, nl, "head"))
                in_head = !closing;
            else if (ci_eq_n(name, nl, "body"))
                in_head = false;
            else if (key_in(tag, skip_tags))
                skip = closing ? (skip > 0 ? skip - 1 : 0) : (skip < 64 ? skip + 1 : skip);
            if (!closing && (ci_eq_n(name, nl, "script") || ci_eq_n(name, nl, "style"))) {
                /* skip to the matching close tag */
                const char *close = ci_eq_n(name, nl, "script") ? "</script" : "</style";
                size_t cl = strlen(close);
                size_t k = end;
                while (k + cl <= len && strncasecmp(body + k, close, cl) != 0)
                    k++;
                const char *g2 = k < len ? memchr(body + k, '>', len - k) : NULL;
                i = g2 ? (size_t)(g2 - body) + 1 : len;
                continue;
            }
            enum html_el el = html_element(name, nl, xml);
            if (el != EL_NONE) {
                if (cur != EL_NONE && tb.len > 0)
                    html_offer(c, cur, tb.p, tb.len, label_done ? label : NULL, p_index);
                if (cur == EL_P)
                    p_index++;
                tb.len = 0;
                label_len = 0;
                label[0] = '\0';
                in_label = label_done = false;
                cur = closing ? EL_NONE : el;
            } else if (cur != EL_NONE) {
                bool bold = ci_eq_n(name, nl, "b") || ci_eq_n(name, nl, "strong");
                if (bold && !closing && tb.len == 0 && !label_done) {
                    in_label = true;
                } else if (bold && closing && in_label) {
                    in_label = false;
                    label_done = true;
                    label[label_len] = '\0';
                } else if (ci_eq_n(name, nl, "br") || ci_eq_n(name, nl, "div") ||
                           ci_eq_n(name, nl, "li")) {
                    hbuf_putc(&tb, cur == EL_PRE ? '\n' : ' ');
                }
            }
            i = end;
            continue;
        }
        if (cur == EL_NONE && (xml || in_head || skip > 0)) {
            i++;
            continue;
        }
        struct hbuf *dst = cur == EL_NONE ? &lt : &tb;
        char lbuf_tmp[16];
        struct hbuf lb = {lbuf_tmp, 0, sizeof lbuf_tmp};
        if (in_label)
            dst = &lb;
        if (ch == '&') {
            size_t used = html_entity(body + i + 1, len - i - 1, dst);
            if (used) {
                i += used + 1;
            } else {
                hbuf_putc(dst, '&');
                i++;
            }
        } else {
            hbuf_putc(dst, ch);
            i++;
        }
        if (in_label) {
            for (size_t q = 0; q < lb.len && label_len + 1 < sizeof label; q++)
                label[label_len++] = lb.p[q];
            label[label_len] = '\0';
        }
    }
    if (cur != EL_NONE && tb.len > 0 && !c->oom)
        html_offer(c, cur, tb.p, tb.len, label_done ? label : NULL, p_index);
    if (lt.len > 0 && !xml && !c->oom)
        html_offer(c, EL_LOOSE, lt.p, lt.len, NULL, 0);
}
