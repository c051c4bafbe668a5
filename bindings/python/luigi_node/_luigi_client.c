/* _luigi_client.c — luigi_node.Client: the TCP client of a luigi-node cluster
 * (luigi_client_* in luigi.h).
 *
 * Every call blocks on the network (connect, the HMAC handshake, leader
 * discovery, retries until the deadline), so each one runs with the GIL
 * released. luigi.h allows one thread at a time per luigi_client, so a
 * Client owns a lock held around every call: threads sharing one Client
 * take turns (a thread waiting for the lock waits with the GIL released);
 * threads with a Client each run in parallel. close() takes the same lock,
 * so it waits for a call in progress and never frees a handle under it.
 *
 * Arguments are converted before the lock is taken (keys borrow the UTF-8
 * of their str, values the buffer of their bytes-like object, both kept
 * alive by the call's arguments); results are built after it is released.
 * Timeouts are seconds (int or float) in (0, 600], rounded up to whole
 * milliseconds; groups start at 1. */

#include "_luigi.h"

#include <math.h>

/* The longest deadline luigi.h accepts (timeout_ms 1..600000). */
#define CLIENT_MAX_TIMEOUT_MS 600000u

typedef struct {
    PyObject_HEAD
    luigi_client *client;    /* NULL once closed */
    PyThread_type_lock lock; /* one call at a time (luigi.h); guards `client` */
    PyObject *endpoints;     /* tuple of str, as given (for .endpoints and repr) */
} ClientObject;

/* ============================================================ arguments */

/* A timeout in seconds (int or float) as milliseconds in 1..600000. An
 * omitted one (NULL) or None leaves *out at 0: the client's default. */
static int
client_timeout(module_state *st, PyObject *obj, uint32_t *out)
{
    *out = 0;
    if (obj == NULL || obj == Py_None) {
        return 0;
    }
    if (PyUnicode_Check(obj) || PyBytes_Check(obj) || PyByteArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "timeout must be a number of seconds, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    double seconds = PyFloat_AsDouble(obj);
    if (seconds == -1.0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "timeout must be a number of seconds, not %.100s",
                         Py_TYPE(obj)->tp_name);
        }
        else if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_Format(st->LuigiValueError, "timeout must be in (0, 600] seconds, not %R", obj);
        }
        return -1;
    }
    if (!(seconds > 0.0 && seconds <= 600.0)) { /* NaN fails too */
        PyErr_Format(st->LuigiValueError, "timeout must be in (0, 600] seconds, not %R", obj);
        return -1;
    }
    double ms = ceil(seconds * 1000.0);
    *out = ms < 1.0 ? 1u : ms > (double)CLIENT_MAX_TIMEOUT_MS ? CLIENT_MAX_TIMEOUT_MS : (uint32_t)ms;
    return 0;
}

/* A group id (>= 1). An omitted one (NULL) or None leaves *out at 0: the
 * client's default group. */
static int
client_group(module_state *st, PyObject *obj, uint64_t *out)
{
    *out = 0;
    if (obj == NULL || obj == Py_None) {
        return 0;
    }
    if (PyBool_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "group must be an int, not bool");
        return -1;
    }
    if (as_u64(st, obj, "group", out) < 0) {
        return -1;
    }
    if (*out == 0) {
        PyErr_SetString(st->LuigiValueError, "group ids start at 1");
        return -1;
    }
    return 0;
}

/* One endpoint (an item of the sequence, or a piece of the string), stripped,
 * appended to `list`. */
static int
add_endpoint(module_state *st, PyObject *list, PyObject *item, Py_ssize_t index)
{
    if (!PyUnicode_Check(item)) {
        PyErr_Format(PyExc_TypeError, "endpoints[%zd] must be a str (host:port), not %.100s",
                     index, Py_TYPE(item)->tp_name);
        return -1;
    }
    PyObject *stripped = PyObject_CallMethod(item, "strip", NULL);
    if (stripped == NULL) {
        return -1;
    }
    int rc = -1;
    if (PyUnicode_GET_LENGTH(stripped) == 0) {
        PyErr_Format(st->LuigiValueError, "endpoints[%zd] is empty (expected host:port)", index);
    }
    else if (PyUnicode_FindChar(stripped, ',', 0, PyUnicode_GET_LENGTH(stripped), 1) != -1) {
        PyErr_Format(st->LuigiValueError,
                     "endpoints[%zd] %R holds a comma: give one host:port per item", index, item);
    }
    else {
        rc = PyList_Append(list, stripped);
    }
    Py_DECREF(stripped);
    return rc;
}

