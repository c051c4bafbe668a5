/* _luigi_clock.c — luigi_node.VectorClock. */

#include "_luigi.h"

/* ============================================================ VectorClock */

/* The library's result `clock` as a VectorClock, or the exception for `s`. */
PyObject *
wrap_clock(module_state *st, luigi_status s, luigi_clock *clock)
{
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyTypeObject *tp = st->VectorClockType;
    VectorClockObject *self = (VectorClockObject *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        luigi_clock_free(clock);
        return NULL;
    }
    self->clock = clock;
    return (PyObject *)self;
}

int
check_clock(module_state *st, PyObject *obj)
{
    if (!Py_IS_TYPE(obj, st->VectorClockType)) {
        PyErr_Format(PyExc_TypeError, "expected a VectorClock, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    return 0;
}

static PyObject *
VectorClock_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"entries", NULL};
    PyObject *entries = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:VectorClock", kwlist, &entries)) {
        return NULL;
    }
    module_state *st = state_of_type(type);
    luigi_clock *clock = NULL;
    luigi_status s = luigi_clock_new(&clock);
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    VectorClockObject *self = (VectorClockObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        luigi_clock_free(clock);
        return NULL;
    }
    self->clock = clock;
    if (entries == Py_None) {
        return (PyObject *)self;
    }
    /* dict() accepts exactly what we promise: a mapping or (node, counter) pairs. */
    PyObject *d = PyObject_CallOneArg((PyObject *)&PyDict_Type, entries);
    if (d == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(d, &pos, &key, &value)) {
        uint64_t node, counter;
        if (as_u64(st, key, "node id", &node) < 0 || as_u64(st, value, "counter", &counter) < 0) {
            goto fail;
        }
        s = luigi_clock_set(clock, node, counter);
        if (s != LUIGI_OK) {
            raise_status(st, s);
            goto fail;
        }
    }
    Py_DECREF(d);
    return (PyObject *)self;
fail:
    Py_DECREF(d);
    Py_DECREF(self);
    return NULL;
}

static void
VectorClock_dealloc(VectorClockObject *self)
{
    luigi_clock_free(self->clock);
    self->clock = NULL;
    free_instance(self);
}

/* Entries sorted by node id, into freshly PyMem-allocated arrays. */
static int
clock_entries(module_state *st, const luigi_clock *clock, uint64_t **nodes,
              uint64_t **counters, size_t *count)
{
    size_t n = 0;
    luigi_status s = luigi_clock_len(clock, &n);
    if (ok_or_raise(st, s) < 0) {
        return -1;
    }
    *nodes = NULL;
    *counters = NULL;
    *count = 0;
    if (n == 0) {
        return 0;
    }
    if (n > (size_t)PY_SSIZE_T_MAX / sizeof(uint64_t)) {
        PyErr_NoMemory();
        return -1;
    }
    uint64_t *a = PyMem_Malloc(n * sizeof(uint64_t));
    uint64_t *b = PyMem_Malloc(n * sizeof(uint64_t));
    if (a == NULL || b == NULL) {
        PyMem_Free(a);
        PyMem_Free(b);
        PyErr_NoMemory();
        return -1;
    }
    size_t got = 0;
    s = luigi_clock_entries(clock, a, b, n, &got);
    if (s != LUIGI_OK || got > n) {
        PyMem_Free(a);
        PyMem_Free(b);
        if (s == LUIGI_OK) {
            PyErr_SetString(st->LuigiError, "luigi_clock_entries reported more entries than room");
        }
        else {
            raise_status(st, s);
        }
        return -1;
    }
    *nodes = a;
    *counters = b;
    *count = got;
    return 0;
}

/* mode 0: keys, 1: values, 2: items, 3: dict */
static PyObject *
clock_collect(PyObject *op, int mode)
{
    VectorClockObject *self = (VectorClockObject *)op;
    module_state *st = state_of(op);
    uint64_t *nodes, *counters;
    size_t n;
    if (clock_entries(st, self->clock, &nodes, &counters, &n) < 0) {
        return NULL;
    }
    PyObject *result = mode == 3 ? PyDict_New() : PyList_New((Py_ssize_t)n);
    if (result == NULL) {
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        PyObject *item = NULL;
        PyObject *k = PyLong_FromUnsignedLongLong(nodes[i]);
        PyObject *v = PyLong_FromUnsignedLongLong(counters[i]);
        if (k == NULL || v == NULL) {
            Py_XDECREF(k);
            Py_XDECREF(v);
            Py_CLEAR(result);
            goto done;
        }
        switch (mode) {
        case 0: item = Py_NewRef(k); break;
        case 1: item = Py_NewRef(v); break;
        case 2: item = PyTuple_Pack(2, k, v); break;
        default:
            if (PyDict_SetItem(result, k, v) < 0) {
                Py_DECREF(k);
                Py_DECREF(v);
                Py_CLEAR(result);
                goto done;
            }
            break;
        }
        Py_DECREF(k);
        Py_DECREF(v);
        if (mode != 3) {
            if (item == NULL) {
                Py_CLEAR(result);
                goto done;
            }
            PyList_SET_ITEM(result, (Py_ssize_t)i, item);
        }
    }
done:
    PyMem_Free(nodes);
    PyMem_Free(counters);
    return result;
}

