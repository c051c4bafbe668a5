/*
 * watermark.c — watermark commit (the Luigi protocol) from C.
 *
 * Part 1, the simulated cluster: 2 shards x 3 replicas run bank transfers
 * while a shard leader crashes; money is conserved, every invariant holds,
 * and the two-phase-commit baseline runs the same workload beside it.
 *
 * Part 2, the pure roles with the program's own transport: a coordinator
 * and two shards exchange byte messages through a queue. Each shard here
 * has a one-replica "log" that commits what is appended at once (a stand-in
 * that keeps the example short; a real deployment feeds each shard the
 * committed entries of its shard's luigi_raft group).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luigi.h"

static void check(luigi_status s, const char *what, int line)
{
    if (s != LUIGI_OK) {
        fprintf(stderr, "watermark.c:%d: %s failed: %s: %s\n", line, what, luigi_status_name(s),
                luigi_last_error_message());
        exit(1);
    }
}
#define CHECK(call) check((call), #call, __LINE__)
#define REQUIRE(cond)                                                                  \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "watermark.c:%d: requirement failed: %s\n", __LINE__, #cond); \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

static int64_t total_money(luigi_sharded_cluster *c, uint32_t shards)
{
    int64_t total = 0;
    for (uint32_t s = 0; s < shards; s++) {
        for (int i = 0; i < 100; i++) {
            char key[32];
            int n = snprintf(key, sizeof key, "acct%u.%d", s, i);
            int64_t v = 0;
            int present = 0;
            CHECK(luigi_sharded_value(c, s, key, (size_t)n, &v, &present));
            total += v;
        }
    }
    return total;
}

static void bank_run(uint32_t protocol, int crash)
{
    luigi_sharded_options o;
    luigi_sharded_options_init(&o);
    o.protocol = protocol;
    o.shards = 2;
    o.replicas = 3;
    o.window = 16;
    o.seed = 7;
    luigi_sharded_cluster *c = NULL;
    CHECK(luigi_sharded_new(&o, &c));
    CHECK(luigi_sharded_load(c, LUIGI_WORKLOAD_BANK, 400, 0.5));
    if (crash) {
        CHECK(luigi_sharded_run(c, 40000));
        uint64_t old = 0;
        CHECK(luigi_sharded_crash_leader(c, 1, &old));
        CHECK(luigi_sharded_run(c, 200000));
        CHECK(luigi_sharded_restart(c, old));
    }
    int idle = 0;
    CHECK(luigi_sharded_run_until_idle(c, 60000000, &idle));
    REQUIRE(idle == 1);
    CHECK(luigi_sharded_run(c, 100000)); /* followers catch up */
    int ok = 0;
    luigi_buffer invariant = {0}, detail = {0};
    CHECK(luigi_sharded_check(c, &ok, &invariant, &detail));
    if (!ok) fprintf(stderr, "%.*s: %.*s\n", (int)invariant.len, invariant.data, (int)detail.len, detail.data);
    REQUIRE(ok == 1);
    luigi_buffer_free(&invariant);
    luigi_buffer_free(&detail);
    REQUIRE(total_money(c, 2) == 2 * 100 * 1000);
    luigi_sharded_stats st = {.version = LUIGI_SHARDED_STATS_VERSION};
    CHECK(luigi_sharded_get_stats(c, &st));
    REQUIRE(st.committed + st.aborted == 400 + 2); /* the workload and its two setup transactions */
    printf("%-9s bank, 2 shards x 3%s: %llu committed, %llu aborted by balance checks, p50 %.2f round trips, "
           "money conserved, invariants hold\n",
           protocol == LUIGI_PROTOCOL_WATERMARK ? "watermark" : "2pc", crash ? ", a leader crashed" : "",
           (unsigned long long)st.committed, (unsigned long long)st.aborted, st.latency_p50_rtt);
    luigi_sharded_free(c);
}

/* ---- Part 2: the roles over the program's own queue ---- */

#define SHARDS 2
#define COORDINATOR 100
typedef struct { uint8_t to_shard; uint64_t to; uint32_t len; uint8_t *bytes; } packet;
static packet queue[1 << 16];
static size_t queued;

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Splits a messages buffer into the queue. */
static void enqueue(luigi_buffer *b)
{
    size_t at = 0;
    while (at < b->len) {
        REQUIRE(queued < sizeof queue / sizeof queue[0]);
        packet *p = &queue[queued++];
        p->to_shard = b->data[at];
        p->to = le(b->data + at + 1, 8);
        p->len = (uint32_t)le(b->data + at + 9, 4);
        p->bytes = malloc(p->len ? p->len : 1);
        memcpy(p->bytes, b->data + at + 13, p->len);
        at += 13 + p->len;
    }
    luigi_buffer_free(b);
}

static int completed, committed_count;

/* One round of the shards and the network: each shard ticks, its records go
 * to its one-replica log (committed at once, in order, and applied back),
 * and every queued message is delivered. */
