/*
 * policy: a route's overrides over the globals (see policy.h). Every
 * override has its has_* flag in the conf, so "not given" and "given as the
 * default value" stay apart and a route follows a later change of the
 * global.
 */
#include "policy.h"

void policy_for(const struct conf *conf, const struct conf_route *r, struct policy *out)
{
    const struct conf_upstream *u = r ? &conf->upstreams[r->upstream] : NULL;
    out->profile = r && r->has_profile ? r->profile : conf->profile;
    out->expose_upstream_5xx =
        r && r->has_expose_upstream_5xx ? r->expose_upstream_5xx : conf->expose_upstream_5xx;
    out->max_error_body = r && r->has_max_error_body ? r->max_error_body : conf->max_error_body;
    out->max_body_size = r && r->has_max_body_size ? r->max_body_size : conf->max_body_size;
    out->client_timeout_ms =
        r && r->has_client_timeout ? r->client_timeout_ms : conf->client_timeout_ms;
    out->timeout_ms = r && r->has_timeout ? r->timeout_ms : u ? u->timeout_ms : 0;
    out->connect_timeout_ms =
        r && r->has_connect_timeout ? r->connect_timeout_ms : u ? u->connect_timeout_ms : 0;
    out->codes = r ? r->code_map : NULL;
    out->n_codes = r ? r->n_code_map : 0;
    if (r && r->cors.set)
        out->cors = &r->cors;
    else if (conf->cors.set)
        out->cors = &conf->cors;
    else
        out->cors = NULL;
}

const char *policy_code(const struct policy *p, int status)
{
    for (size_t i = 0; i < p->n_codes; i++)
        if (p->codes[i].status == status)
            return p->codes[i].code;
    return envelope_code_for_status(status);
}
