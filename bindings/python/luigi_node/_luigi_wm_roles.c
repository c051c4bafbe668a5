/* _luigi_wm_roles.c — luigi_node.WatermarkCoordinator and WatermarkShard:
 * the pure watermark roles for the caller's own transport (luigi_wm_*).
 * Every call is short and none releases the GIL, so the GIL serialises each
 * handle (no lock). */

#include "_luigi.h"

/* (message: bytes, now_us: int) — what both roles' step() take. */
static int
step_args(module_state *st, PyObject *const *args, Py_ssize_t nargs, Py_buffer *view,
          uint64_t *now)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "step() takes exactly 2 arguments (%zd given)", nargs);
        return -1;
    }
    if (as_u64(st, args[1], "now_us", now) < 0) {
        return -1;
    }
    return get_bytes(args[0], view);
}

/* ============================================================ WatermarkCoordinator */

typedef struct {
    PyObject_HEAD
    luigi_wm_coordinator *coordinator;
} WmCoordinatorObject;

#define COORDINATOR(op) (((WmCoordinatorObject *)(op))->coordinator)

static PyObject *
WmCoordinator_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"id", "shard_count", "workers", "rule", "headroom_us",
                             "initial_delay_us", "retry_after_us", "retire_every_us", NULL};
    module_state *st = state_of_type(type);
    PyObject *id, *shard_count, *workers, *rule = NULL, *headroom = NULL, *initial = NULL;
    PyObject *retry = NULL, *retire = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|$OOOOO:WatermarkCoordinator", kwlist, &id,
                                     &shard_count, &workers, &rule, &headroom, &initial, &retry,
                                     &retire)) {
        return NULL;
    }
    luigi_wm_coordinator_options o;
    luigi_wm_coordinator_options_init(&o);
    o.version = LUIGI_WM_COORDINATOR_OPTIONS_VERSION;
    if (as_u64(st, id, "id", &o.id) < 0 || as_u32(st, shard_count, "shard_count", &o.shard_count) < 0 ||
        as_u32(st, workers, "workers", &o.workers) < 0 || wm_rule(st, rule, &o.rule) < 0 ||
        wm_opt_u64(st, headroom, "headroom_us", &o.headroom_us) < 0 ||
        wm_opt_u64(st, initial, "initial_delay_us", &o.initial_delay_us) < 0 ||
        wm_opt_u64(st, retry, "retry_after_us", &o.retry_after_us) < 0 ||
        wm_opt_u64(st, retire, "retire_every_us", &o.retire_every_us) < 0) {
        return NULL;
    }
    WmCoordinatorObject *self = (WmCoordinatorObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    luigi_status s = luigi_wm_coordinator_new(&o, &self->coordinator);
    return s != LUIGI_OK ? raise_and_drop(st, s, self) : (PyObject *)self;
}

static void
WmCoordinator_dealloc(WmCoordinatorObject *self)
{
    luigi_wm_coordinator_free(self->coordinator);
    self->coordinator = NULL;
    free_instance(self);
}

static PyObject *
WmCoordinator_submit(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ops", "worker", "now_us", NULL};
    module_state *st = state_of(op);
    PyObject *ops_obj, *worker_obj = NULL, *now_obj = NULL;
    uint32_t worker = 0;
    uint64_t now;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OO:submit", kwlist, &ops_obj, &worker_obj,
                                     &now_obj)) {
        return NULL;
    }
    if (now_obj == NULL) {
        PyErr_SetString(PyExc_TypeError, "submit() missing required keyword-only argument: 'now_us'");
        return NULL;
    }
    if (opt_u32(st, worker_obj, "worker", &worker) < 0 || as_u64(st, now_obj, "now_us", &now) < 0) {
        return NULL;
    }
    wm_ops ops;
    if (wm_collect_ops(st, ops_obj, &ops) < 0) {
        return NULL;
    }
    luigi_wm_txn_id id;
    luigi_status s = luigi_wm_coordinator_submit(COORDINATOR(op), ops.ops, ops.count, worker, now,
                                                 &id);
    wm_release_ops(&ops);
    return s != LUIGI_OK ? raise_status(st, s) : wm_txn_id(st, &id);
}

