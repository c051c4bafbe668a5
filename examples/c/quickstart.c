/*
 * quickstart.c — a tour of libluigi's C ABI (Include/luigi.h).
 *
 *   1. vector clocks: tick, compare, merge, entries, encode/decode
 *   2. two replicas: transactions with add / max / min / union, shipping an
 *      update as bytes (encode -> decode -> apply), reading values (including
 *      a counter whose total needs 128 bits) and set elements, delta sync
 *   3. overwrite (set) through a one-node Raft log with the replica attached
 *   4. a simulated 5-node cluster: partition, faults, heal,
 *      run_until_converged, stats
 *
 * Every call's status is checked: an unexpected failure prints the call, the
 * status name and luigi_last_error_message(), and exits with status 1.
 *
 * Build:  cc -std=c11 -Wall -Wextra -Werror -IInclude examples/c/quickstart.c \
 *            -L.build/release -lluigi -Wl,-rpath,$PWD/.build/release
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luigi.h"

/* ------------------------------------------------------------- helpers */

static void die(const char *what, luigi_status status, int line)
{
    const char *message = luigi_last_error_message();
    fprintf(stderr, "quickstart.c:%d: %s failed: %s (%d): %s\n", line, what,
            luigi_status_name(status), (int)status, message ? message : "(null)");
    exit(1);
}

