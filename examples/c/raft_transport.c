/*
 * raft_transport.c — three Raft nodes in one process, driven through
 * luigi.h with the program's own "transport": a queue of byte messages.
 *
 * Shows the bring-your-own-transport loop: tick, step received messages,
 * take the ready batch (already persisted by the library), send its
 * messages, apply its committed entries, advance. Then: propose 1,000
 * commands, check every node applied the same log, crash the leader, and
 * watch a new one take over.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static uint64_t applied_count[NODES + 1];
static uint64_t applied_sum[NODES + 1]; /* a checksum of what each node applied */

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

/* One pass of every node's ready loop. */
static void process(void)
{
    for (uint64_t id = 1; id <= NODES; id++) {
        if (!nodes[id]) continue;
        luigi_raft_ready *rd = NULL;
        CHECK(luigi_raft_take_ready(nodes[id], &rd));
        while (rd) {
            luigi_raft_counts n;
            CHECK(luigi_raft_ready_counts(rd, &n));
            for (size_t i = 0; i < n.messages; i++) {
                REQUIRE(queued < MAX_QUEUE);
                packet *p = &queue[queued++];
                memset(&p->bytes, 0, sizeof p->bytes);
                CHECK(luigi_raft_ready_message(rd, i, &p->to, &p->bytes));
            }
            for (size_t i = 0; i < n.committed_entries; i++) {
                uint64_t index, term;
                uint32_t kind;
                luigi_buffer data = {0};
                CHECK(luigi_raft_ready_entry(rd, i, &index, &term, &kind, &data));
                if (kind == LUIGI_ENTRY_NORMAL && data.len > 0) {
                    applied_count[id]++;
                    for (size_t b = 0; b < data.len; b++) applied_sum[id] = applied_sum[id] * 31 + data.data[b];
                }
                luigi_buffer_free(&data);
            }
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
    for (uint64_t id = 1; id <= NODES; id++) {
        luigi_raft_options o;
        luigi_raft_options_init(&o);
        o.seed = 42;
        CHECK(luigi_raft_new(id, voters, NODES, &o, &nodes[id]));
    }
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
               (unsigned long long)applied_count[id], (unsigned long long)applied_sum[id]);
        REQUIRE(applied_count[id] == 1000 && applied_sum[id] == applied_sum[leader]);
    }

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
        if (nodes[id]) REQUIRE(applied_count[id] == 1001);
    printf("node %llu took over after node %llu crashed; both survivors applied 1001 commands\n",
           (unsigned long long)next, (unsigned long long)leader);

    for (uint64_t id = 1; id <= NODES; id++) luigi_raft_free(nodes[id]);
    printf("raft_transport: all checks passed\n");
    return 0;
}
