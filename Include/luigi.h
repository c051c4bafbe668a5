/*
 * luigi.h — the stable C ABI of libluigi.so.
 *
 * This header is the source of truth: the Swift implementation in
 * Sources/LuigiC uses `@c @implementation`, so any mismatch between a
 * declaration here and its implementation is a compile error.
 *
 * Conventions
 *  - Every fallible call returns a luigi_status (0 = LUIGI_OK) and writes its
 *    outputs only on success. luigi_last_error_message() explains a failure.
 *  - Handles are opaque. They are created by _new/_decode/_copy/... and
 *    released by _free; passing NULL to _free is a no-op. A NULL handle or
 *    output pointer yields LUIGI_ERR_INVALID_ARGUMENT; a handle that was
 *    freed, never issued, or is of the wrong type yields
 *    LUIGI_ERR_INVALID_HANDLE (and _free ignores it): never a crash.
 *  - Bytes handed out by the library live in a luigi_buffer that the caller
 *    releases with luigi_buffer_free(). Never free() them yourself.
 *  - Strings (keys, set elements) are passed as pointer + length and must be
 *    valid UTF-8; they need not be NUL-terminated.
 *  - Every length a caller passes (bytes, strings) is at most
 *    LUIGI_MAX_LENGTH; a larger one (a negative value cast to size_t, say)
 *    returns LUIGI_ERR_INVALID_ARGUMENT before a byte is read. A length
 *    smaller than the limit must still be one the caller owns.
 *  - Borrowed pointers (inputs) are only read during the call.
 *  - Thread-safety: the library is thread-safe at the handle level. Distinct
 *    handles may be used from different threads at once. One handle — and a
 *    replica together with the cluster that owns it — must not be used by two
 *    threads at the same time: serialize such access yourself.
 */
#ifndef LUIGI_H
#define LUIGI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- version */

#define LUIGI_VERSION_MAJOR 0
#define LUIGI_VERSION_MINOR 1
#define LUIGI_VERSION_PATCH 0
/* major * 10000 + minor * 100 + patch */
#define LUIGI_VERSION_NUMBER \
    (LUIGI_VERSION_MAJOR * 10000 + LUIGI_VERSION_MINOR * 100 + LUIGI_VERSION_PATCH)
/* Bumped only when an existing symbol's meaning changes (never its signature:
 * a changed signature gets a new `_v2` symbol instead). */
#define LUIGI_ABI_VERSION 1

/* The version of the library actually loaded, as LUIGI_VERSION_NUMBER. */
uint32_t luigi_version_number(void);
/* The ABI version of the library actually loaded. */
uint32_t luigi_abi_version(void);
/* "MAJOR.MINOR.PATCH"; a static string, never freed. */
const char *luigi_version_string(void);

/* ------------------------------------------------------------ status codes */

typedef int32_t luigi_status;

#define LUIGI_OK                     0
#define LUIGI_ERR_INVALID_ARGUMENT   1  /* NULL pointer, bad UTF-8, NaN, bad option */
#define LUIGI_ERR_INVALID_HANDLE     2  /* freed, unknown or wrong-type handle */
#define LUIGI_ERR_DECODE             3  /* malformed, truncated or corrupted bytes */
#define LUIGI_ERR_NOT_ALGEBRAIC      4  /* op needs coordination (e.g. overwrite) */
#define LUIGI_ERR_TYPE_CONFLICT      5  /* op type differs from the key's type */
#define LUIGI_ERR_OVERFLOW           6  /* 64-bit contribution or counter overflow */
#define LUIGI_ERR_STATE              7  /* object used in the wrong state */
#define LUIGI_ERR_BUFFER_TOO_SMALL   8  /* caller's array too short; size reported */
#define LUIGI_ERR_NOT_CONVERGED      9  /* simulation did not converge in time */
#define LUIGI_ERR_OUT_OF_RANGE      10  /* index outside [0, count) */
#define LUIGI_ERR_IO                11  /* disk failure (ENOSPC, EIO) or corrupt files */
#define LUIGI_ERR_TIMEOUT           12  /* gave up waiting; the outcome is unknown */
#define LUIGI_ERR_CONFLICT          13  /* lost to another write (stale base version, reused id) */
#define LUIGI_ERR_AUTH              14  /* a node refused the cluster secret or id (or failed to prove it) */
#define LUIGI_ERR_INTERNAL          99  /* a bug in Luigi: please report */

/* Text of the last failure on the calling thread ("" if none). The pointer is
 * valid until the next failing call on the same thread. */
const char *luigi_last_error_message(void);
/* Stable name of a status code, e.g. "LUIGI_ERR_DECODE"; static string. */
const char *luigi_status_name(luigi_status status);

/* ----------------------------------------------------------------- buffers */

/* The largest length accepted for any input bytes or string (1 GiB). */
#define LUIGI_MAX_LENGTH 1073741824u

/* Library-owned bytes. Zero-initialise before passing it to a call that fills
 * it; release with luigi_buffer_free (which zeroes it again). */
typedef struct luigi_buffer {
    uint8_t *data;
    size_t len;
} luigi_buffer;

void luigi_buffer_free(luigi_buffer *buffer);

/* ------------------------------------------------------------ vector clocks */

/* A vector clock: node id (uint64) -> counter (uint64); absent means 0. */
typedef struct luigi_clock luigi_clock;

typedef enum luigi_causal_order {
    LUIGI_ORDER_EQUAL = 0,
    LUIGI_ORDER_BEFORE = 1,     /* a happened before b */
    LUIGI_ORDER_AFTER = 2,      /* b happened before a */
    LUIGI_ORDER_CONCURRENT = 3
} luigi_causal_order;

luigi_status luigi_clock_new(luigi_clock **out);
void luigi_clock_free(luigi_clock *clock);
luigi_status luigi_clock_copy(const luigi_clock *clock, luigi_clock **out);
/* Increments node's counter and returns the new value (OVERFLOW at 2^64-1). */
luigi_status luigi_clock_tick(luigi_clock *clock, uint64_t node, uint64_t *out_counter);
luigi_status luigi_clock_get(const luigi_clock *clock, uint64_t node, uint64_t *out_counter);
/* Sets node's counter; 0 removes the entry. */
luigi_status luigi_clock_set(luigi_clock *clock, uint64_t node, uint64_t counter);
/* Pointwise maximum, in place into `clock`. */
luigi_status luigi_clock_merge(luigi_clock *clock, const luigi_clock *other);
luigi_status luigi_clock_compare(const luigi_clock *a, const luigi_clock *b,
                                 luigi_causal_order *out_order);
/* Number of non-zero entries. */
luigi_status luigi_clock_len(const luigi_clock *clock, size_t *out_len);
/* Copies entries, sorted by node id, into the caller's arrays. If capacity is
 * too small, returns LUIGI_ERR_BUFFER_TOO_SMALL and still sets *out_count to
 * the number needed. Either array may be NULL only when capacity is 0. */
luigi_status luigi_clock_entries(const luigi_clock *clock, uint64_t *nodes,
                                 uint64_t *counters, size_t capacity, size_t *out_count);
/* Versioned binary encoding (magic, version, entries, CRC-32C). */
luigi_status luigi_clock_encode(const luigi_clock *clock, luigi_buffer *out);
luigi_status luigi_clock_decode(const uint8_t *data, size_t len, luigi_clock **out);

/* ------------------------------------------------------- algebraic replicas */

/*
 * A replica of coordination-free (algebraic) state. Each key has one type,
 * fixed by its first op:
 *   COUNTER  add(n): value = exact sum of every origin's 64-bit contribution
 *   MAX/MIN  max(x)/min(x) over int64 and finite-or-infinite doubles (no NaN)
 *   SET      union({elements}): grow-only set of int64, string or bytes
 *   REGISTER set(x): overwrite with an int64 or a double (no NaN); the last
 *            set in the replicated log's order wins
 * Updates carry a dot (origin, seq) and the origin's clock; a replica applies
 * each update exactly once and in causal order (early ones wait in pending).
 * Transactions of algebraic ops commit locally (luigi_txn_commit); one that
 * sets a REGISTER is not algebraic and commits through a Raft log instead
 * (luigi_raft_attach_replica, luigi_raft_propose_txn).
 */
typedef struct luigi_replica luigi_replica;
typedef struct luigi_txn luigi_txn;
typedef struct luigi_update luigi_update;
typedef struct luigi_update_list luigi_update_list;

typedef enum luigi_kind {
    LUIGI_KIND_NONE = 0,
    LUIGI_KIND_COUNTER = 1,
    LUIGI_KIND_MAX = 2,
    LUIGI_KIND_MIN = 3,
    LUIGI_KIND_SET = 4,
    LUIGI_KIND_REGISTER = 5
} luigi_kind;

typedef enum luigi_number_type {
    LUIGI_NUMBER_INT = 0,
    LUIGI_NUMBER_FLOAT = 1
} luigi_number_type;

/* The value of one key. Which fields are meaningful depends on `kind`:
 *   COUNTER: counter_hi:counter_lo is the 128-bit two's-complement total;
 *   MAX/MIN/REGISTER: number_type selects int_value or float_value;
 *   SET:     set_size; the elements come from luigi_replica_set_elements. */
