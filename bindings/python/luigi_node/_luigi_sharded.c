/* _luigi_sharded.c — luigi_node.ShardedCluster (luigi_sharded_*). */

#include "_luigi.h"

/* Option names; each one's index is its code in luigi.h. */
static const char *const protocol_names[2] = {"watermark", "2pc"};
static const char *const profile_names[4] = {"same-region", "same-continent", "cross-continent",
                                             "geo"};
static const char *const workload_names[3] = {"micro", "bank", "tpcc"};
_Static_assert(LUIGI_PROTOCOL_WATERMARK == 0 && LUIGI_PROTOCOL_2PC == 1, "protocol codes");
_Static_assert(LUIGI_PROFILE_SAME_REGION == 0 && LUIGI_PROFILE_SAME_CONTINENT == 1 &&
                   LUIGI_PROFILE_CROSS_CONTINENT == 2 && LUIGI_PROFILE_GEO == 3,
               "profile codes");
_Static_assert(LUIGI_WORKLOAD_MICRO == 0 && LUIGI_WORKLOAD_BANK == 1 && LUIGI_WORKLOAD_TPCC == 2,
               "workload codes");

typedef struct {
    PyObject_HEAD
    luigi_sharded_cluster *cluster;
    PyThread_type_lock lock; /* guards the cluster */
} ShardedClusterObject;

#define CLUSTER(op) (((ShardedClusterObject *)(op))->cluster)
#define LOCK(op) (((ShardedClusterObject *)(op))->lock)

static PyObject *
ShardedCluster_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"shards", "replicas", "workers", "coordinators", "seed", "profile",
                             "skew_us", "drift_ppm", "drop", "duplicate", "reorder", "protocol",
                             "rule", "window", NULL};
    module_state *st = state_of_type(type);
    PyObject *shards = NULL, *replicas = NULL, *workers = NULL, *coordinators = NULL;
    PyObject *seed = NULL, *profile = NULL, *skew = NULL, *protocol = NULL, *rule = NULL;
    PyObject *window = NULL;
    luigi_sharded_options o;
    luigi_sharded_options_init(&o);
    o.version = LUIGI_SHARDED_OPTIONS_VERSION;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$OOOOOOOddddOOO:ShardedCluster", kwlist,
                                     &shards, &replicas, &workers, &coordinators, &seed, &profile,
                                     &skew, &o.drift_ppm, &o.drop_rate, &o.duplicate_rate,
                                     &o.reorder_rate, &protocol, &rule, &window)) {
        return NULL;
    }
    if (opt_u32(st, shards, "shards", &o.shards) < 0 ||
        opt_u32(st, replicas, "replicas", &o.replicas) < 0 ||
        opt_u32(st, workers, "workers", &o.workers) < 0 ||
        opt_u32(st, coordinators, "coordinators", &o.coordinators) < 0 ||
        opt_u64(st, seed, "seed", &o.seed) < 0 ||
        (profile != NULL && wm_choose(st, profile, "profile", profile_names, 4, &o.profile) < 0) ||
        opt_u64(st, skew, "skew_us", &o.skew_us) < 0 ||
        (protocol != NULL &&
         wm_choose(st, protocol, "protocol", protocol_names, 2, &o.protocol) < 0) ||
        wm_rule(st, rule, &o.rule) < 0 || opt_u32(st, window, "window", &o.window) < 0) {
        return NULL;
    }
    /* Object and lock first: on any later failure tp_dealloc frees what exists. */
    ShardedClusterObject *self = (ShardedClusterObject *)type->tp_alloc(type, 0);
    if (self == NULL || new_lock(&self->lock) < 0) {
        Py_XDECREF(self);
        return NULL;
    }
    luigi_status s = luigi_sharded_new(&o, &self->cluster);
    if (s != LUIGI_OK) {
        return raise_and_drop(st, s, self);
    }
    return (PyObject *)self;
}

static void
ShardedCluster_dealloc(ShardedClusterObject *self)
{
    luigi_sharded_free(self->cluster);
    self->cluster = NULL;
    free_lock(&self->lock);
    free_instance(self);
}

