/*
 * _luigi.c — the CPython extension behind luigi_node.
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
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "luigi.h"

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
    PyObject *NotLinearizableError;
    PyObject *CausalOrder;
    PyObject *EntryType;      /* luigi_node._raft.Entry (a frozen dataclass) */
    PyObject *RaftStatusType; /* luigi_node._raft.RaftStatus (a frozen dataclass) */
    PyObject *decode_history; /* luigi_node._raft.decode_history */
    PyObject *HardStateType;  /* luigi_node._raft.HardState (a frozen dataclass) */
    PyObject *role_names[4];  /* interned "follower", ... indexed by LUIGI_ROLE_* */
    PyObject *entry_kinds[2]; /* interned "normal", "conf_change" by LUIGI_ENTRY_* */
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

/* ------------------------------------------------------------ errors */

/* The one place where a luigi_status becomes a Python exception, with the
 * given message (NULL or empty: just the status name). */
static PyObject *
raise_status_message(module_state *st, luigi_status status, const char *message)
{
    PyObject *cls;
    switch (status) {
    case LUIGI_ERR_INVALID_ARGUMENT: cls = st->LuigiValueError; break;
    case LUIGI_ERR_INVALID_HANDLE: cls = st->InvalidHandleError; break;
    case LUIGI_ERR_DECODE: cls = st->DecodeError; break;
    case LUIGI_ERR_NOT_ALGEBRAIC: cls = st->NotAlgebraicError; break;
    case LUIGI_ERR_TYPE_CONFLICT: cls = st->TypeConflictError; break;
    case LUIGI_ERR_OVERFLOW: cls = st->LuigiOverflowError; break;
    case LUIGI_ERR_STATE: cls = st->TransactionStateError; break;
    case LUIGI_ERR_NOT_CONVERGED: cls = st->NotConvergedError; break;
    case LUIGI_ERR_OUT_OF_RANGE: cls = st->LuigiIndexError; break;
    case LUIGI_ERR_IO: cls = st->LuigiIOError; break;
    case LUIGI_ERR_TIMEOUT: cls = st->LuigiTimeoutError; break;
    default: cls = st->LuigiError; break; /* BUFFER_TOO_SMALL, INTERNAL, unknown */
    }
    const char *name = luigi_status_name(status);
    if (name == NULL || name[0] == '\0') {
        name = "LUIGI_ERR_UNKNOWN";
    }
    if (message != NULL && message[0] != '\0') {
        PyErr_Format(cls, "%s [%s]", message, name);
    }
    else {
        PyErr_Format(cls, "%s (status %d)", name, (int)status);
    }
    return NULL;
}

/* The exception for a failed call: its status and the thread's last error. */
static PyObject *
raise_status(module_state *st, luigi_status status)
{
    return raise_status_message(st, status, luigi_last_error_message());
}

/* The usual ends of a call: its result when `s` is LUIGI_OK, else the
 * exception for `s`. */
static PyObject *
none_or_raise(module_state *st, luigi_status s)
{
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    Py_RETURN_NONE;
}

static PyObject *
u64_or_raise(module_state *st, luigi_status s, uint64_t v)
{
    return s != LUIGI_OK ? raise_status(st, s) : PyLong_FromUnsignedLongLong(v);
}

static PyObject *
size_or_raise(module_state *st, luigi_status s, size_t n)
{
    return s != LUIGI_OK ? raise_status(st, s) : PyLong_FromSize_t(n);
}

static PyObject *
bool_or_raise(module_state *st, luigi_status s, int flag)
{
    return s != LUIGI_OK ? raise_status(st, s) : PyBool_FromLong(flag != 0);
}

