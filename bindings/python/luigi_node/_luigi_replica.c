/* _luigi_replica.c — luigi_node.Replica and luigi_node.Transaction. */

#include "_luigi.h"

/* ============================================================ Replica */

PyObject *
wrap_replica(module_state *st, luigi_status s, luigi_replica *replica, PyObject *cluster)
{
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyTypeObject *tp = st->ReplicaType;
    ReplicaObject *self = (ReplicaObject *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        luigi_replica_free(replica);
        return NULL;
    }
    self->replica = replica;
    if (cluster != NULL) {
        self->cluster = Py_NewRef(cluster);
        self->lock = ((ClusterObject *)cluster)->lock;
        self->own_lock = NULL;
    }
    else {
        self->cluster = NULL;
        if (new_lock(&self->own_lock) < 0) {
            Py_DECREF(self);
            return NULL;
        }
        self->lock = self->own_lock;
    }
    return (PyObject *)self;
}

static PyObject *
Replica_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"node_id", NULL};
    PyObject *node_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Replica", kwlist, &node_obj)) {
        return NULL;
    }
    module_state *st = state_of_type(type);
    uint64_t node;
    if (as_u64(st, node_obj, "node_id", &node) < 0) {
        return NULL;
    }
    luigi_replica *replica = NULL;
    luigi_status s = luigi_replica_new(node, &replica);
    return wrap_replica(st, s, replica, NULL);
}

static void
Replica_dealloc(ReplicaObject *self)
{
    if (self->replica != NULL) {
        if (self->lock != NULL) {
            WITH_LOCK(self->lock, luigi_replica_free(self->replica));
        }
        else {
            luigi_replica_free(self->replica);
        }
        self->replica = NULL;
    }
    free_lock(&self->own_lock);
    Py_CLEAR(self->cluster);
    free_instance(self);
}

static PyObject *
Replica_get_node_id(PyObject *op, void *Py_UNUSED(closure))
{
    ReplicaObject *self = (ReplicaObject *)op;
    uint64_t v = 0;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_replica_node_id(self->replica, &v));
    return u64_or_raise(state_of(op), s, v);
}

static PyObject *
Replica_get_clock(PyObject *op, void *Py_UNUSED(closure))
{
    ReplicaObject *self = (ReplicaObject *)op;
    module_state *st = state_of(op);
    luigi_clock *clock = NULL;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_replica_clock(self->replica, &clock));
    return wrap_clock(st, s, clock);
}

static PyObject *
Replica_get_pending(PyObject *op, void *Py_UNUSED(closure))
{
    ReplicaObject *self = (ReplicaObject *)op;
    size_t n = 0;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_replica_pending(self->replica, &n));
    return size_or_raise(state_of(op), s, n);
}

static PyObject *
Replica_get_conflicts(PyObject *op, void *Py_UNUSED(closure))
{
    ReplicaObject *self = (ReplicaObject *)op;
    uint64_t n = 0;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_replica_conflicts(self->replica, &n));
    return u64_or_raise(state_of(op), s, n);
}

static PyObject *
Replica_transaction(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ReplicaObject *self = (ReplicaObject *)op;
    module_state *st = state_of(op);
    luigi_txn *txn = NULL;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_replica_begin(self->replica, &txn));
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyTypeObject *tp = st->TransactionType;
    TransactionObject *t = (TransactionObject *)tp->tp_alloc(tp, 0);
    if (t == NULL) {
        WITH_LOCK(self->lock, luigi_txn_free(txn));
        return NULL;
    }
    t->txn = txn;
    t->replica = (ReplicaObject *)Py_NewRef(op);
    t->update = NULL;
    t->state = TXN_OPEN;
    return (PyObject *)t;
}

static PyObject *
Replica_apply(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    ReplicaObject *self = (ReplicaObject *)op;
    module_state *st = state_of(op);
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "apply() takes exactly 1 argument (%zd given)", nargs);
        return NULL;
    }
    if (check_update(st, args[0]) < 0) {
        return NULL;
    }
    int is_new = 0;
    luigi_status s;
    WITH_LOCK(self->lock,
        s = luigi_replica_apply(self->replica, ((UpdateObject *)args[0])->update, &is_new));
    return bool_or_raise(st, s, is_new);
}

