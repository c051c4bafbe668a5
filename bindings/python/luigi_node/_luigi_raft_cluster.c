/* _luigi_raft_cluster.c — luigi_node.RaftCluster (RaftClusterObject is in
 * _luigi.h: a TableLog (_luigi_meta.c) uses its handle and lock). */

#include "_luigi.h"

/* ============================================================ RaftCluster */

/* The names of STATE_MACHINE_*, by code. */
static const char *const state_machines[2] = {"kv", "tables"};

static PyObject *
RaftCluster_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"nodes", "seed", "data_dir", "election_tick", "heartbeat_tick",
                             "pre_vote", "check_quorum", "compact_after", "drop", "duplicate",
                             "reorder", "max_delay", "state_machine", NULL};
    module_state *st = state_of_type(type);
    PyObject *nodes = NULL, *seed = NULL, *data_dir = Py_None, *election = NULL, *heartbeat = NULL;
    PyObject *compact_after = NULL, *max_delay = NULL, *machine_obj = NULL;
    int pre_vote = 1, check_quorum = 1;
    double drop = 0.0, duplicate = 0.0, reorder = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$OOOOppOdddOO:RaftCluster", kwlist, &nodes,
                                     &seed, &data_dir, &election, &heartbeat, &pre_vote,
                                     &check_quorum, &compact_after, &drop, &duplicate, &reorder,
                                     &max_delay, &machine_obj)) {
        return NULL;
    }
    uint32_t machine = STATE_MACHINE_KV;
    if (machine_obj != NULL &&
        wm_choose(st, machine_obj, "state_machine", state_machines, 2, &machine) < 0) {
        return NULL;
    }
    luigi_raft_cluster_options o;
    luigi_raft_cluster_options_init(&o);
    o.version = LUIGI_RAFT_CLUSTER_OPTIONS_VERSION;
    o.pre_vote = pre_vote ? 1 : 0;
    o.check_quorum = check_quorum ? 1 : 0;
    o.drop_rate = drop;
    o.duplicate_rate = duplicate;
    o.reorder_rate = reorder;
    if (opt_u32(st, nodes, "nodes", &o.nodes) < 0 ||
        opt_u64(st, seed, "seed", &o.seed) < 0 ||
        opt_u32(st, election, "election_tick", &o.election_tick) < 0 ||
        opt_u32(st, heartbeat, "heartbeat_tick", &o.heartbeat_tick) < 0 ||
        opt_u32(st, compact_after, "compact_after", &o.compact_after) < 0 ||
        opt_u32(st, max_delay, "max_delay", &o.max_delay) < 0) {
        return NULL;
    }
    PyObject *path = NULL;
    if (get_path(data_dir, &path) < 0) {
        return NULL;
    }
    o.data_dir = path != NULL ? PyBytes_AS_STRING(path) : NULL;
    /* Object and lock first: on any later failure tp_dealloc frees what exists. */
    RaftClusterObject *self = (RaftClusterObject *)type->tp_alloc(type, 0);
    if (self == NULL || new_lock(&self->lock) < 0) {
        Py_XDECREF(self);
        Py_XDECREF(path);
        return NULL;
    }
    self->state_machine = machine;
    luigi_status s;
    Py_BEGIN_ALLOW_THREADS /* durable nodes open their logs */
    if (machine == STATE_MACHINE_TABLES) {
        s = luigi_meta_cluster_new(&o, &self->cluster);
    }
    else {
        s = luigi_raft_cluster_new(&o, &self->cluster);
    }
    Py_END_ALLOW_THREADS
    Py_XDECREF(path);
    if (s != LUIGI_OK) {
        return raise_and_drop(st, s, self);
    }
    return (PyObject *)self;
}

static void
RaftCluster_dealloc(RaftClusterObject *self)
{
    luigi_raft_cluster_free(self->cluster);
    self->cluster = NULL;
    free_lock(&self->lock);
    free_instance(self);
}

typedef luigi_status (*cluster_node_fn)(luigi_raft_cluster *, uint64_t);

/* f(cluster, node) for a method taking one node id. */
static PyObject *
cluster_node_call(PyObject *op, PyObject *node_obj, cluster_node_fn f)
{
    RaftClusterObject *self = (RaftClusterObject *)op;
    uint64_t node;
    if (as_u64(state_of(op), node_obj, "node", &node) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock, s = f(self->cluster, node));
    return none_or_raise(state_of(op), s);
}

