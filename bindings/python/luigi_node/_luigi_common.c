/* _luigi_common.c — what every type uses: the one status -> exception mapping,
 * locks, object helpers, argument conversions, library buffers. */

#include "_luigi.h"

/* ------------------------------------------------------------ errors */

/* The one place where a luigi_status becomes a Python exception: a new
 * instance of its class, with the given message (NULL or empty: just the
 * status name). For LUIGI_ERR_CONFLICT, `latest` (NULL: not reported) is the
 * table's latest version, the ConflictError's .latest. NULL with an exception
 * set when even that cannot be built. */
PyObject *
status_exception(module_state *st, luigi_status status, const char *message,
                 const uint64_t *latest)
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
    case LUIGI_ERR_CONFLICT: cls = st->ConflictError; break;
    case LUIGI_ERR_AUTH: cls = st->AuthError; break;
    default: cls = st->LuigiError; break; /* BUFFER_TOO_SMALL, INTERNAL, unknown */
    }
    const char *name = luigi_status_name(status);
    if (name == NULL || name[0] == '\0') {
        name = "LUIGI_ERR_UNKNOWN";
    }
    PyObject *text;
    if (message != NULL && message[0] != '\0') {
        text = PyUnicode_FromFormat("%s [%s]", message, name);
    }
    else {
        text = PyUnicode_FromFormat("%s (status %d)", name, (int)status);
    }
    if (text == NULL) {
        return NULL;
    }
    PyObject *exc;
    if (status == LUIGI_ERR_CONFLICT) {
        PyObject *version = latest != NULL ? PyLong_FromUnsignedLongLong(*latest) : Py_NewRef(Py_None);
        exc = version == NULL ? NULL : PyObject_CallFunctionObjArgs(cls, text, version, NULL);
        Py_XDECREF(version);
    }
    else {
        exc = PyObject_CallFunctionObjArgs(cls, text, NULL);
    }
    Py_DECREF(text);
    return exc;
}

/* Raises `exc` (a new reference, or NULL with an exception set); returns NULL. */
static PyObject *
raise_instance(PyObject *exc)
{
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

PyObject *
raise_status_message(module_state *st, luigi_status status, const char *message)
{
    return raise_instance(status_exception(st, status, message, NULL));
}

/* The exception for a failed call: its status and the thread's last error. */
PyObject *
raise_status(module_state *st, luigi_status status)
{
    return raise_status_message(st, status, luigi_last_error_message());
}

/* As raise_status, with the latest version a LUIGI_ERR_CONFLICT reported. */
PyObject *
raise_status_latest(module_state *st, luigi_status status, const uint64_t *latest)
{
    return raise_instance(status_exception(st, status, luigi_last_error_message(), latest));
}

/* ------------------------------------------------------------ locks */

/* A fresh lock into *out; -1 with MemoryError when none can be had. */
int
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
void
free_lock(PyThread_type_lock *lock)
{
    if (*lock != NULL) {
        PyThread_free_lock(*lock);
        *lock = NULL;
    }
}

/* ------------------------------------------------------------ objects */

/* The common end of every tp_dealloc: free the memory, drop the heap type. */
void
free_instance(void *self)
{
    PyTypeObject *tp = Py_TYPE((PyObject *)self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* The end of a tp_new whose library call failed: raise for `s` (before the
 * half-built object's tp_dealloc frees whatever it holds), drop the object. */
PyObject *
raise_and_drop(module_state *st, luigi_status s, void *self)
{
    raise_status(st, s);
    Py_DECREF((PyObject *)self);
    return NULL;
}

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
int
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
int
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

int
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
int
opt_u64(module_state *st, PyObject *obj, const char *what, uint64_t *out)
{
    return obj == NULL ? 0 : as_u64(st, obj, what, out);
}

int
opt_u32(module_state *st, PyObject *obj, const char *what, uint32_t *out)
{
    return obj == NULL ? 0 : as_u32(st, obj, what, out);
}

/* Keys are str, passed to the library as UTF-8 (borrowed from `obj`). */
int
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

/* An iterable of ids (voters, nodes, coordinators: named by `what`) as a
 * PyMem array the caller frees. The iterable is copied into a tuple first,
 * so an item's __index__ cannot shrink what is being walked. */
int
collect_ids(module_state *st, PyObject *iterable, const char *what, uint64_t **out,
            size_t *count)
{
    if (Py_TYPE(iterable)->tp_iter == NULL && !PySequence_Check(iterable)) {
        PyErr_Format(PyExc_TypeError, "%s must be an iterable of ints, not %.100s", what,
                     Py_TYPE(iterable)->tp_name);
        return -1;
    }
    PyObject *items = PySequence_Tuple(iterable);
    if (items == NULL) {
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    uint64_t *ids = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(uint64_t));
    if (ids == NULL) {
        Py_DECREF(items);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (as_u64(st, PyTuple_GET_ITEM(items, i), what, &ids[i]) < 0) {
            PyMem_Free(ids);
            Py_DECREF(items);
            return -1;
        }
    }
    Py_DECREF(items);
    *out = ids;
    *count = (size_t)n;
    return 0;
}

/* counter_hi:counter_lo (128-bit two's complement) as an exact Python int. */
PyObject *
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

/* The next u32le-length-prefixed chunk of p[0..n) at *i, advancing *i past
 * it; -1 when the buffer ends too early. */
int
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

PyObject *
malformed_buffer(module_state *st, const char *what)
{
    PyErr_Format(st->LuigiError, "libluigi returned a malformed %s buffer", what);
    return NULL;
}

/* ------------------------------------------------------------ buffers */

/* Hands a filled luigi_buffer over as bytes (and frees it), or raises for `s`. */
PyObject *
take_buffer(module_state *st, luigi_status s, luigi_buffer *buf)
{
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *b = PyBytes_FromStringAndSize((const char *)buf->data, (Py_ssize_t)buf->len);
    luigi_buffer_free(buf);
    return b;
}