/* Runs a call that must succeed. */
#define CHECK(call)                                                  \
    do {                                                             \
        luigi_status check_status_ = (call);                         \
        if (check_status_ != LUIGI_OK) die(#call, check_status_, __LINE__); \
    } while (0)

/* Runs a call that must fail with exactly `expected`. */
#define EXPECT_STATUS(call, expected)                                          \
    do {                                                                       \
        luigi_status check_status_ = (call);                                   \
        if (check_status_ != (expected)) {                                     \
            fprintf(stderr, "quickstart.c:%d: %s returned %s, expected %s\n",  \
                    __LINE__, #call, luigi_status_name(check_status_),         \
                    luigi_status_name(expected));                              \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "quickstart.c:%d: requirement failed: %s\n",       \
                    __LINE__, #cond);                                          \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

/* Keys and elements are pointer + length; these wrap C string literals. */
#define KEY(s) (s), strlen(s)

static const char *order_name(luigi_causal_order order)
{
    switch (order) {
    case LUIGI_ORDER_EQUAL: return "EQUAL";
    case LUIGI_ORDER_BEFORE: return "BEFORE";
    case LUIGI_ORDER_AFTER: return "AFTER";
    case LUIGI_ORDER_CONCURRENT: return "CONCURRENT";
    }
    return "?";
}

/* Formats a 128-bit two's-complement integer (hi:lo) in decimal. */
static void format_i128(int64_t hi, uint64_t lo, char out[48])
{
    uint64_t uhi = (uint64_t)hi;
    int negative = hi < 0;
    if (negative) { /* negate: invert and add one */
        uhi = ~uhi;
        lo = ~lo;
        lo += 1;
        if (lo == 0) uhi += 1;
    }
    /* Long division by 10 over four 32-bit limbs, most significant first. */
    uint32_t limb[4] = {(uint32_t)(uhi >> 32), (uint32_t)uhi, (uint32_t)(lo >> 32), (uint32_t)lo};
    char digits[48];
    size_t n = 0;
    for (;;) {
        uint64_t rem = 0;
        int nonzero = 0;
        for (int i = 0; i < 4; i++) {
            uint64_t cur = (rem << 32) | limb[i];
            limb[i] = (uint32_t)(cur / 10);
            rem = cur % 10;
            if (limb[i]) nonzero = 1;
        }
        digits[n++] = (char)('0' + rem);
        if (!nonzero) break;
    }
    size_t k = 0;
    if (negative) out[k++] = '-';
    while (n > 0) out[k++] = digits[--n];
    out[k] = '\0';
}

static uint32_t read_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int64_t read_i64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return (int64_t)v;
}

static void print_clock(const char *label, const luigi_clock *clock)
{
    size_t count = 0;
    /* Ask for the size first: capacity 0 reports how many entries exist. */
    luigi_status status = luigi_clock_entries(clock, NULL, NULL, 0, &count);
    if (status != LUIGI_OK && status != LUIGI_ERR_BUFFER_TOO_SMALL)
        die("luigi_clock_entries(size query)", status, __LINE__);
    uint64_t *nodes = calloc(count ? count : 1, sizeof *nodes);
    uint64_t *counters = calloc(count ? count : 1, sizeof *counters);
    REQUIRE(nodes && counters);
    size_t got = 0;
    CHECK(luigi_clock_entries(clock, nodes, counters, count, &got));
    REQUIRE(got == count);
    printf("  %s = {", label);
    for (size_t i = 0; i < got; i++)
        printf("%s%" PRIu64 ": %" PRIu64, i ? ", " : "", nodes[i], counters[i]);
    printf("}\n");
    free(nodes);
    free(counters);
}

/* Prints one key's value as the replica sees it. */
static void print_value(const luigi_replica *replica, const char *key)
{
    luigi_value v;
    memset(&v, 0, sizeof v);
    CHECK(luigi_replica_value(replica, KEY(key), &v));
    printf("    %-8s ", key);
    switch (v.kind) {
    case LUIGI_KIND_NONE:
        printf("(absent)\n");
        break;
    case LUIGI_KIND_COUNTER: {
        char text[48];
        format_i128(v.counter_hi, v.counter_lo, text);
        printf("counter %s\n", text);
        break;
    }
    case LUIGI_KIND_MAX:
    case LUIGI_KIND_MIN:
    case LUIGI_KIND_REGISTER: {
        const char *name = v.kind == LUIGI_KIND_MAX ? "max" : v.kind == LUIGI_KIND_MIN ? "min" : "register";
        if (v.number_type == LUIGI_NUMBER_INT)
            printf("%s %" PRId64 "\n", name, v.int_value);
        else
            printf("%s %g\n", name, v.float_value);
        break;
    }
    case LUIGI_KIND_SET: {
        luigi_buffer buf = {0};
        CHECK(luigi_replica_set_elements(replica, KEY(key), &buf));
        printf("set (%" PRIu64 ") {", v.set_size);
        size_t pos = 0, count = 0;
        while (pos < buf.len) {
            uint8_t tag = buf.data[pos++];
            if (count++) printf(", ");
            if (tag == LUIGI_ELEMENT_INT) {
                REQUIRE(pos + 8 <= buf.len);
                printf("%" PRId64, read_i64le(buf.data + pos));
                pos += 8;
            } else if (tag == LUIGI_ELEMENT_STR || tag == LUIGI_ELEMENT_BYTES) {
                REQUIRE(pos + 4 <= buf.len);
                uint32_t len = read_u32le(buf.data + pos);
                pos += 4;
                REQUIRE(pos + len <= buf.len);
                if (tag == LUIGI_ELEMENT_STR) {
                    printf("\"%.*s\"", (int)len, (const char *)buf.data + pos);
                } else {
                    printf("b'");
                    for (uint32_t i = 0; i < len; i++) printf("\\x%02x", buf.data[pos + i]);
                    printf("'");
                }
                pos += len;
            } else {
                fprintf(stderr, "unknown set element tag %u\n", tag);
                exit(1);
            }
        }
        printf("}\n");
        REQUIRE(count == v.set_size);
        luigi_buffer_free(&buf);
        REQUIRE(buf.data == NULL && buf.len == 0);
        break;
    }
    default:
        printf("unknown kind %u\n", v.kind);
        exit(1);
    }
}

static void print_replica(const char *label, const luigi_replica *replica)
{
    uint64_t node = 0;
    size_t key_count = 0, pending = 0;
    CHECK(luigi_replica_node_id(replica, &node));
    CHECK(luigi_replica_key_count(replica, &key_count));
    CHECK(luigi_replica_pending(replica, &pending));
    printf("  %s (node %" PRIu64 ", %zu keys, %zu pending):\n", label, node, key_count, pending);
    luigi_buffer keys = {0};
    CHECK(luigi_replica_keys(replica, &keys));
    size_t pos = 0, seen = 0;
    while (pos < keys.len) {
        REQUIRE(pos + 4 <= keys.len);
        uint32_t len = read_u32le(keys.data + pos);
        pos += 4;
        REQUIRE(pos + len <= keys.len && len < 64);
        char key[64];
        memcpy(key, keys.data + pos, len);
        key[len] = '\0';
        pos += len;
        print_value(replica, key);
        seen++;
    }
    REQUIRE(seen == key_count);
    luigi_buffer_free(&keys);
}

static int64_t counter_value(const luigi_replica *replica, const char *key)
{
    luigi_value v;
    CHECK(luigi_replica_value(replica, KEY(key), &v));
    REQUIRE(v.kind == LUIGI_KIND_COUNTER);
    REQUIRE((v.counter_hi == 0 && v.counter_lo <= INT64_MAX) ||
            (v.counter_hi == -1 && v.counter_lo > (uint64_t)INT64_MAX));
    return (int64_t)v.counter_lo;
}

/* Ships `update` from one replica to another the way a network would: as bytes. */
static void ship(const luigi_update *update, luigi_replica *to, int expect_new)
{
    luigi_buffer wire = {0};
    CHECK(luigi_update_encode(update, &wire));
    luigi_update *received = NULL;
    CHECK(luigi_update_decode(wire.data, wire.len, &received));
    uint64_t origin = 0, seq = 0;
    CHECK(luigi_update_origin(received, &origin));
    CHECK(luigi_update_seq(received, &seq));
    int is_new = -1;
    CHECK(luigi_replica_apply(to, received, &is_new));
    printf("  shipped update (origin %" PRIu64 ", seq %" PRIu64 ", %zu bytes): %s\n", origin,
           seq, wire.len, is_new ? "applied" : "duplicate, ignored");
    REQUIRE(is_new == expect_new);
    luigi_update_free(received);
    luigi_buffer_free(&wire);
}

/* ------------------------------------------------------------ sections */

static void tour_version(void)
{
    printf("== version\n");
    printf("  library %s (number %" PRIu32 ", ABI %" PRIu32 "); header %d.%d.%d (ABI %d)\n",
           luigi_version_string(), luigi_version_number(), luigi_abi_version(),
           LUIGI_VERSION_MAJOR, LUIGI_VERSION_MINOR, LUIGI_VERSION_PATCH, LUIGI_ABI_VERSION);
    REQUIRE(luigi_abi_version() == LUIGI_ABI_VERSION);
    REQUIRE(luigi_version_number() / 10000 == LUIGI_VERSION_MAJOR);
}

static void tour_clocks(void)
{
    printf("== vector clocks\n");
    luigi_clock *a = NULL, *b = NULL;
    CHECK(luigi_clock_new(&a));
    CHECK(luigi_clock_new(&b));

    uint64_t counter = 0;
    CHECK(luigi_clock_tick(a, 1, &counter));
    CHECK(luigi_clock_tick(a, 1, &counter));
    REQUIRE(counter == 2);
    CHECK(luigi_clock_tick(b, 2, &counter));
    print_clock("a", a);
    print_clock("b", b);

    luigi_causal_order order;
    CHECK(luigi_clock_compare(a, b, &order));
    printf("  compare(a, b) = %s\n", order_name(order));
    REQUIRE(order == LUIGI_ORDER_CONCURRENT);

    /* c = a merged with b: it has seen both, so it comes after each. */
    luigi_clock *c = NULL;
    CHECK(luigi_clock_copy(a, &c));
    CHECK(luigi_clock_merge(c, b));
    CHECK(luigi_clock_tick(c, 3, &counter));
    print_clock("c = merge(a, b) + tick(3)", c);
    CHECK(luigi_clock_compare(a, c, &order));
    printf("  compare(a, c) = %s\n", order_name(order));
    REQUIRE(order == LUIGI_ORDER_BEFORE);
    CHECK(luigi_clock_compare(c, b, &order));
    printf("  compare(c, b) = %s\n", order_name(order));
    REQUIRE(order == LUIGI_ORDER_AFTER);

    size_t len = 0;
    CHECK(luigi_clock_len(c, &len));
    REQUIRE(len == 3);
    CHECK(luigi_clock_get(c, 1, &counter));
    REQUIRE(counter == 2);
    CHECK(luigi_clock_get(c, 99, &counter));
    REQUIRE(counter == 0); /* absent means 0 */

    /* Setting a counter to 0 removes the entry. */
    CHECK(luigi_clock_set(c, 3, 0));
    CHECK(luigi_clock_len(c, &len));
    REQUIRE(len == 2);

    /* Binary round trip. */
    luigi_buffer bytes = {0};
    CHECK(luigi_clock_encode(c, &bytes));
    luigi_clock *decoded = NULL;
    CHECK(luigi_clock_decode(bytes.data, bytes.len, &decoded));
    CHECK(luigi_clock_compare(c, decoded, &order));
    printf("  encoded c in %zu bytes; decoded copy compares %s\n", bytes.len, order_name(order));
    REQUIRE(order == LUIGI_ORDER_EQUAL);
    luigi_buffer_free(&bytes);

    luigi_clock_free(decoded);
    luigi_clock_free(c);
    luigi_clock_free(b);
    luigi_clock_free(a);
}

static void tour_replicas(void)
{
    printf("== two replicas\n");
    luigi_replica *alice = NULL, *bob = NULL;
    CHECK(luigi_replica_new(1, &alice));
    CHECK(luigi_replica_new(2, &bob));

    /* Alice: one transaction with several algebraic ops. */
    luigi_txn *txn = NULL;
    CHECK(luigi_replica_begin(alice, &txn));
    CHECK(luigi_txn_add(txn, KEY("visits"), 5));
    CHECK(luigi_txn_max_int(txn, KEY("highest"), 42));
    CHECK(luigi_txn_min_float(txn, KEY("lowest"), 1.5));
    CHECK(luigi_txn_union_str(txn, KEY("tags"), KEY("red")));
    CHECK(luigi_txn_union_str(txn, KEY("tags"), KEY("blue")));
    CHECK(luigi_txn_union_int(txn, KEY("tags"), 7));
    CHECK(luigi_txn_union_bytes(txn, KEY("tags"), (const uint8_t *)"\x00\xff", 2));
    CHECK(luigi_txn_add(txn, KEY("big"), INT64_MAX));
    size_t ops = 0;
    CHECK(luigi_txn_op_count(txn, &ops));
    REQUIRE(ops == 8);

    luigi_update *from_alice = NULL;
    CHECK(luigi_txn_commit(txn, &from_alice));
    luigi_txn_free(txn);
    size_t update_ops = 0;
    uint64_t seq = 0;
    CHECK(luigi_update_op_count(from_alice, &update_ops));
    CHECK(luigi_update_seq(from_alice, &seq));
    printf("  alice committed %zu ops as update seq %" PRIu64 "\n", update_ops, seq);
    REQUIRE(update_ops >= 1 && seq == 1);

    /* Bob, concurrently: his own ops on the same keys. */
    CHECK(luigi_replica_begin(bob, &txn));
    CHECK(luigi_txn_add(txn, KEY("visits"), -2));
    CHECK(luigi_txn_max_int(txn, KEY("highest"), 17));
    CHECK(luigi_txn_min_float(txn, KEY("lowest"), -INFINITY));
    CHECK(luigi_txn_union_str(txn, KEY("tags"), KEY("green")));
    CHECK(luigi_txn_add(txn, KEY("big"), INT64_MAX));
    luigi_update *from_bob = NULL;
    CHECK(luigi_txn_commit(txn, &from_bob));
    luigi_txn_free(txn);

    /* Exchange the updates as bytes; a second delivery is a no-op. */
    ship(from_alice, bob, 1);
    ship(from_alice, bob, 0);
    ship(from_bob, alice, 1);

    print_replica("alice", alice);
    print_replica("bob", bob);
    REQUIRE(counter_value(alice, "visits") == 3);
    REQUIRE(counter_value(bob, "visits") == 3);

    /* 2 * (2^63 - 1) = 2^64 - 2: more than int64 holds, so hi:lo carries it. */
    luigi_value big;
    CHECK(luigi_replica_value(bob, KEY("big"), &big));
    REQUIRE(big.kind == LUIGI_KIND_COUNTER && big.counter_hi == 0 &&
            big.counter_lo == UINT64_MAX - 1);
    luigi_value lowest;
    CHECK(luigi_replica_value(alice, KEY("lowest"), &lowest));
    REQUIRE(lowest.kind == LUIGI_KIND_MIN && lowest.number_type == LUIGI_NUMBER_FLOAT &&
            isinf(lowest.float_value) && lowest.float_value < 0);

    /* A rejected transaction changes nothing: alice's own contribution to
     * "big" is already INT64_MAX, so adding 1 more overflows 64 bits. */
    luigi_clock *before = NULL;
    CHECK(luigi_replica_clock(alice, &before));
    CHECK(luigi_replica_begin(alice, &txn));
    CHECK(luigi_txn_add(txn, KEY("visits"), 100));
    luigi_status st = luigi_txn_add(txn, KEY("big"), 1);
    if (st == LUIGI_OK) st = luigi_txn_commit(txn, &(luigi_update *){NULL});
    EXPECT_STATUS(st, LUIGI_ERR_OVERFLOW);
    printf("  overflowing txn rejected: %s\n", luigi_last_error_message());
    luigi_txn_free(txn);
    REQUIRE(counter_value(alice, "visits") == 3);
    luigi_clock *after = NULL;
    CHECK(luigi_replica_clock(alice, &after));
    luigi_causal_order order;
    CHECK(luigi_clock_compare(before, after, &order));
    REQUIRE(order == LUIGI_ORDER_EQUAL);
    luigi_clock_free(before);
    luigi_clock_free(after);

    /* A third replica catches up with one delta: only what its clock lacks. */
    luigi_replica *carol = NULL;
    CHECK(luigi_replica_new(3, &carol));
    luigi_clock *carol_clock = NULL;
    CHECK(luigi_replica_clock(carol, &carol_clock));
    luigi_update_list *delta = NULL;
    CHECK(luigi_replica_delta_since(alice, carol_clock, &delta));
    size_t delta_len = 0, applied = 0;
    CHECK(luigi_update_list_len(delta, &delta_len));
    CHECK(luigi_replica_apply_list(carol, delta, &applied));
    printf("  carol caught up from alice's delta: %zu updates, %zu new\n", delta_len, applied);
    REQUIRE(delta_len == 2 && applied == 2);
    REQUIRE(counter_value(carol, "visits") == 3);
    luigi_update_list_free(delta);
    luigi_clock_free(carol_clock);

    /* Nothing is missing now, so the next delta is empty. */
    CHECK(luigi_replica_clock(carol, &carol_clock));
    CHECK(luigi_replica_delta_since(alice, carol_clock, &delta));
    CHECK(luigi_update_list_len(delta, &delta_len));
    REQUIRE(delta_len == 0);
    luigi_update_list_free(delta);
    luigi_clock_free(carol_clock);

    luigi_clock *vv = NULL;
    CHECK(luigi_replica_clock(carol, &vv));
    print_clock("carol's version vector", vv);
    luigi_clock_free(vv);

    luigi_update_free(from_alice);
    luigi_update_free(from_bob);
    luigi_replica_free(carol);
    luigi_replica_free(bob);
    luigi_replica_free(alice);
}

/* Bring-your-own transport: one replica asks with its clock, the other answers
 * with exactly the missing updates as one checksummed buffer. Returns how
 * many updates were new to the asker. */
static size_t delta_sync(luigi_replica *asker, const luigi_replica *answerer)
{
    luigi_clock *clock = NULL;
    luigi_buffer delta = {0};
    size_t fresh = 0;
    CHECK(luigi_replica_clock(asker, &clock));
    CHECK(luigi_replica_delta_encode(answerer, clock, &delta));
    CHECK(luigi_replica_apply_encoded(asker, delta.data, delta.len, &fresh));
    printf("  delta of %zu updates in %zu bytes\n", fresh, delta.len);
    luigi_buffer_free(&delta);
    luigi_clock_free(clock);
    return fresh;
}

static void tour_delta_sync(void)
{
    printf("\n== delta sync over your own transport\n");
    luigi_replica *a = NULL, *b = NULL;
    CHECK(luigi_replica_new(10, &a));
    CHECK(luigi_replica_new(11, &b));
    for (int i = 0; i < 100; i++) {
        luigi_txn *txn = NULL;
        luigi_update *u = NULL;
        CHECK(luigi_replica_begin(i % 2 ? a : b, &txn));
        CHECK(luigi_txn_add(txn, KEY("events"), 1));
        CHECK(luigi_txn_commit(txn, &u));
        luigi_update_free(u);
        luigi_txn_free(txn);
    }
    REQUIRE(delta_sync(b, a) == 50);
    REQUIRE(delta_sync(a, b) == 50);
    REQUIRE(counter_value(a, "events") == 100 && counter_value(b, "events") == 100);
    printf("  both replicas count 100 events\n");
    luigi_replica_free(a);
    luigi_replica_free(b);
}

/* Overwrite is not algebraic: a txn that sets a REGISTER commits through a
 * Raft log (here a one-node group), and every replica applies it at its log
 * position. The log's updates then travel by delta sync like any other. */
static void drain(luigi_raft *raft)
{
    luigi_raft_ready *rd = NULL;
    for (;;) {
        CHECK(luigi_raft_take_ready(raft, &rd));
        if (rd == NULL) return;
        CHECK(luigi_raft_advance(raft, rd)); /* one node: nothing to send */
        luigi_raft_ready_free(rd);
    }
}

static void tour_coordinated(void)
{
    printf("\n== overwrite through the replicated log\n");
    const uint64_t LOG_ORIGIN = 1000, voters[1] = {1};
    luigi_raft_options options;
    luigi_raft_options_init(&options);
    luigi_raft *raft = NULL;
    luigi_replica *dana = NULL, *erin = NULL;
    CHECK(luigi_raft_new(1, voters, 1, &options, &raft));
    CHECK(luigi_replica_new(20, &dana));
    CHECK(luigi_replica_new(21, &erin));
    CHECK(luigi_raft_attach_replica(raft, dana, LOG_ORIGIN));
    CHECK(luigi_raft_campaign(raft));
    drain(raft);

    luigi_txn *txn = NULL;
    luigi_update *never = NULL;
    CHECK(luigi_replica_begin(dana, &txn));
    CHECK(luigi_txn_set_int(txn, KEY("owner"), 7));
    CHECK(luigi_txn_add(txn, KEY("visits"), 1));
    EXPECT_STATUS(luigi_txn_commit(txn, &never), LUIGI_ERR_NOT_ALGEBRAIC);
    printf("  local commit refused: %s\n", luigi_last_error_message());
    uint64_t index = 0;
    uint32_t outcome = LUIGI_TXN_UNKNOWN;
    CHECK(luigi_raft_propose_txn(raft, txn, &index));
    luigi_txn_free(txn);
    CHECK(luigi_raft_txn_outcome(raft, index, &outcome, NULL, NULL));
    REQUIRE(outcome == LUIGI_TXN_PENDING);
    drain(raft);
    CHECK(luigi_raft_txn_outcome(raft, index, &outcome, NULL, NULL));
    REQUIRE(outcome == LUIGI_TXN_COMMITTED);
    printf("  proposed at log index %" PRIu64 ": committed\n", index);

    /* A second overwrite wins: it is later in the log. */
    CHECK(luigi_replica_begin(dana, &txn));
    CHECK(luigi_txn_set_float(txn, KEY("owner"), 8.5));
    CHECK(luigi_raft_propose_txn(raft, txn, &index));
    luigi_txn_free(txn);
    drain(raft);
    luigi_value v;
    CHECK(luigi_replica_value(dana, KEY("owner"), &v));
    REQUIRE(v.kind == LUIGI_KIND_REGISTER && v.number_type == LUIGI_NUMBER_FLOAT && v.float_value == 8.5);
    print_replica("dana (attached to the log)", dana);

    REQUIRE(delta_sync(erin, dana) == 2);
    print_replica("erin (by delta sync)", erin);
    CHECK(luigi_replica_value(erin, KEY("owner"), &v));
    REQUIRE(v.kind == LUIGI_KIND_REGISTER && v.float_value == 8.5);

    luigi_raft_free(raft);
    luigi_replica_free(erin);
    luigi_replica_free(dana);
}

static void print_stats(const luigi_cluster *cluster)
{
    luigi_cluster_stats stats;
    memset(&stats, 0, sizeof stats);
    stats.version = LUIGI_CLUSTER_STATS_VERSION;
    CHECK(luigi_cluster_get_stats(cluster, &stats));
    printf("  stats: rounds %" PRIu64 ", messages %" PRIu64 ", bytes %" PRIu64
           ", dropped %" PRIu64 ", duplicated %" PRIu64 ", updates shipped %" PRIu64
           ", type conflicts %" PRIu64 "\n",
           stats.rounds, stats.messages, stats.bytes, stats.dropped, stats.duplicated,
           stats.updates_shipped, stats.type_conflicts);
}

static void tour_cluster(void)
{
    enum { NODES = 5 };
    printf("== simulated cluster of %d nodes\n", NODES);
    luigi_cluster_options options;
    luigi_cluster_options_init(&options);
    REQUIRE(options.version == LUIGI_CLUSTER_OPTIONS_VERSION);
    options.nodes = NODES;
    options.seed = 2024;
    options.fanout = 2;
    luigi_cluster *cluster = NULL;
    CHECK(luigi_cluster_new(&options, &cluster));
    size_t size = 0;
    CHECK(luigi_cluster_size(cluster, &size));
    REQUIRE(size == NODES);

    /* Split {0, 1, 2} from {3, 4}, then let every node write. */
    const uint32_t groups[NODES] = {0, 0, 0, 1, 1};
    CHECK(luigi_cluster_partition(cluster, groups, NODES));
    for (size_t i = 0; i < NODES; i++) {
        luigi_replica *replica = NULL;
        CHECK(luigi_cluster_replica(cluster, i, &replica));
        luigi_txn *txn = NULL;
        luigi_update *update = NULL;
        char who[16];
        snprintf(who, sizeof who, "node-%zu", i);
        CHECK(luigi_replica_begin(replica, &txn));
        CHECK(luigi_txn_add(txn, KEY("hits"), (int64_t)(i + 1)));
        CHECK(luigi_txn_max_int(txn, KEY("top"), (int64_t)(i * 10)));
        CHECK(luigi_txn_union_str(txn, KEY("who"), KEY(who)));
        CHECK(luigi_txn_commit(txn, &update));
        luigi_txn_free(txn);
        luigi_update_free(update);
        luigi_replica_free(replica);
    }
    CHECK(luigi_cluster_run(cluster, 20));
    int converged = -1;
    CHECK(luigi_cluster_converged(cluster, &converged));
    printf("  partitioned {0,1,2} | {3,4}, 20 rounds: converged = %d\n", converged);
    REQUIRE(converged == 0);
    luigi_replica *n0 = NULL, *n4 = NULL;
    CHECK(luigi_cluster_replica(cluster, 0, &n0));
    CHECK(luigi_cluster_replica(cluster, 4, &n4));
    printf("  hits on node 0 = %" PRId64 ", on node 4 = %" PRId64 "\n",
           counter_value(n0, "hits"), counter_value(n4, "hits"));
    REQUIRE(counter_value(n0, "hits") == 1 + 2 + 3);
    REQUIRE(counter_value(n4, "hits") == 4 + 5);
    print_stats(cluster);

    /* A lossy, duplicating, reordering network, then heal the partition. */
    CHECK(luigi_cluster_set_faults(cluster, 0.2, 0.1, 0.1, 2));
    CHECK(luigi_cluster_heal(cluster));
    uint64_t rounds = 0;
    CHECK(luigi_cluster_run_until_converged(cluster, 1000, &rounds));
    CHECK(luigi_cluster_converged(cluster, &converged));
    printf("  healed, with 20%% drop / 10%% duplicate / 10%% reorder / delay <= 2:"
           " converged after %" PRIu64 " more rounds\n", rounds);
    REQUIRE(converged == 1);
    print_stats(cluster);
    for (size_t i = 0; i < NODES; i++) {
        luigi_replica *replica = NULL;
        CHECK(luigi_cluster_replica(cluster, i, &replica));
        REQUIRE(counter_value(replica, "hits") == 15);
        luigi_replica_free(replica);
    }
    print_replica("node 4", n4);
    luigi_replica_free(n0);

    /* Replica handles outlive the cluster. */
    luigi_cluster_free(cluster);
    REQUIRE(counter_value(n4, "hits") == 15);
    luigi_replica_free(n4);
}

int main(void)
{
    tour_version();
    tour_clocks();
    tour_replicas();
    tour_delta_sync();
    tour_coordinated();
    tour_cluster();
    printf("quickstart: all checks passed\n");
    return 0;
}