typedef struct luigi_value {
    uint32_t kind;          /* luigi_kind */
    uint32_t number_type;   /* luigi_number_type */
    int64_t counter_hi;
    uint64_t counter_lo;
    int64_t int_value;
    double float_value;
    uint64_t set_size;
} luigi_value;

/* Set element tags in luigi_replica_set_elements' buffer. */
#define LUIGI_ELEMENT_INT   1
#define LUIGI_ELEMENT_STR   2
#define LUIGI_ELEMENT_BYTES 3

luigi_status luigi_replica_new(uint64_t node_id, luigi_replica **out);
void luigi_replica_free(luigi_replica *replica);
luigi_status luigi_replica_node_id(const luigi_replica *replica, uint64_t *out_node_id);

/* Starts a transaction; ops are buffered in the txn until commit. */
luigi_status luigi_replica_begin(luigi_replica *replica, luigi_txn **out);
void luigi_txn_free(luigi_txn *txn);
luigi_status luigi_txn_add(luigi_txn *txn, const char *key, size_t key_len, int64_t delta);
luigi_status luigi_txn_max_int(luigi_txn *txn, const char *key, size_t key_len, int64_t value);
luigi_status luigi_txn_max_float(luigi_txn *txn, const char *key, size_t key_len, double value);
luigi_status luigi_txn_min_int(luigi_txn *txn, const char *key, size_t key_len, int64_t value);
luigi_status luigi_txn_min_float(luigi_txn *txn, const char *key, size_t key_len, double value);
luigi_status luigi_txn_union_int(luigi_txn *txn, const char *key, size_t key_len, int64_t element);
luigi_status luigi_txn_union_str(luigi_txn *txn, const char *key, size_t key_len,
                                 const char *element, size_t element_len);
/* Makes `key` a SET (an empty one if new) without adding an element: fixes
 * the key's type like any first op. */
luigi_status luigi_txn_union_empty(luigi_txn *txn, const char *key, size_t key_len);
luigi_status luigi_txn_union_bytes(luigi_txn *txn, const char *key, size_t key_len,
                                   const uint8_t *element, size_t element_len);
/* Overwrites a REGISTER key (a later set of the same key in the txn
 * replaces this one). Not algebraic: luigi_txn_commit then returns
 * LUIGI_ERR_NOT_ALGEBRAIC; propose the txn with luigi_raft_propose_txn. */
luigi_status luigi_txn_set_int(luigi_txn *txn, const char *key, size_t key_len, int64_t value);
/* NaN returns LUIGI_ERR_INVALID_ARGUMENT. */
luigi_status luigi_txn_set_float(luigi_txn *txn, const char *key, size_t key_len, double value);
/* Number of ops buffered so far. */
luigi_status luigi_txn_op_count(const luigi_txn *txn, size_t *out_count);
/*
 * Validates every op, then applies them all atomically: on any error (type
 * conflict, overflow) nothing changes — values, clock and sequence stay as
 * they were — and the txn stays open so the caller may discard it. On success
 * the txn is finished (further calls return LUIGI_ERR_STATE) and *out is the
 * new update to ship to other replicas.
 */
luigi_status luigi_txn_commit(luigi_txn *txn, luigi_update **out);

/* Applies a remote update. *out_new is 1 when the update was new to this
 * replica (applied now, or held in pending until its causal predecessors
 * arrive) and 0 for a duplicate. */
luigi_status luigi_replica_apply(luigi_replica *replica, const luigi_update *update,
                                 int *out_new);
/* Applies every update of a list; *out_new counts the new ones. */
luigi_status luigi_replica_apply_list(luigi_replica *replica, const luigi_update_list *list,
                                      size_t *out_new);
luigi_status luigi_replica_value(const luigi_replica *replica, const char *key,
                                 size_t key_len, luigi_value *out);
/* Elements of a SET key, sorted: each is a tag byte, then for INT 8 bytes
 * little-endian, for STR/BYTES a 4-byte little-endian length and the bytes.
 * A key that is absent or not a set yields LUIGI_ERR_TYPE_CONFLICT. */
luigi_status luigi_replica_set_elements(const luigi_replica *replica, const char *key,
                                        size_t key_len, luigi_buffer *out);
/* All keys, sorted: each a 4-byte little-endian length and UTF-8 bytes. */
luigi_status luigi_replica_keys(const luigi_replica *replica, luigi_buffer *out);
luigi_status luigi_replica_key_count(const luigi_replica *replica, size_t *out_count);
/* A copy of the replica's version vector (origin -> highest applied seq). */
luigi_status luigi_replica_clock(const luigi_replica *replica, luigi_clock **out);
/* Updates received but waiting for causal predecessors. */
luigi_status luigi_replica_pending(const luigi_replica *replica, size_t *out_count);
/* Ops applied to a key under a type that lost that key's type conflict (see
 * docs/ARCHITECTURE.md): kept, counted, never silently dropped. */
luigi_status luigi_replica_conflicts(const luigi_replica *replica, uint64_t *out_count);
/* Every applied update that `clock` has not seen, in causal order. */
luigi_status luigi_replica_delta_since(const luigi_replica *replica, const luigi_clock *clock,
                                       luigi_update_list **out);

/* Transport fast path: delta_since(clock) written straight into one batch
 * buffer (the format of luigi_update_list_encode), no per-update handles. */
luigi_status luigi_replica_delta_encode(const luigi_replica *replica, const luigi_clock *clock,
                                        luigi_buffer *out);
/* Decodes a batch (luigi_update_list_encode's format) and applies every
 * update; *out_new counts the new ones. Malformed bytes return
 * LUIGI_ERR_DECODE and apply nothing. */
luigi_status luigi_replica_apply_encoded(luigi_replica *replica, const uint8_t *data, size_t len,
                                         size_t *out_new);

/* ----------------------------------------------------------------- updates */

void luigi_update_free(luigi_update *update);
luigi_status luigi_update_origin(const luigi_update *update, uint64_t *out_origin);
luigi_status luigi_update_seq(const luigi_update *update, uint64_t *out_seq);
/* The origin's clock when it committed (its causal dependencies). */
luigi_status luigi_update_clock(const luigi_update *update, luigi_clock **out);
luigi_status luigi_update_op_count(const luigi_update *update, size_t *out_count);
/* Versioned binary encoding with a CRC-32C checksum. */
luigi_status luigi_update_encode(const luigi_update *update, luigi_buffer *out);
/* Any bytes are safe: malformed input returns LUIGI_ERR_DECODE. */
luigi_status luigi_update_decode(const uint8_t *data, size_t len, luigi_update **out);

luigi_status luigi_update_list_new(luigi_update_list **out);
void luigi_update_list_free(luigi_update_list *list);
luigi_status luigi_update_list_len(const luigi_update_list *list, size_t *out_len);
/* A new handle to the index-th update (free it with luigi_update_free). */
luigi_status luigi_update_list_get(const luigi_update_list *list, size_t index,
                                   luigi_update **out);
luigi_status luigi_update_list_push(luigi_update_list *list, const luigi_update *update);
/* One buffer for a whole list (e.g. a delta): "LUL" v1, the count, each
 * update's encoding with its length, CRC-32C. */
luigi_status luigi_update_list_encode(const luigi_update_list *list, luigi_buffer *out);
/* Any bytes are safe: malformed input returns LUIGI_ERR_DECODE. */
luigi_status luigi_update_list_decode(const uint8_t *data, size_t len, luigi_update_list **out);

/* ------------------------------------------------------- simulated cluster */

/* N replicas (node ids 0..N-1) on virtual time, exchanging version vectors and
 * shipping only missing updates (delta anti-entropy, push-pull) with `fanout`
 * random peers per node per round, over a seeded faulty network. */
typedef struct luigi_cluster luigi_cluster;

#define LUIGI_CLUSTER_OPTIONS_VERSION 1

typedef struct luigi_cluster_options {
    uint32_t version;       /* LUIGI_CLUSTER_OPTIONS_VERSION */
    uint32_t nodes;         /* 1 ..= 1024 */
    uint64_t seed;
    uint32_t fanout;        /* peers contacted per node per round, >= 1 */
    uint32_t max_delay;     /* extra delivery delay in rounds, uniform 0..max */
    double drop_rate;       /* each in [0, 1) */
    double duplicate_rate;
    double reorder_rate;    /* chance a message gets a further random delay */
} luigi_cluster_options;

/* Fills options with defaults: fanout 1, no faults, no delay. */
void luigi_cluster_options_init(luigi_cluster_options *options);

#define LUIGI_CLUSTER_STATS_VERSION 1

typedef struct luigi_cluster_stats {
    uint32_t version;       /* set by the caller to LUIGI_CLUSTER_STATS_VERSION */
    uint32_t reserved;
    uint64_t rounds;
    uint64_t messages;      /* sent, including dropped and duplicated */
    uint64_t bytes;         /* encoded bytes of all messages sent */
    uint64_t dropped;
    uint64_t duplicated;
    uint64_t updates_shipped;
    uint64_t type_conflicts; /* sum of luigi_replica_conflicts over replicas */
} luigi_cluster_stats;

