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
 * milliseconds; groups start at 1, replica groups at REPLICA_GROUP_BASE + 1.
 *
 * Replica groups (commit, coordinate, value), sharded transactions
 * (transact) and membership (add_member, remove_member) are below, after
 * the key-value methods: a transaction's op tuples become a luigi_ops (or
 * luigi_wm_op array) built before the lock is taken and freed after the
 * call. */

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

/* ============================================================ replica groups
 *
 * A node started with --replica-groups n runs groups REPLICA_GROUP_BASE + 1,
 * ...: algebraic replicas reached through commit (no coordination, on the
 * node the client reaches), coordinate (through the group's Raft log) and
 * value (one node's replica). A transaction's ops are op tuples, checked and
 * copied into a luigi_ops built for the call (freed after it, also on error):
 *
 *     ("add", key, delta)        counter; delta an int in [-2**63, 2**63)
 *     ("max", key, number)       max register; int or float (no NaN)
 *     ("min", key, number)       min register
 *     ("union", key, element)    grow-only set; one str, bytes or int element
 *     ("set", key, number)       register overwrite: coordinate only
 *
 * bool is refused wherever an int is taken (a value, an element, a node or
 * group id): True is far more likely a mistake than the number 1. */

/* Op kinds, as the tuples name them (indices into replica_op_names). */
enum { ROP_ADD, ROP_MAX, ROP_MIN, ROP_UNION, ROP_SET, ROP_COUNT };
static const char *const replica_op_names[ROP_COUNT] = {"add", "max", "min", "union", "set"};

/* The luigi_ops calls of the ops that take one number (int or float). */
typedef struct {
    luigi_status (*with_int)(luigi_ops *, const char *, size_t, int64_t);
    luigi_status (*with_float)(luigi_ops *, const char *, size_t, double);
} ops_number_fn;

static const ops_number_fn OPS_MAX = {luigi_ops_max_int, luigi_ops_max_float};
static const ops_number_fn OPS_MIN = {luigi_ops_min_int, luigi_ops_min_float};
static const ops_number_fn OPS_SET = {luigi_ops_set_int, luigi_ops_set_float};

/* A replica group id: required (NULL: the keyword was omitted), an int, and
 * above REPLICA_GROUP_BASE. */
static int
client_replica_group(module_state *st, const char *method, PyObject *obj, uint64_t *out)
{
    if (obj == NULL) {
        PyErr_Format(PyExc_TypeError, "%s() missing required keyword-only argument: 'group'",
                     method);
        return -1;
    }
    if (obj == Py_None || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "group must be an int (a replica group id), not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (as_u64(st, obj, "group", out) < 0) {
        return -1;
    }
    if (*out <= LUIGI_REPLICA_GROUP_BASE) {
        PyErr_Format(st->LuigiValueError,
                     "replica group ids start at REPLICA_GROUP_BASE + 1 (%d), not %llu",
                     LUIGI_REPLICA_GROUP_BASE + 1, (unsigned long long)*out);
        return -1;
    }
    return 0;
}

/* Raises for a refused luigi_ops_* call on op `index`, naming the op. */
static int
raise_op_status(module_state *st, luigi_status s, Py_ssize_t index)
{
    const char *why = luigi_last_error_message();
    PyObject *text = PyUnicode_FromFormat("op %zd: %s", index,
                                          why != NULL && why[0] != '\0' ? why : "refused");
    const char *message = text == NULL ? NULL : PyUnicode_AsUTF8(text);
    if (message == NULL) {
        PyErr_Clear();
        raise_status(st, s);
    }
    else {
        raise_status_message(st, s, message);
    }
    Py_XDECREF(text);
    return -1;
}

/* Appends one op tuple (item `index` of the caller's ops) to `ops`; -1 with
 * an exception (and `ops` unchanged) when it is malformed or refused. */