static PyObject *
Replica_apply_many(PyObject *op, PyObject *updates)
{
    ReplicaObject *self = (ReplicaObject *)op;
    module_state *st = state_of(op);
    luigi_update_list *list = collect_updates(st, updates);
    if (list == NULL) {
        return NULL;
    }
    size_t applied = 0;
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock, s = luigi_replica_apply_list(self->replica, list, &applied));
    luigi_update_list_free(list);
    return size_or_raise(st, s, applied);
}

static PyObject *
decode_set_elements(module_state *st, const uint8_t *p, size_t n)
{
    PyObject *set = PyFrozenSet_New(NULL);
    if (set == NULL) {
        return NULL;
    }
    size_t i = 0;
    while (i < n) {
        uint8_t tag = p[i++];
        PyObject *element = NULL;
        if (tag == LUIGI_ELEMENT_INT) {
            if (n - i < 8) {
                goto malformed;
            }
            element = PyLong_FromLongLong((long long)(int64_t)read_u64le(p + i));
            i += 8;
        }
        else if (tag == LUIGI_ELEMENT_STR || tag == LUIGI_ELEMENT_BYTES) {
            const uint8_t *data;
            size_t len;
            if (read_chunk(p, n, &i, &data, &len) < 0) {
                goto malformed;
            }
            if (tag == LUIGI_ELEMENT_STR) {
                element = PyUnicode_DecodeUTF8((const char *)data, (Py_ssize_t)len, "strict");
            }
            else {
                element = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)len);
            }
        }
        else {
            goto malformed;
        }
        if (element == NULL) {
            Py_DECREF(set);
            return NULL;
        }
        int rc = PySet_Add(set, element);
        Py_DECREF(element);
        if (rc < 0) {
            Py_DECREF(set);
            return NULL;
        }
    }
    return set;
malformed:
    Py_DECREF(set);
    return malformed_buffer(st, "set elements");
}

static PyObject *
Replica_value(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    ReplicaObject *self = (ReplicaObject *)op;
    module_state *st = state_of(op);
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "value() takes exactly 1 argument (%zd given)", nargs);
        return NULL;
    }
    const char *key;
    size_t key_len;
    if (as_key(args[0], &key, &key_len) < 0) {
        return NULL;
    }
    luigi_value v;
    memset(&v, 0, sizeof v);
    luigi_buffer buf = {NULL, 0};
    lock_acquire(self->lock);
    luigi_status s = luigi_replica_value(self->replica, key, key_len, &v);
    if (s == LUIGI_OK && v.kind == LUIGI_KIND_SET) {
        s = luigi_replica_set_elements(self->replica, key, key_len, &buf);
    }
    lock_release(self->lock);
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    switch (v.kind) {
    case LUIGI_KIND_NONE:
        Py_RETURN_NONE;
    case LUIGI_KIND_COUNTER:
        return int128_to_long(v.counter_hi, v.counter_lo);
    case LUIGI_KIND_MAX:
    case LUIGI_KIND_MIN:
    case LUIGI_KIND_REGISTER:
        if (v.number_type == LUIGI_NUMBER_FLOAT) {
            return PyFloat_FromDouble(v.float_value);
        }
        return PyLong_FromLongLong((long long)v.int_value);
    case LUIGI_KIND_SET: {
        PyObject *set = decode_set_elements(st, buf.data, buf.len);
        luigi_buffer_free(&buf);
        return set;
    }
    default:
        PyErr_Format(st->LuigiError, "libluigi returned an unknown value kind %u",
                     (unsigned)v.kind);
        return NULL;
    }
}

static PyObject *
Replica_keys(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ReplicaObject *self = (ReplicaObject *)op;
    module_state *st = state_of(op);
    luigi_buffer buf = {NULL, 0};
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_replica_keys(self->replica, &buf));
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        goto done;
    }
    size_t i = 0;
    while (i < buf.len) {
        const uint8_t *data;
        size_t len;
        if (read_chunk(buf.data, buf.len, &i, &data, &len) < 0) {
            goto malformed;
        }
        PyObject *key = PyUnicode_DecodeUTF8((const char *)data, (Py_ssize_t)len, "strict");
        if (key == NULL || PyList_Append(list, key) < 0) {
            Py_XDECREF(key);
            Py_CLEAR(list);
            goto done;
        }
        Py_DECREF(key);
    }
    goto done;
malformed:
    Py_CLEAR(list);
    malformed_buffer(st, "keys");
done:
    luigi_buffer_free(&buf);
    return list;
}