luigi_status luigi_cluster_new(const luigi_cluster_options *options, luigi_cluster **out);
void luigi_cluster_free(luigi_cluster *cluster);
luigi_status luigi_cluster_size(const luigi_cluster *cluster, size_t *out_nodes);
/* A new handle to replica `index`; it stays valid after the cluster is freed. */
luigi_status luigi_cluster_replica(luigi_cluster *cluster, size_t index, luigi_replica **out);
/* Changes fault settings (same meaning and ranges as in the options). */
luigi_status luigi_cluster_set_faults(luigi_cluster *cluster, double drop_rate,
                                      double duplicate_rate, double reorder_rate,
                                      uint32_t max_delay);
/* group_of[i] is node i's group; messages between groups are lost. */
luigi_status luigi_cluster_partition(luigi_cluster *cluster, const uint32_t *group_of,
                                     size_t count);
luigi_status luigi_cluster_heal(luigi_cluster *cluster);
luigi_status luigi_cluster_run(luigi_cluster *cluster, uint64_t rounds);
/* Runs until converged; *out_rounds = rounds run by this call. Returns
 * LUIGI_ERR_NOT_CONVERGED (and runs max_rounds) if it does not converge. */
luigi_status luigi_cluster_run_until_converged(luigi_cluster *cluster, uint64_t max_rounds,
                                               uint64_t *out_rounds);
/* 1 when every replica has applied exactly the same updates and none is
 * pending (so, by determinism, every replica holds the same values). */
luigi_status luigi_cluster_converged(const luigi_cluster *cluster, int *out_converged);
luigi_status luigi_cluster_get_stats(const luigi_cluster *cluster, luigi_cluster_stats *out);

/* ------------------------------------------------------ raft: one node */

/*
 * One Raft node for a caller that brings its own transport (etcd/raft's
 * shape). Drive it with luigi_raft_tick (at a fixed interval of your choice),
 * luigi_raft_step (every message received from a peer), luigi_raft_propose
 * and friends; then take a ready batch: the library has already persisted
 * (and, for a durable node, fdatasynced) what the batch needs, so you
 * 1. send each message to its node, 2. apply the committed entries to your
 * state machine (and restore the snapshot first, if the batch has one),
 * 3. call luigi_raft_advance. Node ids are non-zero.
 * Thread-safety: a luigi_raft and its ready batches belong to one thread at
 * a time.
 */
typedef struct luigi_raft luigi_raft;
typedef struct luigi_raft_ready luigi_raft_ready;

#define LUIGI_RAFT_OPTIONS_VERSION 1

typedef struct luigi_raft_options {
    uint32_t version;               /* LUIGI_RAFT_OPTIONS_VERSION */
    uint32_t election_tick;         /* default 10; > heartbeat_tick */
    uint32_t heartbeat_tick;        /* default 1 */
    uint32_t pre_vote;              /* 0/1, default 1 */
    uint32_t check_quorum;          /* 0/1, default 1 */
    uint32_t max_inflight_messages; /* default 256 */
    uint64_t max_size_per_message;  /* bytes of entries per append, default 1 MiB */
    uint64_t seed;                  /* election jitter */
    /* NULL: the log lives in memory. Otherwise a directory (created if
     * missing) holding the write-ahead log and snapshots; reopening it
     * restores the node. Borrowed: read during luigi_raft_new only. */
    const char *data_dir;
} luigi_raft_options;

void luigi_raft_options_init(luigi_raft_options *options);

/* `voters` is the initial membership (ignored when data_dir already holds
 * a node's state). */
luigi_status luigi_raft_new(uint64_t id, const uint64_t *voters, size_t voter_count,
                            const luigi_raft_options *options, luigi_raft **out);
/* The same node as a member of Raft group `group` (luigi_raft_new: group 0).
 * A process may run many groups: every message the node hands out carries
 * its group id in its envelope, and a message of another group stepped
 * into it returns LUIGI_ERR_INVALID_ARGUMENT and changes nothing. */
luigi_status luigi_raft_new_in_group(uint64_t group, uint64_t id, const uint64_t *voters, size_t voter_count,
                                     const luigi_raft_options *options, luigi_raft **out);
void luigi_raft_free(luigi_raft *raft);
luigi_status luigi_raft_tick(luigi_raft *raft);
/* A message from a peer, as luigi_raft_ready_message handed it out there.
 * Malformed bytes return LUIGI_ERR_DECODE; a well-formed message that does
 * not fit (wrong recipient or group, contradictory entries, a term or index
 * above 2^62) LUIGI_ERR_INVALID_ARGUMENT; either way the node is unchanged. */
luigi_status luigi_raft_step(luigi_raft *raft, const uint8_t *message, size_t len);
/* Leader only (else LUIGI_ERR_STATE); *out_index is the entry's log index. */
luigi_status luigi_raft_propose(luigi_raft *raft, const uint8_t *data, size_t len,
                                uint64_t *out_index);
luigi_status luigi_raft_campaign(luigi_raft *raft);

#define LUIGI_CONF_ADD_VOTER   0
#define LUIGI_CONF_REMOVE_NODE 1
#define LUIGI_CONF_ADD_LEARNER 2
/* One membership change at a time; it takes effect when applied. */
luigi_status luigi_raft_propose_conf_change(luigi_raft *raft, uint32_t kind, uint64_t node,
                                            uint64_t *out_index);
luigi_status luigi_raft_transfer_leader(luigi_raft *raft, uint64_t to);
/* Linearizable read: a read state with this context arrives in a later ready
 * batch once a quorum confirmed the leadership; serve the read after your
 * state machine applied its index. */
luigi_status luigi_raft_read_index(luigi_raft *raft, const uint8_t *context, size_t len);
/* Log compaction: your state machine's snapshot at applied index `index`
 * replaces the entries up to it. */
luigi_status luigi_raft_compact(luigi_raft *raft, uint64_t index, const uint8_t *snapshot,
                                size_t len);

/* *out is NULL when there is nothing to do. Persists before returning.
 * One batch at a time: a second take_ready before the last batch was
 * advanced, or a take_ready from inside a state-machine callback, returns
 * LUIGI_ERR_STATE. */
luigi_status luigi_raft_take_ready(luigi_raft *raft, luigi_raft_ready **out);
/* Call after sending and applying the batch; then free the batch. A batch
 * taken from another node, or one already advanced, returns LUIGI_ERR_STATE
 * and changes nothing. */
luigi_status luigi_raft_advance(luigi_raft *raft, const luigi_raft_ready *ready);
/* Freeing a batch that was not advanced drops it: the node's next batch
 * carries its entries and committed entries again; its messages are lost. */
void luigi_raft_ready_free(luigi_raft_ready *ready);

#define LUIGI_RAFT_COUNTS_VERSION 1

typedef struct luigi_raft_counts {
    uint32_t version;        /* set by the caller to LUIGI_RAFT_COUNTS_VERSION */
    size_t messages;
    size_t committed_entries;
    size_t read_states;
    int has_snapshot;
} luigi_raft_counts;

luigi_status luigi_raft_ready_counts(const luigi_raft_ready *ready, luigi_raft_counts *out);
luigi_status luigi_raft_ready_message(const luigi_raft_ready *ready, size_t index,
                                      uint64_t *out_to, luigi_buffer *out_bytes);

#define LUIGI_ENTRY_NORMAL      0
#define LUIGI_ENTRY_CONF_CHANGE 1

luigi_status luigi_raft_ready_entry(const luigi_raft_ready *ready, size_t index,
                                    uint64_t *out_index, uint64_t *out_term, uint32_t *out_kind,
                                    luigi_buffer *out_data);
luigi_status luigi_raft_ready_read_state(const luigi_raft_ready *ready, size_t index,
                                         uint64_t *out_index, luigi_buffer *out_context);
/* The snapshot to restore the state machine from (LUIGI_ERR_STATE if none). */
luigi_status luigi_raft_ready_snapshot(const luigi_raft_ready *ready, uint64_t *out_index,
                                       uint64_t *out_term, luigi_buffer *out_data);

/* What the library persisted for this batch before handing it out (the
 * caller has nothing to do with it: it is there to observe or mirror). */
#define LUIGI_RAFT_PERSISTED_VERSION 1

typedef struct luigi_raft_persisted {
    uint32_t version;        /* set by the caller to LUIGI_RAFT_PERSISTED_VERSION */
    uint32_t has_hard_state; /* 1: term, vote and commit below were written */
    uint64_t term;
    uint64_t vote;           /* 0: no vote in this term */
    uint64_t commit;
    size_t entries;          /* log entries appended: luigi_raft_ready_persisted_entry */
    uint32_t must_sync;      /* 1: entries, a snapshot or a new term or vote, which a
                              * durable node fdatasynced before returning the batch;
                              * 0: at most a new commit index, written unsynced */
} luigi_raft_persisted;