/* For C-level callers and int/Py_ssize_t slots: 0, or -1 with the exception set. */
static int
ok_or_raise(module_state *st, luigi_status s)
{
    if (s != LUIGI_OK) {
        raise_status(st, s);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ locks */

static int
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

/* A fresh lock into *out; -1 with MemoryError when none can be had. */
static int
new_lock(PyThread_type_lock *out)
{
    *out = PyThread_allocate_lock();
    if (*out == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* Frees *lock (if any) and forgets it. */
static void
free_lock(PyThread_type_lock *lock)
{
    if (*lock != NULL) {
        PyThread_free_lock(*lock);
        *lock = NULL;
    }
}

/* ------------------------------------------------------------ objects */

/* The common end of every tp_dealloc: free the memory, drop the heap type. */
static void
free_instance(void *self)
{
    PyTypeObject *tp = Py_TYPE((PyObject *)self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* The end of a tp_new whose library call failed: raise for `s` (before the
 * half-built object's tp_dealloc frees whatever it holds), drop the object. */
static PyObject *
raise_and_drop(module_state *st, luigi_status s, void *self)
{
    raise_status(st, s);
    Py_DECREF((PyObject *)self);
    return NULL;
}

/* A Py_buffer as the (pointer, length) pair the library takes. */
#define VIEW_DATA(view) (const uint8_t *)(view).buf, (size_t)(view).len

/* ------------------------------------------------------------ conversions */

/* obj itself when an int, else its __index__() (a new reference); NULL with
 * TypeError when it is neither. */
static PyObject *
int_object(PyObject *obj, const char *what)
{
    if (PyLong_Check(obj)) {
        return Py_NewRef(obj);
    }
    if (PyIndex_Check(obj)) {
        return PyNumber_Index(obj);
    }
    PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what, Py_TYPE(obj)->tp_name);
    return NULL;
}

/* An int (or __index__ object) in [0, 2**64). Outside: LuigiOverflowError. */
static int
as_u64(module_state *st, PyObject *obj, const char *what, uint64_t *out)
{
    PyObject *num = int_object(obj, what);
    if (num == NULL) {
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(num);
    Py_DECREF(num);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_Format(st->LuigiOverflowError, "%s must be in [0, 2**64)", what);
        }
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

/* An int (or __index__ object) in [-2**63, 2**63). Outside: LuigiOverflowError. */
static int
as_i64(module_state *st, PyObject *obj, const char *what, int64_t *out)
{
    PyObject *num = int_object(obj, what);
    if (num == NULL) {
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(num, &overflow);
    Py_DECREF(num);
    if (overflow != 0) {
        PyErr_Format(st->LuigiOverflowError, "%s must be in [-2**63, 2**63)", what);
        return -1;
    }
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

static int
as_u32(module_state *st, PyObject *obj, const char *what, uint32_t *out)
{
    uint64_t v;
    if (as_u64(st, obj, what, &v) < 0) {
        return -1;
    }
    if (v > UINT32_MAX) {
        PyErr_Format(st->LuigiOverflowError, "%s must be in [0, 2**32)", what);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* As as_u64 / as_u32 for an optional argument: an omitted one (NULL) leaves
 * *out at its default. */
static int
opt_u64(module_state *st, PyObject *obj, const char *what, uint64_t *out)
{
    return obj == NULL ? 0 : as_u64(st, obj, what, out);
}

static int
opt_u32(module_state *st, PyObject *obj, const char *what, uint32_t *out)
{
    return obj == NULL ? 0 : as_u32(st, obj, what, out);
}

/* Keys are str, passed to the library as UTF-8 (borrowed from `obj`). */
static int
as_key(PyObject *obj, const char **data, size_t *len)
{
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "key must be str, not %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(obj, &n);
    if (p == NULL) {
        return -1;
    }
    *data = p;
    *len = (size_t)n;
    return 0;
}

/* counter_hi:counter_lo (128-bit two's complement) as an exact Python int. */
static PyObject *
int128_to_long(int64_t hi, uint64_t lo)
{
    if (hi == 0) {
        return PyLong_FromUnsignedLongLong(lo);
    }
    if (hi == -1 && (lo >> 63) != 0) {
        return PyLong_FromLongLong((long long)(int64_t)lo);
    }
    PyObject *high = PyLong_FromLongLong(hi);
    PyObject *shift = PyLong_FromLong(64);
    PyObject *low = PyLong_FromUnsignedLongLong(lo);
    PyObject *shifted = NULL, *result = NULL;
    if (high != NULL && shift != NULL && low != NULL) {
        shifted = PyNumber_Lshift(high, shift);
        if (shifted != NULL) {
            result = PyNumber_Add(shifted, low); /* hi * 2**64 + lo */
        }
    }
    Py_XDECREF(high);
    Py_XDECREF(shift);
    Py_XDECREF(low);
    Py_XDECREF(shifted);
    return result;
}

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

/* The next u32le-length-prefixed chunk of p[0..n) at *i, advancing *i past
 * it; -1 when the buffer ends too early. */
static int
read_chunk(const uint8_t *p, size_t n, size_t *i, const uint8_t **data, size_t *len)
{
    if (n - *i < 4) {
        return -1;
    }
    *len = read_u32le(p + *i);
    *i += 4;
    if (n - *i < *len) {
        return -1;
    }
    *data = p + *i;
    *i += *len;
    return 0;
}

static PyObject *
malformed_buffer(module_state *st, const char *what)
{
    PyErr_Format(st->LuigiError, "libluigi returned a malformed %s buffer", what);
    return NULL;
}

/* ============================================================ VectorClock */

typedef struct {
    PyObject_HEAD
    luigi_clock *clock;
} VectorClockObject;

/* The library's result `clock` as a VectorClock, or the exception for `s`. */
static PyObject *
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

static int
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

/* Hands a filled luigi_buffer over as bytes (and frees it), or raises for `s`. */
static PyObject *
take_buffer(module_state *st, luigi_status s, luigi_buffer *buf)
{
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *b = PyBytes_FromStringAndSize((const char *)buf->data, (Py_ssize_t)buf->len);
    luigi_buffer_free(buf);
    return b;
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

static PyType_Spec VectorClock_spec = {
    .name = "luigi_node.VectorClock",
    .basicsize = sizeof(VectorClockObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = VectorClock_slots,
};

/* ============================================================ Update */

typedef struct {
    PyObject_HEAD
    luigi_update *update;
    PyObject *encoded; /* cached to_bytes(), NULL until first needed */
} UpdateObject;

static PyObject *
wrap_update(module_state *st, luigi_status s, luigi_update *update)
{
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyTypeObject *tp = st->UpdateType;
    UpdateObject *self = (UpdateObject *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        luigi_update_free(update);
        return NULL;
    }
    self->update = update;
    self->encoded = NULL;
    return (PyObject *)self;
}

static PyObject *
Update_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    PyErr_Format(PyExc_TypeError,
                 "cannot create '%.100s' instances: use Transaction.commit() or Update.from_bytes()",
                 type->tp_name);
    return NULL;
}

static void
Update_dealloc(UpdateObject *self)
{
    luigi_update_free(self->update);
    self->update = NULL;
    Py_CLEAR(self->encoded);
    free_instance(self);
}

/* Borrowed reference to the cached encoding. */
static PyObject *
update_encoded(UpdateObject *self)
{
    if (self->encoded == NULL) {
        module_state *st = state_of((PyObject *)self);
        luigi_buffer buf = {NULL, 0};
        luigi_status s = luigi_update_encode(self->update, &buf);
        self->encoded = take_buffer(st, s, &buf);
    }
    return self->encoded;
}

static PyObject *
Update_to_bytes(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    PyObject *b = update_encoded((UpdateObject *)op);
    return b == NULL ? NULL : Py_NewRef(b);
}

static PyObject *
Update_from_bytes(PyObject *cls, PyObject *data)
{
    module_state *st = state_of_type((PyTypeObject *)cls);
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    luigi_update *update = NULL;
    luigi_status s = luigi_update_decode(VIEW_DATA(view), &update);
    PyBuffer_Release(&view);
    return wrap_update(st, s, update);
}

static PyObject *
Update_get_origin(PyObject *op, void *Py_UNUSED(closure))
{
    uint64_t v = 0;
    luigi_status s = luigi_update_origin(((UpdateObject *)op)->update, &v);
    return u64_or_raise(state_of(op), s, v);
}

static PyObject *
Update_get_seq(PyObject *op, void *Py_UNUSED(closure))
{
    uint64_t v = 0;
    luigi_status s = luigi_update_seq(((UpdateObject *)op)->update, &v);
    return u64_or_raise(state_of(op), s, v);
}

static PyObject *
Update_get_clock(PyObject *op, void *Py_UNUSED(closure))
{
    module_state *st = state_of(op);
    luigi_clock *clock = NULL;
    luigi_status s = luigi_update_clock(((UpdateObject *)op)->update, &clock);
    return wrap_clock(st, s, clock);
}

static Py_ssize_t
Update_length(PyObject *op)
{
    size_t n = 0;
    luigi_status s = luigi_update_op_count(((UpdateObject *)op)->update, &n);
    return ok_or_raise(state_of(op), s) < 0 ? -1 : (Py_ssize_t)n;
}

static PyObject *
Update_richcompare(PyObject *op, PyObject *other, int cmp)
{
    module_state *st = state_of(op);
    if ((cmp != Py_EQ && cmp != Py_NE) || !Py_IS_TYPE(other, st->UpdateType)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    PyObject *a = update_encoded((UpdateObject *)op);
    if (a == NULL) {
        return NULL;
    }
    PyObject *b = update_encoded((UpdateObject *)other);
    if (b == NULL) {
        return NULL;
    }
    return PyObject_RichCompare(a, b, cmp);
}

static Py_hash_t
Update_hash(PyObject *op)
{
    PyObject *b = update_encoded((UpdateObject *)op);
    if (b == NULL) {
        return -1;
    }
    return PyObject_Hash(b);
}

static PyObject *
Update_repr(PyObject *op)
{
    UpdateObject *self = (UpdateObject *)op;
    uint64_t origin = 0, seq = 0;
    size_t ops = 0;
    luigi_status s = luigi_update_origin(self->update, &origin);
    if (s == LUIGI_OK) {
        s = luigi_update_seq(self->update, &seq);
    }
    if (s == LUIGI_OK) {
        s = luigi_update_op_count(self->update, &ops);
    }
    if (s != LUIGI_OK) {
        return raise_status(state_of(op), s);
    }
    return PyUnicode_FromFormat("Update(origin=%llu, seq=%llu, ops=%zu)",
                                (unsigned long long)origin, (unsigned long long)seq, ops);
}

static int
check_update(module_state *st, PyObject *obj)
{
    if (!Py_IS_TYPE(obj, st->UpdateType)) {
        PyErr_Format(PyExc_TypeError, "expected an Update, not %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    return 0;
}

/* A library list holding every Update of a Python iterable (NULL with an
 * exception set on failure). */
static luigi_update_list *
collect_updates(module_state *st, PyObject *updates)
{
    luigi_update_list *list = NULL;
    luigi_status s = luigi_update_list_new(&list);
    if (s != LUIGI_OK) {
        raise_status(st, s);
        return NULL;
    }
    PyObject *it = PyObject_GetIter(updates);
    if (it == NULL) {
        luigi_update_list_free(list);
        return NULL;
    }
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        if (check_update(st, item) < 0) {
            Py_DECREF(item);
            goto fail;
        }
        s = luigi_update_list_push(list, ((UpdateObject *)item)->update);
        Py_DECREF(item);
        if (s != LUIGI_OK) {
            raise_status(st, s);
            goto fail;
        }
    }
    if (PyErr_Occurred()) {
        goto fail;
    }
    Py_DECREF(it);
    return list;
fail:
    Py_DECREF(it);
    luigi_update_list_free(list);
    return NULL;
}

static PyObject *update_list_to_pylist(module_state *st, luigi_update_list *list);

static PyObject *
Update_encode_many(PyObject *cls, PyObject *updates)
{
    module_state *st = state_of_type((PyTypeObject *)cls);
    luigi_update_list *list = collect_updates(st, updates);
    if (list == NULL) {
        return NULL;
    }
    luigi_buffer buf = {0};
    luigi_status s = luigi_update_list_encode(list, &buf);
    luigi_update_list_free(list);
    return take_buffer(st, s, &buf);
}

static PyObject *
Update_decode_many(PyObject *cls, PyObject *data)
{
    module_state *st = state_of_type((PyTypeObject *)cls);
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    luigi_update_list *list = NULL;
    luigi_status s = luigi_update_list_decode(VIEW_DATA(view), &list);
    PyBuffer_Release(&view);
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *result = update_list_to_pylist(st, list);
    luigi_update_list_free(list);
    return result;
}

static PyMethodDef Update_methods[] = {
    {"to_bytes", Update_to_bytes, METH_NOARGS,
     "to_bytes($self, /)\n--\n\nVersioned binary encoding (with CRC-32C)."},
    {"from_bytes", Update_from_bytes, METH_O | METH_CLASS,
     "from_bytes($type, data, /)\n--\n\nDecode an update; DecodeError when malformed."},
    {"encode_many", Update_encode_many, METH_O | METH_CLASS,
     "encode_many($type, updates, /)\n--\n\nOne checksummed buffer for many updates (e.g. a delta)."},
    {"decode_many", Update_decode_many, METH_O | METH_CLASS,
     "decode_many($type, data, /)\n--\n\nDecode encode_many's buffer; DecodeError when malformed."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Update_getset[] = {
    {"origin", Update_get_origin, NULL, "Node id of the replica that committed it.", NULL},
    {"seq", Update_get_seq, NULL, "Sequence number at its origin (1, 2, ...).", NULL},
    {"clock", Update_get_clock, NULL,
     "The origin's clock when it committed (its causal dependencies).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Update_slots[] = {
    {Py_tp_doc, "One committed transaction, as shipped between replicas.\n\n"
                "Updates compare and hash by their encoded bytes."},
    {Py_tp_new, Update_new},
    {Py_tp_dealloc, Update_dealloc},
    {Py_tp_repr, Update_repr},
    {Py_tp_richcompare, Update_richcompare},
    {Py_tp_hash, Update_hash},
    {Py_tp_methods, Update_methods},
    {Py_tp_getset, Update_getset},
    {Py_mp_length, Update_length},
    {0, NULL},
};

static PyType_Spec Update_spec = {
    .name = "luigi_node.Update",
    .basicsize = sizeof(UpdateObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = Update_slots,
};

/* ============================================================ SimulatedCluster */

typedef struct {
    PyObject_HEAD
    luigi_cluster *cluster;
    PyThread_type_lock lock; /* guards the cluster and every replica it owns */
    size_t size;
} ClusterObject;

/* ============================================================ Replica */

typedef struct {
    PyObject_HEAD
    luigi_replica *replica;
    PyThread_type_lock lock;     /* effective lock: own_lock or the cluster's */
    PyThread_type_lock own_lock; /* NULL when the replica belongs to a cluster */
    PyObject *cluster;           /* the owning SimulatedCluster, kept alive */
} ReplicaObject;

static PyObject *
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

/* Transaction objects are defined below; Replica.transaction() makes them. */
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
update_list_to_pylist(module_state *st, luigi_update_list *list)
{
    size_t n = 0;
    luigi_status s = luigi_update_list_len(list, &n);
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *result = PyList_New((Py_ssize_t)n);
    if (result == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        luigi_update *u = NULL;
        s = luigi_update_list_get(list, i, &u);
        if (s != LUIGI_OK) {
            Py_DECREF(result);
            return raise_status(st, s);
        }
        PyObject *item = wrap_update(st, LUIGI_OK, u);
        if (item == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyList_SET_ITEM(result, (Py_ssize_t)i, item);
    }
    return result;
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

static PyType_Spec Replica_spec = {
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

static int
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

static PyType_Spec Transaction_spec = {
    .name = "luigi_node.Transaction",
    .basicsize = sizeof(TransactionObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = Transaction_slots,
};

/* ============================================================ SimulatedCluster */

static PyObject *
Cluster_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"nodes", "seed", "fanout", "drop", "duplicate",
                             "reorder", "max_delay", NULL};
    module_state *st = state_of_type(type);
    PyObject *nodes_obj, *seed_obj = NULL, *fanout_obj = NULL, *max_delay_obj = NULL;
    luigi_cluster_options options;
    luigi_cluster_options_init(&options);
    double drop = 0.0, duplicate = 0.0, reorder = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O$OdddO:SimulatedCluster", kwlist,
                                     &nodes_obj, &seed_obj, &fanout_obj, &drop, &duplicate,
                                     &reorder, &max_delay_obj)) {
        return NULL;
    }
    options.version = LUIGI_CLUSTER_OPTIONS_VERSION;
    options.seed = 0;
    options.fanout = 1;
    options.max_delay = 0;
    if (as_u32(st, nodes_obj, "nodes", &options.nodes) < 0 ||
        opt_u64(st, seed_obj, "seed", &options.seed) < 0 ||
        opt_u32(st, fanout_obj, "fanout", &options.fanout) < 0 ||
        opt_u32(st, max_delay_obj, "max_delay", &options.max_delay) < 0) {
        return NULL;
    }
    options.drop_rate = drop;
    options.duplicate_rate = duplicate;
    options.reorder_rate = reorder;

    /* Object and lock first: on any later failure tp_dealloc frees what exists. */
    ClusterObject *self = (ClusterObject *)type->tp_alloc(type, 0);
    if (self == NULL || new_lock(&self->lock) < 0) {
        Py_XDECREF(self);
        return NULL;
    }
    luigi_status s = luigi_cluster_new(&options, &self->cluster);
    if (s == LUIGI_OK) {
        s = luigi_cluster_size(self->cluster, &self->size);
    }
    if (s != LUIGI_OK) {
        return raise_and_drop(st, s, self);
    }
    return (PyObject *)self;
}

static void
Cluster_dealloc(ClusterObject *self)
{
    /* Replicas keep us alive, so none of them can be in use now. */
    luigi_cluster_free(self->cluster);
    self->cluster = NULL;
    free_lock(&self->lock);
    free_instance(self);
}

static Py_ssize_t
Cluster_length(PyObject *op)
{
    return (Py_ssize_t)((ClusterObject *)op)->size;
}

static PyObject *
cluster_replica(module_state *st, ClusterObject *self, size_t index)
{
    luigi_replica *replica = NULL;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_cluster_replica(self->cluster, index, &replica));
    return wrap_replica(st, s, replica, (PyObject *)self);
}

static PyObject *
Cluster_subscript(PyObject *op, PyObject *key)
{
    ClusterObject *self = (ClusterObject *)op;
    module_state *st = state_of(op);
    if (!PyLong_Check(key) && !PyIndex_Check(key)) {
        PyErr_Format(PyExc_TypeError, "cluster indices must be int, not %.100s",
                     Py_TYPE(key)->tp_name);
        return NULL;
    }
    Py_ssize_t i = PyNumber_AsSsize_t(key, NULL); /* clamps, never raises for ints */
    if (i == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (i < 0 || (size_t)i >= self->size) {
        PyErr_Format(st->LuigiIndexError, "node %R is not in [0, %zu)", key, self->size);
        return NULL;
    }
    return cluster_replica(st, self, (size_t)i);
}

static PyObject *
Cluster_iter(PyObject *op)
{
    ClusterObject *self = (ClusterObject *)op;
    module_state *st = state_of(op);
    PyObject *list = PyList_New((Py_ssize_t)self->size);
    if (list == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < self->size; i++) {
        PyObject *r = cluster_replica(st, self, i);
        if (r == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, r);
    }
    PyObject *it = PyObject_GetIter(list);
    Py_DECREF(list);
    return it;
}

static PyObject *
Cluster_partition(PyObject *op, PyObject *groups)
{
    ClusterObject *self = (ClusterObject *)op;
    module_state *st = state_of(op);
    Py_ssize_t ngroups = PyTuple_GET_SIZE(groups);
    size_t n = self->size;
    uint32_t *group_of = PyMem_Calloc(n > 0 ? n : 1, sizeof(uint32_t));
    if (group_of == NULL) {
        return PyErr_NoMemory();
    }
    if ((uint64_t)ngroups >= UINT32_MAX) {
        PyErr_SetString(st->LuigiValueError, "too many groups");
        goto fail;
    }
    /* Nodes not named form one more group, numbered ngroups. */
    for (size_t i = 0; i < n; i++) {
        group_of[i] = (uint32_t)ngroups;
    }
    for (Py_ssize_t g = 0; g < ngroups; g++) {
        PyObject *it = PyObject_GetIter(PyTuple_GET_ITEM(groups, g));
        if (it == NULL) {
            goto fail;
        }
        PyObject *item;
        while ((item = PyIter_Next(it)) != NULL) {
            uint64_t node;
            int rc = as_u64(st, item, "node", &node);
            if (rc == 0 && node >= n) {
                PyErr_Format(st->LuigiIndexError, "node %R is not in [0, %zu)", item, n);
                rc = -1;
            }
            if (rc == 0 && group_of[node] != (uint32_t)ngroups) {
                PyErr_Format(st->LuigiValueError, "node %R is named in two groups", item);
                rc = -1;
            }
            Py_DECREF(item);
            if (rc < 0) {
                Py_DECREF(it);
                goto fail;
            }
            group_of[node] = (uint32_t)g;
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) {
            goto fail;
        }
    }
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_cluster_partition(self->cluster, group_of, n));
    PyMem_Free(group_of);
    return none_or_raise(st, s);
fail:
    PyMem_Free(group_of);
    return NULL;
}

static PyObject *
Cluster_heal(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ClusterObject *self = (ClusterObject *)op;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_cluster_heal(self->cluster));
    return none_or_raise(state_of(op), s);
}

static PyObject *
Cluster_set_faults(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"drop", "duplicate", "reorder", "max_delay", NULL};
    ClusterObject *self = (ClusterObject *)op;
    module_state *st = state_of(op);
    double drop = 0.0, duplicate = 0.0, reorder = 0.0;
    PyObject *max_delay_obj = NULL;
    uint32_t max_delay = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$dddO:set_faults", kwlist, &drop, &duplicate,
                                     &reorder, &max_delay_obj)) {
        return NULL;
    }
    if (opt_u32(st, max_delay_obj, "max_delay", &max_delay) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(self->lock,
        s = luigi_cluster_set_faults(self->cluster, drop, duplicate, reorder, max_delay));
    return none_or_raise(st, s);
}

static PyObject *
Cluster_run(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"rounds", NULL};
    ClusterObject *self = (ClusterObject *)op;
    module_state *st = state_of(op);
    PyObject *rounds_obj = NULL;
    uint64_t rounds = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:run", kwlist, &rounds_obj)) {
        return NULL;
    }
    if (opt_u64(st, rounds_obj, "rounds", &rounds) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock, s = luigi_cluster_run(self->cluster, rounds));
    return none_or_raise(st, s);
}

static PyObject *
Cluster_run_until_converged(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_rounds", NULL};
    ClusterObject *self = (ClusterObject *)op;
    module_state *st = state_of(op);
    PyObject *max_obj = NULL;
    uint64_t max_rounds = 1000, ran = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:run_until_converged", kwlist, &max_obj)) {
        return NULL;
    }
    if (opt_u64(st, max_obj, "max_rounds", &max_rounds) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock,
        s = luigi_cluster_run_until_converged(self->cluster, max_rounds, &ran));
    return u64_or_raise(st, s, ran);
}

static PyObject *
Cluster_converged(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ClusterObject *self = (ClusterObject *)op;
    int converged = 0;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_cluster_converged(self->cluster, &converged));
    return bool_or_raise(state_of(op), s, converged);
}

static PyObject *
Cluster_stats(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ClusterObject *self = (ClusterObject *)op;
    luigi_cluster_stats stats;
    memset(&stats, 0, sizeof stats);
    stats.version = LUIGI_CLUSTER_STATS_VERSION;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_cluster_get_stats(self->cluster, &stats));
    if (s != LUIGI_OK) {
        return raise_status(state_of(op), s);
    }
    return Py_BuildValue("{sKsKsKsKsKsKsK}",
                         "rounds", (unsigned long long)stats.rounds,
                         "messages", (unsigned long long)stats.messages,
                         "bytes", (unsigned long long)stats.bytes,
                         "dropped", (unsigned long long)stats.dropped,
                         "duplicated", (unsigned long long)stats.duplicated,
                         "updates_shipped", (unsigned long long)stats.updates_shipped,
                         "type_conflicts", (unsigned long long)stats.type_conflicts);
}

static PyObject *
Cluster_repr(PyObject *op)
{
    return PyUnicode_FromFormat("<SimulatedCluster of %zu nodes>", ((ClusterObject *)op)->size);
}

static PyMethodDef Cluster_methods[] = {
    {"partition", Cluster_partition, METH_VARARGS,
     "partition($self, /, *groups)\n--\n\n"
     "Split the network: each argument is an iterable of node ids forming a group;\n"
     "nodes not named form one more group. Messages between groups are lost."},
    {"heal", Cluster_heal, METH_NOARGS, "heal($self, /)\n--\n\nRemove every partition."},
    {"set_faults", FUNC(Cluster_set_faults), METH_VARARGS | METH_KEYWORDS,
     "set_faults($self, /, *, drop=0.0, duplicate=0.0, reorder=0.0, max_delay=0)\n--\n\n"
     "Change the network's fault settings."},
    {"run", FUNC(Cluster_run), METH_VARARGS | METH_KEYWORDS,
     "run($self, /, rounds=1)\n--\n\nRun rounds of anti-entropy (releases the GIL)."},
    {"run_until_converged", FUNC(Cluster_run_until_converged), METH_VARARGS | METH_KEYWORDS,
     "run_until_converged($self, /, max_rounds=1000)\n--\n\n"
     "Run until every replica converged; return the rounds run.\n"
     "NotConvergedError when max_rounds were not enough."},
    {"converged", Cluster_converged, METH_NOARGS,
     "converged($self, /)\n--\n\n"
     "True when every replica applied the same updates and none is pending."},
    {"stats", Cluster_stats, METH_NOARGS,
     "stats($self, /)\n--\n\n"
     "Counters: rounds, messages, bytes, dropped, duplicated, updates_shipped,\n"
     "type_conflicts."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Cluster_slots[] = {
    {Py_tp_doc, "SimulatedCluster(nodes, seed=0, *, fanout=1, drop=0.0, duplicate=0.0, "
                "reorder=0.0, max_delay=0)\n--\n\n"
                "Replicas 0..nodes-1 on virtual time, exchanging version vectors and\n"
                "shipping missing updates over a seeded, faulty network."},
    {Py_tp_new, Cluster_new},
    {Py_tp_dealloc, Cluster_dealloc},
    {Py_tp_repr, Cluster_repr},
    {Py_tp_iter, Cluster_iter},
    {Py_tp_methods, Cluster_methods},
    {Py_mp_subscript, Cluster_subscript},
    {Py_mp_length, Cluster_length},
    {0, NULL},
};

static PyType_Spec Cluster_spec = {
    .name = "luigi_node.SimulatedCluster",
    .basicsize = sizeof(ClusterObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = Cluster_slots,
};

/* ============================================================ Raft: shared */

/* callable(*args), stealing the n new references in args; NULL entries (a
 * failed conversion, exception set) make it fail without calling. */
static PyObject *
call_stealing(PyObject *callable, PyObject **args, size_t n)
{
    PyObject *result = NULL;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        if (args[i] == NULL) {
            ok = 0;
        }
    }
    if (ok) {
        result = PyObject_Vectorcall(callable, args, n, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        Py_XDECREF(args[i]);
    }
    return result;
}

/* A status struct ready for luigi_raft_get_status / _cluster_node_status. */
static void
raft_status_init(luigi_raft_status *status)
{
    memset(status, 0, sizeof *status);
    status->version = LUIGI_RAFT_STATUS_VERSION;
}

/* Builds a luigi_node.RaftStatus (a frozen dataclass in _raft.py, fields in
 * the order passed here) from the library's status struct, filled with
 * status `rc`. */
static PyObject *
make_raft_status(module_state *st, luigi_status rc, const luigi_raft_status *s)
{
    if (rc != LUIGI_OK) {
        return raise_status(st, rc);
    }
    if (s->role >= 4) {
        PyErr_Format(st->LuigiError, "libluigi reported an unknown raft role %u", (unsigned)s->role);
        return NULL;
    }
    PyObject *args[11] = {NULL};
    args[0] = Py_NewRef(st->role_names[s->role]);
    args[1] = PyLong_FromUnsignedLongLong(s->id);
    args[2] = PyLong_FromUnsignedLongLong(s->term);
    args[3] = s->vote == 0 ? Py_NewRef(Py_None) : PyLong_FromUnsignedLongLong(s->vote);
    args[4] = s->leader == 0 ? Py_NewRef(Py_None) : PyLong_FromUnsignedLongLong(s->leader);
    args[5] = PyLong_FromUnsignedLongLong(s->commit);
    args[6] = PyLong_FromUnsignedLongLong(s->applied);
    args[7] = PyLong_FromUnsignedLongLong(s->first_index);
    args[8] = PyLong_FromUnsignedLongLong(s->last_index);
    args[9] = PyLong_FromUnsignedLongLong(s->voters);
    args[10] = PyLong_FromUnsignedLongLong(s->learners);
    return call_stealing(st->RaftStatusType, args, 11);
}

/* A bytes-like argument as (pointer, length), never a NULL pointer (for the
 * library, NULL can mean "absent", e.g. luigi_raft_cluster_cas's expected). */
static int
get_bytes(PyObject *obj, Py_buffer *view)
{
    if (PyUnicode_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "expected bytes, not str");
        return -1;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (view->buf == NULL) {
        view->buf = (void *)"";
    }
    return 0;
}

/* A path (str, bytes or os.PathLike) or None, as a new bytes object (or NULL
 * with *out = NULL for None). */
static int
get_path(PyObject *obj, PyObject **out)
{
    *out = NULL;
    if (obj == NULL || obj == Py_None) {
        return 0;
    }
    return PyUnicode_FSConverter(obj, out) ? 0 : -1;
}

/* ============================================================ RaftNode */

typedef struct {
    PyObject_HEAD
    luigi_raft *raft;
    PyThread_type_lock lock; /* guards the node and every ready batch it handed out */
    uint64_t id;
    int ready_out;           /* a Ready was handed out and neither advanced nor dropped */
    ReplicaObject *replica;  /* attached replica (strong), or NULL: ready() applies to it */
} RaftNodeObject;

typedef struct {
    PyObject_HEAD
    RaftNodeObject *node;    /* strong reference */
    luigi_raft_ready *ready; /* the library's batch; NULL once advanced */
    PyObject *messages;      /* list[tuple[int, bytes]] */
    PyObject *committed;     /* list[Entry] */
    PyObject *read_states;   /* list[tuple[int, bytes]] */
    PyObject *snapshot;      /* tuple[int, int, bytes] or None */
    PyObject *hard_state;    /* HardState or None: what the library persisted ... */
    PyObject *entries;       /* list[Entry]: ... the log entries it appended ... */
    PyObject *must_sync;     /* bool: ... and whether that needed an fdatasync */
} ReadyObject;

#define READY_COPY_NO_MEMORY (-1)

/* A copy of a ready batch's contents in C memory, made while holding the
 * node's lock (with the GIL released), so Python objects are built only after
 * the lock is released. */
typedef struct {
    uint64_t to;
    luigi_buffer bytes;
} ready_message;

typedef struct {
    uint64_t index, term;
    uint32_t kind;
    luigi_buffer data;
} ready_entry;

typedef struct {
    uint64_t index;
    luigi_buffer context;
} ready_read;

typedef struct {
    luigi_raft_counts counts;
    ready_message *messages;
    ready_entry *entries;
    ready_read *reads;
    uint64_t snap_index, snap_term;
    luigi_buffer snap_data;
    luigi_raft_persisted persisted;
    ready_entry *persisted_entries;
} ready_copy;

static void
ready_entries_free(ready_entry *entries, size_t n)
{
    if (entries != NULL) {
        for (size_t i = 0; i < n; i++) {
            luigi_buffer_free(&entries[i].data);
        }
        PyMem_RawFree(entries);
    }
}

typedef luigi_status (*ready_entry_fn)(const luigi_raft_ready *, size_t, uint64_t *, uint64_t *,
                                       uint32_t *, luigi_buffer *);

/* Copies n entries through `get` into a new array; NULL (with *s set) on error. */
static ready_entry *
ready_entries_copy(const luigi_raft_ready *rd, size_t n, ready_entry_fn get, luigi_status *s)
{
    ready_entry *entries = PyMem_RawCalloc(n > 0 ? n : 1, sizeof(ready_entry));
    if (entries == NULL) {
        *s = READY_COPY_NO_MEMORY;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        ready_entry *e = &entries[i];
        *s = get(rd, i, &e->index, &e->term, &e->kind, &e->data);
        if (*s != LUIGI_OK) {
            ready_entries_free(entries, n);
            return NULL;
        }
    }
    *s = LUIGI_OK;
    return entries;
}


static void
ready_copy_free(ready_copy *c)
{
    if (c->messages != NULL) {
        for (size_t i = 0; i < c->counts.messages; i++) {
            luigi_buffer_free(&c->messages[i].bytes);
        }
        PyMem_RawFree(c->messages);
    }
    ready_entries_free(c->entries, c->counts.committed_entries);
    ready_entries_free(c->persisted_entries, c->persisted.entries);
    if (c->reads != NULL) {
        for (size_t i = 0; i < c->counts.read_states; i++) {
            luigi_buffer_free(&c->reads[i].context);
        }
        PyMem_RawFree(c->reads);
    }
    luigi_buffer_free(&c->snap_data);
    memset(c, 0, sizeof *c);
}

/* Runs without the GIL, with the node's lock held. `c` starts zeroed. */
static luigi_status
ready_copy_fill(const luigi_raft_ready *rd, ready_copy *c)
{
    luigi_status s = luigi_raft_ready_counts(rd, &c->counts);
    if (s != LUIGI_OK) {
        memset(&c->counts, 0, sizeof c->counts);
        return s;
    }
    luigi_raft_counts n = c->counts;
    c->messages = PyMem_RawCalloc(n.messages > 0 ? n.messages : 1, sizeof(ready_message));
    c->reads = PyMem_RawCalloc(n.read_states > 0 ? n.read_states : 1, sizeof(ready_read));
    if (c->messages == NULL || c->reads == NULL) {
        return READY_COPY_NO_MEMORY;
    }
    for (size_t i = 0; i < n.messages; i++) {
        s = luigi_raft_ready_message(rd, i, &c->messages[i].to, &c->messages[i].bytes);
        if (s != LUIGI_OK) {
            return s;
        }
    }
    c->entries = ready_entries_copy(rd, n.committed_entries, luigi_raft_ready_entry, &s);
    if (c->entries == NULL) {
        return s;
    }
    c->persisted.version = LUIGI_RAFT_PERSISTED_VERSION;
    s = luigi_raft_ready_persisted(rd, &c->persisted);
    if (s != LUIGI_OK) {
        c->persisted.entries = 0;
        return s;
    }
    c->persisted_entries =
        ready_entries_copy(rd, c->persisted.entries, luigi_raft_ready_persisted_entry, &s);
    if (c->persisted_entries == NULL) {
        return s;
    }
    for (size_t i = 0; i < n.read_states; i++) {
        s = luigi_raft_ready_read_state(rd, i, &c->reads[i].index, &c->reads[i].context);
        if (s != LUIGI_OK) {
            return s;
        }
    }
    if (n.has_snapshot) {
        s = luigi_raft_ready_snapshot(rd, &c->snap_index, &c->snap_term, &c->snap_data);
        if (s != LUIGI_OK) {
            return s;
        }
    }
    return LUIGI_OK;
}

static inline PyObject *
buffer_bytes(const luigi_buffer *b)
{
    return PyBytes_FromStringAndSize((const char *)b->data, (Py_ssize_t)b->len);
}

/* (u64, bytes) */
static PyObject *
pair_u64_bytes(uint64_t v, const luigi_buffer *b)
{
    PyObject *n = PyLong_FromUnsignedLongLong(v);
    PyObject *d = buffer_bytes(b);
    PyObject *t = NULL;
    if (n != NULL && d != NULL) {
        t = PyTuple_Pack(2, n, d);
    }
    Py_XDECREF(n);
    Py_XDECREF(d);
    return t;
}

static PyObject *
make_entry(module_state *st, uint64_t index, uint64_t term, uint32_t kind,
           const luigi_buffer *data)
{
    if (kind > LUIGI_ENTRY_CONF_CHANGE) {
        PyErr_Format(st->LuigiError, "libluigi reported an unknown entry kind %u", (unsigned)kind);
        return NULL;
    }
    PyObject *args[4];
    args[0] = PyLong_FromUnsignedLongLong(index);
    args[1] = PyLong_FromUnsignedLongLong(term);
    args[2] = Py_NewRef(st->entry_kinds[kind]);
    args[3] = buffer_bytes(data);
    return call_stealing(st->EntryType, args, 4);
}

/* list[Entry] from copied entries. */
static PyObject *
entry_list(module_state *st, const ready_entry *entries, size_t n)
{
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list != NULL && i < n; i++) {
        const ready_entry *e = &entries[i];
        PyObject *entry = make_entry(st, e->index, e->term, e->kind, &e->data);
        if (entry == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, entry);
    }
    return list;
}

/* Fills the Python-side fields of a Ready from the C copy; -1 on error. */
static int
ready_build(module_state *st, ReadyObject *r, const ready_copy *c)
{
    const luigi_raft_counts *n = &c->counts;
    r->messages = PyList_New((Py_ssize_t)n->messages);
    r->read_states = PyList_New((Py_ssize_t)n->read_states);
    r->committed = entry_list(st, c->entries, n->committed_entries);
    r->entries = entry_list(st, c->persisted_entries, c->persisted.entries);
    r->must_sync = PyBool_FromLong(c->persisted.must_sync);
    if (r->messages == NULL || r->committed == NULL || r->read_states == NULL ||
        r->entries == NULL) {
        return -1;
    }
    if (c->persisted.has_hard_state) {
        PyObject *args[3];
        args[0] = PyLong_FromUnsignedLongLong(c->persisted.term);
        args[1] = c->persisted.vote ? PyLong_FromUnsignedLongLong(c->persisted.vote)
                                    : Py_NewRef(Py_None);
        args[2] = PyLong_FromUnsignedLongLong(c->persisted.commit);
        r->hard_state = call_stealing(st->HardStateType, args, 3);
        if (r->hard_state == NULL) {
            return -1;
        }
    }
    else {
        r->hard_state = Py_NewRef(Py_None);
    }
    for (size_t i = 0; i < n->messages; i++) {
        PyObject *t = pair_u64_bytes(c->messages[i].to, &c->messages[i].bytes);
        if (t == NULL) {
            return -1;
        }
        PyList_SET_ITEM(r->messages, (Py_ssize_t)i, t);
    }
    for (size_t i = 0; i < n->read_states; i++) {
        PyObject *t = pair_u64_bytes(c->reads[i].index, &c->reads[i].context);
        if (t == NULL) {
            return -1;
        }
        PyList_SET_ITEM(r->read_states, (Py_ssize_t)i, t);
    }
    if (n->has_snapshot) {
        r->snapshot = Py_BuildValue("(KKy#)", (unsigned long long)c->snap_index,
                                    (unsigned long long)c->snap_term, (const char *)c->snap_data.data,
                                    (Py_ssize_t)c->snap_data.len);
        if (r->snapshot == NULL) {
            return -1;
        }
    }
    else {
        r->snapshot = Py_NewRef(Py_None);
    }
    return 0;
}

static int
check_raft_options(module_state *st, PyObject *election, PyObject *heartbeat, PyObject *seed,
                   luigi_raft_options *o, PyObject *inflight, PyObject *max_size)
{
    if (opt_u32(st, election, "election_tick", &o->election_tick) < 0 ||
        opt_u32(st, heartbeat, "heartbeat_tick", &o->heartbeat_tick) < 0 ||
        opt_u64(st, seed, "seed", &o->seed) < 0 ||
        opt_u32(st, inflight, "max_inflight", &o->max_inflight_messages) < 0 ||
        opt_u64(st, max_size, "max_size_per_message", &o->max_size_per_message) < 0) {
        return -1;
    }
    return 0;
}

/* An iterable of node ids as a PyMem array. */
static int
collect_ids(module_state *st, PyObject *iterable, const char *what, uint64_t **out, size_t *count)
{
    PyObject *seq = PySequence_Fast(iterable, "voters must be an iterable of node ids");
    if (seq == NULL) {
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    uint64_t *ids = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(uint64_t));
    if (ids == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (as_u64(st, PySequence_Fast_GET_ITEM(seq, i), what, &ids[i]) < 0) {
            PyMem_Free(ids);
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    *out = ids;
    *count = (size_t)n;
    return 0;
}

static PyObject *
RaftNode_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"id", "voters", "storage", "election_tick", "heartbeat_tick",
                             "pre_vote", "check_quorum", "seed", "max_inflight",
                             "max_size_per_message", NULL};
    module_state *st = state_of_type(type);
    PyObject *id_obj, *voters_obj, *storage_obj = Py_None, *election = NULL, *heartbeat = NULL;
    PyObject *seed = NULL, *inflight = NULL, *max_size = NULL;
    int pre_vote = 1, check_quorum = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|$OOOppOOO:RaftNode", kwlist, &id_obj,
                                     &voters_obj, &storage_obj, &election, &heartbeat, &pre_vote,
                                     &check_quorum, &seed, &inflight, &max_size)) {
        return NULL;
    }
    luigi_raft_options options;
    luigi_raft_options_init(&options);
    options.version = LUIGI_RAFT_OPTIONS_VERSION;
    options.pre_vote = pre_vote ? 1 : 0;
    options.check_quorum = check_quorum ? 1 : 0;
    uint64_t id;
    if (as_u64(st, id_obj, "id", &id) < 0 ||
        check_raft_options(st, election, heartbeat, seed, &options, inflight, max_size) < 0) {
        return NULL;
    }
    uint64_t *voters = NULL;
    size_t voter_count = 0;
    if (collect_ids(st, voters_obj, "voter id", &voters, &voter_count) < 0) {
        return NULL;
    }
    PyObject *path = NULL;
    if (get_path(storage_obj, &path) < 0) {
        PyMem_Free(voters);
        return NULL;
    }
    options.data_dir = path != NULL ? PyBytes_AS_STRING(path) : NULL;

    /* Object and lock first: on any later failure tp_dealloc frees what exists. */
    RaftNodeObject *self = (RaftNodeObject *)type->tp_alloc(type, 0);
    if (self == NULL || new_lock(&self->lock) < 0) {
        Py_XDECREF(self);
        PyMem_Free(voters);
        Py_XDECREF(path);
        return NULL;
    }
    self->id = id;
    self->ready_out = 0;
    luigi_status s;
    Py_BEGIN_ALLOW_THREADS /* a durable node opens and replays its log */
    s = luigi_raft_new(id, voters, voter_count, &options, &self->raft);
    Py_END_ALLOW_THREADS
    PyMem_Free(voters);
    Py_XDECREF(path);
    if (s != LUIGI_OK) {
        return raise_and_drop(st, s, self);
    }
    return (PyObject *)self;
}

static void
RaftNode_dealloc(RaftNodeObject *self)
{
    /* Ready objects keep us alive, so none of them can be in use now. */
    luigi_raft_free(self->raft); /* closes a durable node's files */
    self->raft = NULL;
    Py_CLEAR(self->replica);
    free_lock(&self->lock);
    free_instance(self);
}

static PyObject *
RaftNode_tick(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_tick(self->raft));
    return none_or_raise(state_of(op), s);
}

typedef luigi_status (*raft_bytes_fn)(luigi_raft *, const uint8_t *, size_t);

/* f(raft, bytes) for a method taking one bytes-like argument. */
static PyObject *
raft_bytes_call(PyObject *op, PyObject *arg, raft_bytes_fn f)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    Py_buffer view;
    if (get_bytes(arg, &view) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(self->lock, s = f(self->raft, VIEW_DATA(view)));
    PyBuffer_Release(&view);
    return none_or_raise(state_of(op), s);
}

static PyObject *
RaftNode_step(PyObject *op, PyObject *message)
{
    return raft_bytes_call(op, message, luigi_raft_step);
}

static PyObject *
RaftNode_propose(PyObject *op, PyObject *data)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    Py_buffer view;
    if (get_bytes(data, &view) < 0) {
        return NULL;
    }
    uint64_t index = 0;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_propose(self->raft, VIEW_DATA(view), &index));
    PyBuffer_Release(&view);
    return u64_or_raise(state_of(op), s, index);
}

static PyObject *
RaftNode_campaign(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_campaign(self->raft));
    return none_or_raise(state_of(op), s);
}

static PyObject *
RaftNode_propose_conf_change(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "propose_conf_change() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!PyUnicode_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "kind must be str, not %.100s", Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    uint32_t kind;
    if (PyUnicode_CompareWithASCIIString(args[0], "add_voter") == 0) {
        kind = LUIGI_CONF_ADD_VOTER;
    }
    else if (PyUnicode_CompareWithASCIIString(args[0], "remove_node") == 0) {
        kind = LUIGI_CONF_REMOVE_NODE;
    }
    else if (PyUnicode_CompareWithASCIIString(args[0], "add_learner") == 0) {
        kind = LUIGI_CONF_ADD_LEARNER;
    }
    else {
        PyErr_Format(st->LuigiValueError,
                     "kind must be 'add_voter', 'remove_node' or 'add_learner', not %R", args[0]);
        return NULL;
    }
    uint64_t node, index = 0;
    if (as_u64(st, args[1], "node", &node) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_propose_conf_change(self->raft, kind, node, &index));
    return u64_or_raise(st, s, index);
}

static PyObject *
RaftNode_transfer_leader(PyObject *op, PyObject *to_obj)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    uint64_t to;
    if (as_u64(state_of(op), to_obj, "to", &to) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_transfer_leader(self->raft, to));
    return none_or_raise(state_of(op), s);
}

static PyObject *
RaftNode_read_index(PyObject *op, PyObject *context)
{
    return raft_bytes_call(op, context, luigi_raft_read_index);
}

static PyObject *
RaftNode_compact(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "compact() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    uint64_t index;
    if (as_u64(st, args[0], "index", &index) < 0) {
        return NULL;
    }
    Py_buffer view;
    if (get_bytes(args[1], &view) < 0) {
        return NULL;
    }
    luigi_status s;
    lock_acquire(self->lock);
    Py_BEGIN_ALLOW_THREADS /* writes and syncs a snapshot file when durable */
    s = luigi_raft_compact(self->raft, index, VIEW_DATA(view));
    lock_release(self->lock);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return none_or_raise(state_of(op), s);
}

static void
ready_discard(RaftNodeObject *node, luigi_raft_ready *rd)
{
    WITH_LOCK(node->lock, luigi_raft_ready_free(rd));
}

static PyObject *
RaftNode_ready(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    if (self->ready_out) {
        PyErr_SetString(st->TransactionStateError,
                        "the previous Ready was not advanced: call advance(ready) first");
        return NULL;
    }
    self->ready_out = 1; /* under the GIL: a concurrent ready() is refused above */
    luigi_raft_ready *rd = NULL;
    ready_copy copy;
    memset(&copy, 0, sizeof copy);
    luigi_status s, cs = LUIGI_OK;
    /* An attached replica takes the batch's committed transactions. */
    PyThread_type_lock replica_lock = self->replica != NULL ? self->replica->lock : NULL;
    lock_acquire(self->lock);
    if (replica_lock != NULL) {
        lock_acquire(replica_lock);
    }
    Py_BEGIN_ALLOW_THREADS /* persists (and, when durable, fdatasyncs) the batch */
    s = luigi_raft_take_ready(self->raft, &rd);
    if (s == LUIGI_OK && rd != NULL) {
        cs = ready_copy_fill(rd, &copy);
    }
    if (replica_lock != NULL) {
        lock_release(replica_lock);
    }
    lock_release(self->lock);
    Py_END_ALLOW_THREADS
    if (s != LUIGI_OK || rd == NULL) {
        self->ready_out = 0;
        return none_or_raise(st, s);
    }
    if (cs != LUIGI_OK) {
        ready_copy_free(&copy);
        ready_discard(self, rd);
        self->ready_out = 0;
        return cs == READY_COPY_NO_MEMORY ? PyErr_NoMemory() : raise_status(st, cs);
    }
    PyTypeObject *tp = st->ReadyType;
    ReadyObject *r = (ReadyObject *)tp->tp_alloc(tp, 0);
    if (r == NULL) {
        ready_copy_free(&copy);
        ready_discard(self, rd);
        self->ready_out = 0;
        return NULL;
    }
    r->node = (RaftNodeObject *)Py_NewRef(op);
    r->ready = rd; /* from here on, Ready_dealloc releases the batch */
    int rc = ready_build(st, r, &copy);
    ready_copy_free(&copy);
    if (rc < 0) {
        Py_DECREF(r);
        return NULL;
    }
    return (PyObject *)r;
}

static PyObject *
RaftNode_advance(PyObject *op, PyObject *arg)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    if (!Py_IS_TYPE(arg, st->ReadyType)) {
        PyErr_Format(PyExc_TypeError, "expected a Ready, not %.100s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    ReadyObject *r = (ReadyObject *)arg;
    if (r->node != self) {
        PyErr_SetString(st->LuigiValueError, "this Ready was handed out by another RaftNode");
        return NULL;
    }
    if (r->ready == NULL) {
        PyErr_SetString(st->TransactionStateError, "this Ready was already advanced");
        return NULL;
    }
    lock_acquire(self->lock);
    luigi_status s = luigi_raft_advance(self->raft, r->ready);
    if (s == LUIGI_OK) {
        luigi_raft_ready_free(r->ready);
    }
    lock_release(self->lock);
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    r->ready = NULL;
    self->ready_out = 0;
    Py_RETURN_NONE;
}

static PyObject *
RaftNode_attach_replica(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"", "log_origin", NULL};
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    PyObject *replica, *origin_obj = NULL;
    uint64_t origin;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!|$O:attach_replica", kwlist, st->ReplicaType,
                                     &replica, &origin_obj)) {
        return NULL;
    }
    if (origin_obj == NULL) {
        PyErr_SetString(PyExc_TypeError, "attach_replica() missing keyword argument 'log_origin'");
        return NULL;
    }
    if (as_u64(st, origin_obj, "log_origin", &origin) < 0) {
        return NULL;
    }
    ReplicaObject *r = (ReplicaObject *)replica;
    luigi_status s;
    lock_acquire(self->lock);
    WITH_LOCK(r->lock, s = luigi_raft_attach_replica(self->raft, r->replica, origin));
    lock_release(self->lock);
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    Py_XSETREF(self->replica, (ReplicaObject *)Py_NewRef(replica));
    Py_RETURN_NONE;
}

static PyObject *
RaftNode_propose_transaction(PyObject *op, PyObject *arg)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    if (!Py_IS_TYPE(arg, st->TransactionType)) {
        PyErr_Format(PyExc_TypeError, "expected a Transaction, not %.100s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    TransactionObject *tx = (TransactionObject *)arg;
    if (txn_check_open(st, tx) < 0) {
        return NULL;
    }
    uint64_t index = 0;
    size_t ops = 0;
    luigi_status s;
    lock_acquire(self->lock);
    lock_acquire(tx->replica->lock);
    s = luigi_txn_op_count(tx->txn, &ops);
    if (s == LUIGI_OK) {
        s = luigi_raft_propose_txn(self->raft, tx->txn, &index);
    }
    if (s == LUIGI_OK) {
        luigi_txn_free(tx->txn); /* proposed: the log carries it from here */
        tx->txn = NULL;
    }
    lock_release(tx->replica->lock);
    lock_release(self->lock);
    if (s != LUIGI_OK) {
        return raise_status(st, s); /* still open */
    }
    tx->state = TXN_PROPOSED;
    tx->proposed_index = index;
    tx->proposed_ops = ops;
    return PyLong_FromUnsignedLongLong(index);
}

static PyObject *
RaftNode_compact_replica(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    if (self->replica == NULL) {
        PyErr_SetString(st->TransactionStateError,
                        "no replica is attached to this node (attach_replica)");
        return NULL;
    }
    uint64_t index = 0;
    luigi_status s;
    lock_acquire(self->lock);
    lock_acquire(self->replica->lock);
    Py_BEGIN_ALLOW_THREADS /* writes (and, when durable, fsyncs) the snapshot */
    s = luigi_raft_snapshot_state_machine(self->raft, &index);
    lock_release(self->replica->lock);
    lock_release(self->lock);
    Py_END_ALLOW_THREADS
    return u64_or_raise(st, s, index);
}

static PyObject *
RaftNode_transaction_outcome(PyObject *op, PyObject *index_obj)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    uint64_t index;
    if (as_u64(st, index_obj, "index", &index) < 0) {
        return NULL;
    }
    uint32_t outcome = 0;
    luigi_status why = LUIGI_OK;
    luigi_buffer reason = {NULL, 0};
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_txn_outcome(self->raft, index, &outcome, &why, &reason));
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    if (outcome == LUIGI_TXN_REJECTED) {
        PyObject *text = PyUnicode_DecodeUTF8((const char *)reason.data, (Py_ssize_t)reason.len,
                                              "replace");
        luigi_buffer_free(&reason);
        if (text == NULL) {
            return NULL;
        }
        raise_status_message(st, why, PyUnicode_AsUTF8(text));
        Py_DECREF(text);
        return NULL;
    }
    luigi_buffer_free(&reason);
    static const char *names[] = {"pending", "committed", "rejected", "lost", "unknown"};
    if (outcome >= sizeof names / sizeof names[0]) {
        PyErr_Format(st->LuigiError, "libluigi returned an unknown outcome %u", (unsigned)outcome);
        return NULL;
    }
    return PyUnicode_FromString(names[outcome]);
}

static PyObject *
RaftNode_status(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    luigi_raft_status status;
    raft_status_init(&status);
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_get_status(self->raft, &status));
    return make_raft_status(state_of(op), s, &status);
}