/* endpoints: one str ("host:port" or "host:port,host:port,...") or a
 * sequence of "host:port" str, as a tuple of stripped str (at least one). */
static PyObject *
client_endpoints(module_state *st, PyObject *obj)
{
    PyObject *items; /* a list or a tuple */
    if (PyUnicode_Check(obj)) {
        if (PyUnicode_GET_LENGTH(obj) == 0) { /* "".split(",") would be [""] */
            items = PyList_New(0);
        }
        else {
            PyObject *comma = PyUnicode_FromString(",");
            items = comma == NULL ? NULL : PyUnicode_Split(obj, comma, -1);
            Py_XDECREF(comma);
        }
        if (items == NULL) {
            return NULL;
        }
    }
    else if (PyBytes_Check(obj) || PyByteArray_Check(obj) || !PySequence_Check(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "endpoints must be a str or a sequence of str (host:port), not %.100s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    else {
        items = PySequence_Tuple(obj);
        if (items == NULL) {
            return NULL;
        }
    }
    PyObject *list = PyList_New(0);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    for (Py_ssize_t i = 0; list != NULL && i < n; i++) {
        if (add_endpoint(st, list, PySequence_Fast_GET_ITEM(items, i), i) < 0) {
            Py_CLEAR(list);
        }
    }
    Py_DECREF(items);
    if (list == NULL) {
        return NULL;
    }
    if (PyList_GET_SIZE(list) == 0) {
        Py_DECREF(list);
        PyErr_SetString(st->LuigiValueError, "a Client needs at least one endpoint (host:port)");
        return NULL;
    }
    PyObject *tuple = PyList_AsTuple(list);
    Py_DECREF(list);
    return tuple;
}

/* ============================================================ Client */

static PyObject *
Client_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"endpoints", "cluster_secret", "cluster_id", "timeout", "group",
                             NULL};
    module_state *st = state_of_type(type);
    PyObject *endpoints_obj, *secret_obj = NULL, *id_obj = NULL, *timeout_obj = NULL;
    PyObject *group_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OOOO:Client", kwlist, &endpoints_obj,
                                     &secret_obj, &id_obj, &timeout_obj, &group_obj)) {
        return NULL;
    }
    if (secret_obj == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "Client() missing required keyword-only argument: 'cluster_secret'");
        return NULL;
    }
    luigi_client_options o;
    memset(&o, 0, sizeof o);
    o.version = LUIGI_CLIENT_OPTIONS_VERSION;
    /* cluster_id: str, default "luigi" (string literals and str UTF-8 live
     * for the whole call). */
    o.cluster_id = "luigi";
    o.cluster_id_len = 5;
    if (id_obj != NULL) {
        if (!PyUnicode_Check(id_obj)) {
            PyErr_Format(PyExc_TypeError, "cluster_id must be str, not %.100s",
                         Py_TYPE(id_obj)->tp_name);
            return NULL;
        }
        Py_ssize_t n;
        if ((o.cluster_id = PyUnicode_AsUTF8AndSize(id_obj, &n)) == NULL) {
            return NULL;
        }
        o.cluster_id_len = (size_t)n;
    }
    if (client_timeout(st, timeout_obj, &o.timeout_ms) < 0 ||
        client_group(st, group_obj, &o.group) < 0) {
        return NULL;
    }
    /* cluster_secret: str (its UTF-8) or bytes-like. */
    Py_buffer secret = {0};
    int has_buffer = 0;
    if (PyUnicode_Check(secret_obj)) {
        Py_ssize_t n;
        const char *p = PyUnicode_AsUTF8AndSize(secret_obj, &n);
        if (p == NULL) {
            return NULL;
        }
        o.secret = (const uint8_t *)p;
        o.secret_len = (size_t)n;
    }
    else {
        if (!PyObject_CheckBuffer(secret_obj)) {
            PyErr_Format(PyExc_TypeError, "cluster_secret must be str or bytes, not %.100s",
                         Py_TYPE(secret_obj)->tp_name);
            return NULL;
        }
        if (get_bytes(secret_obj, &secret) < 0) {
            return NULL;
        }
        has_buffer = 1;
        o.secret = (const uint8_t *)secret.buf;
        o.secret_len = (size_t)secret.len;
    }
    PyObject *endpoints = client_endpoints(st, endpoints_obj);
    PyObject *joined = NULL, *comma = NULL;
    const char *list = NULL;
    Py_ssize_t list_len = 0;
    if (endpoints != NULL && (comma = PyUnicode_FromString(",")) != NULL &&
        (joined = PyUnicode_Join(comma, endpoints)) != NULL) {
        list = PyUnicode_AsUTF8AndSize(joined, &list_len);
    }
    Py_XDECREF(comma);
    ClientObject *self = NULL;
    if (list != NULL) {
        /* Object and lock first: on any later failure tp_dealloc frees what exists. */
        self = (ClientObject *)type->tp_alloc(type, 0);
        if (self != NULL && new_lock(&self->lock) < 0) {
            Py_CLEAR(self);
        }
    }
    if (self == NULL) {
        Py_XDECREF(endpoints);
        Py_XDECREF(joined);
        if (has_buffer) {
            PyBuffer_Release(&secret);
        }
        return NULL;
    }
    self->endpoints = endpoints; /* the reference moves to self */
    luigi_status s;
    Py_BEGIN_ALLOW_THREADS /* nothing connects yet, but keep every luigi_client_* call GIL-free */
    s = luigi_client_new(list, (size_t)list_len, &o, &self->client);
    Py_END_ALLOW_THREADS
    /* The exception first, while the thread's last error message is the call's. */
    PyObject *result = s == LUIGI_OK ? (PyObject *)self : raise_and_drop(st, s, self);
    Py_DECREF(joined);
    if (has_buffer) {
        PyBuffer_Release(&secret);
    }
    return result;
}