luigi_status luigi_raft_ready_persisted(const luigi_raft_ready *ready, luigi_raft_persisted *out);
luigi_status luigi_raft_ready_persisted_entry(const luigi_raft_ready *ready, size_t index,
                                              uint64_t *out_index, uint64_t *out_term,
                                              uint32_t *out_kind, luigi_buffer *out_data);

/* A state-machine plugin: function pointers + user_data. Attach one to a
 * node and luigi_raft_take_ready feeds it each batch (snapshot restore, then
 * committed entries in log order, each exactly once) on the calling thread,
 * before returning the batch. Callbacks return 0 on success; a nonzero
 * return stops the batch: take_ready returns LUIGI_ERR_STATE and the failed
 * entry is offered again by the next take_ready. */
#define LUIGI_STATE_MACHINE_VERSION 1

typedef void (*luigi_write_fn)(void *sink, const uint8_t *data, size_t len);

typedef struct luigi_state_machine {
    uint32_t version;   /* LUIGI_STATE_MACHINE_VERSION */
    void *user_data;    /* passed to every callback; owned by the caller */
    int32_t (*apply)(void *user_data, uint64_t index, uint32_t kind, const uint8_t *data,
                     size_t len);
    /* Writes the whole state through write(sink, bytes, len), in any number
     * of pieces. `sink` is valid only during the call. */
    int32_t (*snapshot)(void *user_data, void *sink, luigi_write_fn write);
    /* Replaces the whole state with what snapshot wrote. */
    int32_t (*restore)(void *user_data, const uint8_t *data, size_t len);
} luigi_state_machine;

/* Copies *machine (NULL detaches). user_data must outlive the attachment.
 * A node reopened from a compacted data_dir first restores the machine from
 * its stored snapshot (the restore callback runs during this call). */
luigi_status luigi_raft_set_state_machine(luigi_raft *raft, const luigi_state_machine *machine);
/* Compacts the log up to the applied index with the attached machine's
 * snapshot; *out_index is that index. */
luigi_status luigi_raft_snapshot_state_machine(luigi_raft *raft, uint64_t *out_index);

/*
 * The built-in algebraic plugin: the coordinated path of a replica's
 * transactions. Attaching `replica` makes the log one more origin of its
 * updates, `log_origin` (non-zero, not the replica's node id, the same on
 * every node of the group and used by nothing else): each committed
 * transaction becomes the update (log_origin, n) on every node, applied at
 * its log position, so the last set of a REGISTER in log order wins on
 * every replica. Those updates travel by delta anti-entropy like any other.
 * It replaces any attached state machine (luigi_raft_set_state_machine
 * replaces it in turn). The node keeps the replica alive; use both from the
 * same thread (take_ready applies committed transactions to the replica).
 */
luigi_status luigi_raft_attach_replica(luigi_raft *raft, luigi_replica *replica,
                                       uint64_t log_origin);
/* Proposes a txn of the attached replica (algebraic ops and sets alike) and
 * finishes it (further calls on it return LUIGI_ERR_STATE). It is checked
 * against the replica's key types first (LUIGI_ERR_TYPE_CONFLICT). Leader
 * only (else LUIGI_ERR_STATE, and the txn stays open). */
luigi_status luigi_raft_propose_txn(luigi_raft *raft, luigi_txn *txn, uint64_t *out_index);

#define LUIGI_TXN_PENDING   0 /* not applied on this node yet */
#define LUIGI_TXN_COMMITTED 1 /* applied here; every node applies it at the same index */
#define LUIGI_TXN_REJECTED  2 /* applied as a no-op everywhere (see *out_rejection) */
#define LUIGI_TXN_LOST      3 /* a leader change put another entry at its index: propose again */
#define LUIGI_TXN_UNKNOWN   4 /* not proposed through this node, forgotten, or skipped by a snapshot */

/* What became of the txn proposed at `index` through this node (the last
 * 65,536 proposals are remembered). For REJECTED, *out_rejection is the
 * status that rejected it everywhere (the log's own key types disagree:
 * LUIGI_ERR_TYPE_CONFLICT; the log's counter share overflows:
 * LUIGI_ERR_OVERFLOW) and *out_reason its text; otherwise they are LUIGI_OK
 * and empty. out_rejection and out_reason may be NULL. */
luigi_status luigi_raft_txn_outcome(const luigi_raft *raft, uint64_t index, uint32_t *out_outcome,
                                    luigi_status *out_rejection, luigi_buffer *out_reason);

#define LUIGI_ROLE_FOLLOWER      0
#define LUIGI_ROLE_PRE_CANDIDATE 1
#define LUIGI_ROLE_CANDIDATE     2
#define LUIGI_ROLE_LEADER        3

#define LUIGI_RAFT_STATUS_VERSION 1

typedef struct luigi_raft_status {
    uint32_t version;   /* set by the caller to LUIGI_RAFT_STATUS_VERSION */
    uint32_t role;      /* LUIGI_ROLE_* */
    uint64_t id;
    uint64_t term;
    uint64_t vote;
    uint64_t leader;    /* 0 when unknown */
    uint64_t commit;
    uint64_t applied;
    uint64_t first_index;
    uint64_t last_index;
    uint64_t voters;    /* number of voters */
    uint64_t learners;
} luigi_raft_status;

luigi_status luigi_raft_get_status(const luigi_raft *raft, luigi_raft_status *out);

/* ------------------------------------------------ raft: simulated cluster */

/*
 * N Raft nodes (ids 1..N) with the built-in key-value state machine, on
 * virtual time over a seeded network that can drop, duplicate, delay and
 * reorder messages, cut links and isolate nodes, with crash and restart.
 * Every step checks Raft's safety properties (one leader per term, the same
 * entry applied at each index everywhere, leader completeness); a violation
 * is returned as LUIGI_ERR_INTERNAL. Client operations are recorded for the
 * linearizability checker. Operations that do not finish within `timeout`
 * ticks return LUIGI_ERR_TIMEOUT: their outcome is unknown.
 */
typedef struct luigi_raft_cluster luigi_raft_cluster;

#define LUIGI_RAFT_CLUSTER_OPTIONS_VERSION 1

typedef struct luigi_raft_cluster_options {
    uint32_t version;        /* LUIGI_RAFT_CLUSTER_OPTIONS_VERSION */
    uint32_t nodes;          /* 1..64, default 3 */
    uint64_t seed;
    uint32_t election_tick;  /* default 10 */
    uint32_t heartbeat_tick; /* default 1 */
    uint32_t pre_vote;       /* 0/1, default 1 */
    uint32_t check_quorum;   /* 0/1, default 1 */
    uint32_t compact_after;  /* compact a node's log every this many applied entries; 0 = never */
    uint32_t max_delay;      /* extra delivery delay in ticks, uniform 0..max */
    double drop_rate;        /* each in [0, 1) */
    double duplicate_rate;
    double reorder_rate;
    /* NULL: in-memory logs. Otherwise node i keeps a durable WAL and
     * snapshots in data_dir/node-<i>; a crash keeps only what was synced. */
    const char *data_dir;
} luigi_raft_cluster_options;

void luigi_raft_cluster_options_init(luigi_raft_cluster_options *options);
luigi_status luigi_raft_cluster_new(const luigi_raft_cluster_options *options,
                                    luigi_raft_cluster **out);
void luigi_raft_cluster_free(luigi_raft_cluster *cluster);
luigi_status luigi_raft_cluster_tick(luigi_raft_cluster *cluster, uint64_t ticks);
/* Delivers every message in flight until none is left (no ticking). */
luigi_status luigi_raft_cluster_stabilize(luigi_raft_cluster *cluster);
luigi_status luigi_raft_cluster_campaign(luigi_raft_cluster *cluster, uint64_t node);
luigi_status luigi_raft_cluster_isolate(luigi_raft_cluster *cluster, uint64_t node);
luigi_status luigi_raft_cluster_cut(luigi_raft_cluster *cluster, uint64_t a, uint64_t b);
luigi_status luigi_raft_cluster_heal(luigi_raft_cluster *cluster);
luigi_status luigi_raft_cluster_crash(luigi_raft_cluster *cluster, uint64_t node);
luigi_status luigi_raft_cluster_restart(luigi_raft_cluster *cluster, uint64_t node);
/* *out_leader = 0 when no node leads. */
luigi_status luigi_raft_cluster_leader(const luigi_raft_cluster *cluster, uint64_t *out_leader);
/* Node ids (sorted), two-call pattern as luigi_clock_entries. */
luigi_status luigi_raft_cluster_nodes(const luigi_raft_cluster *cluster, uint64_t *ids,
                                      size_t capacity, size_t *out_count);
/* LUIGI_ERR_STATE for a crashed node. */
luigi_status luigi_raft_cluster_node_status(const luigi_raft_cluster *cluster, uint64_t node,
                                            luigi_raft_status *out);
/* Raw entry through the leader (LUIGI_ERR_STATE when there is none). */
luigi_status luigi_raft_cluster_propose(luigi_raft_cluster *cluster, const uint8_t *data,
                                        size_t len, uint64_t *out_index);