static int
add_replica_op(module_state *st, luigi_ops *ops, PyObject *item, Py_ssize_t index)
{
    if (!PyTuple_Check(item)) {
        PyErr_Format(PyExc_TypeError, "op %zd must be a tuple (kind, key, value), not %.100s",
                     index, Py_TYPE(item)->tp_name);
        return -1;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(item);
    if (size == 0) {
        PyErr_Format(st->LuigiValueError, "op %zd is an empty tuple", index);
        return -1;
    }
    uint32_t kind;
    if (wm_choose(st, PyTuple_GET_ITEM(item, 0), "op kind", replica_op_names, ROP_COUNT,
                  &kind) < 0) {
        return -1;
    }
    if (size != 3) {
        PyErr_Format(st->LuigiValueError, "op %zd: '%s' takes (kind, key, %s), not %zd items",
                     index, replica_op_names[kind],
                     kind == ROP_ADD ? "delta" : kind == ROP_UNION ? "element" : "value", size);
        return -1;
    }
    const char *key;
    size_t key_len;
    if (as_key(PyTuple_GET_ITEM(item, 1), &key, &key_len) < 0) {
        return -1;
    }
    PyObject *value = PyTuple_GET_ITEM(item, 2);
    luigi_status s;
    if (kind == ROP_ADD) {
        int64_t delta;
        if (PyBool_Check(value)) {
            PyErr_Format(PyExc_TypeError, "op %zd: delta must be an int, not bool", index);
            return -1;
        }
        if (as_i64(st, value, "delta", &delta) < 0) {
            return -1;
        }
        s = luigi_ops_add(ops, key, key_len, delta);
    }
    else if (kind == ROP_UNION) {
        if (PyUnicode_Check(value)) {
            Py_ssize_t len;
            const char *data = PyUnicode_AsUTF8AndSize(value, &len);
            if (data == NULL) {
                return -1;
            }
            s = luigi_ops_union_str(ops, key, key_len, data, (size_t)len);
        }
        else if (PyBytes_Check(value)) {
            s = luigi_ops_union_bytes(ops, key, key_len, (const uint8_t *)PyBytes_AS_STRING(value),
                                      (size_t)PyBytes_GET_SIZE(value));
        }
        else if (PyLong_Check(value) && !PyBool_Check(value)) {
            int64_t element;
            if (as_i64(st, value, "set element", &element) < 0) {
                return -1;
            }
            s = luigi_ops_union_int(ops, key, key_len, element);
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "op %zd: a set element must be str, bytes or int, not %.100s "
                         "(one element per union op)",
                         index, Py_TYPE(value)->tp_name);
            return -1;
        }
    }
    else {
        const ops_number_fn *f = kind == ROP_MAX ? &OPS_MAX : kind == ROP_MIN ? &OPS_MIN : &OPS_SET;
        if (PyFloat_Check(value)) {
            s = f->with_float(ops, key, key_len, PyFloat_AS_DOUBLE(value)); /* NaN: refused */
        }
        else if (!PyBool_Check(value) && (PyLong_Check(value) || PyIndex_Check(value))) {
            int64_t i;
            if (as_i64(st, value, "value", &i) < 0) {
                return -1;
            }
            s = f->with_int(ops, key, key_len, i);
        }
        else {
            PyErr_Format(PyExc_TypeError, "op %zd: value must be int or float, not %.100s", index,
                         Py_TYPE(value)->tp_name);
            return -1;
        }
    }
    return s == LUIGI_OK ? 0 : raise_op_status(st, s, index);
}

/* A luigi_ops holding every op of `seq` (any iterable of op tuples, at least
 * one), for the caller to free with luigi_ops_free; NULL with an exception.
 * The luigi_ops_* calls copy what they take and are short, so they run with
 * the GIL held; the ops are a local handle no other thread sees. */