static void
Client_dealloc(ClientObject *self)
{
    /* No call can be in progress: each holds a reference to self. */
    luigi_client_free(self->client);
    self->client = NULL;
    free_lock(&self->lock);
    Py_CLEAR(self->endpoints);
    free_instance(self);
}

/* Takes the client's lock (waiting with the GIL released). -1 with
 * TransactionStateError, and the lock not held, when the client is closed. */
static int
client_begin(module_state *st, ClientObject *self)
{
    lock_acquire(self->lock);
    if (self->client == NULL) {
        lock_release(self->lock);
        PyErr_SetString(st->TransactionStateError, "this Client is closed");
        return -1;
    }
    return 0;
}

/* Runs `stmt` (a luigi_client_* call: no Python objects) with the client's
 * lock held and the GIL released; on a closed client raises and runs
 * `closed` instead (cleanup, then return NULL). */
#define CLIENT_CALL(st, self, closed, stmt) \
    do {                                    \
        if (client_begin(st, self) < 0) {   \
            closed;                         \
        }                                   \
        Py_BEGIN_ALLOW_THREADS              \
        stmt;                               \
        lock_release((self)->lock);         \
        Py_END_ALLOW_THREADS                \
    } while (0)

/* The key, group and timeout every key-value method takes. */
typedef struct {
    const char *key;
    size_t key_len;
    uint64_t group;
    uint32_t timeout_ms;
} client_kv;

static int
get_client_kv(module_state *st, PyObject *key, PyObject *group, PyObject *timeout, client_kv *out)
{
    if (as_key(key, &out->key, &out->key_len) < 0 || client_group(st, group, &out->group) < 0 ||
        client_timeout(st, timeout, &out->timeout_ms) < 0) {
        return -1;
    }
    return 0;
}

static PyObject *
Client_put(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"key", "value", "group", "timeout", NULL};
    ClientObject *self = (ClientObject *)op;
    module_state *st = state_of(op);
    PyObject *key_obj, *value_obj, *group_obj = NULL, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|$OO:put", kwlist, &key_obj, &value_obj,
                                     &group_obj, &timeout_obj)) {
        return NULL;
    }
    client_kv kv;
    Py_buffer value;
    if (get_client_kv(st, key_obj, group_obj, timeout_obj, &kv) < 0 ||
        get_bytes(value_obj, &value) < 0) {
        return NULL;
    }
    luigi_status s;
    CLIENT_CALL(st, self, { PyBuffer_Release(&value); return NULL; },
        s = luigi_client_put(self->client, kv.group, kv.key, kv.key_len, VIEW_DATA(value),
            kv.timeout_ms));
    PyObject *result = none_or_raise(st, s);
    PyBuffer_Release(&value);
    return result;
}