static PyObject *
RaftCluster_campaign(PyObject *op, PyObject *node)
{
    return cluster_node_call(op, node, luigi_raft_cluster_campaign);
}

static PyObject *
RaftCluster_isolate(PyObject *op, PyObject *node)
{
    return cluster_node_call(op, node, luigi_raft_cluster_isolate);
}

static PyObject *
RaftCluster_crash(PyObject *op, PyObject *node)
{
    return cluster_node_call(op, node, luigi_raft_cluster_crash);
}

static PyObject *
RaftCluster_restart(PyObject *op, PyObject *node)
{
    return cluster_node_call(op, node, luigi_raft_cluster_restart);
}

static PyObject *
RaftCluster_transfer_leader(PyObject *op, PyObject *node)
{
    return cluster_node_call(op, node, luigi_raft_cluster_transfer_leader);
}

static PyObject *
RaftCluster_remove_node(PyObject *op, PyObject *node)
{
    return cluster_node_call(op, node, luigi_raft_cluster_remove_node);
}

static PyObject *
RaftCluster_cut(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    RaftClusterObject *self = (RaftClusterObject *)op;
    module_state *st = state_of(op);
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "cut() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    uint64_t a, b;
    if (as_u64(st, args[0], "a", &a) < 0 || as_u64(st, args[1], "b", &b) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_cluster_cut(self->cluster, a, b));
    return none_or_raise(state_of(op), s);
}

static PyObject *
RaftCluster_heal(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftClusterObject *self = (RaftClusterObject *)op;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_cluster_heal(self->cluster));
    return none_or_raise(state_of(op), s);
}

static PyObject *
RaftCluster_tick(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"n", NULL};
    RaftClusterObject *self = (RaftClusterObject *)op;
    module_state *st = state_of(op);
    PyObject *n_obj = NULL;
    uint64_t n = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:tick", kwlist, &n_obj)) {
        return NULL;
    }
    if (opt_u64(st, n_obj, "n", &n) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock, s = luigi_raft_cluster_tick(self->cluster, n));
    return none_or_raise(state_of(op), s);
}

static PyObject *
RaftCluster_stabilize(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftClusterObject *self = (RaftClusterObject *)op;
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock, s = luigi_raft_cluster_stabilize(self->cluster));
    return none_or_raise(state_of(op), s);
}

static PyObject *
RaftCluster_leader(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftClusterObject *self = (RaftClusterObject *)op;
    uint64_t leader = 0;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_cluster_leader(self->cluster, &leader));
    if (s != LUIGI_OK) {
        return raise_status(state_of(op), s);
    }
    if (leader == 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLongLong(leader);
}

static PyObject *
RaftCluster_nodes(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftClusterObject *self = (RaftClusterObject *)op;
    module_state *st = state_of(op);
    size_t capacity = 16, count = 0;
    uint64_t *ids = NULL;
    luigi_status s;
    for (;;) {
        uint64_t *grown = PyMem_Realloc(ids, capacity * sizeof(uint64_t));
        if (grown == NULL) {
            PyMem_Free(ids);
            return PyErr_NoMemory();
        }
        ids = grown;
        WITH_LOCK(self->lock, s = luigi_raft_cluster_nodes(self->cluster, ids, capacity, &count));
        if (s != LUIGI_ERR_BUFFER_TOO_SMALL || count <= capacity) {
            break;
        }
        capacity = count;
    }
    if (s != LUIGI_OK) {
        PyMem_Free(ids);
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
    PyMem_Free(ids);
    return list;
}

static PyObject *
RaftCluster_status(PyObject *op, PyObject *node_obj)
{
    RaftClusterObject *self = (RaftClusterObject *)op;
    module_state *st = state_of(op);
    uint64_t node;
    if (as_u64(st, node_obj, "node", &node) < 0) {
        return NULL;
    }
    luigi_raft_status status;
    raft_status_init(&status);
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_cluster_node_status(self->cluster, node, &status));
    return make_raft_status(st, s, &status);
}

static PyObject *
RaftCluster_propose(PyObject *op, PyObject *data)
{
    RaftClusterObject *self = (RaftClusterObject *)op;
    Py_buffer view;
    if (get_bytes(data, &view) < 0) {
        return NULL;
    }
    uint64_t index = 0;
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock,
        s = luigi_raft_cluster_propose(self->cluster, VIEW_DATA(view), &index));
    PyBuffer_Release(&view);
    return u64_or_raise(state_of(op), s, index);
}

