/*
 * main: the command line. -c FILE runs in the foreground (systemd style),
 * -t checks a conf file, -V prints the version. Everything else lives in
 * server.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "config.h"
#include "server.h"

#define DEFAULT_CONF "/etc/envelopd/envelopd.conf"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: envelopd [-c FILE] [-t] [-V]\n"
            "  -c FILE  conf file (default " DEFAULT_CONF ")\n"
            "  -t       check the conf file and exit (0 ok, 1 error)\n"
            "  -V       print the version and exit\n");
}

int main(int argc, char **argv)
{
    const char *path = DEFAULT_CONF;
    bool test = false;
    int opt;
    while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test = true;
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
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    char err[1024];
    struct conf *conf = conf_load(path, err, sizeof err);
    if (!conf) {
        fprintf(stderr, "%s\n", err);
        if (!test)
            fprintf(stderr, "envelopd: not started: the conf file has an error\n");
        return 1;
    }
    if (test) {
        printf("envelopd: %s: configuration ok\n", path);
        conf_free(conf);
        return 0;
    }
    return server_run(path, conf);
}
