/*
 * bench_commit.c — local commit latency through the C ABI.
 *
 * For 1-op and 10-op transactions (counter adds on distinct keys, as in the
 * Python benchmark) it times begin + ops + commit + releasing the txn and
 * the update, in batches of BATCH transactions with clock_gettime
 * (CLOCK_MONOTONIC). After a warm-up it records the mean ns per transaction
 * of each batch and reports the median and p99 of those batch means, plus
 * transactions/s from the median. Also: encode, decode and remote apply of
 * a 1-op update (at most 300 batches: those updates are all kept in memory).
 *
 * Output: one JSON object on stdout. Usage: bench_commit [batches]
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "luigi.h"

enum { BATCH = 1000, WARMUP_BATCHES = 20 };

static void check(luigi_status s, const char *what)
{
    if (s != LUIGI_OK) {
        fprintf(stderr, "bench_commit: %s failed: %s: %s\n", what, luigi_status_name(s),
                luigi_last_error_message());
        exit(1);
    }
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double percentile(const double *sorted, size_t n, double p)
{
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

static const char *KEYS[10] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"};

static void one_txn(luigi_replica *r, int ops)
{
    luigi_txn *t = NULL;
    luigi_update *u = NULL;
    check(luigi_replica_begin(r, &t), "begin");
    for (int j = 0; j < ops; j++) check(luigi_txn_add(t, KEYS[j], 2, 1), "add");
    check(luigi_txn_commit(t, &u), "commit");
    luigi_update_free(u);
    luigi_txn_free(t);
}

static void report(const char *name, double *samples, size_t n, int last)
{
    qsort(samples, n, sizeof *samples, cmp_double);
    double median = percentile(samples, n, 50), p99 = percentile(samples, n, 99);
    printf("  \"%s\": {\"median_ns\": %.1f, \"p99_ns\": %.1f, \"min_ns\": %.1f, "
           "\"ops_per_s\": %.0f, \"batches\": %zu, \"batch_size\": %d}%s\n",
           name, median, p99, samples[0], 1e9 / median, n, BATCH, last ? "" : ",");
}

/* 1-op and 10-op batches interleaved, so a burst of load from elsewhere
 * hits both alike; each replica is replaced (untimed) every REPLICA_BATCHES
 * batches so its history stays in the range the Python benchmark sees. */
enum { REPLICA_BATCHES = 100 };

static void bench_commits(size_t batches)
{
    static const int OPS[2] = {1, 10};
    luigi_replica *r[2] = {NULL, NULL};
    double *samples[2];
    for (int c = 0; c < 2; c++) {
        samples[c] = calloc(batches, sizeof *samples[c]);
        check(luigi_replica_new(1, &r[c]), "replica_new");
        for (int w = 0; w < WARMUP_BATCHES; w++)
            for (int i = 0; i < BATCH; i++) one_txn(r[c], OPS[c]);
    }
    for (size_t b = 0; b < batches; b++) {
        for (int c = 0; c < 2; c++) {
            if (b > 0 && b % REPLICA_BATCHES == 0) {
                luigi_replica_free(r[c]);
                check(luigi_replica_new(1, &r[c]), "replica_new");
                for (int i = 0; i < BATCH; i++) one_txn(r[c], OPS[c]); /* warm again */
            }
            uint64_t t0 = now_ns();
            for (int i = 0; i < BATCH; i++) one_txn(r[c], OPS[c]);
            samples[c][b] = (double)(now_ns() - t0) / BATCH;
        }
    }
    report("commit_1op", samples[0], batches, 0);
    report("commit_10op", samples[1], batches, 0);
    for (int c = 0; c < 2; c++) {
        free(samples[c]);
        luigi_replica_free(r[c]);
    }
}

/* encode / decode / apply of single 1-op updates from another replica. */
static void bench_wire(size_t batches)
{
    luigi_replica *src = NULL;
    check(luigi_replica_new(1, &src), "replica_new");
    size_t total = (size_t)(WARMUP_BATCHES + batches) * BATCH;
    luigi_update **updates = calloc(total, sizeof *updates);
    luigi_buffer *wire = calloc(total, sizeof *wire);
    for (size_t i = 0; i < total; i++) {
        luigi_txn *t = NULL;
        check(luigi_replica_begin(src, &t), "begin");
        check(luigi_txn_add(t, KEYS[i % 10], 2, 1), "add");
        check(luigi_txn_commit(t, &updates[i]), "commit");
        luigi_txn_free(t);
    }
    double *enc = calloc(batches, sizeof *enc), *dec = calloc(batches, sizeof *dec),
           *app = calloc(batches, sizeof *app);
    luigi_update **decoded = calloc(BATCH, sizeof *decoded);
    luigi_replica *dst = NULL;
    check(luigi_replica_new(2, &dst), "replica_new");
    for (size_t b = 0; b < WARMUP_BATCHES + batches; b++) {
        size_t base = b * BATCH;
        uint64_t t0 = now_ns();
        for (int i = 0; i < BATCH; i++) check(luigi_update_encode(updates[base + i], &wire[base + i]), "encode");
        uint64_t t1 = now_ns();
        for (int i = 0; i < BATCH; i++)
            check(luigi_update_decode(wire[base + i].data, wire[base + i].len, &decoded[i]), "decode");
        uint64_t t2 = now_ns();
        int is_new = 0;
        for (int i = 0; i < BATCH; i++) check(luigi_replica_apply(dst, decoded[i], &is_new), "apply");
        uint64_t t3 = now_ns();
        for (int i = 0; i < BATCH; i++) {
            luigi_update_free(decoded[i]);
            luigi_buffer_free(&wire[base + i]);
        }
        if (b >= WARMUP_BATCHES) {
            size_t k = b - WARMUP_BATCHES;
            enc[k] = (double)(t1 - t0) / BATCH;
            dec[k] = (double)(t2 - t1) / BATCH;
            app[k] = (double)(t3 - t2) / BATCH;
        }
    }
    report("encode_1op", enc, batches, 0);
    report("decode_1op", dec, batches, 0);
    report("apply_1op", app, batches, 1);
    for (size_t i = 0; i < total; i++) luigi_update_free(updates[i]);
    free(updates);
    free(wire);
    free(decoded);
    free(enc);
    free(dec);
    free(app);
    luigi_replica_free(dst);
    luigi_replica_free(src);
}

int main(int argc, char **argv)
{
    size_t batches = 200;
    if (argc > 1) batches = (size_t)strtoul(argv[1], NULL, 10);
    if (batches < 10) batches = 10;
    printf("{\n  \"library_version\": \"%s\",\n", luigi_version_string());
    bench_commits(batches);
    bench_wire(batches < 300 ? batches : 300);
    printf("}\n");
    return 0;
}
