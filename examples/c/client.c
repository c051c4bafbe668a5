/*
 * client.c — talk to a running luigi-node cluster from C.
 *
 * Reads the cluster from the environment (what `luigi-cluster-demo exec`
 * sets for the command it runs):
 *   LUIGI_ENDPOINTS       host:port,host:port,...
 *   LUIGI_CLUSTER_ID      the cluster id
 *   LUIGI_CLUSTER_SECRET  the shared secret
 * Writes, reads, compares-and-sets and deletes keys; commits algebraic
 * transactions on each node of the replica group LUIGI_REPLICA_GROUP_BASE + 1
 * and watches them converge; sets a register through the group's log; runs
 * sharded transactions across the cluster's 2 watermark shards (a transfer,
 * an aborted check); then shows that bad arguments and a wrong secret are
 * refused with a status, never a crash.
 * Prints "client: N passed, M failed" like the other C tests.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "luigi.h"

static int passed, failed;

#define EXPECT(cond)                                                                    \
    do {                                                                                \
        if (cond) {                                                                     \
            passed++;                                                                   \
        } else {                                                                        \
            failed++;                                                                   \
            printf("FAIL client.c:%d: %s (%s)\n", __LINE__, #cond, luigi_last_error_message()); \
        }                                                                               \
    } while (0)

static luigi_client_options options(const char *id, const char *secret)
{
    luigi_client_options o;
    memset(&o, 0, sizeof o);
    o.version = LUIGI_CLIENT_OPTIONS_VERSION;
    o.cluster_id = id;
    o.cluster_id_len = strlen(id);
    o.secret = (const uint8_t *)secret;
    o.secret_len = strlen(secret);
    o.timeout_ms = 5000;
    return o;
}

/* The value the reads record (shard, key) holds, in the luigi.h reads format
 * (u64 shard, u32 key length, key, u8 present, i64 value; little-endian):
 * 1 with *out set when present, 0 when read absent, -1 when not read. A
 * key read twice (a check reads too) keeps its last read, which saw the
 * shard's earlier ops. */
static int read_of(const luigi_buffer *reads, uint64_t shard, const char *key, int64_t *out)
{
    const uint8_t *p = reads->data;
    size_t i = 0, n = reads->len, key_len = strlen(key);
    int found = -1;
    while (n - i >= 12) {
        uint64_t s = 0, v = 0;
        uint32_t len = 0;
        for (int b = 7; b >= 0; b--) s = s << 8 | p[i + (size_t)b];
        for (int b = 3; b >= 0; b--) len = len << 8 | p[i + 8 + (size_t)b];
        i += 12;
        if (n - i < (size_t)len + 9) return -1;
        const uint8_t *k = p + i;
        int present = p[i + len];
        for (int b = 7; b >= 0; b--) v = v << 8 | p[i + len + 1 + (size_t)b];
        i += (size_t)len + 9;
        if (s == shard && len == key_len && memcmp(k, key, len) == 0) {
            *out = (int64_t)v;
            found = present;
        }
    }
    return i == n ? found : -1;
}

static luigi_wm_op wm_op(uint32_t kind, uint64_t shard, const char *key, int64_t value)
{
    luigi_wm_op op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.shard = shard;
    op.key = key;
    op.key_len = strlen(key);
    op.value = value;
    return op;
}

/* Both accounts' balances (alice on shard 0, bob on shard 1), read in one
 * transaction: 1 when it committed and both were present. */
static int balances(luigi_client *c, int64_t *alice, int64_t *bob)
{
    luigi_wm_op ops[2] = {wm_op(LUIGI_WM_READ, 0, "alice", 0), wm_op(LUIGI_WM_READ, 1, "bob", 0)};
    uint32_t outcome = 0;
    uint64_t ts = 0;
    luigi_buffer reads = {0};
    if (luigi_client_transact(c, ops, 2, 0, &outcome, &ts, &reads) != LUIGI_OK) return 0;
    int ok = outcome == LUIGI_WM_COMMITTED && read_of(&reads, 0, "alice", alice) == 1 &&
             read_of(&reads, 1, "bob", bob) == 1;
    luigi_buffer_free(&reads);
    return ok;
}