static PyObject *
Replica_delta_since(PyObject *op, PyObject *clock)
{
    ReplicaObject *self = (ReplicaObject *)op;
    module_state *st = state_of(op);
    if (check_clock(st, clock) < 0) {
        return NULL;
    }
    luigi_update_list *list = NULL;
    luigi_status s;
    WITH_LOCK(self->lock,
        s = luigi_replica_delta_since(self->replica, ((VectorClockObject *)clock)->clock, &list));
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *result = update_list_to_pylist(st, list);
    luigi_update_list_free(list);
    return result;
}

static PyObject *
Replica_delta_bytes(PyObject *op, PyObject *clock)
{
    ReplicaObject *self = (ReplicaObject *)op;
    module_state *st = state_of(op);
    if (check_clock(st, clock) < 0) {
        return NULL;
    }
    luigi_buffer buf = {0};
    luigi_status s;
    WITH_LOCK(self->lock,
        s = luigi_replica_delta_encode(self->replica, ((VectorClockObject *)clock)->clock, &buf));
    return take_buffer(st, s, &buf);
}

static PyObject *
Replica_apply_bytes(PyObject *op, PyObject *data)
{
    ReplicaObject *self = (ReplicaObject *)op;
    module_state *st = state_of(op);
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    size_t applied = 0;
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock,
        s = luigi_replica_apply_encoded(self->replica, VIEW_DATA(view), &applied));
    PyBuffer_Release(&view);
    return size_or_raise(st, s, applied);
}

static PyObject *
Replica_repr(PyObject *op)
{
    ReplicaObject *self = (ReplicaObject *)op;
    uint64_t node = 0;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_replica_node_id(self->replica, &node));
    if (s != LUIGI_OK) {
        return raise_status(state_of(op), s);
    }
    return PyUnicode_FromFormat("Replica(%llu)", (unsigned long long)node);
}

