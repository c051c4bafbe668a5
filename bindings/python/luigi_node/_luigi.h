/*
 * _luigi.h — internal header of the CPython extension behind luigi_node.
 *
 * Written against Include/luigi.h only. Shape:
 *  - multi-phase init (PyModuleDef_Init + Py_mod_exec), heap types created
 *    with PyType_FromModuleAndSpec, all per-module data in the module state
 *    (the types, the exception classes imported from luigi_node._errors and
 *    luigi_node.CausalOrder);
 *  - the types are final (no Py_TPFLAGS_BASETYPE), so the module state is
 *    always reachable as PyType_GetModuleState(Py_TYPE(self));
 *  - one function, raise_status(), maps a luigi_status (plus
 *    luigi_last_error_message()) to an exception; none_or_raise(),
 *    u64_or_raise() and friends end a call with its result or that exception;
 *  - every luigi handle is owned by exactly one Python object and freed in
 *    its tp_dealloc.
 *
 * Threads. luigi.h lets distinct handles be used from different threads but
 * forbids using one replica (together with the cluster that owns it) from two
 * threads at once. Long calls (cluster runs, apply_many) release the GIL, so
 * every call touching a replica, a transaction or a cluster takes a lock:
 * a standalone Replica owns one, a Replica obtained from a SimulatedCluster
 * and every Transaction use the lock of their owner. Rule kept throughout:
 * while holding such a lock we never allocate or release Python objects (so
 * no Python code, finalizer or GC can run and re-enter the same lock); we
 * call the library, unlock, and only then build Python results. WITH_LOCK and
 * WITH_LOCK_NOGIL (the latter for the long calls) wrap exactly that.
 * VectorClock and Update objects never release the GIL, so the GIL alone
 * serialises them.
 *
 * Raft. A RaftNode owns a lock that also guards the ready batches it hands
 * out; a Ready keeps its node alive and frees its batch under that lock.
 * RaftNode.ready() persists (and, durable, fsyncs) with the GIL released, so
 * it copies the batch into C memory while holding the lock and builds the
 * Python objects (Entry, tuples, bytes) only after releasing it. A
 * RaftCluster owns one lock; its long calls (tick, stabilize, put, get,
 * delete, cas, ...) hold it with the GIL released. Committed entries reach
 * Python only through these return values, on the calling thread: the
 * library never calls into Python.
 *
 * Table log. A TableLog keeps its RaftCluster alive and uses its lock: every
 * call runs the cluster (reads go through ReadIndex), so each holds the lock
 * with the GIL released. Its arguments (DataFile and CommitRequest fields)
 * are first copied into C arrays that borrow the UTF-8 and bytes of objects
 * an owner list keeps alive, so nothing Python is touched while the lock is
 * held.
 *
 * Watermark commit. A ShardedCluster owns one lock, held with the GIL
 * released around its long calls (run, run_until_idle, check). The pure
 * roles (WatermarkCoordinator, WatermarkShard) never release the GIL (every
 * call is short), so, like VectorClock, the GIL alone serialises them.
 *
 * Client. A Client (the TCP client of a luigi-node cluster) owns one lock,
 * held with the GIL released around every call: each blocks on the network,
 * and luigi.h allows one thread at a time per client. close() takes the
 * lock too, so it never frees the handle under a call.
 *
 * Files (this header holds what more than one of them needs; every function
 * shared between files is LUIGI_INTERNAL, so the extension exports only
 * PyInit__luigi):
 *  - _luigi_common.c: raise_status and friends, argument conversions, locks,
 *    buffers;
 *  - _luigi_clock.c: VectorClock;  _luigi_update.c: Update (and lists of them);
 *  - _luigi_replica.c: Replica and Transaction;
 *  - _luigi_cluster.c: SimulatedCluster;
 *  - _luigi_raft.c: RaftNode, Ready, and the helpers RaftCluster shares;
 *  - _luigi_raft_cluster.c: RaftCluster;  _luigi_meta.c: TableLog (the table
 *    log over a RaftCluster(state_machine="tables"));
 *  - _luigi_watermark.c: what the watermark types share (op tuples, ids,
 *    the byte formats of luigi.h, string options);
 *  - _luigi_sharded.c: ShardedCluster;  _luigi_wm_roles.c: WatermarkCoordinator
 *    and WatermarkShard;
 *  - _luigi_client.c: Client (the TCP client of a luigi-node cluster);
 *  - _luigi_module.c: the module state's lifecycle, type creation, PyInit.
 */