static PyObject *
WmCoordinator_step(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    module_state *st = state_of(op);
    Py_buffer view;
    uint64_t now;
    if (step_args(st, args, nargs, &view, &now) < 0) {
        return NULL;
    }
    luigi_status s = luigi_wm_coordinator_step(COORDINATOR(op), VIEW_DATA(view), now);
    PyBuffer_Release(&view);
    return none_or_raise(st, s);
}

static PyObject *
WmCoordinator_tick(PyObject *op, PyObject *now_obj)
{
    module_state *st = state_of(op);
    uint64_t now;
    if (as_u64(st, now_obj, "now_us", &now) < 0) {
        return NULL;
    }
    return none_or_raise(st, luigi_wm_coordinator_tick(COORDINATOR(op), now));
}

/* take_messages() and take_completions(): a buffer, decoded. */
static PyObject *
coordinator_take(PyObject *op, int completions)
{
    module_state *st = state_of(op);
    luigi_buffer buf = {NULL, 0};
    luigi_status s = completions ? luigi_wm_coordinator_take_completions(COORDINATOR(op), &buf)
                                 : luigi_wm_coordinator_take_messages(COORDINATOR(op), &buf);
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *list = completions ? wm_completions(st, &buf) : wm_messages(st, &buf);
    luigi_buffer_free(&buf);
    return list;
}

static PyObject *
WmCoordinator_take_messages(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    return coordinator_take(op, 0);
}

static PyObject *
WmCoordinator_take_completions(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    return coordinator_take(op, 1);
}

static PyObject *
WmCoordinator_adopt(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    module_state *st = state_of(op);
    uint64_t lowest, highest;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "adopt() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (as_u64(st, args[0], "lowest", &lowest) < 0 || as_u64(st, args[1], "highest", &highest) < 0) {
        return NULL;
    }
    return none_or_raise(st, luigi_wm_coordinator_adopt(COORDINATOR(op), lowest, highest));
}

static PyObject *
WmCoordinator_adopting(PyObject *op, void *Py_UNUSED(closure))
{
    int adopting = 0;
    luigi_status s = luigi_wm_coordinator_adopting(COORDINATOR(op), &adopting);
    return bool_or_raise(state_of(op), s, adopting);
}