static luigi_ops *
client_ops(module_state *st, PyObject *seq)
{
    if (PyUnicode_Check(seq) || PyBytes_Check(seq) || PyByteArray_Check(seq)) {
        PyErr_Format(PyExc_TypeError, "ops must be an iterable of op tuples, not %.100s",
                     Py_TYPE(seq)->tp_name);
        return NULL;
    }
    if (PyTuple_Check(seq) && PyTuple_GET_SIZE(seq) > 0 &&
        PyUnicode_Check(PyTuple_GET_ITEM(seq, 0))) {
        PyErr_SetString(PyExc_TypeError,
                        "ops must be an iterable of op tuples, not one op: wrap it, [op]");
        return NULL;
    }
    PyObject *items = PySequence_Tuple(seq);
    if (items == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    if (n == 0) {
        Py_DECREF(items);
        PyErr_SetString(st->LuigiValueError, "a transaction needs at least one op");
        return NULL;
    }
    luigi_ops *ops = NULL;
    luigi_status s = luigi_ops_new(&ops);
    if (s != LUIGI_OK) {
        Py_DECREF(items);
        raise_status(st, s);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (add_replica_op(st, ops, PyTuple_GET_ITEM(items, i), i) < 0) {
            luigi_ops_free(ops);
            Py_DECREF(items);
            return NULL;
        }
    }
    Py_DECREF(items);
    return ops;
}

/* commit() and coordinate(): parse, build the ops, call, free the ops. */
static PyObject *
client_replica_txn(PyObject *op, PyObject *args, PyObject *kwds, int coordinate)
{
    static char *kwlist[] = {"ops", "group", "timeout", NULL};
    const char *method = coordinate ? "coordinate" : "commit";
    ClientObject *self = (ClientObject *)op;
    module_state *st = state_of(op);
    PyObject *ops_obj, *group_obj = NULL, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, coordinate ? "O|$OO:coordinate" : "O|$OO:commit",
                                     kwlist, &ops_obj, &group_obj, &timeout_obj)) {
        return NULL;
    }
    uint64_t group;
    uint32_t timeout_ms;
    if (client_replica_group(st, method, group_obj, &group) < 0 ||
        client_timeout(st, timeout_obj, &timeout_ms) < 0) {
        return NULL;
    }
    luigi_ops *ops = client_ops(st, ops_obj);
    if (ops == NULL) {
        return NULL;
    }
    uint64_t origin = 0, seq = 0;
    luigi_status s;
    CLIENT_CALL(st, self, { luigi_ops_free(ops); return NULL; },
        s = coordinate ? luigi_client_coordinate(self->client, group, ops, timeout_ms)
                       : luigi_client_commit(self->client, group, ops, timeout_ms, &origin, &seq));
    /* The exception first, while the thread's last error message is the call's. */
    PyObject *result = s != LUIGI_OK ? raise_status(st, s)
                       : coordinate  ? Py_NewRef(Py_None)
                                     : Py_BuildValue("(KK)", (unsigned long long)origin,
                                                     (unsigned long long)seq);
    luigi_ops_free(ops);
    return result;
}

static PyObject *
Client_commit(PyObject *op, PyObject *args, PyObject *kwds)
{
    return client_replica_txn(op, args, kwds, 0);
}

static PyObject *
Client_coordinate(PyObject *op, PyObject *args, PyObject *kwds)
{
    return client_replica_txn(op, args, kwds, 1);
}

/* A SET's elements as luigi_client_value lays them out (that of
 * luigi_replica_set_elements) as a frozenset of int, str and bytes: the
 * same values Replica.value() gives. (The same decoding as the static
 * decode_set_elements of _luigi_replica.c; sharing it means exporting that
 * one through _luigi.h.) */