static PyObject *
ShardedCluster_submit(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ops", "coordinator", "worker", NULL};
    module_state *st = state_of(op);
    PyObject *ops_obj, *coordinator_obj = NULL, *worker_obj = NULL;
    uint32_t coordinator = 0, worker = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OO:submit", kwlist, &ops_obj,
                                     &coordinator_obj, &worker_obj) ||
        opt_u32(st, coordinator_obj, "coordinator", &coordinator) < 0 ||
        opt_u32(st, worker_obj, "worker", &worker) < 0) {
        return NULL;
    }
    wm_ops ops;
    if (wm_collect_ops(st, ops_obj, &ops) < 0) {
        return NULL;
    }
    luigi_wm_txn_id id;
    luigi_status s;
    WITH_LOCK(LOCK(op), s = luigi_sharded_submit(CLUSTER(op), ops.ops, ops.count, coordinator,
                                                 worker, &id));
    wm_release_ops(&ops);
    return s != LUIGI_OK ? raise_status(st, s) : wm_txn_id(st, &id);
}

static PyObject *
ShardedCluster_load(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"workload", "count", "cross_shard", NULL};
    module_state *st = state_of(op);
    PyObject *workload_obj, *count_obj;
    double cross_shard = 0.5;
    uint32_t workload;
    uint64_t count;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|$d:load", kwlist, &workload_obj, &count_obj,
                                     &cross_shard) ||
        wm_choose(st, workload_obj, "workload", workload_names, 3, &workload) < 0 ||
        as_u64(st, count_obj, "count", &count) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(LOCK(op), s = luigi_sharded_load(CLUSTER(op), workload, count, cross_shard));
    return none_or_raise(st, s);
}