static PyObject *
Client_get(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"key", "group", "timeout", NULL};
    ClientObject *self = (ClientObject *)op;
    module_state *st = state_of(op);
    PyObject *key_obj, *group_obj = NULL, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OO:get", kwlist, &key_obj, &group_obj,
                                     &timeout_obj)) {
        return NULL;
    }
    client_kv kv;
    if (get_client_kv(st, key_obj, group_obj, timeout_obj, &kv) < 0) {
        return NULL;
    }
    int found = 0;
    luigi_buffer value = {NULL, 0};
    luigi_status s;
    CLIENT_CALL(st, self, return NULL,
        s = luigi_client_get(self->client, kv.group, kv.key, kv.key_len, kv.timeout_ms, &found,
            &value));
    if (s == LUIGI_OK && !found) {
        luigi_buffer_free(&value);
        Py_RETURN_NONE;
    }
    return take_buffer(st, s, &value);
}

static PyObject *
Client_delete(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"key", "group", "timeout", NULL};
    ClientObject *self = (ClientObject *)op;
    module_state *st = state_of(op);
    PyObject *key_obj, *group_obj = NULL, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OO:delete", kwlist, &key_obj, &group_obj,
                                     &timeout_obj)) {
        return NULL;
    }
    client_kv kv;
    if (get_client_kv(st, key_obj, group_obj, timeout_obj, &kv) < 0) {
        return NULL;
    }
    int existed = 0;
    luigi_status s;
    CLIENT_CALL(st, self, return NULL,
        s = luigi_client_delete(self->client, kv.group, kv.key, kv.key_len, kv.timeout_ms,
            &existed));
    return bool_or_raise(st, s, existed);
}

static PyObject *
Client_cas(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"key", "expected", "new", "group", "timeout", NULL};
    ClientObject *self = (ClientObject *)op;
    module_state *st = state_of(op);
    PyObject *key_obj, *expected_obj, *new_obj, *group_obj = NULL, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|$OO:cas", kwlist, &key_obj, &expected_obj,
                                     &new_obj, &group_obj, &timeout_obj)) {
        return NULL;
    }
    client_kv kv;
    if (get_client_kv(st, key_obj, group_obj, timeout_obj, &kv) < 0) {
        return NULL;
    }
    /* expected None: the key must be absent, (NULL, 0) in luigi.h; b"" is a
     * value (get_bytes never hands out a NULL pointer). */
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
    CLIENT_CALL(st, self,
        {
            if (has_expected) {
                PyBuffer_Release(&expected);
            }
            PyBuffer_Release(&value);
            return NULL;
        },
        s = luigi_client_cas(self->client, kv.group, kv.key, kv.key_len, e, e_len,
            VIEW_DATA(value), kv.timeout_ms, &swapped));
    PyObject *result = bool_or_raise(st, s, swapped);
    if (has_expected) {
        PyBuffer_Release(&expected);
    }
    PyBuffer_Release(&value);
    return result;
}

static PyObject *
Client_status(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", NULL};
    ClientObject *self = (ClientObject *)op;
    module_state *st = state_of(op);
    PyObject *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$O:status", kwlist, &timeout_obj)) {
        return NULL;
    }
    uint32_t timeout_ms;
    if (client_timeout(st, timeout_obj, &timeout_ms) < 0) {
        return NULL;
    }
    luigi_buffer json = {NULL, 0};
    luigi_status s;
    CLIENT_CALL(st, self, return NULL,
        s = luigi_client_status(self->client, timeout_ms, &json));
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *text = PyUnicode_DecodeUTF8((const char *)json.data, (Py_ssize_t)json.len, NULL);
    luigi_buffer_free(&json);
    if (text == NULL) {
        return NULL;
    }
    PyObject *doc = PyObject_CallOneArg(st->json_loads, text);
    Py_DECREF(text);
    if (doc != NULL && !PyDict_Check(doc)) {
        Py_DECREF(doc);
        return malformed_buffer(st, "status");
    }
    return doc;
}

