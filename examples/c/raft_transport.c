/*
 * raft_transport.c — three Raft nodes in one process, driven through
 * luigi.h with the program's own "transport": a queue of byte messages.
 *
 * Shows the bring-your-own-transport loop: tick, step received messages,
 * take the ready batch (already persisted by the library, and already fed
 * to each node's state-machine plugin), send its messages, advance. Then:
 * propose 1,000 commands, check every node's state machine agrees, crash
 * a follower, commit more and compact the log into a snapshot, restart the
 * follower from its data directory (it catches up from the snapshot), crash
 * the leader and watch a new one take over.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "luigi.h"

#define NODES 3
#define MAX_QUEUE 65536

static void check(luigi_status s, const char *what, int line)
{
    if (s != LUIGI_OK) {
        fprintf(stderr, "raft_transport.c:%d: %s failed: %s: %s\n", line, what, luigi_status_name(s),
                luigi_last_error_message());
        exit(1);
    }
}
#define CHECK(call) check((call), #call, __LINE__)
#define REQUIRE(cond)                                                                      \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "raft_transport.c:%d: requirement failed: %s\n", __LINE__, #cond); \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

/* The "network": messages in flight, as bytes. */
typedef struct { uint64_t to; luigi_buffer bytes; } packet;
static packet queue[MAX_QUEUE];
static size_t queued;

static luigi_raft *nodes[NODES + 1];   /* ids 1..NODES; NULL = crashed */

/* What each node's batches persisted (the library did it; we only count). */
static uint64_t persisted_entries[NODES + 1], synced_batches[NODES + 1];

/* The state-machine plugin: counts commands and hashes their bytes. */
typedef struct { uint64_t count, hash; } machine;
static machine machines[NODES + 1];

static int32_t machine_apply(void *user, uint64_t index, uint32_t kind, const uint8_t *data, size_t len)
{
    (void)index;
    machine *m = user;
    if (kind != LUIGI_ENTRY_NORMAL || len == 0) return 0; /* no-ops and membership changes */
    m->count++;
    for (size_t i = 0; i < len; i++) m->hash = m->hash * 31 + data[i];
    return 0;
}

static int32_t machine_snapshot(void *user, void *sink, luigi_write_fn write)
{
    write(sink, user, sizeof(machine));
    return 0;
}

static int32_t machine_restore(void *user, const uint8_t *data, size_t len)
{
    if (len != sizeof(machine)) return 1;
    memcpy(user, data, len);
    return 0;
}

static char data_root[64] = "/tmp/luigi-raft-transport-XXXXXX";

/* A node keeps its log in data_root/node-<id>: restarting it recovers the
 * log from disk, while its state machine restarts empty and is rebuilt from
 * the snapshot and the entries the node applies again. */
static void start_node(uint64_t id, const uint64_t *voters)
{
    char dir[96];
    snprintf(dir, sizeof dir, "%s/node-%llu", data_root, (unsigned long long)id);
    luigi_raft_options o;
    luigi_raft_options_init(&o);
    o.seed = 42;
    o.data_dir = dir;
    CHECK(luigi_raft_new(id, voters, NODES, &o, &nodes[id]));
    memset(&machines[id], 0, sizeof machines[id]);
    luigi_state_machine sm = {
        .version = LUIGI_STATE_MACHINE_VERSION, .user_data = &machines[id],
        .apply = machine_apply, .snapshot = machine_snapshot, .restore = machine_restore,
    };
    CHECK(luigi_raft_set_state_machine(nodes[id], &sm));
}

static uint64_t leader_id(void)
{
    for (uint64_t id = 1; id <= NODES; id++) {
        if (!nodes[id]) continue;
        luigi_raft_status st = {.version = LUIGI_RAFT_STATUS_VERSION};
        CHECK(luigi_raft_get_status(nodes[id], &st));
        if (st.role == LUIGI_ROLE_LEADER) return id;
    }
    return 0;
}

/* One pass of every node's ready loop: the recommended loop, the same one
 * the Swift host runs (RaftHost.process): take the batch (the library has
 * persisted and synced it and fed the plugin its committed entries), send
 * its messages, advance it, free it; repeat until there is none. One batch
 * at a time: take_ready refuses a second one before advance. */
static void process(void)
{
    for (uint64_t id = 1; id <= NODES; id++) {
        if (!nodes[id]) continue;
        luigi_raft_ready *rd = NULL;
        CHECK(luigi_raft_take_ready(nodes[id], &rd));
        while (rd) {
            luigi_raft_counts n = {.version = LUIGI_RAFT_COUNTS_VERSION};
            CHECK(luigi_raft_ready_counts(rd, &n));
            for (size_t i = 0; i < n.messages; i++) {
                REQUIRE(queued < MAX_QUEUE);
                packet *p = &queue[queued++];
                memset(&p->bytes, 0, sizeof p->bytes);
                CHECK(luigi_raft_ready_message(rd, i, &p->to, &p->bytes));
            }
            luigi_raft_persisted written = {.version = LUIGI_RAFT_PERSISTED_VERSION};
            CHECK(luigi_raft_ready_persisted(rd, &written));
            persisted_entries[id] += written.entries;
            synced_batches[id] += written.must_sync;
            /* The committed entries were already applied to machines[id]. */
            CHECK(luigi_raft_advance(nodes[id], rd));
            luigi_raft_ready_free(rd);
            CHECK(luigi_raft_take_ready(nodes[id], &rd));
        }
    }
}