/* The key and timeout (default 200 ticks) every key-value method takes. */
typedef struct {
    const char *key;
    size_t key_len;
    uint64_t timeout;
} kv_args;

static int
get_kv_args(module_state *st, PyObject *key_obj, PyObject *timeout_obj, kv_args *out)
{
    out->timeout = 200;
    if (as_key(key_obj, &out->key, &out->key_len) < 0) {
        return -1;
    }
    return opt_u64(st, timeout_obj, "timeout", &out->timeout);
}

static PyObject *
RaftCluster_put(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"key", "value", "timeout", NULL};
    RaftClusterObject *self = (RaftClusterObject *)op;
    module_state *st = state_of(op);
    PyObject *key_obj, *value_obj, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|$O:put", kwlist, &key_obj, &value_obj,
                                     &timeout_obj)) {
        return NULL;
    }
    kv_args kv;
    Py_buffer view;
    if (get_kv_args(st, key_obj, timeout_obj, &kv) < 0 || get_bytes(value_obj, &view) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock,
        s = luigi_raft_cluster_put(self->cluster, kv.key, kv.key_len, VIEW_DATA(view),
            kv.timeout));
    PyBuffer_Release(&view);
    return none_or_raise(state_of(op), s);
}

static PyObject *
RaftCluster_get(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"key", "timeout", NULL};
    RaftClusterObject *self = (RaftClusterObject *)op;
    module_state *st = state_of(op);
    PyObject *key_obj, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$O:get", kwlist, &key_obj, &timeout_obj)) {
        return NULL;
    }
    kv_args kv;
    if (get_kv_args(st, key_obj, timeout_obj, &kv) < 0) {
        return NULL;
    }
    int found = 0;
    luigi_buffer value = {NULL, 0};
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock,
        s = luigi_raft_cluster_get(self->cluster, kv.key, kv.key_len, kv.timeout, &found, &value));
    if (s == LUIGI_OK && !found) {
        luigi_buffer_free(&value);
        Py_RETURN_NONE;
    }
    return take_buffer(st, s, &value);
}

static PyObject *
RaftCluster_delete(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"key", "timeout", NULL};
    RaftClusterObject *self = (RaftClusterObject *)op;
    module_state *st = state_of(op);
    PyObject *key_obj, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$O:delete", kwlist, &key_obj,
                                     &timeout_obj)) {
        return NULL;
    }
    kv_args kv;
    if (get_kv_args(st, key_obj, timeout_obj, &kv) < 0) {
        return NULL;
    }
    int existed = 0;
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock,
        s = luigi_raft_cluster_delete(self->cluster, kv.key, kv.key_len, kv.timeout, &existed));
    return bool_or_raise(st, s, existed);
}

static PyObject *
RaftCluster_cas(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"key", "expected", "new", "timeout", NULL};
    RaftClusterObject *self = (RaftClusterObject *)op;
    module_state *st = state_of(op);
    PyObject *key_obj, *expected_obj, *new_obj, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|$O:cas", kwlist, &key_obj, &expected_obj,
                                     &new_obj, &timeout_obj)) {
        return NULL;
    }
    kv_args kv;
    if (get_kv_args(st, key_obj, timeout_obj, &kv) < 0) {
        return NULL;
    }
    Py_buffer expected, value;
    int has_expected = expected_obj != Py_None;
    if (has_expected && get_bytes(expected_obj, &expected) < 0) {
        return NULL;
    }
    if (get_bytes(new_obj, &value) < 0) {
        if (has_expected) {
            PyBuffer_Release(&expected);
        }
        return NULL;
    }
    const uint8_t *e = has_expected ? (const uint8_t *)expected.buf : NULL;
    size_t e_len = has_expected ? (size_t)expected.len : 0;
    int swapped = 0;
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock,
        s = luigi_raft_cluster_cas(self->cluster, kv.key, kv.key_len, e, e_len, VIEW_DATA(value),
            kv.timeout, &swapped));
    if (has_expected) {
        PyBuffer_Release(&expected);
    }
    PyBuffer_Release(&value);
    return bool_or_raise(st, s, swapped);
}

static PyObject *
RaftCluster_add_node(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftClusterObject *self = (RaftClusterObject *)op;
    uint64_t node = 0;
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock, s = luigi_raft_cluster_add_node(self->cluster, &node));
    return u64_or_raise(state_of(op), s, node);
}