static PyObject *
client_set_elements(module_state *st, const uint8_t *p, size_t n)
{
    PyObject *set = PyFrozenSet_New(NULL);
    size_t i = 0;
    while (set != NULL && i < n) {
        uint8_t tag = p[i++];
        PyObject *element;
        const uint8_t *data;
        size_t len;
        if (tag == LUIGI_ELEMENT_INT && n - i >= 8) {
            element = PyLong_FromLongLong((long long)(int64_t)read_u64le(p + i));
            i += 8;
        }
        else if (tag == LUIGI_ELEMENT_STR && read_chunk(p, n, &i, &data, &len) == 0) {
            element = PyUnicode_DecodeUTF8((const char *)data, (Py_ssize_t)len, "strict");
        }
        else if (tag == LUIGI_ELEMENT_BYTES && read_chunk(p, n, &i, &data, &len) == 0) {
            element = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)len);
        }
        else {
            Py_DECREF(set);
            return malformed_buffer(st, "set elements");
        }
        if (element == NULL || PySet_Add(set, element) < 0) {
            Py_CLEAR(set);
        }
        Py_XDECREF(element);
    }
    return set;
}

/* A luigi_value as Replica.value() gives it: None (absent), int (counter),
 * int or float (max, min, register), frozenset (set). */
static PyObject *
client_value_object(module_state *st, const luigi_value *v, const luigi_buffer *elements)
{
    switch (v->kind) {
    case LUIGI_KIND_NONE:
        Py_RETURN_NONE;
    case LUIGI_KIND_COUNTER:
        return int128_to_long(v->counter_hi, v->counter_lo);
    case LUIGI_KIND_MAX:
    case LUIGI_KIND_MIN:
    case LUIGI_KIND_REGISTER:
        if (v->number_type == LUIGI_NUMBER_FLOAT) {
            return PyFloat_FromDouble(v->float_value);
        }
        return PyLong_FromLongLong((long long)v->int_value);
    case LUIGI_KIND_SET:
        return client_set_elements(st, elements->data, elements->len);
    default:
        PyErr_Format(st->LuigiError, "libluigi returned an unknown value kind %u",
                     (unsigned)v->kind);
        return NULL;
    }
}

static PyObject *
Client_value(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"key", "group", "endpoint", "timeout", NULL};
    ClientObject *self = (ClientObject *)op;
    module_state *st = state_of(op);
    PyObject *key_obj, *group_obj = NULL, *endpoint_obj = NULL, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OOO:value", kwlist, &key_obj, &group_obj,
                                     &endpoint_obj, &timeout_obj)) {
        return NULL;
    }
    const char *key;
    size_t key_len;
    uint64_t group;
    uint32_t timeout_ms;
    if (as_key(key_obj, &key, &key_len) < 0 ||
        client_replica_group(st, "value", group_obj, &group) < 0 ||
        client_timeout(st, timeout_obj, &timeout_ms) < 0) {
        return NULL;
    }
    /* endpoint None: the first node that answers, (NULL, 0) in luigi.h. */
    const char *endpoint = NULL;
    Py_ssize_t endpoint_len = 0;
    if (endpoint_obj != NULL && endpoint_obj != Py_None) {
        if (!PyUnicode_Check(endpoint_obj)) {
            PyErr_Format(PyExc_TypeError, "endpoint must be a str (host:port) or None, not %.100s",
                         Py_TYPE(endpoint_obj)->tp_name);
            return NULL;
        }
        if ((endpoint = PyUnicode_AsUTF8AndSize(endpoint_obj, &endpoint_len)) == NULL) {
            return NULL;
        }
    }
    luigi_value v;
    memset(&v, 0, sizeof v);
    luigi_buffer elements = {NULL, 0};
    luigi_status s;
    CLIENT_CALL(st, self, return NULL,
        s = luigi_client_value(self->client, group, key, key_len, endpoint, (size_t)endpoint_len,
            timeout_ms, &v, &elements));
    PyObject *result = s != LUIGI_OK ? raise_status(st, s) : client_value_object(st, &v, &elements);
    luigi_buffer_free(&elements);
    return result;
}

/* ============================================================ sharded transactions
 *
 * A node started with --shards n runs watermark shards 0..n-1; transact()
 * takes the op tuples ShardedCluster.submit takes (wm_collect_ops) and
 * returns a TxnResult like ShardedCluster.result. */

/* wm_collect_ops takes bool as an int; here, as for every int the Client
 * takes, a bool shard or value is refused as a likely mistake. */