static PyObject *
RaftNode_get_id(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(((RaftNodeObject *)op)->id);
}

static PyObject *
RaftNode_repr(PyObject *op)
{
    return PyUnicode_FromFormat("<RaftNode %llu>", (unsigned long long)((RaftNodeObject *)op)->id);
}

static PyMethodDef RaftNode_methods[] = {
    {"tick", RaftNode_tick, METH_NOARGS,
     "tick($self, /)\n--\n\nAdvance the node's logical clock by one tick (elections, heartbeats)."},
    {"step", RaftNode_step, METH_O,
     "step($self, message, /)\n--\n\n"
     "Feed one message from a peer (bytes from another node's Ready.messages).\n"
     "DecodeError for malformed bytes, LuigiValueError for a message that does\n"
     "not fit (wrong recipient); the node is unchanged either way."},
    {"propose", RaftNode_propose, METH_O,
     "propose($self, data, /)\n--\n\n"
     "Append data to the log (leader only, else TransactionStateError); return its index.\n"
     "It is committed once it comes back in a Ready's committed entries."},
    {"campaign", RaftNode_campaign, METH_NOARGS,
     "campaign($self, /)\n--\n\nStart an election now (pre-vote first when enabled)."},
    {"propose_conf_change", FUNC(RaftNode_propose_conf_change), METH_FASTCALL,
     "propose_conf_change($self, kind, node, /)\n--\n\n"
     "Propose a membership change (leader only, one at a time): kind is 'add_voter',\n"
     "'remove_node' or 'add_learner'. Returns the entry's index; it takes effect\n"
     "when applied."},
    {"transfer_leader", RaftNode_transfer_leader, METH_O,
     "transfer_leader($self, to, /)\n--\n\n"
     "Hand leadership to voter `to` once it caught up (leader only)."},
    {"read_index", RaftNode_read_index, METH_O,
     "read_index($self, context, /)\n--\n\n"
     "Ask for a linearizable read point (leader only). A later Ready carries\n"
     "(index, context) in read_states once a quorum confirmed the leadership:\n"
     "serve the read after applying up to that index."},
    {"compact", FUNC(RaftNode_compact), METH_FASTCALL,
     "compact($self, index, snapshot, /)\n--\n\n"
     "Replace the log up to applied index `index` with your state machine's\n"
     "snapshot (releases the GIL)."},
    {"ready", RaftNode_ready, METH_NOARGS,
     "ready($self, /)\n--\n\n"
     "The next Ready batch, or None when there is nothing to do. The library\n"
     "persisted (and, with durable storage, fdatasynced) what it needs before\n"
     "returning (releases the GIL). Send its messages, restore its snapshot,\n"
     "apply its committed entries, then call advance(ready); ready() refuses\n"
     "(TransactionStateError) while a handed-out Ready is neither advanced nor\n"
     "dropped."},
    {"advance", RaftNode_advance, METH_O,
     "advance($self, ready, /)\n--\n\n"
     "Tell the node a Ready was sent and applied (once per Ready)."},
    {"status", RaftNode_status, METH_NOARGS,
     "status($self, /)\n--\n\nThe node's RaftStatus."},
    {"attach_replica", FUNC(RaftNode_attach_replica), METH_VARARGS | METH_KEYWORDS,
     "attach_replica($self, replica, /, *, log_origin)\n--\n\n"
     "Make this log the coordinated path of replica's transactions: ready()\n"
     "applies each committed transaction to it as the update (log_origin, n),\n"
     "the same on every node. log_origin: non-zero, not the replica's node id,\n"
     "the same on every node of the group. Replaces any attached replica."},
    {"propose_transaction", RaftNode_propose_transaction, METH_O,
     "propose_transaction($self, transaction, /)\n--\n\n"
     "Propose a transaction of the attached replica (sets and algebraic ops);\n"
     "return its log index. Leader only (else TransactionStateError, and the\n"
     "transaction stays open); TypeConflictError when its ops disagree with the\n"
     "replica's key types. The transaction is then finished."},
    {"compact_replica", RaftNode_compact_replica, METH_NOARGS,
     "compact_replica($self, /)\n--\n\n"
     "Replace the log up to the applied index with the attached replica's\n"
     "snapshot (the log's updates); return that index. A node that falls\n"
     "behind it is sent the snapshot (releases the GIL)."},
    {"transaction_outcome", RaftNode_transaction_outcome, METH_O,
     "transaction_outcome($self, index, /)\n--\n\n"
     "What became of the transaction proposed at index through this node:\n"
     "'pending' (not applied here yet), 'committed', 'lost' (a leader change put\n"
     "another entry there: propose again) or 'unknown' (not proposed here, or\n"
     "forgotten). A transaction the log rejected on every node raises the\n"
     "error that rejected it (TypeConflictError, LuigiOverflowError)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef RaftNode_getset[] = {
    {"id", RaftNode_get_id, NULL, "This node's id.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot RaftNode_slots[] = {
    {Py_tp_doc, "RaftNode(id, voters, *, storage=None, election_tick=10, heartbeat_tick=1, "
                "pre_vote=True, check_quorum=True, seed=0, max_inflight=256, "
                "max_size_per_message=1048576)\n--\n\n"
                "One Raft node driven by your own transport: tick() it, step() it every\n"
                "message from a peer, propose(), then loop over ready()/advance().\n"
                "storage: None keeps the log in memory; a directory path keeps a durable\n"
                "write-ahead log and snapshots there, and reopening it restores the node\n"
                "(voters is then ignored). Node ids are non-zero."},
    {Py_tp_new, RaftNode_new},
    {Py_tp_dealloc, RaftNode_dealloc},
    {Py_tp_repr, RaftNode_repr},
    {Py_tp_methods, RaftNode_methods},
    {Py_tp_getset, RaftNode_getset},
    {0, NULL},
};

static PyType_Spec RaftNode_spec = {
    .name = "luigi_node.RaftNode",
    .basicsize = sizeof(RaftNodeObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = RaftNode_slots,
};

/* ============================================================ Ready */

static PyObject *
Ready_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    PyErr_Format(PyExc_TypeError, "cannot create '%.100s' instances: use RaftNode.ready()",
                 type->tp_name);
    return NULL;
}

static void
Ready_dealloc(ReadyObject *self)
{
    if (self->ready != NULL) {
        /* Dropped without advance: release the batch; the node may hand out
         * a new one (what this one carried is re-derived or lost, like a
         * lossy network). */
        ready_discard(self->node, self->ready);
        self->ready = NULL;
        self->node->ready_out = 0;
    }
    Py_CLEAR(self->messages);
    Py_CLEAR(self->committed);
    Py_CLEAR(self->read_states);
    Py_CLEAR(self->snapshot);
    Py_CLEAR(self->hard_state);
    Py_CLEAR(self->entries);
    Py_CLEAR(self->must_sync);
    Py_CLEAR(self->node);
    free_instance(self);
}

/* Every Ready field is an immutable object set once: one getter reads the
 * field at the offset given as the closure. */
static PyObject *
Ready_get_field(PyObject *op, void *offset)
{
    return Py_NewRef(*(PyObject **)((char *)op + (size_t)offset));
}

#define READY_FIELD(name) ((void *)offsetof(ReadyObject, name))

static PyObject *
Ready_get_advanced(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(((ReadyObject *)op)->ready == NULL);
}

static PyObject *
Ready_repr(PyObject *op)
{
    ReadyObject *r = (ReadyObject *)op;
    return PyUnicode_FromFormat("<Ready of RaftNode %llu: %zd messages, %zd committed, "
                                "%zd read states, %s>",
                                (unsigned long long)r->node->id, PyList_GET_SIZE(r->messages),
                                PyList_GET_SIZE(r->committed), PyList_GET_SIZE(r->read_states),
                                r->snapshot == Py_None ? "no snapshot" : "a snapshot");
}

static PyGetSetDef Ready_getset[] = {
    {"messages", Ready_get_field, NULL,
     "Messages to send, as (to, bytes) pairs; the recipient step()s the bytes.",
     READY_FIELD(messages)},
    {"committed", Ready_get_field, NULL,
     "Committed entries (Entry) to apply in order, after the snapshot if any.",
     READY_FIELD(committed)},
    {"read_states", Ready_get_field, NULL,
     "(index, context) for each confirmed read_index() request.", READY_FIELD(read_states)},
    {"snapshot", Ready_get_field, NULL,
     "(index, term, data) of a snapshot to restore the state machine from, or None.",
     READY_FIELD(snapshot)},
    {"hard_state", Ready_get_field, NULL,
     "The HardState (term, vote, commit) the library persisted for this batch, or None.",
     READY_FIELD(hard_state)},
    {"entries", Ready_get_field, NULL,
     "The log entries (Entry) the library appended for this batch (already persisted).",
     READY_FIELD(entries)},
    {"must_sync", Ready_get_field, NULL,
     "True when the batch carried entries, a snapshot or a new term or vote: a durable\n"
     "node fdatasynced before ready() returned (a commit-only change is not synced).",
     READY_FIELD(must_sync)},
    {"advanced", Ready_get_advanced, NULL, "True once passed to RaftNode.advance().", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Ready_slots[] = {
    {Py_tp_doc, "One batch of work from RaftNode.ready(), immutable.\n\n"
                "Persisted: the library already wrote (and, with durable storage,\n"
                "fdatasynced) the entries, hard state and snapshot this batch depends on\n"
                "before handing it out, so its messages may be sent right away.\n"
                "Then apply `snapshot` (if any) and `committed` to the state machine and\n"
                "call RaftNode.advance(ready)."},
    {Py_tp_new, Ready_new},
    {Py_tp_dealloc, Ready_dealloc},
    {Py_tp_repr, Ready_repr},
    {Py_tp_getset, Ready_getset},
    {0, NULL},
};

static PyType_Spec Ready_spec = {
    .name = "luigi_node.Ready",
    .basicsize = sizeof(ReadyObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = Ready_slots,
};

/* ============================================================ RaftCluster */

typedef struct {
    PyObject_HEAD
    luigi_raft_cluster *cluster;
    PyThread_type_lock lock; /* guards the cluster */
} RaftClusterObject;

static PyObject *
RaftCluster_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"nodes", "seed", "data_dir", "election_tick", "heartbeat_tick",
                             "pre_vote", "check_quorum", "compact_after", "drop", "duplicate",
                             "reorder", "max_delay", NULL};
    module_state *st = state_of_type(type);
    PyObject *nodes = NULL, *seed = NULL, *data_dir = Py_None, *election = NULL, *heartbeat = NULL;
    PyObject *compact_after = NULL, *max_delay = NULL;
    int pre_vote = 1, check_quorum = 1;
    double drop = 0.0, duplicate = 0.0, reorder = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$OOOOppOdddO:RaftCluster", kwlist, &nodes,
                                     &seed, &data_dir, &election, &heartbeat, &pre_vote,
                                     &check_quorum, &compact_after, &drop, &duplicate, &reorder,
                                     &max_delay)) {
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
    luigi_status s;
    Py_BEGIN_ALLOW_THREADS /* durable nodes open their logs */
    s = luigi_raft_cluster_new(&o, &self->cluster);
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

static PyType_Slot RaftCluster_slots[] = {
    {Py_tp_doc, "RaftCluster(nodes=3, *, seed=0, data_dir=None, election_tick=10, "
                "heartbeat_tick=1, pre_vote=True, check_quorum=True, compact_after=0, "
                "drop=0.0, duplicate=0.0, reorder=0.0, max_delay=0)\n--\n\n"
                "Raft nodes 1..nodes running a key-value state machine on virtual time,\n"
                "over a seeded network that can drop, duplicate, delay and reorder\n"
                "messages; with crash/restart, partitions and membership changes. Every\n"
                "step checks Raft's safety properties (a violation raises LuigiError).\n"
                "data_dir: None keeps logs in memory; a directory gives node i a durable\n"
                "log in data_dir/node-<i>."},
    {Py_tp_new, RaftCluster_new},
    {Py_tp_dealloc, RaftCluster_dealloc},
    {Py_tp_methods, RaftCluster_methods},
    {0, NULL},
};

static PyType_Spec RaftCluster_spec = {
    .name = "luigi_node.RaftCluster",
    .basicsize = sizeof(RaftClusterObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = RaftCluster_slots,
};

/* ============================================================ module */

static int
add_type(PyObject *module, PyType_Spec *spec, PyTypeObject **slot)
{
    PyObject *type = PyType_FromModuleAndSpec(module, spec, NULL);
    if (type == NULL) {
        return -1;
    }
    *slot = (PyTypeObject *)type;
    return PyModule_AddType(module, (PyTypeObject *)type);
}

static int
import_attr(PyObject *from, const char *name, PyObject **slot)
{
    *slot = PyObject_GetAttrString(from, name);
    return *slot == NULL ? -1 : 0;
}

static int
luigi_exec(PyObject *module)
{
    module_state *st = (module_state *)PyModule_GetState(module);

    if (luigi_abi_version() != LUIGI_ABI_VERSION) {
        PyErr_Format(PyExc_ImportError,
                     "libluigi ABI version %u does not match the %d this extension was built for",
                     (unsigned)luigi_abi_version(), LUIGI_ABI_VERSION);
        return -1;
    }

    PyObject *errors = PyImport_ImportModule("luigi_node._errors");
    if (errors == NULL) {
        return -1;
    }
    int rc = import_attr(errors, "LuigiError", &st->LuigiError) |
             import_attr(errors, "LuigiValueError", &st->LuigiValueError) |
             import_attr(errors, "InvalidHandleError", &st->InvalidHandleError) |
             import_attr(errors, "DecodeError", &st->DecodeError) |
             import_attr(errors, "NotAlgebraicError", &st->NotAlgebraicError) |
             import_attr(errors, "TypeConflictError", &st->TypeConflictError) |
             import_attr(errors, "LuigiOverflowError", &st->LuigiOverflowError) |
             import_attr(errors, "TransactionStateError", &st->TransactionStateError) |
             import_attr(errors, "NotConvergedError", &st->NotConvergedError) |
             import_attr(errors, "LuigiIndexError", &st->LuigiIndexError) |
             import_attr(errors, "LuigiIOError", &st->LuigiIOError) |
             import_attr(errors, "LuigiTimeoutError", &st->LuigiTimeoutError) |
             import_attr(errors, "NotLinearizableError", &st->NotLinearizableError);
    Py_DECREF(errors);
    if (rc != 0) {
        return -1;
    }

    PyObject *raft_types = PyImport_ImportModule("luigi_node._raft");
    if (raft_types == NULL) {
        return -1;
    }
    rc = import_attr(raft_types, "Entry", &st->EntryType) |
         import_attr(raft_types, "RaftStatus", &st->RaftStatusType) |
         import_attr(raft_types, "decode_history", &st->decode_history) |
         import_attr(raft_types, "HardState", &st->HardStateType);
    Py_DECREF(raft_types);
    if (rc != 0) {
        return -1;
    }
    static const char *const roles[4] = {"follower", "pre_candidate", "candidate", "leader"};
    static const char *const kinds[2] = {"normal", "conf_change"};
    for (int i = 0; i < 4; i++) {
        if ((st->role_names[i] = PyUnicode_InternFromString(roles[i])) == NULL) {
            return -1;
        }
    }
    for (int i = 0; i < 2; i++) {
        if ((st->entry_kinds[i] = PyUnicode_InternFromString(kinds[i])) == NULL) {
            return -1;
        }
    }

    /* luigi_node defines CausalOrder before it imports this extension. */
    PyObject *package = PyImport_ImportModule("luigi_node");
    if (package == NULL) {
        return -1;
    }
    rc = import_attr(package, "CausalOrder", &st->CausalOrder);
    Py_DECREF(package);
    if (rc != 0) {
        return -1;
    }

    if (add_type(module, &VectorClock_spec, &st->VectorClockType) < 0 ||
        add_type(module, &Update_spec, &st->UpdateType) < 0 ||
        add_type(module, &Replica_spec, &st->ReplicaType) < 0 ||
        add_type(module, &Transaction_spec, &st->TransactionType) < 0 ||
        add_type(module, &Cluster_spec, &st->ClusterType) < 0 ||
        add_type(module, &RaftNode_spec, &st->RaftNodeType) < 0 ||
        add_type(module, &Ready_spec, &st->ReadyType) < 0 ||
        add_type(module, &RaftCluster_spec, &st->RaftClusterType) < 0) {
        return -1;
    }
    if (PyModule_AddStringConstant(module, "LIBRARY_VERSION", luigi_version_string()) < 0 ||
        PyModule_AddIntConstant(module, "ABI_VERSION", (long)luigi_abi_version()) < 0) {
        return -1;
    }
    return 0;
}

static int
luigi_traverse(PyObject *module, visitproc visit, void *arg)
{
    module_state *st = (module_state *)PyModule_GetState(module);
    if (st == NULL) {
        return 0;
    }
    Py_VISIT(st->VectorClockType);
    Py_VISIT(st->UpdateType);
    Py_VISIT(st->ReplicaType);
    Py_VISIT(st->TransactionType);
    Py_VISIT(st->ClusterType);
    Py_VISIT(st->RaftNodeType);
    Py_VISIT(st->ReadyType);
    Py_VISIT(st->RaftClusterType);
    Py_VISIT(st->LuigiError);
    Py_VISIT(st->LuigiValueError);
    Py_VISIT(st->InvalidHandleError);
    Py_VISIT(st->DecodeError);
    Py_VISIT(st->NotAlgebraicError);
    Py_VISIT(st->TypeConflictError);
    Py_VISIT(st->LuigiOverflowError);
    Py_VISIT(st->TransactionStateError);
    Py_VISIT(st->NotConvergedError);
    Py_VISIT(st->LuigiIndexError);
    Py_VISIT(st->CausalOrder);
    Py_VISIT(st->LuigiIOError);
    Py_VISIT(st->LuigiTimeoutError);
    Py_VISIT(st->NotLinearizableError);
    Py_VISIT(st->EntryType);
    Py_VISIT(st->RaftStatusType);
    Py_VISIT(st->decode_history);
    Py_VISIT(st->HardStateType);
    for (int i = 0; i < 4; i++) {
        Py_VISIT(st->role_names[i]);
    }
    for (int i = 0; i < 2; i++) {
        Py_VISIT(st->entry_kinds[i]);
    }
    return 0;
}

static int
luigi_clear(PyObject *module)
{
    module_state *st = (module_state *)PyModule_GetState(module);
    if (st == NULL) {
        return 0;
    }
    Py_CLEAR(st->VectorClockType);
    Py_CLEAR(st->UpdateType);
    Py_CLEAR(st->ReplicaType);
    Py_CLEAR(st->TransactionType);
    Py_CLEAR(st->ClusterType);
    Py_CLEAR(st->RaftNodeType);
    Py_CLEAR(st->ReadyType);
    Py_CLEAR(st->RaftClusterType);
    Py_CLEAR(st->LuigiError);
    Py_CLEAR(st->LuigiValueError);
    Py_CLEAR(st->InvalidHandleError);
    Py_CLEAR(st->DecodeError);
    Py_CLEAR(st->NotAlgebraicError);
    Py_CLEAR(st->TypeConflictError);
    Py_CLEAR(st->LuigiOverflowError);
    Py_CLEAR(st->TransactionStateError);
    Py_CLEAR(st->NotConvergedError);
    Py_CLEAR(st->LuigiIndexError);
    Py_CLEAR(st->CausalOrder);
    Py_CLEAR(st->LuigiIOError);
    Py_CLEAR(st->LuigiTimeoutError);
    Py_CLEAR(st->NotLinearizableError);
    Py_CLEAR(st->EntryType);
    Py_CLEAR(st->RaftStatusType);
    Py_CLEAR(st->decode_history);
    Py_CLEAR(st->HardStateType);
    for (int i = 0; i < 4; i++) {
        Py_CLEAR(st->role_names[i]);
    }
    for (int i = 0; i < 2; i++) {
        Py_CLEAR(st->entry_kinds[i]);
    }
    return 0;
}

static void
luigi_free(void *module)
{
    (void)luigi_clear((PyObject *)module);
}

static PyModuleDef_Slot luigi_slots[] = {
    {Py_mod_exec, luigi_exec},
    {0, NULL},
};

static struct PyModuleDef luigi_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "luigi_node._luigi",
    .m_doc = "CPython extension over libluigi's C ABI (luigi.h). Use luigi_node instead.",
    .m_size = sizeof(module_state),
    .m_methods = NULL,
    .m_slots = luigi_slots,
    .m_traverse = luigi_traverse,
    .m_clear = luigi_clear,
    .m_free = luigi_free,
};

PyMODINIT_FUNC
PyInit__luigi(void)
{
    return PyModuleDef_Init(&luigi_module);
}