static PyObject *
RaftCluster_log(PyObject *op, PyObject *node_obj)
{
    RaftClusterObject *self = (RaftClusterObject *)op;
    module_state *st = state_of(op);
    uint64_t node;
    if (as_u64(st, node_obj, "node", &node) < 0) {
        return NULL;
    }
    luigi_buffer buf = {NULL, 0};
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_cluster_log(self->cluster, node, &buf));
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *list = PyList_New(0);
    const uint8_t *p = buf.data;
    size_t left = buf.len;
    while (list != NULL && left > 0) {
        if (left < 12) {
            Py_CLEAR(list);
            malformed_buffer(st, "raft log");
            break;
        }
        uint64_t term = read_u64le(p);
        uint32_t len = read_u32le(p + 8);
        p += 12;
        left -= 12;
        if (len > left) {
            Py_CLEAR(list);
            malformed_buffer(st, "raft log");
            break;
        }
        PyObject *item = Py_BuildValue("(Ky#)", (unsigned long long)term, (const char *)p,
                                       (Py_ssize_t)len);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(item);
        p += len;
        left -= len;
    }
    luigi_buffer_free(&buf);
    return list;
}

static PyObject *
RaftCluster_history(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftClusterObject *self = (RaftClusterObject *)op;
    module_state *st = state_of(op);
    luigi_buffer buf = {NULL, 0};
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_cluster_history(self->cluster, &buf));
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)buf.data, (Py_ssize_t)buf.len);
    luigi_buffer_free(&buf);
    if (bytes == NULL) {
        return NULL;
    }
    PyObject *ops = PyObject_CallOneArg(st->decode_history, bytes);
    Py_DECREF(bytes);
    return ops;
}

static PyObject *
RaftCluster_check_history(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftClusterObject *self = (RaftClusterObject *)op;
    module_state *st = state_of(op);
    int linearizable = 0;
    luigi_buffer why = {NULL, 0};
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock,
        s = luigi_raft_cluster_check_history(self->cluster, &linearizable, &why));
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    if (linearizable) {
        luigi_buffer_free(&why);
        Py_RETURN_NONE;
    }
    PyObject *text = PyUnicode_DecodeUTF8((const char *)why.data, (Py_ssize_t)why.len, "replace");
    luigi_buffer_free(&why);
    if (text != NULL) {
        PyErr_SetObject(st->NotLinearizableError, text);
        Py_DECREF(text);
    }
    return NULL;
}