#ifndef LUIGI_NODE_INTERNAL_H
#define LUIGI_NODE_INTERNAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "luigi.h"

/* Functions and tables shared between the extension's files: hidden, so the
 * shared object exports only PyInit__luigi. */
#define LUIGI_INTERNAL __attribute__((visibility("hidden")))

/* ------------------------------------------------------------ compat */

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *
compat_new_ref(PyObject *o)
{
    Py_INCREF(o);
    return o;
}
#define Py_NewRef(o) compat_new_ref((PyObject *)(o))
#endif

#if PY_VERSION_HEX >= 0x030A0000
#define LUIGI_TPFLAGS (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE)
#else
#define LUIGI_TPFLAGS Py_TPFLAGS_DEFAULT
#endif

/* Cast any C function to PyCFunction without -Wcast-function-type noise. */
#define FUNC(f) ((PyCFunction)(void (*)(void))(f))

/* ------------------------------------------------------------ module state */

typedef struct {
    PyTypeObject *VectorClockType;
    PyTypeObject *UpdateType;
    PyTypeObject *ReplicaType;
    PyTypeObject *TransactionType;
    PyTypeObject *ClusterType;
    PyTypeObject *RaftNodeType;
    PyTypeObject *ReadyType;
    PyTypeObject *RaftClusterType;
    PyTypeObject *ShardedClusterType;
    PyTypeObject *WmCoordinatorType;
    PyTypeObject *WmShardType;
    PyTypeObject *TableLogType;
    PyTypeObject *ClientType;
    PyObject *LuigiError;
    PyObject *LuigiValueError;
    PyObject *InvalidHandleError;
    PyObject *DecodeError;
    PyObject *NotAlgebraicError;
    PyObject *TypeConflictError;
    PyObject *LuigiOverflowError;
    PyObject *TransactionStateError;
    PyObject *NotConvergedError;
    PyObject *LuigiIndexError;
    PyObject *LuigiIOError;
    PyObject *LuigiTimeoutError;
    PyObject *ConflictError;
    PyObject *AuthError;
    PyObject *NotLinearizableError;
    PyObject *InvariantViolation;
    PyObject *CausalOrder;
    PyObject *EntryType;      /* luigi_node._raft.Entry (a frozen dataclass) */
    PyObject *RaftStatusType; /* luigi_node._raft.RaftStatus (a frozen dataclass) */
    PyObject *decode_history; /* luigi_node._raft.decode_history */
    PyObject *HardStateType;  /* luigi_node._raft.HardState (a frozen dataclass) */
    PyObject *role_names[4];  /* interned "follower", ... indexed by LUIGI_ROLE_* */
    PyObject *entry_kinds[2]; /* interned "normal", "conf_change" by LUIGI_ENTRY_* */
    PyObject *TxnIdType;      /* luigi_node._watermark.TxnId (a NamedTuple) */
    PyObject *TxnResultType;  /* luigi_node._watermark.TxnResult (a NamedTuple) */
    PyObject *DataFileType;      /* luigi_node._tablelog.DataFile (a frozen dataclass) */
    PyObject *TableVersionType;  /* luigi_node._tablelog.TableVersion (a frozen dataclass) */
    PyObject *CommitRequestType; /* luigi_node._tablelog.CommitRequest (a frozen dataclass) */
    PyObject *json_loads;        /* json.loads (Client.status) */
} module_state;