static int
refuse_bool_ops(const wm_ops *ops)
{
    for (size_t i = 0; i < ops->count; i++) {
        PyObject *item = PyTuple_GET_ITEM(ops->owner, (Py_ssize_t)i); /* checked: a 3- or 4-tuple */
        Py_ssize_t size = PyTuple_GET_SIZE(item);
        for (Py_ssize_t at = 1; at < size; at += 2) { /* the shard, then the value */
            if (PyBool_Check(PyTuple_GET_ITEM(item, at))) {
                PyErr_Format(PyExc_TypeError, "op %zu: %s must be an int, not bool", i,
                             at == 1 ? "shard" : "value");
                return -1;
            }
        }
    }
    return 0;
}

static PyObject *
Client_transact(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ops", "timeout", NULL};
    ClientObject *self = (ClientObject *)op;
    module_state *st = state_of(op);
    PyObject *ops_obj, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$O:transact", kwlist, &ops_obj,
                                     &timeout_obj)) {
        return NULL;
    }
    uint32_t timeout_ms;
    wm_ops ops;
    if (client_timeout(st, timeout_obj, &timeout_ms) < 0 ||
        wm_collect_ops(st, ops_obj, &ops) < 0) {
        return NULL;
    }
    if (refuse_bool_ops(&ops) < 0) {
        wm_release_ops(&ops);
        return NULL;
    }
    uint32_t outcome = 0;
    uint64_t ts = 0;
    luigi_buffer buf = {NULL, 0};
    luigi_status s;
    CLIENT_CALL(st, self, { wm_release_ops(&ops); return NULL; },
        s = luigi_client_transact(self->client, ops.ops, ops.count, timeout_ms, &outcome, &ts,
            &buf));
    /* The exception first, while the thread's last error message is the call's. */
    PyObject *reads = NULL;
    size_t at = 0;
    if (s != LUIGI_OK) {
        raise_status(st, s);
    }
    else {
        reads = wm_reads(st, buf.data, buf.len, &at, SIZE_MAX);
    }
    luigi_buffer_free(&buf);
    wm_release_ops(&ops);
    if (reads == NULL) {
        return NULL;
    }
    return PyObject_CallFunction(st->TxnResultType, "OKN",
                                 outcome == LUIGI_WM_COMMITTED ? Py_True : Py_False,
                                 (unsigned long long)ts, reads);
}

/* ============================================================ membership */

/* A member's node id: an int in [1, 2**64) (0 is refused by the library). */
static int
client_node_id(module_state *st, PyObject *obj, uint64_t *out)
{
    if (PyBool_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "node_id must be an int, not bool");
        return -1;
    }
    return as_u64(st, obj, "node_id", out);
}

static PyObject *
Client_add_member(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"node_id", "address", "group", "timeout", NULL};
    ClientObject *self = (ClientObject *)op;
    module_state *st = state_of(op);
    PyObject *id_obj, *address_obj, *group_obj = NULL, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|$OO:add_member", kwlist, &id_obj,
                                     &address_obj, &group_obj, &timeout_obj)) {
        return NULL;
    }
    uint64_t node_id, group;
    uint32_t timeout_ms;
    if (client_node_id(st, id_obj, &node_id) < 0) {
        return NULL;
    }
    if (!PyUnicode_Check(address_obj)) {
        PyErr_Format(PyExc_TypeError, "address must be a str (host:port), not %.100s",
                     Py_TYPE(address_obj)->tp_name);
        return NULL;
    }
    Py_ssize_t address_len;
    const char *address = PyUnicode_AsUTF8AndSize(address_obj, &address_len);
    if (address == NULL || client_group(st, group_obj, &group) < 0 ||
        client_timeout(st, timeout_obj, &timeout_ms) < 0) {
        return NULL;
    }
    luigi_status s;
    CLIENT_CALL(st, self, return NULL,
        s = luigi_client_add_member(self->client, group, node_id, address, (size_t)address_len,
            timeout_ms));
    return none_or_raise(st, s);
}