static PyMethodDef RaftCluster_methods[] = {
    {"put", FUNC(RaftCluster_put), METH_VARARGS | METH_KEYWORDS,
     "put($self, /, key, value, *, timeout=200)\n--\n\n"
     "Write key=value through the log (releases the GIL). LuigiTimeoutError when\n"
     "it did not complete within `timeout` ticks: its outcome is then unknown."},
    {"get", FUNC(RaftCluster_get), METH_VARARGS | METH_KEYWORDS,
     "get($self, /, key, *, timeout=200)\n--\n\n"
     "Linearizable read (ReadIndex): the value, or None when absent."},
    {"delete", FUNC(RaftCluster_delete), METH_VARARGS | METH_KEYWORDS,
     "delete($self, /, key, *, timeout=200)\n--\n\n"
     "Delete key through the log; True when it existed."},
    {"cas", FUNC(RaftCluster_cas), METH_VARARGS | METH_KEYWORDS,
     "cas($self, /, key, expected, new, *, timeout=200)\n--\n\n"
     "Compare-and-set through the log: set key to `new` if its value is\n"
     "`expected` (None: absent). True when it swapped."},
    {"propose", RaftCluster_propose, METH_O,
     "propose($self, data, /)\n--\n\n"
     "Propose raw data through the leader (TransactionStateError when there is\n"
     "none); return its log index."},
    {"tick", FUNC(RaftCluster_tick), METH_VARARGS | METH_KEYWORDS,
     "tick($self, /, n=1)\n--\n\nAdvance virtual time by n ticks (releases the GIL)."},
    {"stabilize", RaftCluster_stabilize, METH_NOARGS,
     "stabilize($self, /)\n--\n\n"
     "Deliver every message in flight until none is left, without ticking."},
    {"campaign", RaftCluster_campaign, METH_O,
     "campaign($self, node, /)\n--\n\nMake node start an election now."},
    {"isolate", RaftCluster_isolate, METH_O,
     "isolate($self, node, /)\n--\n\nCut node off from every other node (until heal())."},
    {"cut", FUNC(RaftCluster_cut), METH_FASTCALL,
     "cut($self, a, b, /)\n--\n\nCut the link between a and b, both ways (until heal())."},
    {"heal", RaftCluster_heal, METH_NOARGS,
     "heal($self, /)\n--\n\nRestore every cut link and isolated node."},
    {"crash", RaftCluster_crash, METH_O,
     "crash($self, node, /)\n--\n\n"
     "Stop node: it loses its memory and whatever was not synced."},
    {"restart", RaftCluster_restart, METH_O,
     "restart($self, node, /)\n--\n\nRestart a crashed node from its storage."},
    {"leader", RaftCluster_leader, METH_NOARGS,
     "leader($self, /)\n--\n\nThe live leader with the highest term, or None."},
    {"status", RaftCluster_status, METH_O,
     "status($self, node, /)\n--\n\n"
     "node's RaftStatus (TransactionStateError when it is crashed)."},
    {"nodes", RaftCluster_nodes, METH_NOARGS,
     "nodes($self, /)\n--\n\nNode ids, sorted (crashed ones included)."},
    {"log", RaftCluster_log, METH_O,
     "log($self, node, /)\n--\n\n"
     "Entries node applied since it (re)started or restored a snapshot, as\n"
     "(term, data) pairs (no-ops and membership changes included; key-value\n"
     "commands carry an 8-byte request id before the command)."},
    {"transfer_leader", RaftCluster_transfer_leader, METH_O,
     "transfer_leader($self, to, /)\n--\n\nAsk the leader to hand leadership to `to`."},
    {"add_node", RaftCluster_add_node, METH_NOARGS,
     "add_node($self, /)\n--\n\n"
     "Start a new empty node and propose it as a voter; return its id."},
    {"remove_node", RaftCluster_remove_node, METH_O,
     "remove_node($self, node, /)\n--\n\nPropose removing node from the group."},
    {"history", RaftCluster_history, METH_NOARGS,
     "history($self, /)\n--\n\n"
     "The client operations recorded so far (list of KVOperation), in\n"
     "invocation order."},
    {"check_history", RaftCluster_check_history, METH_NOARGS,
     "check_history($self, /)\n--\n\n"
     "Check the recorded client history for linearizability (releases the GIL);\n"
     "NotLinearizableError with the explanation when it is not."},
    {NULL, NULL, 0, NULL},
};

static PyObject *
RaftCluster_get_state_machine(PyObject *op, void *Py_UNUSED(closure))
{
    return PyUnicode_FromString(state_machines[((RaftClusterObject *)op)->state_machine]);
}

static PyGetSetDef RaftCluster_getset[] = {
    {"state_machine", RaftCluster_get_state_machine, NULL,
     "What every node runs: \"kv\" (the key-value store) or \"tables\" (the table\n"
     "log: use it through TableLog).",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot RaftCluster_slots[] = {
    {Py_tp_doc, "RaftCluster(nodes=3, *, seed=0, data_dir=None, election_tick=10, "
                "heartbeat_tick=1, pre_vote=True, check_quorum=True, compact_after=0, "
                "drop=0.0, duplicate=0.0, reorder=0.0, max_delay=0, state_machine='kv')\n--\n\n"
                "Raft nodes 1..nodes running a state machine (see state_machine) on\n"
                "virtual time, over a seeded network that can drop, duplicate, delay and\n"
                "reorder messages; with crash/restart, partitions and membership changes. Every\n"
                "step checks Raft's safety properties (a violation raises LuigiError).\n"
                "data_dir: None keeps logs in memory; a directory gives node i a durable\n"
                "log in data_dir/node-<i>.\n"
                "state_machine: \"kv\" (the key-value store: put, get, delete, cas,\n"
                "history) or \"tables\" (the table log: wrap the cluster in TableLog; the\n"
                "key-value methods then raise TransactionStateError)."},
    {Py_tp_new, RaftCluster_new},
    {Py_tp_dealloc, RaftCluster_dealloc},
    {Py_tp_methods, RaftCluster_methods},
    {Py_tp_getset, RaftCluster_getset},
    {0, NULL},
};

PyType_Spec RaftCluster_spec = {
    .name = "luigi_node.RaftCluster",
    .basicsize = sizeof(RaftClusterObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = RaftCluster_slots,
};