static inline module_state *
state_of(PyObject *self)
{
    return (module_state *)PyType_GetModuleState(Py_TYPE(self));
}

static inline module_state *
state_of_type(PyTypeObject *type)
{
    return (module_state *)PyType_GetModuleState(type);
}

/* ---------------------------------------- errors (_luigi_common.c) */

LUIGI_INTERNAL PyObject *status_exception(module_state *st, luigi_status status,
                                          const char *message, const uint64_t *latest);
LUIGI_INTERNAL PyObject *raise_status_message(module_state *st, luigi_status status,
                                              const char *message);
LUIGI_INTERNAL PyObject *raise_status(module_state *st, luigi_status status);
LUIGI_INTERNAL PyObject *raise_status_latest(module_state *st, luigi_status status,
                                             const uint64_t *latest);

/* The usual ends of a call: its result when `s` is LUIGI_OK, else the
 * exception for `s`. */
static inline PyObject *
none_or_raise(module_state *st, luigi_status s)
{
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    Py_RETURN_NONE;
}

static inline PyObject *
u64_or_raise(module_state *st, luigi_status s, uint64_t v)
{
    return s != LUIGI_OK ? raise_status(st, s) : PyLong_FromUnsignedLongLong(v);
}

static inline PyObject *
size_or_raise(module_state *st, luigi_status s, size_t n)
{
    return s != LUIGI_OK ? raise_status(st, s) : PyLong_FromSize_t(n);
}

static inline PyObject *
bool_or_raise(module_state *st, luigi_status s, int flag)
{
    return s != LUIGI_OK ? raise_status(st, s) : PyBool_FromLong(flag != 0);
}