luigi_status luigi_raft_cluster_put(luigi_raft_cluster *cluster, const char *key, size_t key_len,
                                    const uint8_t *value, size_t value_len, uint64_t timeout);
/* Linearizable read (ReadIndex). *out_found = 0 when absent. */
luigi_status luigi_raft_cluster_get(luigi_raft_cluster *cluster, const char *key, size_t key_len,
                                    uint64_t timeout, int *out_found, luigi_buffer *out_value);
luigi_status luigi_raft_cluster_delete(luigi_raft_cluster *cluster, const char *key,
                                       size_t key_len, uint64_t timeout, int *out_existed);
/* Compare-and-set; expected == NULL (with expected_len 0) means "absent". */
luigi_status luigi_raft_cluster_cas(luigi_raft_cluster *cluster, const char *key, size_t key_len,
                                    const uint8_t *expected, size_t expected_len,
                                    const uint8_t *value, size_t value_len, uint64_t timeout,
                                    int *out_swapped);
luigi_status luigi_raft_cluster_transfer_leader(luigi_raft_cluster *cluster, uint64_t to);
luigi_status luigi_raft_cluster_add_node(luigi_raft_cluster *cluster, uint64_t *out_node);
luigi_status luigi_raft_cluster_remove_node(luigi_raft_cluster *cluster, uint64_t node);
/* Entries a node applied: each 8-byte LE term, 4-byte LE length, data. */
luigi_status luigi_raft_cluster_log(const luigi_raft_cluster *cluster, uint64_t node,
                                    luigi_buffer *out);
/* Checks the recorded client history for linearizability: *out_linearizable
 * is 1, or 0 with the reason (UTF-8) in *out_explanation (empty when 1). */
luigi_status luigi_raft_cluster_check_history(const luigi_raft_cluster *cluster,
                                              int *out_linearizable, luigi_buffer *out_explanation);
/* Number of client operations recorded. */
luigi_status luigi_raft_cluster_history_len(const luigi_raft_cluster *cluster, size_t *out_len);

#define LUIGI_KV_PUT    0
#define LUIGI_KV_GET    1
#define LUIGI_KV_DELETE 2
#define LUIGI_KV_CAS    3

#define LUIGI_KV_COMPLETED 1 /* the client got a response (else the outcome is unknown) */
#define LUIGI_KV_FOUND     2 /* a completed get read a value (else the key was absent) */
#define LUIGI_KV_SWAPPED   4 /* a completed cas swapped */
#define LUIGI_KV_EXPECTED  8 /* a cas expected a value (else it expected "absent") */

/* The recorded client operations, in invocation order, one record each (all
 * integers little-endian): u8 kind (LUIGI_KV_*), u8 flags (LUIGI_KV_*
 * bits), u64 client, u64 invoke tick, u64 response tick (0 unless
 * COMPLETED), then three u32-length-prefixed byte strings: the key (UTF-8),
 * the value (put and cas: the value written; a get that FOUND: the value
 * read; else empty) and the expected value (a cas with EXPECTED; else
 * empty). A cluster reopened from an earlier data_dir starts its history
 * from the store it recovered (check_history accounts for it). */
luigi_status luigi_raft_cluster_history(const luigi_raft_cluster *cluster, luigi_buffer *out);

/* ------------------------------------------ table log: versioned table metadata */

/*
 * Table metadata as a Raft state machine (docs/ARCHITECTURE.md, "Table
 * log"): each table is a log of versions, each version the set of live data
 * files. A commit names the version it is based on, a transaction id, and
 * the files it adds and removes. Every node checks it in this order, on the
 * log's own state, so all decide alike:
 *  1. the table exists (else LUIGI_ERR_INVALID_ARGUMENT);
 *  2. a transaction id already committed with the same files (in any order)
 *     returns its original version, even after later commits; the same id
 *     with other files is refused with LUIGI_ERR_CONFLICT;
 *  3. the base version is the latest (else LUIGI_ERR_CONFLICT, naming it);
 *  4. every removed file is live, and no added file is unless the same
 *     commit removes it (else LUIGI_ERR_INVALID_ARGUMENT);
 *  5. the new version is latest + 1.
 * A refused commit changes nothing. Checks cost O(files in the commit), not
 * O(history). Versions stay readable up to a table's retention; a
 * transaction id is remembered as long as its version is, and an older
 * retry is refused by check 3, so no retry ever applies twice.
 *
 * luigi_meta_cluster_new starts a simulated Raft cluster whose nodes run the
 * table log. It is a luigi_raft_cluster: every luigi_raft_cluster_* call
 * works on it (faults, crash, restart, leader transfer, membership), except
 * the key-value ones (put, get, delete, cas, check_history, history_len,
 * history), which return LUIGI_ERR_STATE. luigi_meta_* commands go through
 * the log and are proposed again, with the same transaction id, until they
 * complete (across leader changes) or `timeout` ticks (1..10000000) pass:
 * then LUIGI_ERR_TIMEOUT,
 * the outcome is unknown, and retrying the same commit is safe. Reads go
 * through ReadIndex on the leader: linearizable.
 */

#define LUIGI_META_MAX_NAME        255      /* table name */
#define LUIGI_META_MAX_TXN_ID      256
#define LUIGI_META_MAX_PATH        4096
#define LUIGI_META_MAX_PARTITION   1024
#define LUIGI_META_MAX_STATS       65536
#define LUIGI_META_MAX_SCHEMA      1048576
#define LUIGI_META_MAX_FILES       100000   /* adds + removes in one commit */
#define LUIGI_META_LATEST          UINT64_MAX

/* A data file. Strings are UTF-8 without NUL; rows and size at most
 * 2^63-1. Statistics are opaque: NULL means absent (a non-NULL pointer with
 * length 0 is present and empty). */
typedef struct luigi_meta_file {
    const char *path;          /* 1..LUIGI_META_MAX_PATH bytes */
    size_t path_len;
    uint64_t rows;
    uint64_t size;             /* bytes */
    const char *partition;     /* "" (NULL, 0) when unpartitioned */
    size_t partition_len;
    const uint8_t *min_stats;
    size_t min_stats_len;
    const uint8_t *max_stats;
    size_t max_stats_len;
} luigi_meta_file;

#define LUIGI_META_COMMIT_VERSION 1

typedef struct luigi_meta_commit_request {
    uint32_t version;          /* LUIGI_META_COMMIT_VERSION */
    const char *table;
    size_t table_len;
    uint64_t base_version;
    const char *txn_id;        /* 1..LUIGI_META_MAX_TXN_ID bytes */
    size_t txn_id_len;
    const luigi_meta_file *adds;
    size_t add_count;
    const char *const *removes; /* paths of live files */
    const size_t *remove_lens;
    size_t remove_count;
} luigi_meta_commit_request;

/* One commit's outcome in luigi_meta_commit_many. */
typedef struct luigi_meta_outcome {
    luigi_status status;       /* LUIGI_OK, LUIGI_ERR_CONFLICT, LUIGI_ERR_INVALID_ARGUMENT
                                * or LUIGI_ERR_TIMEOUT (outcome unknown) */
    uint32_t duplicate;        /* 1: a retry; version is the original one */
    uint64_t version;          /* LUIGI_OK: the version it made */
    uint64_t latest;           /* LUIGI_ERR_CONFLICT: the table's latest version */
} luigi_meta_outcome;

/* A cluster of options->nodes nodes running the table log (see above). */
luigi_status luigi_meta_cluster_new(const luigi_raft_cluster_options *options, luigi_raft_cluster **out);
/* Creates a table at version 0 with no files; `retain` versions stay
 * readable (0: all). Creating it again with the same schema and retention
 * succeeds; with others, LUIGI_ERR_CONFLICT. */
luigi_status luigi_meta_create_table(luigi_raft_cluster *cluster, const char *name, size_t name_len,
                                     const uint8_t *schema, size_t schema_len, uint64_t retain,
                                     uint64_t timeout);
/* Commits; *out_version is the version made (a retry: the original one).
 * On LUIGI_ERR_CONFLICT, and only then, *out_latest (if not NULL) receives
 * the table's latest version: the base to retry on. */
luigi_status luigi_meta_commit(luigi_raft_cluster *cluster, const luigi_meta_commit_request *request,
                               uint64_t timeout, uint64_t *out_version, uint64_t *out_latest);
/* Proposes `count` commits at once, as concurrent writers would, and waits
 * for all: out_outcomes[i] is request i's. Returns LUIGI_OK once every
 * outcome is written; a malformed request refuses the whole call first
 * (nothing proposed, nothing written). */
luigi_status luigi_meta_commit_many(luigi_raft_cluster *cluster, const luigi_meta_commit_request *requests,
                                    size_t count, uint64_t timeout, luigi_meta_outcome *out_outcomes);
luigi_status luigi_meta_latest(luigi_raft_cluster *cluster, const char *table, size_t table_len,
                               uint64_t timeout, uint64_t *out_version);
/* The live files at `version` (LUIGI_META_LATEST: the latest), in path byte
 * order. A version outside the retained ones: LUIGI_ERR_INVALID_ARGUMENT.
 * Encoding (integers little-endian): u32 count, then per file: u32 length +
 * path, u64 rows, u64 size, u32 length + partition, then min and max
 * statistics each as u8 present (0/1), u32 length, bytes. */