static PyGetSetDef WmCoordinator_getset[] = {
    {"adopting", WmCoordinator_adopting, NULL,
     "True until every coordinator it took over (adopt) is done.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef WmCoordinator_methods[] = {
    {"submit", FUNC(WmCoordinator_submit), METH_VARARGS | METH_KEYWORDS,
     "submit($self, /, ops, *, worker=0, now_us)\n--\n\n"
     "Stamp and send one transaction (the op tuples of ShardedCluster.submit) on\n"
     "stream `worker`; return its TxnId. now_us: this coordinator's clock\n"
     "(microseconds; never runs backwards)."},
    {"step", FUNC(WmCoordinator_step), METH_FASTCALL,
     "step($self, message, now_us, /)\n--\n\n"
     "A message from a shard. Malformed (DecodeError) or misaddressed: refused,\n"
     "nothing changes."},
    {"tick", WmCoordinator_tick, METH_O,
     "tick($self, now_us, /)\n--\n\nRe-send what is overdue, send retire points."},
    {"take_messages", WmCoordinator_take_messages, METH_NOARGS,
     "take_messages($self, /)\n--\n\n"
     "What to send since the last call: [(to_shard, to, message)]; to_shard True:\n"
     "to every replica of shard `to`, False: to coordinator `to`."},
    {"take_completions", WmCoordinator_take_completions, METH_NOARGS,
     "take_completions($self, /)\n--\n\n"
     "Transactions acknowledged since the last call: [(TxnId, committed, ts, reads)]."},
    {"adopt", FUNC(WmCoordinator_adopt), METH_FASTCALL,
     "adopt($self, lowest, highest, /)\n--\n\n"
     "Take over the dead coordinators lowest..highest (one you replaced with this\n"
     "one under a new id): on its timer it asks the shards what they left, drives\n"
     "each transaction to its acknowledgement (no completion is reported for\n"
     "them) and retires their streams. Messages addressed to them are this\n"
     "coordinator's to step. InvalidArgument: a range holding this coordinator's\n"
     "id, lowest > highest, past 64 ranges."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot WmCoordinator_slots[] = {
    {Py_tp_doc, "WatermarkCoordinator(id, shard_count, workers, *, rule='all-streams', "
                "headroom_us=None, initial_delay_us=None, retry_after_us=None, "
                "retire_every_us=None)\n--\n\n"
                "The coordinator role of watermark commit, for your own transport: it\n"
                "stamps transactions, sends them to the shards, and acknowledges them.\n"
                "None keeps the library's default for a timing option."},
    {Py_tp_new, WmCoordinator_new},
    {Py_tp_dealloc, WmCoordinator_dealloc},
    {Py_tp_methods, WmCoordinator_methods},
    {Py_tp_getset, WmCoordinator_getset},
    {0, NULL},
};

PyType_Spec WmCoordinator_spec = {
    .name = "luigi_node.WatermarkCoordinator",
    .basicsize = sizeof(WmCoordinatorObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = WmCoordinator_slots,
};

/* ============================================================ WatermarkShard */

typedef struct {
    PyObject_HEAD
    luigi_wm_shard *shard;
} WmShardObject;

#define SHARD(op) (((WmShardObject *)(op))->shard)

static PyObject *
WmShard_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"shard", "shard_count", "workers", "coordinators",
                             "resend_after_us", "marks_every_us", NULL};
    module_state *st = state_of_type(type);
    PyObject *shard, *shard_count, *workers, *coordinators, *resend = NULL, *marks = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|$OO:WatermarkShard", kwlist, &shard,
                                     &shard_count, &workers, &coordinators, &resend, &marks)) {
        return NULL;
    }
    luigi_wm_shard_options o;
    luigi_wm_shard_options_init(&o);
    o.version = LUIGI_WM_SHARD_OPTIONS_VERSION;
    if (as_u64(st, shard, "shard", &o.shard) < 0 ||
        as_u32(st, shard_count, "shard_count", &o.shard_count) < 0 ||
        as_u32(st, workers, "workers", &o.workers) < 0 ||
        wm_opt_u64(st, resend, "resend_after_us", &o.resend_after_us) < 0 ||
        wm_opt_u64(st, marks, "marks_every_us", &o.marks_every_us) < 0) {
        return NULL;
    }
    uint64_t *ids = NULL;
    size_t count = 0;
    if (collect_ids(st, coordinators, "coordinators", &ids, &count) < 0) {
        return NULL;
    }
    if (count > UINT32_MAX) {
        PyMem_Free(ids);
        PyErr_SetString(st->LuigiValueError, "too many coordinators");
        return NULL;
    }
    o.coordinators = ids;
    o.coordinator_count = (uint32_t)count;
    WmShardObject *self = (WmShardObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        PyMem_Free(ids);
        return NULL;
    }
    luigi_status s = luigi_wm_shard_new(&o, &self->shard); /* copies the ids */
    PyMem_Free(ids);
    return s != LUIGI_OK ? raise_and_drop(st, s, self) : (PyObject *)self;
}

static void
WmShard_dealloc(WmShardObject *self)
{
    luigi_wm_shard_free(self->shard);
    self->shard = NULL;
    free_instance(self);
}

static PyObject *
WmShard_set_role(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    module_state *st = state_of(op);
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "set_role() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    int leader = PyObject_IsTrue(args[0]);
    uint64_t term;
    if (leader < 0 || as_u64(st, args[1], "term", &term) < 0) {
        return NULL;
    }
    return none_or_raise(st, luigi_wm_shard_set_role(SHARD(op), leader, term));
}

static PyObject *
WmShard_apply(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    module_state *st = state_of(op);
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "apply() takes exactly 3 arguments (%zd given)", nargs);
        return NULL;
    }
    uint64_t term, now;
    Py_buffer view;
    if (as_u64(st, args[1], "term", &term) < 0 || as_u64(st, args[2], "now_us", &now) < 0 ||
        get_bytes(args[0], &view) < 0) {
        return NULL;
    }
    luigi_status s = luigi_wm_shard_apply(SHARD(op), VIEW_DATA(view), term, now);
    PyBuffer_Release(&view);
    return none_or_raise(st, s);
}

static PyObject *
WmShard_step(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    module_state *st = state_of(op);
    Py_buffer view;
    uint64_t now;
    if (step_args(st, args, nargs, &view, &now) < 0) {
        return NULL;
    }
    luigi_status s = luigi_wm_shard_step(SHARD(op), VIEW_DATA(view), now);
    PyBuffer_Release(&view);
    return none_or_raise(st, s);
}