/* For C-level callers and int/Py_ssize_t slots: 0, or -1 with the exception set. */
static inline int
ok_or_raise(module_state *st, luigi_status s)
{
    if (s != LUIGI_OK) {
        raise_status(st, s);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ locks */

static inline int
lock_acquire(PyThread_type_lock lock)
{
    if (!PyThread_acquire_lock(lock, NOWAIT_LOCK)) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(lock, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
    return 0;
}

static inline void
lock_release(PyThread_type_lock lock)
{
    PyThread_release_lock(lock);
}

/* Runs `stmt` (a library call: no Python objects) with `lock` held. */
#define WITH_LOCK(lock, stmt)    \
    do {                         \
        lock_acquire(lock);      \
        stmt;                    \
        lock_release(lock);      \
    } while (0)

/* Runs `stmt` (a long library call) with `lock` held and the GIL released. */
#define WITH_LOCK_NOGIL(lock, stmt) \
    do {                            \
        lock_acquire(lock);         \
        Py_BEGIN_ALLOW_THREADS      \
        stmt;                       \
        lock_release(lock);         \
        Py_END_ALLOW_THREADS        \
    } while (0)

LUIGI_INTERNAL int new_lock(PyThread_type_lock *out);
LUIGI_INTERNAL void free_lock(PyThread_type_lock *lock);

/* ---------------------------------------- objects (_luigi_common.c) */

LUIGI_INTERNAL void free_instance(void *self);
LUIGI_INTERNAL PyObject *raise_and_drop(module_state *st, luigi_status s, void *self);

/* A Py_buffer as the (pointer, length) pair the library takes. */
#define VIEW_DATA(view) (const uint8_t *)(view).buf, (size_t)(view).len

/* ---------------------------------------- conversions (_luigi_common.c) */

LUIGI_INTERNAL int as_u64(module_state *st, PyObject *obj, const char *what, uint64_t *out);
LUIGI_INTERNAL int as_i64(module_state *st, PyObject *obj, const char *what, int64_t *out);
LUIGI_INTERNAL int as_u32(module_state *st, PyObject *obj, const char *what, uint32_t *out);
LUIGI_INTERNAL int opt_u64(module_state *st, PyObject *obj, const char *what, uint64_t *out);
LUIGI_INTERNAL int opt_u32(module_state *st, PyObject *obj, const char *what, uint32_t *out);
LUIGI_INTERNAL int as_key(PyObject *obj, const char **data, size_t *len);
LUIGI_INTERNAL int collect_ids(module_state *st, PyObject *iterable, const char *what,
                               uint64_t **out, size_t *count);
LUIGI_INTERNAL PyObject *int128_to_long(int64_t hi, uint64_t lo);
LUIGI_INTERNAL int read_chunk(const uint8_t *p, size_t n, size_t *i, const uint8_t **data,
                              size_t *len);
LUIGI_INTERNAL PyObject *malformed_buffer(module_state *st, const char *what);
LUIGI_INTERNAL PyObject *take_buffer(module_state *st, luigi_status s, luigi_buffer *buf);

static inline uint32_t
read_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline uint64_t
read_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* ======================================== VectorClock (_luigi_clock.c) */

typedef struct {
    PyObject_HEAD
    luigi_clock *clock;
} VectorClockObject;

LUIGI_INTERNAL PyObject *wrap_clock(module_state *st, luigi_status s, luigi_clock *clock);
LUIGI_INTERNAL int check_clock(module_state *st, PyObject *obj);

/* ======================================== Update (_luigi_update.c) */

typedef struct {
    PyObject_HEAD
    luigi_update *update;
    PyObject *encoded; /* cached to_bytes(), NULL until first needed */
} UpdateObject;

LUIGI_INTERNAL PyObject *wrap_update(module_state *st, luigi_status s, luigi_update *update);
LUIGI_INTERNAL int check_update(module_state *st, PyObject *obj);
LUIGI_INTERNAL luigi_update_list *collect_updates(module_state *st, PyObject *updates);
LUIGI_INTERNAL PyObject *update_list_to_pylist(module_state *st, luigi_update_list *list);

/* ======================================== SimulatedCluster (_luigi_cluster.c) */

typedef struct {
    PyObject_HEAD
    luigi_cluster *cluster;
    PyThread_type_lock lock; /* guards the cluster and every replica it owns */
    size_t size;
} ClusterObject;

/* ======================================== Replica (_luigi_replica.c) */

typedef struct {
    PyObject_HEAD
    luigi_replica *replica;
    PyThread_type_lock lock;     /* effective lock: own_lock or the cluster's */
    PyThread_type_lock own_lock; /* NULL when the replica belongs to a cluster */
    PyObject *cluster;           /* the owning SimulatedCluster, kept alive */
} ReplicaObject;

LUIGI_INTERNAL PyObject *wrap_replica(module_state *st, luigi_status s, luigi_replica *replica,
                                      PyObject *cluster);

/* ======================================== Transaction (_luigi_replica.c) */

/* Transaction objects: Replica.transaction() makes them. */
typedef enum { TXN_OPEN = 0, TXN_COMMITTED = 1, TXN_DISCARDED = 2, TXN_PROPOSED = 3 } txn_state;

typedef struct {
    PyObject_HEAD
    luigi_txn *txn;         /* NULL once committed, proposed or discarded */
    ReplicaObject *replica; /* strong reference */
    PyObject *update;       /* the committed Update, or NULL */
    txn_state state;
    uint64_t proposed_index; /* TXN_PROPOSED: its log index */
    size_t proposed_ops;     /* TXN_PROPOSED: how many ops it held */
} TransactionObject;

LUIGI_INTERNAL int txn_check_open(module_state *st, TransactionObject *self);

/* ======================================== Raft: shared (_luigi_raft.c) */

LUIGI_INTERNAL void raft_status_init(luigi_raft_status *status);
LUIGI_INTERNAL PyObject *make_raft_status(module_state *st, luigi_status rc,
                                          const luigi_raft_status *s);
LUIGI_INTERNAL int get_bytes(PyObject *obj, Py_buffer *view);
LUIGI_INTERNAL int get_path(PyObject *obj, PyObject **out);

/* ======================================== RaftCluster (_luigi_raft_cluster.c) */

#define STATE_MACHINE_KV     0 /* luigi_raft_cluster_new: the key-value store */
#define STATE_MACHINE_TABLES 1 /* luigi_meta_cluster_new: the table log */

typedef struct {
    PyObject_HEAD
    luigi_raft_cluster *cluster;
    PyThread_type_lock lock; /* guards the cluster (a TableLog over it uses it too) */
    uint32_t state_machine;  /* STATE_MACHINE_* */
} RaftClusterObject;

/* ======================================== watermark: shared (_luigi_watermark.c) */

/* A transaction's ops as the library takes them. `owner` (a tuple copy of
 * the caller's sequence, whose items are tuples) keeps every key's UTF-8
 * alive and unchanged, so the array stays valid while the GIL is released. */
typedef struct {
    PyObject *owner;
    luigi_wm_op *ops;
    size_t count;
} wm_ops;

LUIGI_INTERNAL int wm_collect_ops(module_state *st, PyObject *seq, wm_ops *out);
LUIGI_INTERNAL void wm_release_ops(wm_ops *ops);
LUIGI_INTERNAL int wm_choose(module_state *st, PyObject *obj, const char *what,
                             const char *const *names, uint32_t count, uint32_t *out);
LUIGI_INTERNAL int wm_rule(module_state *st, PyObject *obj, uint32_t *out);
LUIGI_INTERNAL int wm_opt_u64(module_state *st, PyObject *obj, const char *what, uint64_t *out);
LUIGI_INTERNAL PyObject *wm_txn_id(module_state *st, const luigi_wm_txn_id *id);
LUIGI_INTERNAL int wm_as_txn_id(module_state *st, PyObject *obj, luigi_wm_txn_id *out);
LUIGI_INTERNAL PyObject *wm_reads(module_state *st, const uint8_t *p, size_t n, size_t *i,
                                  size_t count);
LUIGI_INTERNAL PyObject *wm_messages(module_state *st, const luigi_buffer *buf);
LUIGI_INTERNAL PyObject *wm_completions(module_state *st, const luigi_buffer *buf);
LUIGI_INTERNAL PyObject *wm_records(module_state *st, const luigi_buffer *buf);

/* ======================================== type specs (_luigi_module.c creates the types) */

LUIGI_INTERNAL extern PyType_Spec VectorClock_spec;   /* _luigi_clock.c */
LUIGI_INTERNAL extern PyType_Spec Update_spec;        /* _luigi_update.c */
LUIGI_INTERNAL extern PyType_Spec Replica_spec;       /* _luigi_replica.c */
LUIGI_INTERNAL extern PyType_Spec Transaction_spec;   /* _luigi_replica.c */
LUIGI_INTERNAL extern PyType_Spec Cluster_spec;       /* _luigi_cluster.c */
LUIGI_INTERNAL extern PyType_Spec RaftNode_spec;      /* _luigi_raft.c */
LUIGI_INTERNAL extern PyType_Spec Ready_spec;         /* _luigi_raft.c */
LUIGI_INTERNAL extern PyType_Spec RaftCluster_spec;   /* _luigi_raft_cluster.c */
LUIGI_INTERNAL extern PyType_Spec ShardedCluster_spec; /* _luigi_sharded.c */
LUIGI_INTERNAL extern PyType_Spec WmCoordinator_spec;  /* _luigi_wm_roles.c */
LUIGI_INTERNAL extern PyType_Spec WmShard_spec;        /* _luigi_wm_roles.c */
LUIGI_INTERNAL extern PyType_Spec TableLog_spec;      /* _luigi_meta.c */
LUIGI_INTERNAL extern PyType_Spec Client_spec;        /* _luigi_client.c */

#endif /* LUIGI_NODE_INTERNAL_H */