/* Delivers everything in flight (and whatever that causes) until quiet. */
static void deliver_all(void)
{
    process();
    while (queued > 0) {
        size_t n = queued;
        packet *batch = malloc(n * sizeof *batch);
        REQUIRE(batch != NULL);
        memcpy(batch, queue, n * sizeof *batch);
        queued = 0;
        for (size_t i = 0; i < n; i++) {
            if (batch[i].to <= NODES && nodes[batch[i].to])
                CHECK(luigi_raft_step(nodes[batch[i].to], batch[i].bytes.data, batch[i].bytes.len));
            luigi_buffer_free(&batch[i].bytes);
        }
        free(batch);
        process();
    }
}

static void tick_all(int ticks)
{
    for (int t = 0; t < ticks; t++) {
        for (uint64_t id = 1; id <= NODES; id++)
            if (nodes[id]) CHECK(luigi_raft_tick(nodes[id]));
        deliver_all();
    }
}

static uint64_t wait_for_leader(void)
{
    for (int t = 0; t < 200; t++) {
        uint64_t l = leader_id();
        if (l) return l;
        tick_all(1);
    }
    fprintf(stderr, "no leader elected\n");
    exit(1);
}

int main(void)
{
    const uint64_t voters[NODES] = {1, 2, 3};
    REQUIRE(mkdtemp(data_root) != NULL);
    for (uint64_t id = 1; id <= NODES; id++) start_node(id, voters);
    uint64_t leader = wait_for_leader();
    printf("node %llu leads\n", (unsigned long long)leader);

    /* Followers refuse proposals with a clear status. */
    uint64_t follower = leader == 1 ? 2 : 1, index = 0;
    REQUIRE(luigi_raft_propose(nodes[follower], (const uint8_t *)"x", 1, &index) == LUIGI_ERR_STATE);

    for (int i = 0; i < 1000; i++) {
        char command[32];
        int len = snprintf(command, sizeof command, "set k%d=%d", i % 10, i);
        CHECK(luigi_raft_propose(nodes[leader], (const uint8_t *)command, (size_t)len, &index));
        if (i % 100 == 99) deliver_all();
    }
    deliver_all();
    tick_all(3);
    for (uint64_t id = 1; id <= NODES; id++) {
        printf("node %llu applied %llu commands (checksum %llu)\n", (unsigned long long)id,
               (unsigned long long)machines[id].count, (unsigned long long)machines[id].hash);
        REQUIRE(machines[id].count == 1000 && machines[id].hash == machines[leader].hash);
    }
    /* Group commit: 100 proposals between deliveries share one fdatasync. */
    printf("node %llu persisted %llu entries in %llu synced batches\n", (unsigned long long)leader,
           (unsigned long long)persisted_entries[leader], (unsigned long long)synced_batches[leader]);
    REQUIRE(persisted_entries[leader] >= 1000 && synced_batches[leader] * 10 < persisted_entries[leader]);

    /* A follower goes down; the others commit 200 more and compact their log
     * into a snapshot, so the follower can only catch up from the snapshot. */
    luigi_raft_free(nodes[follower]);
    nodes[follower] = NULL;
    for (int i = 0; i < 200; i++) {
        CHECK(luigi_raft_propose(nodes[leader], (const uint8_t *)"more", 4, &index));
        deliver_all();
    }
    uint64_t compacted = 0;
    CHECK(luigi_raft_snapshot_state_machine(nodes[leader], &compacted));
    start_node(follower, voters);
    tick_all(15);
    printf("node %llu restarted from its data directory and caught up through a snapshot at index %llu: "
           "%llu commands\n", (unsigned long long)follower, (unsigned long long)compacted,
           (unsigned long long)machines[follower].count);
    REQUIRE(machines[follower].count == 1200 && machines[follower].hash == machines[leader].hash);

    /* Garbage from the network is refused; the node stays up. */
    REQUIRE(luigi_raft_step(nodes[follower], (const uint8_t *)"garbage", 7) == LUIGI_ERR_DECODE);

    /* Crash the leader: the two others elect a new one and keep committing. */
    luigi_raft_free(nodes[leader]);
    nodes[leader] = NULL;
    uint64_t next = wait_for_leader();
    REQUIRE(next != leader);
    CHECK(luigi_raft_propose(nodes[next], (const uint8_t *)"after failover", 14, &index));
    deliver_all();
    tick_all(3);
    for (uint64_t id = 1; id <= NODES; id++)
        if (nodes[id]) REQUIRE(machines[id].count == 1201);
    printf("node %llu took over after node %llu crashed; both survivors applied 1201 commands\n",
           (unsigned long long)next, (unsigned long long)leader);

    for (uint64_t id = 1; id <= NODES; id++) luigi_raft_free(nodes[id]);
    char cleanup[128];
    snprintf(cleanup, sizeof cleanup, "rm -rf '%s'", data_root);
    if (system(cleanup) != 0) fprintf(stderr, "could not remove %s\n", data_root);
    printf("raft_transport: all checks passed\n");
    return 0;
}
