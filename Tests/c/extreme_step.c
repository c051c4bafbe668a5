/*
 * extreme_step.c — steps every Raft message kind, with every extreme value
 * in its numbers, into nodes in every role, and checks the process survives.
 *
 * Each (role, kind) group runs in its own child process. A message is
 * well-formed and correctly checksummed, addressed to node 1 from node 2;
 * its term, index, log term and commit take every combination of
 * {0, 1, 2, 2^62, 2^62 + 1, 2^63, 2^64 - 1}, the reject hint cycles
 * through the same values; an append carries one entry
 * placed right after `index`, a snapshot message a snapshot at `index`.
 * After each step the node runs what follows a step in a real driver:
 * take_ready / advance until idle, ticks past an election timeout, a
 * campaign and a proposal. Any status is acceptable; a signal is not.
 *
 * A group that dies is re-run one message per child, to print the first
 * message that crashes. Last line: "extreme_step: N passed, M failed".
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "luigi.h"

static const uint64_t VALUES[] = {
    0, 1, 2, (uint64_t)1 << 62, ((uint64_t)1 << 62) + 1, (uint64_t)1 << 63, UINT64_MAX,
};
#define NV (sizeof VALUES / sizeof VALUES[0])
#define KINDS 10 /* raft message kinds 1...10 */
#define ROLES 5

static const char *ROLE_NAMES[ROLES] = {"new follower", "follower of 2", "pre-candidate", "candidate", "leader"};

/* ------------------------------------------------------ message encoding */

typedef struct writer {
    uint8_t bytes[512];
    size_t len;
} writer;

static void put_u8(writer *w, uint8_t b) { w->bytes[w->len++] = b; }