int main(void)
{
    const char *endpoints = getenv("LUIGI_ENDPOINTS");
    const char *id = getenv("LUIGI_CLUSTER_ID");
    const char *secret = getenv("LUIGI_CLUSTER_SECRET");
    if (!endpoints || !id || !secret) {
        printf("client: set LUIGI_ENDPOINTS, LUIGI_CLUSTER_ID and LUIGI_CLUSTER_SECRET (see luigi-cluster-demo exec)\n");
        return 2;
    }
    luigi_client_options o = options(id, secret);
    luigi_client *c = NULL;
    EXPECT(luigi_client_new(endpoints, strlen(endpoints), &o, &c) == LUIGI_OK);
    if (!c) return 1;

    /* put, get, cas, delete: linearizable, through whichever node leads. */
    const uint8_t v1[] = "blue", v2[] = "green";
    EXPECT(luigi_client_put(c, 0, "color", 5, v1, 4, 0) == LUIGI_OK);
    int found = 0;
    luigi_buffer value = {0};
    EXPECT(luigi_client_get(c, 0, "color", 5, 0, &found, &value) == LUIGI_OK);
    EXPECT(found == 1 && value.len == 4 && memcmp(value.data, "blue", 4) == 0);
    luigi_buffer_free(&value);
    int swapped = -1;
    EXPECT(luigi_client_cas(c, 0, "color", 5, v2, 5, v2, 5, 0, &swapped) == LUIGI_OK && swapped == 0);
    EXPECT(luigi_client_cas(c, 0, "color", 5, v1, 4, v2, 5, 0, &swapped) == LUIGI_OK && swapped == 1);
    EXPECT(luigi_client_cas(c, 0, "absent", 6, NULL, 0, v1, 4, 0, &swapped) == LUIGI_OK && swapped == 1);
    int existed = -1;
    EXPECT(luigi_client_delete(c, 0, "color", 5, 0, &existed) == LUIGI_OK && existed == 1);
    EXPECT(luigi_client_delete(c, 0, "color", 5, 0, &existed) == LUIGI_OK && existed == 0);
    EXPECT(luigi_client_get(c, 0, "color", 5, 0, &found, &value) == LUIGI_OK && found == 0 && value.len == 0);
    luigi_buffer_free(&value);
    for (int i = 0; i < 100; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "key-%d", i);
        EXPECT(luigi_client_put(c, 0, key, (size_t)n, (const uint8_t *)key, (size_t)n, 0) == LUIGI_OK);
    }
    EXPECT(luigi_client_get(c, 0, "key-99", 6, 0, &found, &value) == LUIGI_OK && found == 1 && value.len == 6);
    luigi_buffer_free(&value);
    luigi_buffer status = {0};
    EXPECT(luigi_client_status(c, 0, &status) == LUIGI_OK && status.len > 0 &&
           strstr((const char *)status.data, "\"role\"") != NULL);
    luigi_buffer_free(&status);

    /* Replica group: a commit on each node, convergence by anti-entropy. */
    const uint64_t rg = LUIGI_REPLICA_GROUP_BASE + 1;
    char nodes[3][64];
    int node_count = 0;
    for (const char *p = endpoints; *p && node_count < 3;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n >= sizeof nodes[0]) n = sizeof nodes[0] - 1;
        memcpy(nodes[node_count], p, n);
        nodes[node_count][n] = 0;
        node_count++;
        p += n + (comma ? 1 : 0);
    }
    for (int i = 0; i < node_count; i++) {
        luigi_client *pinned = NULL;
        EXPECT(luigi_client_new(nodes[i], strlen(nodes[i]), &o, &pinned) == LUIGI_OK);
        luigi_ops *ops = NULL;
        EXPECT(luigi_ops_new(&ops) == LUIGI_OK);
        EXPECT(luigi_ops_add(ops, "views", 5, 10 * (i + 1)) == LUIGI_OK);
        EXPECT(luigi_ops_union_str(ops, "who", 3, nodes[i], strlen(nodes[i])) == LUIGI_OK);
        EXPECT(luigi_ops_max_int(ops, "views", 5, 1) == LUIGI_ERR_TYPE_CONFLICT); /* refused, list unchanged */
        size_t count = 0;
        EXPECT(luigi_ops_count(ops, &count) == LUIGI_OK && count == 2);
        uint64_t origin = 0, seq = 0;
        EXPECT(luigi_client_commit(pinned, rg, ops, 0, &origin, &seq) == LUIGI_OK && origin >= 1 && seq == 1);
        luigi_ops_free(ops);
        luigi_client_free(pinned);
    }
    int converged = 0;
    for (int attempt = 0; attempt < 200 && !converged; attempt++) {
        converged = 1;
        for (int i = 0; i < node_count; i++) {
            luigi_value v;
            luigi_buffer elements = {0};
            if (luigi_client_value(c, rg, "views", 5, nodes[i], strlen(nodes[i]), 0, &v, &elements) != LUIGI_OK ||
                v.kind != LUIGI_KIND_COUNTER || v.counter_lo != (uint64_t)(10 * node_count * (node_count + 1) / 2))
                converged = 0;
            luigi_buffer_free(&elements);
        }
        if (!converged) {
            struct timespec pause = {0, 20 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
    }
    EXPECT(converged);
    luigi_value who;
    luigi_buffer members = {0};
    EXPECT(luigi_client_value(c, rg, "who", 3, NULL, 0, 0, &who, &members) == LUIGI_OK && who.kind == LUIGI_KIND_SET &&
           members.len > 0);
    luigi_buffer_free(&members);
    /* A set needs the log: refused as a commit, applied everywhere as coordinated. */
    luigi_ops *mode = NULL;
    EXPECT(luigi_ops_new(&mode) == LUIGI_OK);
    EXPECT(luigi_ops_set_int(mode, "mode", 4, 7) == LUIGI_OK);
    uint64_t origin = 0, seq = 0;
    EXPECT(luigi_client_commit(c, rg, mode, 0, &origin, &seq) == LUIGI_ERR_NOT_ALGEBRAIC);
    EXPECT(luigi_client_coordinate(c, rg, mode, 0) == LUIGI_OK);
    luigi_ops_free(mode);
    luigi_value reg;
    EXPECT(luigi_client_value(c, rg, "mode", 4, NULL, 0, 0, &reg, &members) == LUIGI_OK);
    luigi_buffer_free(&members);
    /* Ops are checked as they are added. */
    luigi_ops *bad_ops = NULL;
    EXPECT(luigi_ops_new(&bad_ops) == LUIGI_OK);
    EXPECT(luigi_ops_max_float(bad_ops, "m", 1, 0.0 / 0.0) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_ops_add(bad_ops, "", 0, 1) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_commit(c, 999, bad_ops, 0, &origin, &seq) == LUIGI_ERR_INVALID_ARGUMENT); /* below the base */
    EXPECT(luigi_client_commit(c, rg, bad_ops, 0, &origin, &seq) == LUIGI_ERR_INVALID_ARGUMENT); /* empty */
    EXPECT(luigi_client_commit(c, 1, bad_ops, 0, &origin, &seq) == LUIGI_ERR_INVALID_ARGUMENT);  /* not a replica group */
    luigi_ops_free(bad_ops);
    luigi_ops *empty = NULL;
    EXPECT(luigi_ops_new(&empty) == LUIGI_OK && luigi_ops_union_empty(empty, "nobody", 6) == LUIGI_OK);
    EXPECT(luigi_client_commit(c, rg, empty, 0, &origin, &seq) == LUIGI_OK);
    EXPECT(luigi_client_commit(c, rg + 50, empty, 2000, &origin, &seq) == LUIGI_ERR_STATE); /* no such group */
    luigi_ops_free(empty);
    luigi_value nobody;
    EXPECT(luigi_client_value(c, rg, "nobody", 6, NULL, 0, 0, &nobody, &members) == LUIGI_OK);
    luigi_buffer_free(&members);
    EXPECT(luigi_client_add_member(c, 0, 0, "127.0.0.1:1", 11, 0) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_remove_member(c, 0, 0, 0) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_remove_member(c, 0, 99, 0) == LUIGI_OK); /* not a member: nothing to do */

    /* Sharded transactions (the exec cluster runs 2 watermark shards):
     * atomic across shards, sent once. The shards' Raft groups elect their
     * leaders beside group 1's, so a read-only transaction (harmless to
     * repeat) waits for them first. */
    luigi_wm_op probe = wm_op(LUIGI_WM_READ, 0, "alice", 0);
    uint32_t outcome = 0;
    uint64_t ts = 0;
    luigi_buffer reads = {0};
    luigi_status ready = LUIGI_ERR_TIMEOUT;
    for (int attempt = 0; attempt < 10 && ready == LUIGI_ERR_TIMEOUT; attempt++) {
        ready = luigi_client_transact(c, &probe, 1, 0, &outcome, &ts, &reads);
        if (ready == LUIGI_OK) luigi_buffer_free(&reads);
    }
    EXPECT(ready == LUIGI_OK && outcome == LUIGI_WM_COMMITTED);
    luigi_wm_op deposit[2] = {wm_op(LUIGI_WM_WRITE, 0, "alice", 100), wm_op(LUIGI_WM_WRITE, 1, "bob", 50)};
    EXPECT(luigi_client_transact(c, deposit, 2, 0, &outcome, &ts, &reads) == LUIGI_OK &&
           outcome == LUIGI_WM_COMMITTED && ts > 0 && reads.len == 0);
    luigi_buffer_free(&reads);
    int64_t alice = 0, bob = 0, seen = 0;
    EXPECT(balances(c, &alice, &bob) && alice == 100 && bob == 50);
    /* A transfer: checked, taken from one shard, given on the other; its
     * reads see the shard's earlier ops. */
    luigi_wm_op transfer[4] = {wm_op(LUIGI_WM_CHECK, 0, "alice", 30), wm_op(LUIGI_WM_ADD, 0, "alice", -30),
                               wm_op(LUIGI_WM_READ, 0, "alice", 0), wm_op(LUIGI_WM_ADD, 1, "bob", 30)};
    EXPECT(luigi_client_transact(c, transfer, 4, 0, &outcome, &ts, &reads) == LUIGI_OK &&
           outcome == LUIGI_WM_COMMITTED && read_of(&reads, 0, "alice", &seen) == 1 && seen == 70);
    luigi_buffer_free(&reads);
    EXPECT(balances(c, &alice, &bob) && alice == 70 && bob == 80);
    /* bob's check fails: neither shard's part takes effect. */
    luigi_wm_op overdraw[3] = {wm_op(LUIGI_WM_ADD, 0, "alice", 500), wm_op(LUIGI_WM_CHECK, 1, "bob", 500),
                               wm_op(LUIGI_WM_ADD, 1, "bob", -500)};
    EXPECT(luigi_client_transact(c, overdraw, 3, 0, &outcome, &ts, &reads) == LUIGI_OK &&
           outcome == LUIGI_WM_ABORTED);
    luigi_buffer_free(&reads);
    /* An add that would overflow aborts too. */
    luigi_wm_op overflow[2] = {wm_op(LUIGI_WM_WRITE, 1, "bob", 0), wm_op(LUIGI_WM_ADD, 0, "alice", INT64_MAX)};
    EXPECT(luigi_client_transact(c, overflow, 2, 0, &outcome, &ts, &reads) == LUIGI_OK &&
           outcome == LUIGI_WM_ABORTED);
    luigi_buffer_free(&reads);
    EXPECT(balances(c, &alice, &bob) && alice == 70 && bob == 80);
    /* An absent key reads as absent. */
    luigi_wm_op nobody_read = wm_op(LUIGI_WM_READ, 1, "carol", 0);
    EXPECT(luigi_client_transact(c, &nobody_read, 1, 0, &outcome, &ts, &reads) == LUIGI_OK &&
           outcome == LUIGI_WM_COMMITTED && read_of(&reads, 1, "carol", &seen) == 0);
    luigi_buffer_free(&reads);
    /* Refused with a status, outputs untouched: by the node (shard 2 of 2)
     * or before anything is sent. */
    uint32_t untouched = 77;
    luigi_wm_op bad_op = wm_op(LUIGI_WM_WRITE, 2, "alice", 1);
    EXPECT(luigi_client_transact(c, &bad_op, 1, 0, &untouched, &ts, &reads) == LUIGI_ERR_INVALID_ARGUMENT);
    bad_op.shard = 1u << 16;
    EXPECT(luigi_client_transact(c, &bad_op, 1, 0, &untouched, &ts, &reads) == LUIGI_ERR_INVALID_ARGUMENT);
    bad_op = wm_op(9, 0, "alice", 1); /* unknown kind */
    EXPECT(luigi_client_transact(c, &bad_op, 1, 0, &untouched, &ts, &reads) == LUIGI_ERR_INVALID_ARGUMENT);
    bad_op = wm_op(LUIGI_WM_WRITE, 0, "alice", 1);
    bad_op.reserved = 1;
    EXPECT(luigi_client_transact(c, &bad_op, 1, 0, &untouched, &ts, &reads) == LUIGI_ERR_INVALID_ARGUMENT);
    bad_op = wm_op(LUIGI_WM_WRITE, 0, "\xff\xfe", 1);
    EXPECT(luigi_client_transact(c, &bad_op, 1, 0, &untouched, &ts, &reads) == LUIGI_ERR_INVALID_ARGUMENT);
    static char long_key[1025];
    memset(long_key, 'k', sizeof long_key - 1);
    bad_op = wm_op(LUIGI_WM_WRITE, 0, long_key, 1); /* 1024 bytes: the longest key */
    EXPECT(luigi_client_transact(c, &bad_op, 1, 0, &outcome, &ts, &reads) == LUIGI_OK);
    luigi_buffer_free(&reads);
    long_key[1024] = 'k'; /* no terminator: key_len says 1025 */
    bad_op.key_len = 1025;
    EXPECT(luigi_client_transact(c, &bad_op, 1, 0, &untouched, &ts, &reads) == LUIGI_ERR_INVALID_ARGUMENT);
    bad_op = wm_op(LUIGI_WM_WRITE, 0, "alice", 1);
    bad_op.key = NULL;
    EXPECT(luigi_client_transact(c, &bad_op, 1, 0, &untouched, &ts, &reads) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_transact(c, deposit, 0, 0, &untouched, &ts, &reads) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_transact(c, NULL, 1, 0, &untouched, &ts, &reads) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_transact(c, deposit, (size_t)-1, 0, &untouched, &ts, &reads) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_transact(c, deposit, 2, 600001, &untouched, &ts, &reads) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_transact(c, deposit, 2, 0, NULL, &ts, &reads) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_transact(c, deposit, 2, 0, &untouched, NULL, &reads) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_transact(c, deposit, 2, 0, &untouched, &ts, NULL) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_transact(NULL, deposit, 2, 0, &untouched, &ts, &reads) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(untouched == 77);
    EXPECT(balances(c, &alice, &bob) && alice == 70 && bob == 80);

    /* Bad arguments: a status, nothing sent, nothing changed. */
    static uint8_t big[LUIGI_CLIENT_MAX_VALUE + 1];
    EXPECT(luigi_client_put(c, 0, "", 0, v1, 4, 0) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_put(c, 0, NULL, 3, v1, 4, 0) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_put(c, 0, "k", 1, big, sizeof big, 0) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_put(c, 0, "k", 1, v1, 4, 600001) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_put(c, 0, "\xff\xfe", 2, v1, 4, 0) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_get(c, 0, "k", 1, 0, NULL, &value) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_get(NULL, 0, "k", 1, 0, &found, &value) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_get(c, 0, "absent", 6, 0, &found, &value) == LUIGI_OK && found == 1);
    luigi_buffer_free(&value);

    /* Options are checked. */
    luigi_client *bad = NULL;
    luigi_client_options wrong = o;
    wrong.version = 99;
    EXPECT(luigi_client_new(endpoints, strlen(endpoints), &wrong, &bad) == LUIGI_ERR_INVALID_ARGUMENT && bad == NULL);
    wrong = o;
    wrong.secret_len = 8;
    EXPECT(luigi_client_new(endpoints, strlen(endpoints), &wrong, &bad) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_new("nohostport", 10, &o, &bad) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_new("127.0.0.1:1,,127.0.0.1:2", 24, &o, &bad) == LUIGI_ERR_INVALID_ARGUMENT);
    EXPECT(luigi_client_new(endpoints, strlen(endpoints), NULL, &bad) == LUIGI_ERR_INVALID_ARGUMENT);

    /* A wrong secret: every node refuses it, and the call says so. */
    luigi_client_options impostor = options(id, "not-the-cluster-secret");
    EXPECT(luigi_client_new(endpoints, strlen(endpoints), &impostor, &bad) == LUIGI_OK);
    EXPECT(luigi_client_put(bad, 0, "k", 1, v1, 4, 2000) == LUIGI_ERR_AUTH);
    luigi_client_free(bad);
    EXPECT(luigi_client_get(c, 0, "k", 1, 0, &found, &value) == LUIGI_OK && found == 0);
    luigi_buffer_free(&value);

    luigi_client_free(c);
    EXPECT(luigi_client_get(c, 0, "k", 1, 0, &found, &value) == LUIGI_ERR_INVALID_HANDLE);
    luigi_client_free(c); /* a freed handle is ignored */
    printf("client: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