luigi_status luigi_meta_files(luigi_raft_cluster *cluster, const char *table, size_t table_len,
                              uint64_t version, uint64_t timeout, luigi_buffer *out);
/* The readable versions, oldest first: u32 count, then per version: u64
 * version, u32 files added, u32 files removed, u32 length + transaction id
 * (empty for version 0). */
luigi_status luigi_meta_versions(luigi_raft_cluster *cluster, const char *table, size_t table_len,
                                 uint64_t timeout, luigi_buffer *out);
luigi_status luigi_meta_schema(luigi_raft_cluster *cluster, const char *table, size_t table_len,
                               uint64_t timeout, luigi_buffer *out);

/* ------------------------------------------- watermark commit (the Luigi protocol) */

/*
 * Timestamp-ordered multi-shard transactions: a coordinator stamps each
 * transaction in the future, every involved shard leader proposes a
 * timestamp and they agree on the maximum, parts run in timestamp order and
 * are replicated by each shard's Raft group, and a transaction is
 * acknowledged once every involved shard's watermarks pass its timestamp
 * (docs/ARCHITECTURE.md, "Watermark commit"). Two ways in:
 *  - luigi_sharded_*: a simulated cluster (shards x replicas, one Raft group
 *    per shard, coordinators) on virtual time, with workloads, faults and
 *    the invariant checker; it also runs the baseline, two-phase commit over
 *    the same Raft groups;
 *  - luigi_wm_coordinator_* and luigi_wm_shard_*: the pure protocol roles,
 *    for your own transport: you carry their messages, and feed a shard the
 *    committed entries of its shard's Raft group (a luigi_raft, say).
 * Thread-safety: as every handle (see the top of this file).
 */

#define LUIGI_WM_READ  1 /* reads the key (value ignored) */
#define LUIGI_WM_WRITE 2 /* sets the key to value */
#define LUIGI_WM_ADD   3 /* adds value; an add that would overflow aborts the transaction */
#define LUIGI_WM_CHECK 4 /* aborts the transaction unless the key's value is >= value */

/* One op on one shard's key. Absent keys read as absent and count as 0 for
 * add and check. A shard's ops run in the order given. */
typedef struct luigi_wm_op {
    uint32_t kind;     /* LUIGI_WM_* */
    uint32_t reserved; /* 0 */
    uint64_t shard;
    const char *key;   /* UTF-8, at most 1024 bytes */
    size_t key_len;
    int64_t value;
} luigi_wm_op;

/* A transaction's id: its coordinator, stream (worker) and sequence number. */
typedef struct luigi_wm_txn_id {
    uint64_t coordinator;
    uint64_t worker;
    uint64_t seq;
} luigi_wm_txn_id;

#define LUIGI_WM_PENDING   0
#define LUIGI_WM_COMMITTED 1
#define LUIGI_WM_ABORTED   2 /* a check failed or an add overflowed */

/* Byte formats handed out below (all integers little-endian):
 *  - messages: records of u8 to_shard (1: send to every replica of shard
 *    `to`; 0: to coordinator `to`), u64 to, u32 length, the message;
 *  - reads: records of u64 shard, u32 key length, key, u8 present, i64 value;
 *  - completions: records of u64 coordinator, u64 worker, u64 seq, u8
 *    outcome (LUIGI_WM_*), u64 ts, u64 submitted_at, u64 completed_at, u32
 *    read count, then that many reads as above. */

/* ---- the simulated sharded cluster */

typedef struct luigi_sharded_cluster luigi_sharded_cluster;

#define LUIGI_SHARDED_OPTIONS_VERSION 1
#define LUIGI_PROTOCOL_WATERMARK 0
#define LUIGI_PROTOCOL_2PC       1 /* the baseline: fault-free runs only (faults: LUIGI_ERR_STATE) */
#define LUIGI_PROFILE_SAME_REGION     0 /* one-way delay 2 +- 0.5 ms, Pareto jitter */
#define LUIGI_PROFILE_SAME_CONTINENT  1 /* 30 +- 5 ms */
#define LUIGI_PROFILE_CROSS_CONTINENT 2 /* 80 +- 10 ms */
#define LUIGI_PROFILE_GEO             3 /* 150 +- 20 ms */
#define LUIGI_RULE_ALL_STREAMS 0 /* ack when ts <= every stream's watermark (default) */
#define LUIGI_RULE_OWN_STREAM  1 /* ack when ts <= the transaction's own stream's */

typedef struct luigi_sharded_options {
    uint32_t version;      /* LUIGI_SHARDED_OPTIONS_VERSION */
    uint32_t protocol;     /* LUIGI_PROTOCOL_*, default WATERMARK */
    uint32_t shards;       /* 1..64, default 2 */
    uint32_t replicas;     /* 1..9, default 3 */
    uint32_t workers;      /* streams per shard, 1..64, default 4 */
    uint32_t coordinators; /* 1..64, default 1 */
    uint32_t window;       /* in flight per coordinator under _load, 1..100000, default 8 */
    uint32_t profile;      /* LUIGI_PROFILE_*, default SAME_REGION */
    uint32_t rule;         /* LUIGI_RULE_*, default ALL_STREAMS */
    uint32_t reserved;     /* 0 */
    uint64_t seed;
    uint64_t skew_us;      /* each node's clock is off by up to +-skew_us (<= 10 s) */
    double drift_ppm;      /* and runs fast or slow by up to this (<= 10000) */
    double drop_rate;      /* each in [0, 1); 0 under LUIGI_PROTOCOL_2PC */
    double duplicate_rate;
    double reorder_rate;
} luigi_sharded_options;

#define LUIGI_WORKLOAD_MICRO 0 /* 10 ops, half reads, 1000 keys per shard */
#define LUIGI_WORKLOAD_BANK  1 /* transfers with a balance check (opens accounts first) */
#define LUIGI_WORKLOAD_TPCC  2 /* New-Order and Payment (sets warehouses up first) */

#define LUIGI_SHARDED_STATS_VERSION 1
typedef struct luigi_sharded_stats {
    uint32_t version;  /* set to LUIGI_SHARDED_STATS_VERSION before the call */
    uint32_t reserved;
    uint64_t now_us;   /* virtual time */
    uint64_t round_trip_us; /* one wide-area round trip of the profile */
    uint64_t submitted;
    uint64_t committed;
    uint64_t aborted;
    uint64_t in_flight;
    uint64_t unacknowledged;   /* submitted through a coordinator that crashed */
    uint64_t replies;
    uint64_t fast_path;        /* replies whose agreed ts was the coordinator's (all of a single-shard txn) */
    uint64_t retries;          /* coordinator re-sends */
    uint64_t conflict_retries; /* 2PC: attempts aborted by a lock conflict */
    uint64_t ops_applied;      /* on one live replica of every shard */
    uint64_t messages;
    uint64_t dropped;
    double latency_p50_rtt;    /* committed: submit to acknowledgement */
    double latency_p99_rtt;
    double watermark_wait_p50_rtt; /* last reply to acknowledgement */
} luigi_sharded_stats;

void luigi_sharded_options_init(luigi_sharded_options *options);
luigi_status luigi_sharded_new(const luigi_sharded_options *options, luigi_sharded_cluster **out);
void luigi_sharded_free(luigi_sharded_cluster *cluster);
/* Submits one transaction (ops grouped by shard in any order) through
 * coordinator slot `coordinator`, on stream `worker`. */
luigi_status luigi_sharded_submit(luigi_sharded_cluster *cluster, const luigi_wm_op *ops, size_t count,
                                  uint32_t coordinator, uint32_t worker, luigi_wm_txn_id *out_id);
/* Queues `count` transactions of a workload, run as closed loops of
 * `window` per coordinator while time runs; cross_shard in [0, 1]. */
luigi_status luigi_sharded_load(luigi_sharded_cluster *cluster, uint32_t workload, uint64_t count,
                                double cross_shard);
luigi_status luigi_sharded_run(luigi_sharded_cluster *cluster, uint64_t us);
/* Runs until nothing is in flight, queued or unfinished at a shard, or
 * limit_us passes: *out_idle is 1 or 0. */
luigi_status luigi_sharded_run_until_idle(luigi_sharded_cluster *cluster, uint64_t limit_us, int *out_idle);
/* Node ids of a shard's replicas (1 + shard * replicas + i). */
luigi_status luigi_sharded_replicas(const luigi_sharded_cluster *cluster, uint64_t shard, uint64_t *ids,
                                    size_t capacity, size_t *out_count);
/* The live leader of a shard (LUIGI_ERR_STATE when it has none). */
luigi_status luigi_sharded_leader(const luigi_sharded_cluster *cluster, uint64_t shard, uint64_t *out_node);
/* Crashes the shard's leader (its synced log survives); returns its id. */
luigi_status luigi_sharded_crash_leader(luigi_sharded_cluster *cluster, uint64_t shard, uint64_t *out_node);
luigi_status luigi_sharded_crash(luigi_sharded_cluster *cluster, uint64_t node);
luigi_status luigi_sharded_restart(luigi_sharded_cluster *cluster, uint64_t node);
/* Crashes a coordinator: its transactions are finished by the shards alone,
 * never acknowledged; a new coordinator (new id) takes its clients. */