static PyObject *
WmShard_tick(PyObject *op, PyObject *now_obj)
{
    module_state *st = state_of(op);
    uint64_t now;
    if (as_u64(st, now_obj, "now_us", &now) < 0) {
        return NULL;
    }
    return none_or_raise(st, luigi_wm_shard_tick(SHARD(op), now));
}

static PyObject *
WmShard_take_output(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    module_state *st = state_of(op);
    luigi_buffer messages = {NULL, 0}, records = {NULL, 0};
    luigi_status s = luigi_wm_shard_take_output(SHARD(op), &messages, &records);
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *m = wm_messages(st, &messages);
    PyObject *r = m != NULL ? wm_records(st, &records) : NULL;
    luigi_buffer_free(&messages);
    luigi_buffer_free(&records);
    if (r == NULL) {
        Py_XDECREF(m);
        return NULL;
    }
    return Py_BuildValue("(NN)", m, r);
}

static PyObject *
WmShard_value(PyObject *op, PyObject *key_obj)
{
    module_state *st = state_of(op);
    const char *key;
    size_t key_len;
    if (as_key(key_obj, &key, &key_len) < 0) {
        return NULL;
    }
    int64_t value = 0;
    int present = 0;
    luigi_status s = luigi_wm_shard_value(SHARD(op), key, key_len, &value, &present);
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    return present ? PyLong_FromLongLong((long long)value) : Py_NewRef(Py_None);
}

static PyObject *
WmShard_serving(PyObject *op, void *Py_UNUSED(closure))
{
    int serving = 0;
    luigi_status s = luigi_wm_shard_serving(SHARD(op), &serving);
    return bool_or_raise(state_of(op), s, serving);
}

static PyObject *
WmShard_records(PyObject *op, void *Py_UNUSED(closure))
{
    uint64_t records = 0;
    luigi_status s = luigi_wm_shard_records(SHARD(op), &records);
    return u64_or_raise(state_of(op), s, records);
}

static PyMethodDef WmShard_methods[] = {
    {"set_role", FUNC(WmShard_set_role), METH_FASTCALL,
     "set_role($self, leader, term, /)\n--\n\n"
     "After each round of the shard's Raft node: does it lead, in which term."},
    {"apply", FUNC(WmShard_apply), METH_FASTCALL,
     "apply($self, entry, term, now_us, /)\n--\n\n"
     "Each committed entry of the shard's Raft group, in order, with its term.\n"
     "Entries it cannot decode (no-ops, foreign entries) are ignored."},
    {"step", FUNC(WmShard_step), METH_FASTCALL,
     "step($self, message, now_us, /)\n--\n\n"
     "A message for this shard. Malformed (DecodeError) or misaddressed: refused,\n"
     "nothing changes."},
    {"tick", WmShard_tick, METH_O,
     "tick($self, now_us, /)\n--\n\nRe-send what is overdue, push watermarks."},
    {"take_output", WmShard_take_output, METH_NOARGS,
     "take_output($self, /)\n--\n\n"
     "Since the last call: (messages, records). messages: [(to_shard, to, message)]\n"
     "to send; records: bytes to propose to the shard's Raft group, in order."},
    {"value", WmShard_value, METH_O,
     "value($self, key, /)\n--\n\n"
     "The key's value in the shard's replicated (committed) state, or None."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef WmShard_getset[] = {
    {"serving", WmShard_serving, NULL,
     "True while it leads, has applied its log and has recovered: it serves.", NULL},
    {"records", WmShard_records, NULL,
     "Transaction records its committed state holds (retire points drop them).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot WmShard_slots[] = {
    {Py_tp_doc, "WatermarkShard(shard, shard_count, workers, coordinators, *, "
                "resend_after_us=None, marks_every_us=None)\n--\n\n"
                "The shard role of watermark commit, for your own transport: feed it the\n"
                "committed entries of its shard's Raft group (apply) and its leadership\n"
                "(set_role), carry its messages, and propose the records it hands out.\n"
                "coordinators: the ids of every coordinator it serves. None keeps the\n"
                "library's default for a timing option."},
    {Py_tp_new, WmShard_new},
    {Py_tp_dealloc, WmShard_dealloc},
    {Py_tp_methods, WmShard_methods},
    {Py_tp_getset, WmShard_getset},
    {0, NULL},
};

PyType_Spec WmShard_spec = {
    .name = "luigi_node.WatermarkShard",
    .basicsize = sizeof(WmShardObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = WmShard_slots,
};