static PyObject *
Client_remove_member(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"node_id", "group", "timeout", NULL};
    ClientObject *self = (ClientObject *)op;
    module_state *st = state_of(op);
    PyObject *id_obj, *group_obj = NULL, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OO:remove_member", kwlist, &id_obj,
                                     &group_obj, &timeout_obj)) {
        return NULL;
    }
    uint64_t node_id, group;
    uint32_t timeout_ms;
    if (client_node_id(st, id_obj, &node_id) < 0 || client_group(st, group_obj, &group) < 0 ||
        client_timeout(st, timeout_obj, &timeout_ms) < 0) {
        return NULL;
    }
    luigi_status s;
    CLIENT_CALL(st, self, return NULL,
        s = luigi_client_remove_member(self->client, group, node_id, timeout_ms));
    return none_or_raise(st, s);
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
    {"commit", FUNC(Client_commit), METH_VARARGS | METH_KEYWORDS,
     "commit($self, /, ops, *, group, timeout=None)\n--\n\n"
     "Commit a transaction on a replica group without coordination, on the\n"
     "first node that answers; it spreads to the others by anti-entropy.\n"
     "ops: op tuples (\"add\", key, int), (\"max\"|\"min\", key, int|float),\n"
     "(\"union\", key, str|bytes|int). Returns the update's dot (origin, seq).\n"
     "NotAlgebraicError for a set op (use coordinate); sent once, so on\n"
     "LuigiTimeoutError it may have committed."},
    {"coordinate", FUNC(Client_coordinate), METH_VARARGS | METH_KEYWORDS,
     "coordinate($self, /, ops, *, group, timeout=None)\n--\n\n"
     "Commit a transaction (set ops allowed: (\"set\", key, int|float))\n"
     "through the replica group's Raft log: every replica applies it at the\n"
     "same position, exactly once. TypeConflictError when every replica\n"
     "rejects it."},
    {"value", FUNC(Client_value), METH_VARARGS | METH_KEYWORDS,
     "value($self, /, key, *, group, endpoint=None, timeout=None)\n--\n\n"
     "A key's value in one node's replica (endpoint \"host:port\", or None: the\n"
     "first node that answers): int (counter), int or float (max, min,\n"
     "register), frozenset (set), or None when the key is absent."},
    {"transact", FUNC(Client_transact), METH_VARARGS | METH_KEYWORDS,
     "transact($self, /, ops, *, timeout=None)\n--\n\n"
     "Run a sharded transaction on a cluster whose nodes run watermark shards\n"
     "(luigi-node --shards n): op tuples (\"read\", shard, key), (\"write\"|\"add\"|\n"
     "\"check\", shard, key, int), atomic across their shards. Returns\n"
     "TxnResult(committed, ts, reads); committed is False when a check failed or\n"
     "an add would overflow (nothing was written). LuigiValueError for a shard\n"
     "the cluster does not run, TransactionStateError when the node runs no\n"
     "shards; sent once, so on LuigiTimeoutError it may have committed."},
    {"add_member", FUNC(Client_add_member), METH_VARARGS | METH_KEYWORDS,
     "add_member($self, /, node_id, address, *, group=None, timeout=None)\n--\n\n"
     "Make node node_id, listening at address (host:port), a voter of the group;\n"
     "returns once the change applied on the leader. Idempotent. Start the node\n"
     "with `luigi-node serve --join` first."},
    {"remove_member", FUNC(Client_remove_member), METH_VARARGS | METH_KEYWORDS,
     "remove_member($self, /, node_id, *, group=None, timeout=None)\n--\n\n"
     "Remove node node_id from the group; returns once the change applied on\n"
     "the leader. Idempotent (a non-member is nothing to do)."},
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
                "commit, coordinate and value reach the replica groups (ids above\n"
                "REPLICA_GROUP_BASE); transact runs a sharded transaction; add_member and\n"
                "remove_member change a group's voters.\n"
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