static PyMethodDef Replica_methods[] = {
    {"transaction", Replica_transaction, METH_NOARGS,
     "transaction($self, /)\n--\n\nStart a transaction (use it as a context manager)."},
    {"apply", FUNC(Replica_apply), METH_FASTCALL,
     "apply($self, update, /)\n--\n\n"
     "Apply a remote update. True when it was new (applied, or held in pending\n"
     "until its causal predecessors arrive); False for a duplicate."},
    {"delta_bytes", Replica_delta_bytes, METH_O,
     "delta_bytes($self, clock, /)\n--\n\ndelta_since(clock) as one Update.encode_many batch, built in the library."},
    {"apply_bytes", Replica_apply_bytes, METH_O,
     "apply_bytes($self, data, /)\n--\n\nDecode an encode_many batch and apply it; returns how many were new."},
    {"apply_many", Replica_apply_many, METH_O,
     "apply_many($self, updates, /)\n--\n\n"
     "Apply every update of an iterable (the loop runs in C, without the GIL);\n"
     "return how many were new."},
    {"value", FUNC(Replica_value), METH_FASTCALL,
     "value($self, key, /)\n--\n\n"
     "The key's value: int (counter, max/min), float (max/min), frozenset (set),\n"
     "or None when the key is unknown."},
    {"keys", Replica_keys, METH_NOARGS, "keys($self, /)\n--\n\nAll keys, sorted."},
    {"delta_since", Replica_delta_since, METH_O,
     "delta_since($self, clock, /)\n--\n\n"
     "Every applied update that clock has not seen, in causal order."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Replica_getset[] = {
    {"node_id", Replica_get_node_id, NULL, "This replica's node id.", NULL},
    {"clock", Replica_get_clock, NULL,
     "A copy of the version vector (origin -> highest applied seq).", NULL},
    {"pending", Replica_get_pending, NULL,
     "Updates received but waiting for causal predecessors.", NULL},
    {"conflicts", Replica_get_conflicts, NULL,
     "Ops kept under a type that lost its key's type conflict.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Replica_slots[] = {
    {Py_tp_doc, "Replica(node_id)\n--\n\n"
                "A replica of coordination-free (algebraic) state: counters, max/min\n"
                "registers and grow-only sets, merged exactly once per update."},
    {Py_tp_new, Replica_new},
    {Py_tp_dealloc, Replica_dealloc},
    {Py_tp_repr, Replica_repr},
    {Py_tp_methods, Replica_methods},
    {Py_tp_getset, Replica_getset},
    {0, NULL},
};

PyType_Spec Replica_spec = {
    .name = "luigi_node.Replica",
    .basicsize = sizeof(ReplicaObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = Replica_slots,
};

/* ============================================================ Transaction */

static PyObject *
Transaction_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    PyErr_Format(PyExc_TypeError, "cannot create '%.100s' instances: use Replica.transaction()",
                 type->tp_name);
    return NULL;
}

static void
txn_release(TransactionObject *self)
{
    if (self->txn != NULL) {
        WITH_LOCK(self->replica->lock, luigi_txn_free(self->txn));
        self->txn = NULL;
    }
}

static void
Transaction_dealloc(TransactionObject *self)
{
    txn_release(self);
    Py_CLEAR(self->update);
    Py_CLEAR(self->replica);
    free_instance(self);
}

int
txn_check_open(module_state *st, TransactionObject *self)
{
    if (self->state == TXN_OPEN) {
        return 0;
    }
    static const char *why[] = {"", "the transaction was already committed",
                                "the transaction was discarded",
                                "the transaction was already proposed to the log"};
    PyErr_SetString(st->TransactionStateError, why[self->state]);
    return -1;
}

/* Common prologue of the op methods: 2 positional args, open txn, str key. */
static int
txn_op_args(module_state *st, TransactionObject *self, const char *name, PyObject *const *args,
            Py_ssize_t nargs, const char **key, size_t *key_len)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes exactly 2 arguments (%zd given)", name, nargs);
        return -1;
    }
    if (txn_check_open(st, self) < 0) {
        return -1;
    }
    return as_key(args[0], key, key_len);
}

static PyObject *
Transaction_add(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    TransactionObject *self = (TransactionObject *)op;
    module_state *st = state_of(op);
    const char *key;
    size_t key_len;
    int64_t delta;
    if (txn_op_args(st, self, "add", args, nargs, &key, &key_len) < 0 ||
        as_i64(st, args[1], "delta", &delta) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(self->replica->lock, s = luigi_txn_add(self->txn, key, key_len, delta));
    return none_or_raise(st, s);
}

/* The ops that take one number (int or float): max, min and set. */
typedef struct {
    const char *name;
    luigi_status (*with_int)(luigi_txn *, const char *, size_t, int64_t);
    luigi_status (*with_float)(luigi_txn *, const char *, size_t, double);
} number_op;

static const number_op NUMBER_MAX = {"max", luigi_txn_max_int, luigi_txn_max_float};
static const number_op NUMBER_MIN = {"min", luigi_txn_min_int, luigi_txn_min_float};
static const number_op NUMBER_SET = {"set", luigi_txn_set_int, luigi_txn_set_float};

static PyObject *
txn_number_op(PyObject *op, PyObject *const *args, Py_ssize_t nargs, const number_op *f)
{
    TransactionObject *self = (TransactionObject *)op;
    module_state *st = state_of(op);
    const char *key;
    size_t key_len;
    if (txn_op_args(st, self, f->name, args, nargs, &key, &key_len) < 0) {
        return NULL;
    }
    PyObject *value = args[1];
    luigi_status s;
    if (PyFloat_Check(value)) {
        double d = PyFloat_AS_DOUBLE(value);
        WITH_LOCK(self->replica->lock, s = f->with_float(self->txn, key, key_len, d));
    }
    else if (PyLong_Check(value) || PyIndex_Check(value)) {
        int64_t i;
        if (as_i64(st, value, "value", &i) < 0) {
            return NULL;
        }
        WITH_LOCK(self->replica->lock, s = f->with_int(self->txn, key, key_len, i));
    }
    else {
        PyErr_Format(PyExc_TypeError, "value must be int or float, not %.100s",
                     Py_TYPE(value)->tp_name);
        return NULL;
    }
    return none_or_raise(st, s);
}

static PyObject *
Transaction_max(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    return txn_number_op(op, args, nargs, &NUMBER_MAX);
}

static PyObject *
Transaction_min(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    return txn_number_op(op, args, nargs, &NUMBER_MIN);
}

/* One set element, converted before the lock is taken. */
typedef struct {
    int tag; /* LUIGI_ELEMENT_* */
    int64_t int_value;
    const char *data; /* borrowed from the element object, kept alive by `seq` */
    size_t len;
} element_arg;

static PyObject *
Transaction_union(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    TransactionObject *self = (TransactionObject *)op;
    module_state *st = state_of(op);
    const char *key;
    size_t key_len;
    if (txn_op_args(st, self, "union", args, nargs, &key, &key_len) < 0) {
        return NULL;
    }
    PyObject *elements = args[1];
    if (PyUnicode_Check(elements) || PyBytes_Check(elements) || PyByteArray_Check(elements)) {
        PyErr_Format(PyExc_TypeError,
                     "elements must be an iterable of elements, not a single %.100s "
                     "(wrap it: {value})",
                     Py_TYPE(elements)->tp_name);
        return NULL;
    }
    PyObject *seq = PySequence_Fast(elements, "elements must be an iterable");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    element_arg *conv = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(element_arg));
    if (conv == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    /* Validate every element first, so a bad one adds nothing. */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *e = items[i];
        if (PyUnicode_Check(e)) {
            Py_ssize_t len;
            conv[i].data = PyUnicode_AsUTF8AndSize(e, &len);
            if (conv[i].data == NULL) {
                goto fail;
            }
            conv[i].len = (size_t)len;
            conv[i].tag = LUIGI_ELEMENT_STR;
        }
        else if (PyBytes_Check(e)) {
            conv[i].data = PyBytes_AS_STRING(e);
            conv[i].len = (size_t)PyBytes_GET_SIZE(e);
            conv[i].tag = LUIGI_ELEMENT_BYTES;
        }
        else if (PyLong_Check(e)) {
            if (as_i64(st, e, "set element", &conv[i].int_value) < 0) {
                goto fail;
            }
            conv[i].tag = LUIGI_ELEMENT_INT;
        }
        else {
            PyErr_Format(PyExc_TypeError, "set elements must be str, bytes or int, not %.100s",
                         Py_TYPE(e)->tp_name);
            goto fail;
        }
    }
    luigi_status s = LUIGI_OK;
    lock_acquire(self->replica->lock);
    if (n == 0) {
        /* No element still makes the key a set, as any first op fixes its type. */
        s = luigi_txn_union_empty(self->txn, key, key_len);
    }
    for (Py_ssize_t i = 0; i < n && s == LUIGI_OK; i++) {
        switch (conv[i].tag) {
        case LUIGI_ELEMENT_STR:
            s = luigi_txn_union_str(self->txn, key, key_len, conv[i].data, conv[i].len);
            break;
        case LUIGI_ELEMENT_BYTES:
            s = luigi_txn_union_bytes(self->txn, key, key_len, (const uint8_t *)conv[i].data,
                                      conv[i].len);
            break;
        default:
            s = luigi_txn_union_int(self->txn, key, key_len, conv[i].int_value);
            break;
        }
    }
    lock_release(self->replica->lock);
    PyMem_Free(conv);
    Py_DECREF(seq);
    return none_or_raise(st, s);
fail:
    PyMem_Free(conv);
    Py_DECREF(seq);
    return NULL;
}

static PyObject *
Transaction_set(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    return txn_number_op(op, args, nargs, &NUMBER_SET);
}

static PyObject *
Transaction_commit(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    TransactionObject *self = (TransactionObject *)op;
    module_state *st = state_of(op);
    if (txn_check_open(st, self) < 0) {
        return NULL;
    }
    luigi_update *update = NULL;
    lock_acquire(self->replica->lock);
    luigi_status s = luigi_txn_commit(self->txn, &update);
    if (s == LUIGI_OK) {
        luigi_txn_free(self->txn); /* finished: nothing more to do with it */
        self->txn = NULL;
    }
    lock_release(self->replica->lock);
    if (s != LUIGI_OK) {
        return raise_status(st, s); /* still open: the caller may discard it */
    }
    self->state = TXN_COMMITTED;
    PyObject *u = wrap_update(st, LUIGI_OK, update);
    if (u == NULL) {
        return NULL;
    }
    self->update = Py_NewRef(u);
    return u;
}

static Py_ssize_t
Transaction_length(PyObject *op)
{
    TransactionObject *self = (TransactionObject *)op;
    module_state *st = state_of(op);
    size_t n = 0;
    luigi_status s = LUIGI_OK;
    switch (self->state) {
    case TXN_OPEN:
        WITH_LOCK(self->replica->lock, s = luigi_txn_op_count(self->txn, &n));
        break;
    case TXN_COMMITTED:
        s = luigi_update_op_count(((UpdateObject *)self->update)->update, &n);
        break;
    case TXN_PROPOSED:
        n = self->proposed_ops;
        break;
    default:
        break;
    }
    return ok_or_raise(st, s) < 0 ? -1 : (Py_ssize_t)n;
}

static PyObject *
Transaction_get_update(PyObject *op, void *Py_UNUSED(closure))
{
    TransactionObject *self = (TransactionObject *)op;
    if (self->update == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(self->update);
}

static PyObject *
Transaction_get_proposed_index(PyObject *op, void *Py_UNUSED(closure))
{
    TransactionObject *self = (TransactionObject *)op;
    if (self->state != TXN_PROPOSED) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLongLong(self->proposed_index);
}

static PyObject *
Transaction_enter(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(op);
}

static PyObject *
Transaction_exit(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    TransactionObject *self = (TransactionObject *)op;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "__exit__() takes exactly 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (self->state != TXN_OPEN) {
        Py_RETURN_FALSE; /* already committed (or discarded) inside the block */
    }
    if (args[0] == Py_None) {
        PyObject *u = Transaction_commit(op, NULL);
        if (u == NULL) {
            /* The block is over: a transaction that cannot commit is dropped. */
            txn_release(self);
            self->state = TXN_DISCARDED;
            return NULL;
        }
        Py_DECREF(u);
        Py_RETURN_FALSE;
    }
    txn_release(self);
    self->state = TXN_DISCARDED;
    Py_RETURN_FALSE; /* never swallow the exception */
}

static PyObject *
Transaction_repr(PyObject *op)
{
    TransactionObject *self = (TransactionObject *)op;
    static const char *names[] = {"open", "committed", "discarded", "proposed"};
    return PyUnicode_FromFormat("<Transaction on %R, %s>", (PyObject *)self->replica,
                                names[self->state]);
}

static PyMethodDef Transaction_methods[] = {
    {"add", FUNC(Transaction_add), METH_FASTCALL,
     "add($self, key, delta, /)\n--\n\nAdd a signed 64-bit delta to a counter."},
    {"max", FUNC(Transaction_max), METH_FASTCALL,
     "max($self, key, value, /)\n--\n\nRaise a max register to value (int or float, no NaN)."},
    {"min", FUNC(Transaction_min), METH_FASTCALL,
     "min($self, key, value, /)\n--\n\nLower a min register to value (int or float, no NaN)."},
    {"union", FUNC(Transaction_union), METH_FASTCALL,
     "union($self, key, elements, /)\n--\n\n"
     "Add str/bytes/int elements to a grow-only set. All elements are checked\n"
     "before any is added; an empty iterable adds nothing."},
    {"set", FUNC(Transaction_set), METH_FASTCALL,
     "set($self, key, value, /)\n--\n\n"
     "Overwrite a register with value (int or float, no NaN). Not algebraic:\n"
     "commit() then raises NotAlgebraicError; propose the transaction through a\n"
     "Raft log instead (RaftNode.propose_transaction)."},
    {"commit", Transaction_commit, METH_NOARGS,
     "commit($self, /)\n--\n\n"
     "Validate and apply every op atomically; return the Update to ship.\n"
     "On error nothing changes and the transaction stays open."},
    {"__enter__", Transaction_enter, METH_NOARGS, "__enter__($self, /)\n--\n\n"},
    {"__exit__", FUNC(Transaction_exit), METH_FASTCALL,
     "__exit__($self, exc_type, exc, traceback, /)\n--\n\n"
     "Commit when the block ended normally, discard when it raised."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Transaction_getset[] = {
    {"update", Transaction_get_update, NULL, "The committed Update, or None.", NULL},
    {"proposed_index", Transaction_get_proposed_index, NULL,
     "The log index it was proposed at, or None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Transaction_slots[] = {
    {Py_tp_doc, "A transaction on a Replica: ops are buffered until commit()."},
    {Py_tp_new, Transaction_new},
    {Py_tp_dealloc, Transaction_dealloc},
    {Py_tp_repr, Transaction_repr},
    {Py_tp_methods, Transaction_methods},
    {Py_tp_getset, Transaction_getset},
    {Py_mp_length, Transaction_length},
    {0, NULL},
};

PyType_Spec Transaction_spec = {
    .name = "luigi_node.Transaction",
    .basicsize = sizeof(TransactionObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = Transaction_slots,
};