static void put_varint(writer *w, uint64_t v)
{
    while (v >= 0x80) {
        put_u8(w, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    put_u8(w, (uint8_t)v);
}

static uint32_t crc32c(const uint8_t *data, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int k = 0; k < 8; k++) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return crc ^ 0xFFFFFFFFu;
}

typedef struct fields {
    uint32_t kind;
    uint64_t term, index, log_term, commit, hint;
    int reject;
} fields;

/* "LRM" v2 | kind | group | to | from | term | log term | index | commit |
 * reject | hint | context | entries | snapshot flag [+ snapshot] | CRC-32C. */
static void encode(const fields *f, writer *w)
{
    w->len = 0;
    put_u8(w, 'L'), put_u8(w, 'R'), put_u8(w, 'M'), put_u8(w, 2);
    put_u8(w, (uint8_t)f->kind);
    put_varint(w, 0); /* group */
    put_varint(w, 1); /* to */
    put_varint(w, 2); /* from */
    put_varint(w, f->term);
    put_varint(w, f->log_term);
    put_varint(w, f->index);
    put_varint(w, f->commit);
    put_u8(w, (uint8_t)f->reject);
    put_varint(w, f->hint);
    put_varint(w, f->reject ? 1 : 0); /* context */
    if (f->reject) put_u8(w, 'c');
    if (f->kind == 1) { /* append: one entry after `index`, wrapping as it may */
        put_varint(w, 1);
        put_varint(w, f->term);
        put_varint(w, f->index + 1);
        put_u8(w, 0);
        put_varint(w, 1);
        put_u8(w, 'e');
    } else {
        put_varint(w, 0);
    }
    if (f->kind == 9) { /* snapshot at `index`, voters {1, 2, 3} or {2, 2} */
        put_u8(w, 1);
        put_varint(w, f->index);
        put_varint(w, f->log_term);
        if (f->reject) {
            put_varint(w, 2), put_varint(w, 2), put_varint(w, 2);
        } else {
            put_varint(w, 3), put_varint(w, 1), put_varint(w, 2), put_varint(w, 3);
        }
        put_varint(w, 0); /* learners */
        put_varint(w, 1);
        put_u8(w, 's');
    } else {
        put_u8(w, 0);
    }
    uint32_t c = crc32c(w->bytes, w->len);
    for (int i = 0; i < 4; i++) put_u8(w, (uint8_t)(c >> (8 * i)));
}

/* ------------------------------------------------------------- the node */

static void drain(luigi_raft *r)
{
    for (int i = 0; i < 64; i++) {
        luigi_raft_ready *rd = NULL;
        if (luigi_raft_take_ready(r, &rd) != LUIGI_OK || rd == NULL) return;
        luigi_raft_advance(r, rd);
        luigi_raft_ready_free(rd);
    }
}

static void step_fields(luigi_raft *r, fields f)
{
    writer w;
    encode(&f, &w);
    luigi_raft_step(r, w.bytes, w.len);
}

/* Node 1 of the group {1, 2, 3}, in `role`. */
static luigi_raft *make_node(int role)
{
    const uint64_t voters[3] = {1, 2, 3};
    luigi_raft_options o;
    luigi_raft_options_init(&o);
    o.pre_vote = role == 2;
    luigi_raft *r = NULL;
    if (luigi_raft_new(1, voters, 3, &o, &r) != LUIGI_OK) {
        fprintf(stderr, "luigi_raft_new: %s\n", luigi_last_error_message());
        exit(2);
    }
    switch (role) {
    case 1: /* a heartbeat from leader 2 in term 1 */
        step_fields(r, (fields){.kind = 7, .term = 1});
        break;
    case 2:
    case 3:
        luigi_raft_campaign(r);
        break;
    case 4: /* won the term-1 election with 2's vote */
        luigi_raft_campaign(r);
        drain(r);
        step_fields(r, (fields){.kind = 4, .term = 1});
        break;
    }
    drain(r);
    return r;
}

static void consequences(luigi_raft *r)
{
    drain(r);
    for (int i = 0; i < 25; i++) {
        luigi_raft_tick(r);
        drain(r);
    }
    luigi_raft_campaign(r);
    drain(r);
    uint64_t index;
    luigi_raft_propose(r, (const uint8_t *)"p", 1, &index);
    luigi_raft_read_index(r, (const uint8_t *)"r", 1);
    drain(r);
    luigi_raft_status st = {.version = LUIGI_RAFT_STATUS_VERSION};
    luigi_raft_get_status(r, &st);
}

/* The n-th message of a group: every combination of term, index, log term
 * and commit; the reject hint cycles through the values alongside. */
#define PER_GROUP (NV * NV * NV * NV)

static fields nth(uint32_t kind, size_t n)
{
    fields f = {.kind = kind};
    f.hint = VALUES[(n * 3 + kind) % NV];
    f.term = VALUES[n % NV], n /= NV;
    f.index = VALUES[n % NV], n /= NV;
    f.log_term = VALUES[n % NV], n /= NV;
    f.commit = VALUES[n % NV];
    f.reject = (int)((f.term ^ f.index ^ f.commit) & 1);
    return f;
}

static void run_one(int role, uint32_t kind, size_t n)
{
    luigi_raft *r = make_node(role);
    step_fields(r, nth(kind, n));
    consequences(r);
    luigi_raft_free(r);
}

/* Runs `first..<end` of a group in a child; returns its wait status. */
static int in_child(int role, uint32_t kind, size_t first, size_t end)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        for (size_t n = first; n < end; n++) run_one(role, kind, n);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

/* This encoder must agree with the library's: the golden heartbeat of
 * Tests/golden/raft_message_v2.hex (group 0, 2 -> 1, term 3, commit 5). */
static int golden_heartbeat_matches(void)
{
    char path[4096];
    const char *self = __FILE__, *slash = strrchr(self, '/');
    snprintf(path, sizeof path, "%.*s/../golden/raft_message_v2.hex", slash ? (int)(slash - self) : 1,
             slash ? self : ".");
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("FAIL - cannot open %s\n", path);
        return 0;
    }
    char name[64], hex[1024];
    int found = 0, same = 0;
    while (fscanf(f, "%63s %1023s", name, hex) == 2) {
        if (strcmp(name, "heartbeat") != 0) continue;
        found = 1;
        writer w;
        encode(&(fields){.kind = 7, .term = 3, .commit = 5}, &w);
        char mine[1024 + 1] = {0};
        for (size_t i = 0; i < w.len && 2 * i + 2 < sizeof mine; i++) snprintf(mine + 2 * i, 3, "%02x", w.bytes[i]);
        same = strcmp(mine, hex) == 0;
        if (!same) printf("FAIL - golden heartbeat: library %s, this encoder %s\n", hex, mine);
    }
    fclose(f);
    if (!found) printf("FAIL - no golden heartbeat in %s\n", path);
    return found && same;
}

int main(void)
{
    int passed = 0, failed = 0;
    if (golden_heartbeat_matches()) {
        passed++;
    } else {
        failed++;
    }
    size_t stepped = 0;
    for (int role = 0; role < ROLES; role++) {
        for (uint32_t kind = 1; kind <= KINDS; kind++) {
            int status = in_child(role, kind, 0, PER_GROUP);
            stepped += PER_GROUP;
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                passed++;
                continue;
            }
            failed++;
            printf("FAIL - %s, message kind %u: the child died (status %d)\n", ROLE_NAMES[role], kind, status);
            for (size_t n = 0; n < PER_GROUP; n++) {
                if (in_child(role, kind, n, n + 1) != 0) {
                    fields f = nth(kind, n);
                    printf("       first crash: term %" PRIu64 ", index %" PRIu64 ", log term %" PRIu64
                           ", commit %" PRIu64 ", hint %" PRIu64 ", reject %d\n",
                           f.term, f.index, f.log_term, f.commit, f.hint, f.reject);
                    break;
                }
            }
        }
    }
    printf("stepped %zu messages into %d roles x %d kinds\n", stepped, ROLES, KINDS);
    printf("extreme_step: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
