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
 * and watches them converge; sets a register through the group's log; then
 * shows that bad arguments and a wrong secret are refused with a status,
 * never a crash.
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