static PyObject *
ShardedCluster_run(PyObject *op, PyObject *us_obj)
{
    module_state *st = state_of(op);
    uint64_t us;
    if (as_u64(st, us_obj, "us", &us) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK_NOGIL(LOCK(op), s = luigi_sharded_run(CLUSTER(op), us));
    return none_or_raise(st, s);
}

static PyObject *
ShardedCluster_run_until_idle(PyObject *op, PyObject *limit_obj)
{
    module_state *st = state_of(op);
    uint64_t limit;
    if (as_u64(st, limit_obj, "limit_us", &limit) < 0) {
        return NULL;
    }
    int idle = 0;
    luigi_status s;
    WITH_LOCK_NOGIL(LOCK(op), s = luigi_sharded_run_until_idle(CLUSTER(op), limit, &idle));
    return bool_or_raise(st, s, idle);
}

static PyObject *
ShardedCluster_replicas(PyObject *op, PyObject *shard_obj)
{
    module_state *st = state_of(op);
    uint64_t shard;
    if (as_u64(st, shard_obj, "shard", &shard) < 0) {
        return NULL;
    }
    uint64_t ids[16]; /* a shard has at most 9 replicas (luigi_sharded_options) */
    size_t count = 0;
    luigi_status s;
    WITH_LOCK(LOCK(op), s = luigi_sharded_replicas(CLUSTER(op), shard, ids, 16, &count));
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *list = PyList_New((Py_ssize_t)count);
    for (size_t i = 0; list != NULL && i < count; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(ids[i]);
        if (v == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, v);
    }
    return list;
}

/* leader(shard) and crash_leader(shard): a shard in, a node id out. */
static PyObject *
shard_to_node(PyObject *op, PyObject *shard_obj, int crash)
{
    module_state *st = state_of(op);
    uint64_t shard, node = 0;
    if (as_u64(st, shard_obj, "shard", &shard) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(LOCK(op), s = crash ? luigi_sharded_crash_leader(CLUSTER(op), shard, &node)
                                  : luigi_sharded_leader(CLUSTER(op), shard, &node));
    return u64_or_raise(st, s, node);
}

static PyObject *
ShardedCluster_leader(PyObject *op, PyObject *shard)
{
    return shard_to_node(op, shard, 0);
}

static PyObject *
ShardedCluster_crash_leader(PyObject *op, PyObject *shard)
{
    return shard_to_node(op, shard, 1);
}

typedef luigi_status (*node_fn)(luigi_sharded_cluster *, uint64_t);

/* f(cluster, node) for a method taking one node id. */
static PyObject *
node_call(PyObject *op, PyObject *node_obj, node_fn f)
{
    module_state *st = state_of(op);
    uint64_t node;
    if (as_u64(st, node_obj, "node", &node) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(LOCK(op), s = f(CLUSTER(op), node));
    return none_or_raise(st, s);
}

static PyObject *
ShardedCluster_crash(PyObject *op, PyObject *node)
{
    return node_call(op, node, luigi_sharded_crash);
}

static PyObject *
ShardedCluster_restart(PyObject *op, PyObject *node)
{
    return node_call(op, node, luigi_sharded_restart);
}

static PyObject *
ShardedCluster_crash_coordinator(PyObject *op, PyObject *index_obj)
{
    module_state *st = state_of(op);
    uint32_t index;
    if (as_u32(st, index_obj, "coordinator", &index) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(LOCK(op), s = luigi_sharded_crash_coordinator(CLUSTER(op), index));
    return none_or_raise(st, s);
}

static PyObject *
ShardedCluster_partition(PyObject *op, PyObject *nodes_obj)
{
    module_state *st = state_of(op);
    uint64_t *nodes = NULL;
    size_t count = 0;
    if (collect_ids(st, nodes_obj, "nodes", &nodes, &count) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(LOCK(op), s = luigi_sharded_partition(CLUSTER(op), nodes, count));
    PyMem_Free(nodes);
    return none_or_raise(st, s);
}

static PyObject *
ShardedCluster_heal(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    luigi_status s;
    WITH_LOCK(LOCK(op), s = luigi_sharded_heal(CLUSTER(op)));
    return none_or_raise(state_of(op), s);
}

static PyObject *
ShardedCluster_set_faults(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"drop", "duplicate", "reorder", NULL};
    double drop = 0.0, duplicate = 0.0, reorder = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$ddd:set_faults", kwlist, &drop, &duplicate,
                                     &reorder)) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(LOCK(op), s = luigi_sharded_set_faults(CLUSTER(op), drop, duplicate, reorder));
    return none_or_raise(state_of(op), s);
}

/* InvariantViolation(invariant, detail) from the checker's two UTF-8 texts. */
static PyObject *
raise_violation(module_state *st, const luigi_buffer *invariant, const luigi_buffer *detail)
{
    PyObject *exc = PyObject_CallFunction(st->InvariantViolation, "NN",
        PyUnicode_DecodeUTF8((const char *)invariant->data, (Py_ssize_t)invariant->len, "replace"),
        PyUnicode_DecodeUTF8((const char *)detail->data, (Py_ssize_t)detail->len, "replace"));
    if (exc != NULL) {
        PyErr_SetObject(st->InvariantViolation, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *
ShardedCluster_check(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    module_state *st = state_of(op);
    int ok = 0;
    luigi_buffer invariant = {NULL, 0}, detail = {NULL, 0};
    luigi_status s;
    WITH_LOCK_NOGIL(LOCK(op), s = luigi_sharded_check(CLUSTER(op), &ok, &invariant, &detail));
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *result = ok ? Py_NewRef(Py_None) : raise_violation(st, &invariant, &detail);
    luigi_buffer_free(&invariant);
    luigi_buffer_free(&detail);
    return result;
}

static PyObject *
ShardedCluster_result(PyObject *op, PyObject *id_obj)
{
    module_state *st = state_of(op);
    luigi_wm_txn_id id;
    if (wm_as_txn_id(st, id_obj, &id) < 0) {
        return NULL;
    }
    uint32_t outcome = LUIGI_WM_PENDING;
    uint64_t ts = 0;
    luigi_buffer buf = {NULL, 0};
    luigi_status s;
    WITH_LOCK(LOCK(op), s = luigi_sharded_result(CLUSTER(op), &id, &outcome, &ts, &buf));
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *result = NULL;
    if (outcome == LUIGI_WM_PENDING) {
        result = Py_NewRef(Py_None);
    }
    else {
        size_t at = 0;
        PyObject *reads = wm_reads(st, buf.data, buf.len, &at, SIZE_MAX);
        if (reads != NULL) {
            result = PyObject_CallFunction(st->TxnResultType, "OKN",
                                           outcome == LUIGI_WM_COMMITTED ? Py_True : Py_False,
                                           (unsigned long long)ts, reads);
        }
    }
    luigi_buffer_free(&buf);
    return result;
}

static PyObject *
ShardedCluster_value(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    module_state *st = state_of(op);
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "value() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    uint64_t shard;
    const char *key;
    size_t key_len;
    if (as_u64(st, args[0], "shard", &shard) < 0 || as_key(args[1], &key, &key_len) < 0) {
        return NULL;
    }
    int64_t value = 0;
    int present = 0;
    luigi_status s;
    WITH_LOCK(LOCK(op),
        s = luigi_sharded_value(CLUSTER(op), shard, key, key_len, &value, &present));
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    return present ? PyLong_FromLongLong((long long)value) : Py_NewRef(Py_None);
}

static PyObject *
ShardedCluster_stats(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    luigi_sharded_stats t;
    memset(&t, 0, sizeof t);
    t.version = LUIGI_SHARDED_STATS_VERSION;
    luigi_status s;
    WITH_LOCK(LOCK(op), s = luigi_sharded_get_stats(CLUSTER(op), &t));
    if (s != LUIGI_OK) {
        return raise_status(state_of(op), s);
    }
    double fast_path_rate = t.replies > 0 ? (double)t.fast_path / (double)t.replies : 0.0;
    return Py_BuildValue("{sKsKsKsKsKsKsKsKsKsKsKsKsKsKsdsdsdsd}",
                         "now_us", (unsigned long long)t.now_us,
                         "round_trip_us", (unsigned long long)t.round_trip_us,
                         "submitted", (unsigned long long)t.submitted,
                         "committed", (unsigned long long)t.committed,
                         "aborted", (unsigned long long)t.aborted,
                         "in_flight", (unsigned long long)t.in_flight,
                         "unacknowledged", (unsigned long long)t.unacknowledged,
                         "replies", (unsigned long long)t.replies,
                         "fast_path", (unsigned long long)t.fast_path,
                         "retries", (unsigned long long)t.retries,
                         "conflict_retries", (unsigned long long)t.conflict_retries,
                         "ops_applied", (unsigned long long)t.ops_applied,
                         "messages", (unsigned long long)t.messages,
                         "dropped", (unsigned long long)t.dropped,
                         "latency_p50_rtt", t.latency_p50_rtt,
                         "latency_p99_rtt", t.latency_p99_rtt,
                         "watermark_wait_p50_rtt", t.watermark_wait_p50_rtt,
                         "fast_path_rate", fast_path_rate);
}

static PyMethodDef ShardedCluster_methods[] = {
    {"submit", FUNC(ShardedCluster_submit), METH_VARARGS | METH_KEYWORDS,
     "submit($self, /, ops, *, coordinator=0, worker=0)\n--\n\n"
     "Submit one transaction through coordinator slot `coordinator`, on stream\n"
     "`worker`; return its TxnId. ops: tuples ('read', shard, key),\n"
     "('write', shard, key, value), ('add', shard, key, delta) or\n"
     "('check', shard, key, at_least); a shard's ops run in the order given."},
    {"load", FUNC(ShardedCluster_load), METH_VARARGS | METH_KEYWORDS,
     "load($self, /, workload, count, *, cross_shard=0.5)\n--\n\n"
     "Queue `count` transactions of workload 'micro', 'bank' or 'tpcc', run as\n"
     "closed loops of `window` per coordinator while time runs."},
    {"run", ShardedCluster_run, METH_O,
     "run($self, us, /)\n--\n\nRun `us` microseconds of virtual time (releases the GIL)."},
    {"run_until_idle", ShardedCluster_run_until_idle, METH_O,
     "run_until_idle($self, limit_us, /)\n--\n\n"
     "Run until nothing is in flight, queued or unfinished at a shard (True), or\n"
     "until limit_us of virtual time passed (False). Releases the GIL."},
    {"replicas", ShardedCluster_replicas, METH_O,
     "replicas($self, shard, /)\n--\n\nNode ids of a shard's replicas."},
    {"leader", ShardedCluster_leader, METH_O,
     "leader($self, shard, /)\n--\n\n"
     "The shard's live leader (TransactionStateError when it has none)."},
    {"crash_leader", ShardedCluster_crash_leader, METH_O,
     "crash_leader($self, shard, /)\n--\n\n"
     "Crash the shard's leader (its synced log survives); return its id."},
    {"crash", ShardedCluster_crash, METH_O,
     "crash($self, node, /)\n--\n\nCrash a replica: it loses what was not synced."},
    {"restart", ShardedCluster_restart, METH_O,
     "restart($self, node, /)\n--\n\nRestart a crashed replica from its log."},
    {"crash_coordinator", ShardedCluster_crash_coordinator, METH_O,
     "crash_coordinator($self, coordinator, /)\n--\n\n"
     "Crash coordinator slot `coordinator`: the shards finish its transactions\n"
     "alone (never acknowledged); a new coordinator takes its clients."},
    {"partition", ShardedCluster_partition, METH_O,
     "partition($self, nodes, /)\n--\n\nCut `nodes` off from every other node until heal()."},
    {"heal", ShardedCluster_heal, METH_NOARGS, "heal($self, /)\n--\n\nRemove the partition."},
    {"set_faults", FUNC(ShardedCluster_set_faults), METH_VARARGS | METH_KEYWORDS,
     "set_faults($self, /, *, drop=0.0, duplicate=0.0, reorder=0.0)\n--\n\n"
     "Change the network's fault rates (each in [0, 1))."},
    {"check", ShardedCluster_check, METH_NOARGS,
     "check($self, /)\n--\n\n"
     "Check every invariant of the run so far (releases the GIL); raise\n"
     "InvariantViolation(invariant, detail) for the first one broken. Let\n"
     "followers catch up first (run_until_idle, then run a little)."},
    {"result", ShardedCluster_result, METH_O,
     "result($self, txn_id, /)\n--\n\n"
     "None while the transaction is pending, else TxnResult(committed, ts, reads)."},
    {"value", FUNC(ShardedCluster_value), METH_FASTCALL,
     "value($self, shard, key, /)\n--\n\n"
     "The key's committed value on the shard's leader (else a live replica), or\n"
     "None when absent."},
    {"stats", ShardedCluster_stats, METH_NOARGS,
     "stats($self, /)\n--\n\n"
     "Counters and latencies of the run (latencies in wide-area round trips),\n"
     "plus fast_path_rate = fast_path / replies."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot ShardedCluster_slots[] = {
    {Py_tp_doc, "ShardedCluster(*, shards=2, replicas=3, workers=4, coordinators=1, seed=0, "
                "profile='same-region', skew_us=0, drift_ppm=0.0, drop=0.0, duplicate=0.0, "
                "reorder=0.0, protocol='watermark', rule='all-streams', window=8)\n--\n\n"
                "Shards x replicas (one Raft group per shard) and coordinators running\n"
                "watermark commit (or protocol='2pc', the two-phase-commit baseline) on\n"
                "virtual time, over a seeded network with the delays of `profile`, clock\n"
                "skew and drift, and faults; with workloads, crashes, partitions and the\n"
                "invariant checker."},
    {Py_tp_new, ShardedCluster_new},
    {Py_tp_dealloc, ShardedCluster_dealloc},
    {Py_tp_methods, ShardedCluster_methods},
    {0, NULL},
};

PyType_Spec ShardedCluster_spec = {
    .name = "luigi_node.ShardedCluster",
    .basicsize = sizeof(ShardedClusterObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = ShardedCluster_slots,
};
