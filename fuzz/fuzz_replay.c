/*
 * fuzz_replay: runs a libFuzzer target's LLVMFuzzerTestOneInput over every
 * file of a corpus directory, so the normal (gcc) build keeps every input the
 * fuzzer ever found interesting as a regression test.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 1;
    }
    unsigned n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", argv[1], de->d_name) >= sizeof path)
            continue;
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        struct stat st;
        if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
            fclose(f);
            continue;
        }
        size_t sz = (size_t)st.st_size;
        uint8_t *buf = malloc(sz ? sz : 1);
        if (!buf || fread(buf, 1, sz, f) != sz) {
            free(buf);
            fclose(f);
            closedir(d);
            fprintf(stderr, "%s: read failed\n", path);
            return 1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, sz);
        free(buf);
        n++;
    }
    closedir(d);
    printf("replayed %u inputs from %s\n", n, argv[1]);
    return n ? 0 : 1;
}