static PyObject *
VectorClock_keys(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return clock_collect(self, 0);
}

static PyObject *
VectorClock_values(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return clock_collect(self, 1);
}

static PyObject *
VectorClock_items(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return clock_collect(self, 2);
}

static PyObject *
VectorClock_iter(PyObject *self)
{
    PyObject *keys = clock_collect(self, 0);
    if (keys == NULL) {
        return NULL;
    }
    PyObject *it = PyObject_GetIter(keys);
    Py_DECREF(keys);
    return it;
}

static PyObject *
VectorClock_repr(PyObject *self)
{
    PyObject *d = clock_collect(self, 3);
    if (d == NULL) {
        return NULL;
    }
    PyObject *r = PyUnicode_FromFormat("VectorClock(%R)", d);
    Py_DECREF(d);
    return r;
}

/* The counter of node `node_obj`, ticked first when `tick`. */
static PyObject *
clock_counter(PyObject *op, PyObject *node_obj, int tick)
{
    VectorClockObject *self = (VectorClockObject *)op;
    module_state *st = state_of(op);
    uint64_t node, counter = 0;
    if (as_u64(st, node_obj, "node id", &node) < 0) {
        return NULL;
    }
    luigi_status s = tick ? luigi_clock_tick(self->clock, node, &counter)
                          : luigi_clock_get(self->clock, node, &counter);
    return u64_or_raise(st, s, counter);
}

static PyObject *
VectorClock_tick(PyObject *op, PyObject *arg)
{
    return clock_counter(op, arg, 1);
}

static PyObject *
VectorClock_subscript(PyObject *op, PyObject *key)
{
    return clock_counter(op, key, 0);
}

static int
VectorClock_ass_subscript(PyObject *op, PyObject *key, PyObject *value)
{
    VectorClockObject *self = (VectorClockObject *)op;
    module_state *st = state_of(op);
    uint64_t node, counter = 0;
    if (as_u64(st, key, "node id", &node) < 0) {
        return -1;
    }
    if (opt_u64(st, value, "counter", &counter) < 0) {
        return -1;
    }
    /* del vc[node] is vc[node] = 0: both remove the entry. */
    luigi_status s = luigi_clock_set(self->clock, node, counter);
    return ok_or_raise(st, s);
}

static Py_ssize_t
VectorClock_length(PyObject *op)
{
    VectorClockObject *self = (VectorClockObject *)op;
    size_t n = 0;
    luigi_status s = luigi_clock_len(self->clock, &n);
    return ok_or_raise(state_of(op), s) < 0 ? -1 : (Py_ssize_t)n;
}

static int
VectorClock_contains(PyObject *op, PyObject *key)
{
    VectorClockObject *self = (VectorClockObject *)op;
    if (!PyLong_Check(key)) {
        return 0;
    }
    unsigned long long node = PyLong_AsUnsignedLongLong(key);
    if (node == (unsigned long long)-1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear(); /* negative or >= 2**64: never a node id */
            return 0;
        }
        return -1;
    }
    uint64_t counter = 0;
    luigi_status s = luigi_clock_get(self->clock, (uint64_t)node, &counter);
    if (ok_or_raise(state_of(op), s) < 0) {
        return -1;
    }
    return counter != 0;
}

static PyObject *
VectorClock_merge(PyObject *op, PyObject *other)
{
    module_state *st = state_of(op);
    if (check_clock(st, other) < 0) {
        return NULL;
    }
    luigi_status s = luigi_clock_merge(((VectorClockObject *)op)->clock,
                                       ((VectorClockObject *)other)->clock);
    return none_or_raise(st, s);
}

/* Returns the luigi_causal_order or -1 with an exception set. */
static int
clock_order(module_state *st, PyObject *a, PyObject *b)
{
    if (check_clock(st, b) < 0) {
        return -1;
    }
    luigi_causal_order order = LUIGI_ORDER_EQUAL;
    luigi_status s = luigi_clock_compare(((VectorClockObject *)a)->clock,
                                         ((VectorClockObject *)b)->clock, &order);
    if (ok_or_raise(st, s) < 0) {
        return -1;
    }
    return (int)order;
}

static PyObject *
VectorClock_compare(PyObject *op, PyObject *other)
{
    module_state *st = state_of(op);
    int order = clock_order(st, op, other);
    if (order < 0) {
        return NULL;
    }
    return PyObject_CallFunction(st->CausalOrder, "i", order);
}