/* Frees the handle (waiting for a call in progress); idempotent. */
static PyObject *
Client_close(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ClientObject *self = (ClientObject *)op;
    lock_acquire(self->lock);
    luigi_client *client = self->client;
    self->client = NULL;
    lock_release(self->lock);
    if (client != NULL) {
        Py_BEGIN_ALLOW_THREADS /* closes its sockets */
        luigi_client_free(client);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *
Client_enter(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ClientObject *self = (ClientObject *)op;
    if (self->client == NULL) { /* read under the GIL: close() only ever clears it */
        PyErr_SetString(state_of(op)->TransactionStateError, "this Client is closed");
        return NULL;
    }
    return Py_NewRef(op);
}

static PyObject *
Client_exit(PyObject *op, PyObject *const *Py_UNUSED(args), Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "__exit__() takes exactly 3 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *r = Client_close(op, NULL);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_FALSE; /* never swallow the exception */
}

static PyObject *
Client_get_closed(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(((ClientObject *)op)->client == NULL);
}

static PyObject *
Client_get_endpoints(PyObject *op, void *Py_UNUSED(closure))
{
    return Py_NewRef(((ClientObject *)op)->endpoints);
}

static PyObject *
Client_repr(PyObject *op)
{
    ClientObject *self = (ClientObject *)op;
    return PyUnicode_FromFormat("<luigi_node.Client %R%s>", self->endpoints,
                                self->client == NULL ? " closed" : "");
}

static PyMethodDef Client_methods[] = {
    {"put", FUNC(Client_put), METH_VARARGS | METH_KEYWORDS,
     "put($self, /, key, value, *, group=None, timeout=None)\n--\n\n"
     "Write key=value (linearizable, exactly once; releases the GIL).\n"
     "LuigiTimeoutError past the deadline: the outcome is then unknown (it may\n"
     "still apply, once)."},
    {"get", FUNC(Client_get), METH_VARARGS | METH_KEYWORDS,
     "get($self, /, key, *, group=None, timeout=None)\n--\n\n"
     "Linearizable read: the value, or None when the key is absent."},
    {"delete", FUNC(Client_delete), METH_VARARGS | METH_KEYWORDS,
     "delete($self, /, key, *, group=None, timeout=None)\n--\n\n"
     "Delete key; True when it existed."},
    {"cas", FUNC(Client_cas), METH_VARARGS | METH_KEYWORDS,
     "cas($self, /, key, expected, new, *, group=None, timeout=None)\n--\n\n"
     "Compare-and-set: set key to `new` if its value is `expected` (None: the\n"
     "key is absent; b\"\" is a value). True when it swapped."},
    {"status", FUNC(Client_status), METH_VARARGS | METH_KEYWORDS,
     "status($self, /, *, timeout=None)\n--\n\n"
     "One node's status document (its HTTP /status), parsed from JSON: a dict\n"
     "with \"node\", \"cluster\", \"groups\", ..."},
    {"close", Client_close, METH_NOARGS,
     "close($self, /)\n--\n\n"
     "Close the connections and free the client (waits for a call in progress).\n"
     "Idempotent; any later call raises TransactionStateError."},
    {"__enter__", Client_enter, METH_NOARGS, "__enter__($self, /)\n--\n\n"},
    {"__exit__", FUNC(Client_exit), METH_FASTCALL,
     "__exit__($self, exc_type, exc, traceback, /)\n--\n\nClose the client."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Client_getset[] = {
    {"closed", Client_get_closed, NULL, "True once close() was called.", NULL},
    {"endpoints", Client_get_endpoints, NULL, "The nodes' host:port, as given.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Client_slots[] = {
    {Py_tp_doc, "Client(endpoints, *, cluster_secret, cluster_id='luigi', timeout=5.0, group=1)\n"
                "--\n\n"
                "A client of a running luigi-node cluster over TCP: linearizable put, get,\n"
                "delete and cas on a key-value Raft group, exactly once across retries and\n"
                "failovers. endpoints: \"host:port,host:port\" or a sequence of \"host:port\".\n"
                "Every connection proves knowledge of cluster_secret (str or bytes, >= 16\n"
                "bytes) and cluster_id; AuthError when the nodes refuse them. timeout: the\n"
                "default per-call deadline in seconds, (0, 600]; group: the default group.\n"
                "Nothing connects until the first call. Calls release the GIL; one Client\n"
                "serialises its callers (a lock), so use one per thread for parallel calls.\n"
                "A context manager: `with Client(...) as c:` closes it at the end."},
    {Py_tp_new, Client_new},
    {Py_tp_dealloc, Client_dealloc},
    {Py_tp_repr, Client_repr},
    {Py_tp_methods, Client_methods},
    {Py_tp_getset, Client_getset},
    {0, NULL},
};

PyType_Spec Client_spec = {
    .name = "luigi_node.Client",
    .basicsize = sizeof(ClientObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = Client_slots,
};
