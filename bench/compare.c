/* bench/compare.c -- stemfarm-compare: how far apart two renders of a stem
 * are, for bench/suite.sh.
 *
 *   stemfarm-compare A.wav B.wav
 *
 * Prints one line:
 *   max_diff_db=D frames_a=N frames_b=M compared=K
 * D is 20 log10 of the largest |a - b| over every channel of the first K =
 * min(N, M) frames, in dB relative to full scale (-inf when identical). Only
 * the common frames count: stemfarm's stems run on for their effect tails,
 * which a mixer cut at the end of its sources does not have, and that is a
 * difference of length, reported as such, not of processing. Exit status 0
 * compared, 1 unreadable or of different channel counts, 2 usage.
 */
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>

#define BLOCK 65536 /* frames per read */

static SNDFILE *open_or_die(const char *path, SF_INFO *info)
{
    SNDFILE *s = sf_open(path, SFM_READ, info);
    if (!s) {
        fprintf(stderr, "stemfarm-compare: error: cannot open '%s': %s\n", path, sf_strerror(NULL));
        exit(1);
    }
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fputs("usage: stemfarm-compare A.wav B.wav\n", stderr);
        return 2;
    }
    SF_INFO ia = {0}, ib = {0};
    SNDFILE *a = open_or_die(argv[1], &ia), *b = open_or_die(argv[2], &ib);
    if (ia.channels != ib.channels) {
        fprintf(stderr, "stemfarm-compare: error: '%s' has %d channels, '%s' %d\n", argv[1], ia.channels, argv[2],
                ib.channels);
        return 1;
    }
    size_t ch = (size_t)ia.channels;
    double *xa = malloc(sizeof(double) * ch * BLOCK), *xb = malloc(sizeof(double) * ch * BLOCK);
    if (!xa || !xb) {
        fputs("stemfarm-compare: error: out of memory\n", stderr);
        return 1;
    }
    sf_count_t common = ia.frames < ib.frames ? ia.frames : ib.frames, done = 0;
    double worst = 0;
    while (done < common) {
        sf_count_t want = common - done < BLOCK ? common - done : BLOCK;
        sf_count_t na = sf_readf_double(a, xa, want), nb = sf_readf_double(b, xb, want);
        sf_count_t n = na < nb ? na : nb;
        if (n <= 0)
            break;
        for (size_t i = 0; i < (size_t)n * ch; i++) {
            double d = fabs(xa[i] - xb[i]);
            if (d > worst || d != d)
                worst = d != d ? (double)INFINITY : d;
        }
        done += n;
    }
    if (worst > 0)
        printf("max_diff_db=%.1f", 20 * log10(worst));
    else
        printf("max_diff_db=-inf");
    printf(" frames_a=%lld frames_b=%lld compared=%lld\n", (long long)ia.frames, (long long)ib.frames, (long long)done);
    free(xa);
    free(xb);
    sf_close(a);
    sf_close(b);
    return 0;
}