static void shard_round(luigi_wm_shard **shard, luigi_wm_coordinator *coord, uint64_t now, uint64_t *log_len)
{
    for (int s = 0; s < SHARDS; s++) {
        CHECK(luigi_wm_shard_tick(shard[s], now));
        luigi_buffer msgs = {0}, records = {0};
        CHECK(luigi_wm_shard_take_output(shard[s], &msgs, &records));
        enqueue(&msgs);
        for (size_t at = 0; at < records.len;) {
            uint32_t len = (uint32_t)le(records.data + at, 4);
            CHECK(luigi_wm_shard_apply(shard[s], records.data + at + 4, len, 1, now));
            log_len[s]++;
            at += 4 + len;
        }
        luigi_buffer_free(&records);
    }
    /* Deliver everything queued (messages produced now go out next round). */
    static packet batch[1 << 12];
    size_t n = queued;
    REQUIRE(n <= sizeof batch / sizeof batch[0]);
    memcpy(batch, queue, n * sizeof(packet));
    queued = 0;
    for (size_t i = 0; i < n; i++) {
        packet *p = &batch[i];
        if (p->to_shard) CHECK(luigi_wm_shard_step(shard[p->to], p->bytes, p->len, now));
        else CHECK(luigi_wm_coordinator_step(coord, p->bytes, p->len, now));
        free(p->bytes);
    }
}

static void roles_run(void)
{
    luigi_wm_shard *shard[SHARDS];
    uint64_t coordinators[1] = {COORDINATOR};
    uint64_t log_len[SHARDS] = {0};
    for (int s = 0; s < SHARDS; s++) {
        luigi_wm_shard_options so;
        luigi_wm_shard_options_init(&so);
        so.shard = (uint64_t)s;
        so.shard_count = SHARDS;
        so.workers = 2;
        so.coordinators = coordinators;
        so.coordinator_count = 1;
        CHECK(luigi_wm_shard_new(&so, &shard[s]));
        CHECK(luigi_wm_shard_set_role(shard[s], 1, 1));
        CHECK(luigi_wm_shard_apply(shard[s], NULL, 0, 1, 0)); /* the log's first entry: the leader has caught up */
    }
    luigi_wm_coordinator_options co;
    luigi_wm_coordinator_options_init(&co);
    co.id = COORDINATOR;
    co.shard_count = SHARDS;
    co.workers = 2;
    luigi_wm_coordinator *coord = NULL;
    CHECK(luigi_wm_coordinator_new(&co, &coord));

    uint64_t now = 0;
    int submitted = 0;
    while (completed < 100) {
        now += 100; /* microseconds: one clock for everyone in this process */
        if (submitted < 100 && submitted - completed < 8) {
            char a[16], b[16];
            int na = snprintf(a, sizeof a, "x%d", submitted % 10), nb = snprintf(b, sizeof b, "y%d", submitted % 10);
            luigi_wm_op ops[3] = {
                {.kind = LUIGI_WM_ADD, .shard = 0, .key = a, .key_len = (size_t)na, .value = 1},
                {.kind = LUIGI_WM_ADD, .shard = 1, .key = b, .key_len = (size_t)nb, .value = 1},
                {.kind = LUIGI_WM_READ, .shard = 1, .key = b, .key_len = (size_t)nb},
            };
            luigi_wm_txn_id id;
            CHECK(luigi_wm_coordinator_submit(coord, ops, 3, (uint32_t)(submitted % 2), now, &id));
            submitted++;
        }
        luigi_buffer out = {0};
        CHECK(luigi_wm_coordinator_tick(coord, now));
        CHECK(luigi_wm_coordinator_take_messages(coord, &out));
        enqueue(&out);
        shard_round(shard, coord, now, log_len);
        luigi_buffer done = {0};
        CHECK(luigi_wm_coordinator_take_completions(coord, &done));
        for (size_t at = 0; at < done.len;) {
            uint8_t outcome = done.data[at + 24];
            uint32_t reads = (uint32_t)le(done.data + at + 49, 4);
            at += 53;
            for (uint32_t r = 0; r < reads; r++) at += 8 + 4 + le(done.data + at + 8, 4) + 1 + 8;
            completed++;
            committed_count += outcome == LUIGI_WM_COMMITTED;
        }
        luigi_buffer_free(&done);
        REQUIRE(now < 10000000);
    }
    /* Acknowledged means decided: a may-abort transaction's outcome record
     * (which applies its writes) may still be on its way. Run on a little. */
    for (int round = 0; round < 20; round++) shard_round(shard, coord, now += 100, log_len);
    int64_t sum = 0;
    for (int k = 0; k < 10; k++) {
        char key[16];
        int n = snprintf(key, sizeof key, "x%d", k);
        int64_t v = 0;
        int present = 0;
        CHECK(luigi_wm_shard_value(shard[0], key, (size_t)n, &v, &present));
        sum += v;
    }
    REQUIRE(committed_count == 100);
    REQUIRE(sum == 100);
    printf("roles over a queue: 100 two-shard transactions committed in %.1f ms of clock, %llu + %llu log records\n",
           (double)now / 1000, (unsigned long long)log_len[0], (unsigned long long)log_len[1]);
    luigi_wm_coordinator_free(coord);
    for (int s = 0; s < SHARDS; s++) luigi_wm_shard_free(shard[s]);
}

int main(void)
{
    bank_run(LUIGI_PROTOCOL_WATERMARK, 0);
    bank_run(LUIGI_PROTOCOL_WATERMARK, 1);
    bank_run(LUIGI_PROTOCOL_2PC, 0);
    roles_run();
    printf("watermark.c: all good\n");
    return 0;
}