static PyObject *
VectorClock_happened_before(PyObject *op, PyObject *other)
{
    int order = clock_order(state_of(op), op, other);
    if (order < 0) {
        return NULL;
    }
    return PyBool_FromLong(order == LUIGI_ORDER_BEFORE);
}

static PyObject *
VectorClock_concurrent_with(PyObject *op, PyObject *other)
{
    int order = clock_order(state_of(op), op, other);
    if (order < 0) {
        return NULL;
    }
    return PyBool_FromLong(order == LUIGI_ORDER_CONCURRENT);
}

static PyObject *
VectorClock_richcompare(PyObject *op, PyObject *other, int cmp)
{
    module_state *st = state_of(op);
    if ((cmp != Py_EQ && cmp != Py_NE) || !Py_IS_TYPE(other, st->VectorClockType)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    int order = clock_order(st, op, other);
    if (order < 0) {
        return NULL;
    }
    return PyBool_FromLong((order == LUIGI_ORDER_EQUAL) == (cmp == Py_EQ));
}

static PyObject *
VectorClock_copy(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    module_state *st = state_of(op);
    luigi_clock *copy = NULL;
    luigi_status s = luigi_clock_copy(((VectorClockObject *)op)->clock, &copy);
    return wrap_clock(st, s, copy);
}

static PyObject *
VectorClock_bytes(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    module_state *st = state_of(op);
    luigi_buffer buf = {NULL, 0};
    luigi_status s = luigi_clock_encode(((VectorClockObject *)op)->clock, &buf);
    return take_buffer(st, s, &buf);
}

static PyObject *
VectorClock_from_bytes(PyObject *cls, PyObject *data)
{
    module_state *st = state_of_type((PyTypeObject *)cls);
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    luigi_clock *clock = NULL;
    luigi_status s = luigi_clock_decode(VIEW_DATA(view), &clock);
    PyBuffer_Release(&view);
    return wrap_clock(st, s, clock);
}

static PyMethodDef VectorClock_methods[] = {
    {"tick", VectorClock_tick, METH_O,
     "tick($self, node, /)\n--\n\nIncrement node's counter; return the new value."},
    {"merge", VectorClock_merge, METH_O,
     "merge($self, other, /)\n--\n\nPointwise maximum with other, in place."},
    {"compare", VectorClock_compare, METH_O,
     "compare($self, other, /)\n--\n\nThe CausalOrder of self relative to other."},
    {"happened_before", VectorClock_happened_before, METH_O,
     "happened_before($self, other, /)\n--\n\nTrue when self happened before other."},
    {"concurrent_with", VectorClock_concurrent_with, METH_O,
     "concurrent_with($self, other, /)\n--\n\nTrue when neither happened before the other."},
    {"copy", VectorClock_copy, METH_NOARGS, "copy($self, /)\n--\n\nAn independent copy."},
    {"keys", VectorClock_keys, METH_NOARGS,
     "keys($self, /)\n--\n\nNode ids with a non-zero counter, sorted."},
    {"values", VectorClock_values, METH_NOARGS,
     "values($self, /)\n--\n\nCounters, in node order."},
    {"items", VectorClock_items, METH_NOARGS,
     "items($self, /)\n--\n\n(node, counter) pairs, in node order."},
    {"__bytes__", VectorClock_bytes, METH_NOARGS,
     "__bytes__($self, /)\n--\n\nVersioned binary encoding (with CRC-32C)."},
    {"from_bytes", VectorClock_from_bytes, METH_O | METH_CLASS,
     "from_bytes($type, data, /)\n--\n\nDecode bytes(vc); DecodeError when malformed."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot VectorClock_slots[] = {
    {Py_tp_doc, "VectorClock(entries=None)\n--\n\n"
                "A vector clock: node id (uint64) -> counter (uint64); absent means 0.\n"
                "entries is a mapping or an iterable of (node, counter) pairs."},
    {Py_tp_new, VectorClock_new},
    {Py_tp_dealloc, VectorClock_dealloc},
    {Py_tp_repr, VectorClock_repr},
    {Py_tp_iter, VectorClock_iter},
    {Py_tp_richcompare, VectorClock_richcompare},
    {Py_tp_hash, PyObject_HashNotImplemented},
    {Py_tp_methods, VectorClock_methods},
    {Py_mp_subscript, VectorClock_subscript},
    {Py_mp_ass_subscript, VectorClock_ass_subscript},
    {Py_mp_length, VectorClock_length},
    {Py_sq_contains, VectorClock_contains},
    {0, NULL},
};

PyType_Spec VectorClock_spec = {
    .name = "luigi_node.VectorClock",
    .basicsize = sizeof(VectorClockObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = VectorClock_slots,
};