luigi_status luigi_sharded_crash_coordinator(luigi_sharded_cluster *cluster, uint32_t coordinator);
/* Cuts `nodes` off from every other node until heal. */
luigi_status luigi_sharded_partition(luigi_sharded_cluster *cluster, const uint64_t *nodes, size_t count);
luigi_status luigi_sharded_heal(luigi_sharded_cluster *cluster);
luigi_status luigi_sharded_set_faults(luigi_sharded_cluster *cluster, double drop, double duplicate,
                                      double reorder);
/* Checks every invariant of the run so far (the watermark protocol: log
 * matching, exactly once, watermark monotonicity and safety, ordering,
 * agreement, atomicity, serializability against a serial replay, ops
 * applied, durability of acknowledged transactions; the baseline: replicas
 * agree). Let followers catch up first (run_until_idle, then run a little).
 * *out_ok is 1, or 0 with the invariant's name and the evidence (UTF-8). */
luigi_status luigi_sharded_check(const luigi_sharded_cluster *cluster, int *out_ok, luigi_buffer *out_invariant,
                                 luigi_buffer *out_detail);
/* A transaction's fate: *out_outcome LUIGI_WM_PENDING until acknowledged;
 * then its agreed ts and what it read (the reads format above). */
luigi_status luigi_sharded_result(const luigi_sharded_cluster *cluster, const luigi_wm_txn_id *id,
                                  uint32_t *out_outcome, uint64_t *out_ts, luigi_buffer *out_reads);
/* A key's committed value on the shard's leader (else a live replica). */
luigi_status luigi_sharded_value(const luigi_sharded_cluster *cluster, uint64_t shard, const char *key,
                                 size_t key_len, int64_t *out_value, int *out_present);
luigi_status luigi_sharded_get_stats(const luigi_sharded_cluster *cluster, luigi_sharded_stats *out);

/* ---- the pure roles, for your own transport */

typedef struct luigi_wm_coordinator luigi_wm_coordinator;

#define LUIGI_WM_COORDINATOR_OPTIONS_VERSION 1
typedef struct luigi_wm_coordinator_options {
    uint32_t version;     /* LUIGI_WM_COORDINATOR_OPTIONS_VERSION */
    uint32_t rule;        /* LUIGI_RULE_* */
    uint64_t id;          /* this coordinator; shards must list it */
    uint32_t shard_count; /* 1..65536 */
    uint32_t workers;     /* streams per shard, 1..1024 */
    uint64_t headroom_us; /* added to the delay estimate (default 500) */
    uint64_t initial_delay_us; /* assumed one-way delay before samples (default 2000) */
    uint64_t retry_after_us;   /* re-send an unacknowledged submit (default 50000) */
    uint64_t retire_every_us;  /* send retire points (default 10000) */
} luigi_wm_coordinator_options;

void luigi_wm_coordinator_options_init(luigi_wm_coordinator_options *options);
luigi_status luigi_wm_coordinator_new(const luigi_wm_coordinator_options *options, luigi_wm_coordinator **out);
void luigi_wm_coordinator_free(luigi_wm_coordinator *coordinator);
/* now_us: this coordinator's clock (microseconds; never runs backwards). */
luigi_status luigi_wm_coordinator_submit(luigi_wm_coordinator *coordinator, const luigi_wm_op *ops, size_t count,
                                         uint32_t worker, uint64_t now_us, luigi_wm_txn_id *out_id);
/* A message from a shard (malformed or misaddressed: an error, nothing changes). */
luigi_status luigi_wm_coordinator_step(luigi_wm_coordinator *coordinator, const uint8_t *message, size_t len,
                                       uint64_t now_us);
luigi_status luigi_wm_coordinator_tick(luigi_wm_coordinator *coordinator, uint64_t now_us);
/* What to send since the last call (the messages format above). */
luigi_status luigi_wm_coordinator_take_messages(luigi_wm_coordinator *coordinator, luigi_buffer *out);
/* Transactions acknowledged since the last call (the completions format). */
luigi_status luigi_wm_coordinator_take_completions(luigi_wm_coordinator *coordinator, luigi_buffer *out);
/* Take over dead coordinators lowest..highest (a crashed one you replaced
 * with this one under a new id): on its timer this coordinator asks the
 * shards what they left, drives each transaction to its acknowledgement
 * (no completion is reported for them) and retires their streams, so their
 * records do not stay on the shards. Messages addressed to them are this
 * coordinator's to step. The shards must accept their ids. Refused: a
 * range holding this coordinator's id, lowest > highest, past 64 ranges. */
luigi_status luigi_wm_coordinator_adopt(luigi_wm_coordinator *coordinator, uint64_t lowest, uint64_t highest);
/* 1 until every coordinator it took over is done. */
luigi_status luigi_wm_coordinator_adopting(const luigi_wm_coordinator *coordinator, int *out_adopting);

typedef struct luigi_wm_shard luigi_wm_shard;

#define LUIGI_WM_SHARD_OPTIONS_VERSION 1
typedef struct luigi_wm_shard_options {
    uint32_t version;      /* LUIGI_WM_SHARD_OPTIONS_VERSION */
    uint32_t workers;      /* streams, 1..1024 */
    uint64_t shard;        /* this shard, below shard_count */
    uint32_t shard_count;  /* 1..65536 */
    uint32_t coordinator_count;
    const uint64_t *coordinators; /* coordinator ids (copied) */
    uint64_t resend_after_us;     /* re-send proposals, votes, recovery asks (default 10000) */
    uint64_t marks_every_us;      /* push watermarks at least this often (default 1000) */
} luigi_wm_shard_options;

void luigi_wm_shard_options_init(luigi_wm_shard_options *options);
luigi_status luigi_wm_shard_new(const luigi_wm_shard_options *options, luigi_wm_shard **out);
void luigi_wm_shard_free(luigi_wm_shard *shard);
/* After each round of your shard's Raft node: does it lead, in which term. */
luigi_status luigi_wm_shard_set_role(luigi_wm_shard *shard, int leader, uint64_t term);
/* Each committed entry of the shard's Raft group, in order, with its term
 * (no-op and foreign entries are fine: they are ignored alike everywhere). */
luigi_status luigi_wm_shard_apply(luigi_wm_shard *shard, const uint8_t *entry, size_t len, uint64_t term,
                                  uint64_t now_us);
luigi_status luigi_wm_shard_step(luigi_wm_shard *shard, const uint8_t *message, size_t len, uint64_t now_us);
luigi_status luigi_wm_shard_tick(luigi_wm_shard *shard, uint64_t now_us);
/* Since the last call: messages to send (the messages format) and records
 * to propose to the shard's Raft group (u32 length, record; in order). */
luigi_status luigi_wm_shard_take_output(luigi_wm_shard *shard, luigi_buffer *out_messages,
                                        luigi_buffer *out_records);
/* A key's value in the shard's replicated (committed) state. */
luigi_status luigi_wm_shard_value(const luigi_wm_shard *shard, const char *key, size_t key_len, int64_t *out_value,
                                  int *out_present);
/* 1 while it leads, has applied its log and has recovered: it serves. */
luigi_status luigi_wm_shard_serving(const luigi_wm_shard *shard, int *out_serving);
/* Transaction records its committed state holds (retire points drop them). */
luigi_status luigi_wm_shard_records(const luigi_wm_shard *shard, uint64_t *out_records);


/* ---- Client of a luigi-node cluster (TCP) -------------------------------
 *
 * A luigi_client talks to the nodes of a running cluster (`luigi-node
 * serve`) over TCP: linearizable put/get/delete/cas on a key-value Raft
 * group. Blocking calls with plain sockets; no threads of its own.
 *
 *  - Connecting: every connection proves knowledge of the cluster secret
 *    and id (HMAC-SHA256 challenge-response both ways; the secret never
 *    crosses the wire). When every endpoint refuses the credentials, or a
 *    node cannot prove it knows the secret, calls return LUIGI_ERR_AUTH.
 *  - Leader discovery: a call goes to the group's last known leader (at
 *    first the endpoints in turn); a node that does not lead names the
 *    leader and the client follows it, across failovers.
 *  - Exactly once: before its first write to a group the client opens a
 *    session there; every write carries (session, sequence number), and a
 *    retry after a timeout, a lost connection or a failover reuses it, so a
 *    write is applied at most once.
 *  - Deadlines: `timeout_ms` (1..600000; 0 takes the client's default) bounds
 *    each call. Past it the call returns LUIGI_ERR_TIMEOUT and the outcome of
 *    a write is unknown (it may still apply, once).
 *  - Groups: `group` 0 takes the client's default group; a group the nodes
 *    do not run times out (LUIGI_ERR_TIMEOUT).
 *  - Limits: keys 1..4096 bytes of UTF-8; values up to 8 MiB; else
 *    LUIGI_ERR_INVALID_ARGUMENT before anything is sent.
 *
 * Thread-safety: one thread at a time per luigi_client (a call holds its
 * connections); use one client per thread for parallel calls.
 */

