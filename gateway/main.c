/*
 * main: the command line. -c FILE runs in the foreground (systemd style),
 * -t checks a conf file, --dump-conf prints the effective conf,
 * --list-directives the directives it may hold, -V prints the version.
 * Everything else lives in server.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "conf.h"
#include "config.h"
#include "server.h"
#include "tls.h"

#define DEFAULT_CONF "/etc/envelopd/envelopd.conf"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: envelopd [-c FILE] [-t | --dump-conf] [-V]\n"
            "  -c FILE            conf file (default " DEFAULT_CONF ")\n"
            "  -t                 check the conf file and exit (0 ok, 1 error)\n"
            "  --dump-conf        print the effective conf, defaults included, and exit\n"
            "  --list-directives  print every directive as \"SECTION NAME\" and exit\n"
            "  -V                 print the version and exit\n");
}

enum { OPT_DUMP_CONF = 256, OPT_LIST_DIRECTIVES };

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dump-conf", no_argument, NULL, OPT_DUMP_CONF},
        {"list-directives", no_argument, NULL, OPT_LIST_DIRECTIVES},
        {NULL, 0, NULL, 0},
    };
    const char *path = DEFAULT_CONF;
    bool test = false, dump = false, list = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test = true;
            break;
        case OPT_DUMP_CONF:
            dump = true;
            break;
        case OPT_LIST_DIRECTIVES:
            list = true;
            break;
        case 'V':
            printf("envelopd %s\n", ENVELOPD_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || (test && dump)) {
        usage(stderr);
        return 2;
    }
    if (list)
        return conf_list_directives(stdout) == 0 ? 0 : 1;
    char err[1024];
    struct conf *conf = conf_load(path, err, sizeof err);
    if (!conf) {
        fprintf(stderr, "%s\n", err);
        if (!test && !dump)
            fprintf(stderr, "envelopd: not started: the conf file has an error\n");
        return 1;
    }
    if (test) {
        /* Certificates and keys are read as a start would: a bad pair is a -t error. */
        struct tls_set *tls = tls_set_new(conf, err, sizeof err);
        struct auth_keys *auth = tls ? auth_keys_new(conf, err, sizeof err) : NULL;
        conf_free(conf);
        tls_set_free(tls);
        if (!auth) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        auth_keys_free(auth);
        printf("envelopd: %s: configuration ok\n", path);
        return 0;
    }
    if (dump) {
        int rc = conf_dump(conf, stdout);
        conf_free(conf);
        if (rc != 0)
            fprintf(stderr, "envelopd: --dump-conf: cannot write the conf\n");
        return rc == 0 ? 0 : 1;
    }
    return server_run(path, conf);
}