typedef struct luigi_client luigi_client;

#define LUIGI_CLIENT_OPTIONS_VERSION 1
#define LUIGI_CLIENT_MAX_KEY     4096
#define LUIGI_CLIENT_MAX_VALUE   8388608   /* 8 MiB */

typedef struct luigi_client_options {
    uint32_t version;            /* LUIGI_CLIENT_OPTIONS_VERSION */
    const char *cluster_id;      /* UTF-8, 1..255 bytes, no NUL */
    size_t cluster_id_len;
    const uint8_t *secret;       /* at least 16 bytes */
    size_t secret_len;
    uint32_t timeout_ms;         /* default per-call deadline; 0 = 5000 */
    uint64_t group;              /* default group; 0 = 1 */
} luigi_client_options;

/* `endpoints` is a comma-separated list of host:port (e.g.
 * "127.0.0.1:7001,127.0.0.1:7002"). Nothing connects until the first call. */
luigi_status luigi_client_new(const char *endpoints, size_t endpoints_len,
                              const luigi_client_options *options,
                              luigi_client **out);
void luigi_client_free(luigi_client *client);

luigi_status luigi_client_put(luigi_client *client, uint64_t group,
                              const char *key, size_t key_len,
                              const uint8_t *value, size_t value_len,
                              uint32_t timeout_ms);
/* *out_found = 1 and the value in *out_value, or *out_found = 0 and an
 * empty buffer when the key is absent. Free the buffer with luigi_buffer_free. */
luigi_status luigi_client_get(luigi_client *client, uint64_t group,
                              const char *key, size_t key_len,
                              uint32_t timeout_ms, int *out_found,
                              luigi_buffer *out_value);
/* *out_existed = 1 when the key was there. */
luigi_status luigi_client_delete(luigi_client *client, uint64_t group,
                                 const char *key, size_t key_len,
                                 uint32_t timeout_ms, int *out_existed);
/* Sets `new_value` when the current value equals `expected` (expected NULL
 * with length 0: the key must be absent). *out_swapped = 1 when it did. */
luigi_status luigi_client_cas(luigi_client *client, uint64_t group,
                              const char *key, size_t key_len,
                              const uint8_t *expected, size_t expected_len,
                              const uint8_t *new_value, size_t new_value_len,
                              uint32_t timeout_ms, int *out_swapped);
/* One node's status document (JSON, as its HTTP /status serves it). */
luigi_status luigi_client_status(luigi_client *client, uint32_t timeout_ms,
                                 luigi_buffer *out_json);


/* Replica groups through the client. A node started with
 * `--replica-groups n` runs groups LUIGI_REPLICA_GROUP_BASE + 1 ... + n:
 * algebraic replicas that commit on the node a client reaches and spread by
 * anti-entropy, plus a Raft log per group for coordinated transactions.
 *
 * A luigi_ops is a transaction's ops, built by the caller (nothing is sent
 * until luigi_client_commit/coordinate; the node merges ops on one key as a
 * luigi_txn does). A second type on one key, NaN, a key outside 1..4096
 * bytes or more than 10000 ops is refused when the op is added
 * (LUIGI_ERR_TYPE_CONFLICT / LUIGI_ERR_INVALID_ARGUMENT), and the list is
 * unchanged. Thread-safety: one thread at a time. */
#define LUIGI_REPLICA_GROUP_BASE 1000

typedef struct luigi_ops luigi_ops;

luigi_status luigi_ops_new(luigi_ops **out);
void luigi_ops_free(luigi_ops *ops);
luigi_status luigi_ops_add(luigi_ops *ops, const char *key, size_t key_len, int64_t delta);
luigi_status luigi_ops_max_int(luigi_ops *ops, const char *key, size_t key_len, int64_t value);
luigi_status luigi_ops_max_float(luigi_ops *ops, const char *key, size_t key_len, double value);
luigi_status luigi_ops_min_int(luigi_ops *ops, const char *key, size_t key_len, int64_t value);
luigi_status luigi_ops_min_float(luigi_ops *ops, const char *key, size_t key_len, double value);
luigi_status luigi_ops_union_int(luigi_ops *ops, const char *key, size_t key_len, int64_t element);
luigi_status luigi_ops_union_str(luigi_ops *ops, const char *key, size_t key_len,
                                 const char *element, size_t element_len);
luigi_status luigi_ops_union_bytes(luigi_ops *ops, const char *key, size_t key_len,
                                   const uint8_t *element, size_t element_len);
/* Makes `key` a SET (an empty one if new) without adding an element. */
luigi_status luigi_ops_union_empty(luigi_ops *ops, const char *key, size_t key_len);
/* Overwrites a REGISTER: only luigi_client_coordinate takes ops with a set. */
luigi_status luigi_ops_set_int(luigi_ops *ops, const char *key, size_t key_len, int64_t value);
luigi_status luigi_ops_set_float(luigi_ops *ops, const char *key, size_t key_len, double value);
luigi_status luigi_ops_count(const luigi_ops *ops, size_t *out_count);

/* Commits `ops` without coordination on the first node that answers; the
 * update's dot is (*out_origin, *out_seq). LUIGI_ERR_NOT_ALGEBRAIC for a
 * set, LUIGI_ERR_TYPE_CONFLICT / LUIGI_ERR_OVERFLOW as that node's replica
 * judges (a node that has not yet seen another node's update may accept a
 * conflicting type: replicas converge by their deterministic rule). Sent
 * once: if the node received it but did not answer, LUIGI_ERR_TIMEOUT, and
 * the transaction may have committed; a node that refuses it (no such
 * group, shutting down) gives LUIGI_ERR_STATE and nothing was committed. */
luigi_status luigi_client_commit(luigi_client *client, uint64_t group, const luigi_ops *ops,
                                 uint32_t timeout_ms, uint64_t *out_origin, uint64_t *out_seq);
/* Commits `ops` (sets allowed) through the group's log: every replica
 * applies it at the same position, once per call (retries reuse its id).
 * LUIGI_ERR_TYPE_CONFLICT when every replica rejects it. */
luigi_status luigi_client_coordinate(luigi_client *client, uint64_t group, const luigi_ops *ops,
                                     uint32_t timeout_ms);
/* A key's value in one node's replica: `endpoint` (host:port; NULL with
 * length 0 for the first node that answers). For a SET, *out_elements
 * holds the elements as luigi_replica_set_elements lays them out (else it
 * is empty); free it with luigi_buffer_free. With an endpoint, a node that
 * cannot answer (down, or not running the group) gives LUIGI_ERR_STATE;
 * without one, the call tries the nodes until its deadline (then
 * LUIGI_ERR_TIMEOUT). */
luigi_status luigi_client_value(luigi_client *client, uint64_t group, const char *key,
                                size_t key_len, const char *endpoint, size_t endpoint_len,
                                uint32_t timeout_ms, luigi_value *out,
                                luigi_buffer *out_elements);

/* Sharded transactions through the client. A node started with
 * `--shards n` runs watermark shards 0..n-1 (shard s is Raft group 2001 + s
 * on every node) and coordinates the transactions it receives. `ops` are
 * luigi_wm_op as luigi_sharded_submit takes them (a shard's ops run in the
 * order given); they commit atomically across their shards at the agreed
 * timestamp *out_ts (microseconds). *out_outcome is LUIGI_WM_COMMITTED, or
 * LUIGI_WM_ABORTED when a check failed or an add would overflow: nothing
 * was written, and that is not an error. *out_reads holds what the ops
 * read, in the reads format above; free it with luigi_buffer_free.
 * LUIGI_ERR_INVALID_ARGUMENT before anything is sent for count 0, reserved
 * != 0, an unknown kind, a key that is not UTF-8 or over 1024 bytes, more
 * than 4096 ops on a shard or 16384 in all; and from the node for a shard
 * >= its shard count. A node that runs no shards gives LUIGI_ERR_STATE.
 * Sent once, like luigi_client_commit: if the node received it but did not
 * answer within the deadline, LUIGI_ERR_TIMEOUT, and the transaction may
 * have committed. */
luigi_status luigi_client_transact(luigi_client *client, const luigi_wm_op *ops, size_t count,
                                   uint32_t timeout_ms, uint32_t *out_outcome, uint64_t *out_ts,
                                   luigi_buffer *out_reads);

/* Membership of `group` (0: the default group). add: records the node's
 * address in the group's log, then makes it a voter; remove: drops it.
 * Both return once the change applied on the leader, and are idempotent.
 * Start the new node with `luigi-node serve --join` first. */
luigi_status luigi_client_add_member(luigi_client *client, uint64_t group, uint64_t node_id,
                                     const char *address, size_t address_len,
                                     uint32_t timeout_ms);
luigi_status luigi_client_remove_member(luigi_client *client, uint64_t group, uint64_t node_id,
                                        uint32_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* LUIGI_H */
