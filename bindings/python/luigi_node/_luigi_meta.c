/* _luigi_meta.c — luigi_node.TableLog: the table log (luigi_meta_* in luigi.h)
 * over a RaftCluster(state_machine="tables").
 *
 * A TableLog keeps its RaftCluster alive and runs every call under the
 * cluster's lock with the GIL released (each one runs the simulated cluster:
 * commands go through the log, reads through ReadIndex). Arguments are
 * converted first: DataFile and CommitRequest fields (luigi_node._tablelog)
 * become luigi_meta_file / luigi_meta_commit_request arrays that borrow the
 * UTF-8 of str objects and the bytes of bytes objects, all kept alive (and
 * unchanged: both are immutable) by one owner list until the call returns.
 * Results are built after the lock is released: DataFile and TableVersion
 * positionally, from the byte layouts luigi.h documents. */

#include "_luigi.h"

/* ============================================================ arguments */

/* The UTF-8 of str `obj` (borrowed: valid while obj lives), or TypeError. */
static int
meta_str(PyObject *obj, const char *what, const char **data, size_t *len)
{
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", what, Py_TYPE(obj)->tp_name);
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

/* Commits as the library takes them (see the top of this file). */
typedef struct {
    PyObject *owner; /* list: every object whose UTF-8 or bytes the arrays borrow */
    luigi_meta_commit_request *requests;
    size_t count;
} meta_commits;

static void
meta_release(meta_commits *c)
{
    for (size_t i = 0; c->requests != NULL && i < c->count; i++) {
        PyMem_Free((void *)c->requests[i].adds);
        PyMem_Free((void *)c->requests[i].removes);
        PyMem_Free((void *)c->requests[i].remove_lens);
    }
    PyMem_Free(c->requests);
    c->requests = NULL;
    c->count = 0;
    Py_CLEAR(c->owner);
}

/* Room for `count` requests (zeroed) and an empty owner list. */
static int
meta_alloc(meta_commits *c, size_t count)
{
    c->count = 0;
    c->owner = PyList_New(0);
    c->requests = PyMem_Calloc(count > 0 ? count : 1, sizeof(luigi_meta_commit_request));
    if (c->owner == NULL || c->requests == NULL) {
        Py_CLEAR(c->owner);
        PyMem_Free(c->requests);
        c->requests = NULL;
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        return -1;
    }
    c->count = count;
    return 0;
}

/* Appends obj to the owner list, then drops the caller's reference: obj
 * stays alive as long as the list. NULL obj (a failed call): -1. */
static PyObject *
keep(meta_commits *c, PyObject *obj)
{
    if (obj == NULL) {
        return NULL;
    }
    int rc = PyList_Append(c->owner, obj);
    Py_DECREF(obj);
    return rc < 0 ? NULL : obj;
}

/* An attribute of a DataFile or CommitRequest, kept alive by the owner. */
static PyObject *
kept_attr(meta_commits *c, PyObject *obj, const char *name)
{
    return keep(c, PyObject_GetAttrString(obj, name));
}

/* min_stats / max_stats: None (absent) or bytes (b"": present and empty). */
static int
meta_stats(PyObject *obj, const char *what, Py_ssize_t index, const uint8_t **data, size_t *len)
{
    if (obj == Py_None) {
        *data = NULL;
        *len = 0;
        return 0;
    }
    if (!PyBytes_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "adds[%zd].%s must be bytes or None, not %.100s", index,
                     what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    *data = (const uint8_t *)PyBytes_AS_STRING(obj); /* never NULL, even for b"" */
    *len = (size_t)PyBytes_GET_SIZE(obj);
    return 0;
}

/* adds[index], a DataFile, into *f. */
static int
meta_file(module_state *st, meta_commits *c, PyObject *item, Py_ssize_t index, luigi_meta_file *f)
{
    int is_file = PyObject_IsInstance(item, st->DataFileType);
    if (is_file <= 0) {
        if (is_file == 0) {
            PyErr_Format(PyExc_TypeError, "adds[%zd] must be a DataFile, not %.100s", index,
                         Py_TYPE(item)->tp_name);
        }
        return -1;
    }
    PyObject *path, *rows, *size, *partition, *min_stats, *max_stats;
    if ((path = kept_attr(c, item, "path")) == NULL ||
        meta_str(path, "DataFile.path", &f->path, &f->path_len) < 0 ||
        (rows = kept_attr(c, item, "rows")) == NULL ||
        as_u64(st, rows, "DataFile.rows", &f->rows) < 0 ||
        (size = kept_attr(c, item, "size")) == NULL ||
        as_u64(st, size, "DataFile.size", &f->size) < 0 ||
        (partition = kept_attr(c, item, "partition")) == NULL ||
        meta_str(partition, "DataFile.partition", &f->partition, &f->partition_len) < 0 ||
        (min_stats = kept_attr(c, item, "min_stats")) == NULL ||
        meta_stats(min_stats, "min_stats", index, &f->min_stats, &f->min_stats_len) < 0 ||
        (max_stats = kept_attr(c, item, "max_stats")) == NULL ||
        meta_stats(max_stats, "max_stats", index, &f->max_stats, &f->max_stats_len) < 0) {
        return -1;
    }
    if (f->partition_len == 0) {
        f->partition = NULL; /* unpartitioned: (NULL, 0) */
    }
    return 0;
}

/* One commit's fields into c->requests[i]. */
static int
meta_commit(module_state *st, meta_commits *c, size_t i, PyObject *table, PyObject *base,
            PyObject *txn_id, PyObject *adds, PyObject *removes)
{
    luigi_meta_commit_request *r = &c->requests[i];
    r->version = LUIGI_META_COMMIT_VERSION;
    if (meta_str(table, "table", &r->table, &r->table_len) < 0 ||
        as_u64(st, base, "base_version", &r->base_version) < 0 ||
        meta_str(txn_id, "txn_id", &r->txn_id, &r->txn_id_len) < 0) {
        return -1;
    }
    if (adds != NULL) {
        if (PyUnicode_Check(adds) || PyBytes_Check(adds)) {
            PyErr_Format(PyExc_TypeError, "adds must be an iterable of DataFile, not %.100s",
                         Py_TYPE(adds)->tp_name);
            return -1;
        }
        /* A tuple copy: an item's attribute lookups cannot change what is walked. */
        PyObject *items = keep(c, PySequence_Tuple(adds));
        if (items == NULL) {
            return -1;
        }
        Py_ssize_t n = PyTuple_GET_SIZE(items);
        luigi_meta_file *files = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(luigi_meta_file));
        if (files == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        r->adds = files;
        r->add_count = (size_t)n;
        for (Py_ssize_t k = 0; k < n; k++) {
            if (meta_file(st, c, PyTuple_GET_ITEM(items, k), k, &files[k]) < 0) {
                return -1;
            }
        }
    }
    if (removes != NULL) {
        if (PyUnicode_Check(removes) || PyBytes_Check(removes)) {
            PyErr_Format(PyExc_TypeError,
                         "removes must be an iterable of paths (str), not a single %.100s",
                         Py_TYPE(removes)->tp_name);
            return -1;
        }
        PyObject *items = keep(c, PySequence_Tuple(removes));
        if (items == NULL) {
            return -1;
        }
        Py_ssize_t n = PyTuple_GET_SIZE(items);
        size_t room = (size_t)(n > 0 ? n : 1);
        const char **paths = PyMem_Calloc(room, sizeof(const char *));
        size_t *lens = PyMem_Calloc(room, sizeof(size_t));
        r->removes = paths;
        r->remove_lens = lens;
        if (paths == NULL || lens == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        r->remove_count = (size_t)n;
        for (Py_ssize_t k = 0; k < n; k++) {
            char what[48];
            snprintf(what, sizeof what, "removes[%zd]", k);
            if (meta_str(PyTuple_GET_ITEM(items, k), what, &paths[k], &lens[k]) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* ============================================================ results */

/* p[*i..*i+len), advancing *i; NULL when the buffer ends too early. */
static const uint8_t *
take(const uint8_t *p, size_t n, size_t *i, size_t len)
{
    if (n - *i < len) {
        return NULL;
    }
    const uint8_t *at = p + *i;
    *i += len;
    return at;
}

/* One statistics field: u8 present, u32 length, bytes; None when absent. */
static PyObject *
read_stats(const uint8_t *p, size_t n, size_t *i)
{
    const uint8_t *present = take(p, n, i, 1), *data;
    size_t len;
    if (present == NULL || present[0] > 1 || read_chunk(p, n, i, &data, &len) < 0) {
        return NULL;
    }
    if (present[0] == 0) {
        return Py_NewRef(Py_None);
    }
    return PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)len);
}

/* The luigi_meta_files layout as a list of DataFile. */
static PyObject *
files_list(module_state *st, const luigi_buffer *buf)
{
    const uint8_t *p = buf->data;
    size_t n = buf->len, i = 0;
    const uint8_t *head = take(p, n, &i, 4);
    if (head == NULL) {
        return malformed_buffer(st, "files");
    }
    uint32_t count = read_u32le(head);
    PyObject *list = PyList_New(0);
    for (uint32_t k = 0; list != NULL && k < count; k++) {
        const uint8_t *path, *partition, *nums;
        size_t path_len, partition_len;
        if (read_chunk(p, n, &i, &path, &path_len) < 0 || (nums = take(p, n, &i, 16)) == NULL ||
            read_chunk(p, n, &i, &partition, &partition_len) < 0) {
            Py_CLEAR(list);
            return malformed_buffer(st, "files");
        }
        PyObject *fields[6] = {
            PyUnicode_DecodeUTF8((const char *)path, (Py_ssize_t)path_len, NULL),
            PyLong_FromUnsignedLongLong(read_u64le(nums)),
            PyLong_FromUnsignedLongLong(read_u64le(nums + 8)),
            PyUnicode_DecodeUTF8((const char *)partition, (Py_ssize_t)partition_len, NULL),
            NULL,
            NULL,
        };
        int ok = fields[0] != NULL && fields[1] != NULL && fields[2] != NULL && fields[3] != NULL;
        if (ok) {
            fields[4] = read_stats(p, n, &i);
            fields[5] = fields[4] != NULL ? read_stats(p, n, &i) : NULL;
            if (fields[5] == NULL && !PyErr_Occurred()) {
                malformed_buffer(st, "files");
            }
            ok = fields[5] != NULL;
        }
        PyObject *file = ok ? PyObject_Vectorcall(st->DataFileType, fields, 6, NULL) : NULL;
        for (int f = 0; f < 6; f++) {
            Py_XDECREF(fields[f]);
        }
        if (file == NULL || PyList_Append(list, file) < 0) {
            Py_XDECREF(file);
            Py_CLEAR(list);
            return NULL;
        }
        Py_DECREF(file);
    }
    if (list != NULL && i != n) {
        Py_CLEAR(list);
        return malformed_buffer(st, "files");
    }
    return list;
}

/* The luigi_meta_versions layout as a list of TableVersion. */
static PyObject *
versions_list(module_state *st, const luigi_buffer *buf)
{
    const uint8_t *p = buf->data;
    size_t n = buf->len, i = 0;
    const uint8_t *head = take(p, n, &i, 4);
    if (head == NULL) {
        return malformed_buffer(st, "versions");
    }
    uint32_t count = read_u32le(head);
    PyObject *list = PyList_New(0);
    for (uint32_t k = 0; list != NULL && k < count; k++) {
        const uint8_t *nums = take(p, n, &i, 16), *txn;
        size_t txn_len;
        if (nums == NULL || read_chunk(p, n, &i, &txn, &txn_len) < 0) {
            Py_CLEAR(list);
            return malformed_buffer(st, "versions");
        }
        PyObject *fields[4] = {
            PyLong_FromUnsignedLongLong(read_u64le(nums)),
            PyUnicode_DecodeUTF8((const char *)txn, (Py_ssize_t)txn_len, NULL),
            PyLong_FromUnsignedLong(read_u32le(nums + 8)),
            PyLong_FromUnsignedLong(read_u32le(nums + 12)),
        };
        int ok = fields[0] != NULL && fields[1] != NULL && fields[2] != NULL && fields[3] != NULL;
        PyObject *version = ok ? PyObject_Vectorcall(st->TableVersionType, fields, 4, NULL) : NULL;
        for (int f = 0; f < 4; f++) {
            Py_XDECREF(fields[f]);
        }
        if (version == NULL || PyList_Append(list, version) < 0) {
            Py_XDECREF(version);
            Py_CLEAR(list);
            return NULL;
        }
        Py_DECREF(version);
    }
    if (list != NULL && i != n) {
        Py_CLEAR(list);
        return malformed_buffer(st, "versions");
    }
    return list;
}

/* ============================================================ TableLog */

typedef struct {
    PyObject_HEAD
    RaftClusterObject *cluster; /* strong reference; its lock guards every call */
} TableLogObject;

#define CLUSTER(op) (((TableLogObject *)(op))->cluster)

static PyObject *
TableLog_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"cluster", NULL};
    module_state *st = state_of_type(type);
    PyObject *cluster;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:TableLog", kwlist, &cluster)) {
        return NULL;
    }
    if (!Py_IS_TYPE(cluster, st->RaftClusterType)) {
        PyErr_Format(PyExc_TypeError, "TableLog needs a RaftCluster, not %.100s",
                     Py_TYPE(cluster)->tp_name);
        return NULL;
    }
    if (((RaftClusterObject *)cluster)->state_machine != STATE_MACHINE_TABLES) {
        PyErr_SetString(st->TransactionStateError,
                        "TableLog needs a RaftCluster(state_machine=\"tables\"); this cluster "
                        "runs the key-value state machine");
        return NULL;
    }
    TableLogObject *self = (TableLogObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->cluster = (RaftClusterObject *)Py_NewRef(cluster);
    return (PyObject *)self;
}

static void
TableLog_dealloc(TableLogObject *self)
{
    Py_CLEAR(self->cluster);
    free_instance(self);
}

static PyObject *
TableLog_get_cluster(PyObject *op, void *Py_UNUSED(closure))
{
    return Py_NewRef(CLUSTER(op));
}

/* The timeout every method takes: ticks, default 1000 (the library checks
 * 1..10000000). */
static int
get_timeout(module_state *st, PyObject *obj, uint64_t *out)
{
    *out = 1000;
    return opt_u64(st, obj, "timeout", out);
}

static PyObject *
TableLog_create_table(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", "schema", "retain", "timeout", NULL};
    module_state *st = state_of(op);
    PyObject *name_obj, *schema_obj = NULL, *retain_obj = NULL, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O$OO:create_table", kwlist, &name_obj,
                                     &schema_obj, &retain_obj, &timeout_obj)) {
        return NULL;
    }
    const char *name;
    size_t name_len;
    uint64_t retain = 0, timeout;
    if (meta_str(name_obj, "name", &name, &name_len) < 0 ||
        opt_u64(st, retain_obj, "retain", &retain) < 0 || get_timeout(st, timeout_obj, &timeout) < 0) {
        return NULL;
    }
    Py_buffer schema = {0};
    if (schema_obj != NULL && get_bytes(schema_obj, &schema) < 0) {
        return NULL;
    }
    const uint8_t *schema_data = schema_obj != NULL ? (const uint8_t *)schema.buf : (const uint8_t *)"";
    size_t schema_len = schema_obj != NULL ? (size_t)schema.len : 0;
    RaftClusterObject *c = CLUSTER(op);
    luigi_status s;
    WITH_LOCK_NOGIL(c->lock,
        s = luigi_meta_create_table(c->cluster, name, name_len, schema_data, schema_len, retain,
            timeout));
    PyObject *result = none_or_raise(st, s);
    if (schema_obj != NULL) {
        PyBuffer_Release(&schema);
    }
    return result;
}

static PyObject *
TableLog_commit(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"table", "base_version", "txn_id", "adds", "removes", "timeout", NULL};
    module_state *st = state_of(op);
    PyObject *table, *base = NULL, *txn_id = NULL, *adds = NULL, *removes = NULL, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OOOOO:commit", kwlist, &table, &base, &txn_id,
                                     &adds, &removes, &timeout_obj)) {
        return NULL;
    }
    if (base == NULL || txn_id == NULL) {
        PyErr_Format(PyExc_TypeError, "commit() missing required keyword-only argument: '%s'",
                     base == NULL ? "base_version" : "txn_id");
        return NULL;
    }
    uint64_t timeout;
    if (get_timeout(st, timeout_obj, &timeout) < 0) {
        return NULL;
    }
    meta_commits c;
    if (meta_alloc(&c, 1) < 0) {
        return NULL;
    }
    if (meta_commit(st, &c, 0, table, base, txn_id, adds, removes) < 0) {
        meta_release(&c);
        return NULL;
    }
    RaftClusterObject *cl = CLUSTER(op);
    uint64_t version = 0, latest = 0;
    luigi_status s;
    WITH_LOCK_NOGIL(cl->lock,
        s = luigi_meta_commit(cl->cluster, &c.requests[0], timeout, &version, &latest));
    /* The result (or exception) first, while the thread's last error message
     * is still the call's; then the arrays and the objects they borrowed. */
    PyObject *result = s == LUIGI_ERR_CONFLICT ? raise_status_latest(st, s, &latest)
                                                : u64_or_raise(st, s, version);
    meta_release(&c);
    return result;
}

/* A commit_many outcome that is not a version, as an exception instance.
 * The library reports no message per outcome, so it is written here. */
static PyObject *
outcome_exception(module_state *st, size_t index, const luigi_meta_outcome *o, uint64_t timeout)
{
    char message[256];
    switch (o->status) {
    case LUIGI_ERR_CONFLICT:
        snprintf(message, sizeof message,
                 "commit %zu lost to another write (a stale base version, or its transaction id "
                 "already committed with other files); the table's latest version is %llu",
                 index, (unsigned long long)o->latest);
        return status_exception(st, o->status, message, &o->latest);
    case LUIGI_ERR_INVALID_ARGUMENT:
        snprintf(message, sizeof message,
                 "commit %zu was refused and changed nothing (an unknown table, a removed file "
                 "that is not live, or an added file that already is)",
                 index);
        break;
    case LUIGI_ERR_TIMEOUT:
        snprintf(message, sizeof message,
                 "commit %zu did not complete within %llu ticks; its outcome is unknown "
                 "(retrying the same commit is safe)",
                 index, (unsigned long long)timeout);
        break;
    default:
        snprintf(message, sizeof message, "commit %zu failed", index);
        break;
    }
    return status_exception(st, o->status, message, NULL);
}

static PyObject *
TableLog_commit_many(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"requests", "timeout", NULL};
    module_state *st = state_of(op);
    PyObject *requests_obj, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$O:commit_many", kwlist, &requests_obj,
                                     &timeout_obj)) {
        return NULL;
    }
    uint64_t timeout;
    if (get_timeout(st, timeout_obj, &timeout) < 0) {
        return NULL;
    }
    if (PyUnicode_Check(requests_obj) || PyBytes_Check(requests_obj)) {
        PyErr_Format(PyExc_TypeError, "requests must be a sequence of CommitRequest, not %.100s",
                     Py_TYPE(requests_obj)->tp_name);
        return NULL;
    }
    PyObject *items = PySequence_Tuple(requests_obj);
    if (items == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    meta_commits c;
    if (meta_alloc(&c, (size_t)n) < 0) {
        Py_DECREF(items);
        return NULL;
    }
    if (keep(&c, items) == NULL) { /* the owner holds the tuple (and so each request) */
        meta_release(&c);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        int is_request = PyObject_IsInstance(item, st->CommitRequestType);
        if (is_request == 0) {
            PyErr_Format(PyExc_TypeError, "requests[%zd] must be a CommitRequest, not %.100s", i,
                         Py_TYPE(item)->tp_name);
        }
        PyObject *table, *base, *txn_id, *adds, *removes;
        if (is_request <= 0 || (table = kept_attr(&c, item, "table")) == NULL ||
            (base = kept_attr(&c, item, "base_version")) == NULL ||
            (txn_id = kept_attr(&c, item, "txn_id")) == NULL ||
            (adds = kept_attr(&c, item, "adds")) == NULL ||
            (removes = kept_attr(&c, item, "removes")) == NULL ||
            meta_commit(st, &c, (size_t)i, table, base, txn_id, adds, removes) < 0) {
            meta_release(&c);
            return NULL;
        }
    }
    luigi_meta_outcome *outcomes = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(luigi_meta_outcome));
    if (outcomes == NULL) {
        meta_release(&c);
        return PyErr_NoMemory();
    }
    RaftClusterObject *cl = CLUSTER(op);
    luigi_status s;
    WITH_LOCK_NOGIL(cl->lock,
        s = luigi_meta_commit_many(cl->cluster, c.requests, c.count, timeout, outcomes));
    PyObject *result;
    if (s != LUIGI_OK) {
        result = raise_status(st, s);
    }
    else {
        result = PyList_New(n);
        for (Py_ssize_t i = 0; result != NULL && i < n; i++) {
            const luigi_meta_outcome *o = &outcomes[i];
            PyObject *item = o->status == LUIGI_OK
                                 ? PyLong_FromUnsignedLongLong(o->version)
                                 : outcome_exception(st, (size_t)i, o, timeout);
            if (item == NULL) {
                Py_CLEAR(result);
                break;
            }
            PyList_SET_ITEM(result, i, item);
        }
    }
    PyMem_Free(outcomes);
    meta_release(&c);
    return result;
}

/* Parses (table, *, timeout=1000), the arguments of every read. */
static int
read_args(module_state *st, PyObject *args, PyObject *kwds, const char *format,
          const char **table, size_t *table_len, uint64_t *timeout)
{
    static char *kwlist[] = {"table", "timeout", NULL};
    PyObject *table_obj, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, format, kwlist, &table_obj, &timeout_obj)) {
        return -1;
    }
    /* table_obj is borrowed from args, alive for the whole call. */
    if (meta_str(table_obj, "table", table, table_len) < 0) {
        return -1;
    }
    return get_timeout(st, timeout_obj, timeout);
}

static PyObject *
TableLog_latest(PyObject *op, PyObject *args, PyObject *kwds)
{
    module_state *st = state_of(op);
    const char *table;
    size_t table_len;
    uint64_t timeout, version = 0;
    if (read_args(st, args, kwds, "O|$O:latest", &table, &table_len, &timeout) < 0) {
        return NULL;
    }
    RaftClusterObject *c = CLUSTER(op);
    luigi_status s;
    WITH_LOCK_NOGIL(c->lock,
        s = luigi_meta_latest(c->cluster, table, table_len, timeout, &version));
    return u64_or_raise(st, s, version);
}

static PyObject *
TableLog_files(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"table", "version", "timeout", NULL};
    module_state *st = state_of(op);
    PyObject *table_obj, *version_obj = Py_None, *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O$O:files", kwlist, &table_obj, &version_obj,
                                     &timeout_obj)) {
        return NULL;
    }
    const char *table;
    size_t table_len;
    uint64_t timeout, version = LUIGI_META_LATEST;
    if (meta_str(table_obj, "table", &table, &table_len) < 0 ||
        (version_obj != Py_None && as_u64(st, version_obj, "version", &version) < 0) ||
        get_timeout(st, timeout_obj, &timeout) < 0) {
        return NULL;
    }
    if (version_obj != Py_None && version == LUIGI_META_LATEST) {
        PyErr_SetString(st->LuigiValueError,
                        "version 2**64-1 is no table's version (pass None for the latest)");
        return NULL;
    }
    RaftClusterObject *c = CLUSTER(op);
    luigi_buffer buf = {NULL, 0};
    luigi_status s;
    WITH_LOCK_NOGIL(c->lock,
        s = luigi_meta_files(c->cluster, table, table_len, version, timeout, &buf));
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *list = files_list(st, &buf);
    luigi_buffer_free(&buf);
    return list;
}

static PyObject *
TableLog_versions(PyObject *op, PyObject *args, PyObject *kwds)
{
    module_state *st = state_of(op);
    const char *table;
    size_t table_len;
    uint64_t timeout;
    if (read_args(st, args, kwds, "O|$O:versions", &table, &table_len, &timeout) < 0) {
        return NULL;
    }
    RaftClusterObject *c = CLUSTER(op);
    luigi_buffer buf = {NULL, 0};
    luigi_status s;
    WITH_LOCK_NOGIL(c->lock,
        s = luigi_meta_versions(c->cluster, table, table_len, timeout, &buf));
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    PyObject *list = versions_list(st, &buf);
    luigi_buffer_free(&buf);
    return list;
}

static PyObject *
TableLog_schema(PyObject *op, PyObject *args, PyObject *kwds)
{
    module_state *st = state_of(op);
    const char *table;
    size_t table_len;
    uint64_t timeout;
    if (read_args(st, args, kwds, "O|$O:schema", &table, &table_len, &timeout) < 0) {
        return NULL;
    }
    RaftClusterObject *c = CLUSTER(op);
    luigi_buffer buf = {NULL, 0};
    luigi_status s;
    WITH_LOCK_NOGIL(c->lock,
        s = luigi_meta_schema(c->cluster, table, table_len, timeout, &buf));
    return take_buffer(st, s, &buf);
}

static PyMethodDef TableLog_methods[] = {
    {"create_table", FUNC(TableLog_create_table), METH_VARARGS | METH_KEYWORDS,
     "create_table($self, /, name, schema=b'', *, retain=0, timeout=1000)\n--\n\n"
     "Create a table at version 0 with no files; `retain` versions stay readable\n"
     "(0: all). Again with the same schema and retention: a no-op; with others:\n"
     "ConflictError (latest None)."},
    {"commit", FUNC(TableLog_commit), METH_VARARGS | METH_KEYWORDS,
     "commit($self, /, table, *, base_version, txn_id, adds=(), removes=(), timeout=1000)\n"
     "--\n\n"
     "Commit on `base_version`: add the DataFiles `adds`, remove the live files at\n"
     "the paths `removes`; return the new version (a retry of a committed txn_id\n"
     "with the same files: its original version). ConflictError (.latest: the base\n"
     "to retry on) for a stale base or a txn_id committed with other files;\n"
     "LuigiValueError for an unknown table, a removed file that is not live or an\n"
     "added one that is; LuigiTimeoutError: the outcome is unknown, retrying is\n"
     "safe. Releases the GIL."},
    {"commit_many", FUNC(TableLog_commit_many), METH_VARARGS | METH_KEYWORDS,
     "commit_many($self, /, requests, *, timeout=1000)\n--\n\n"
     "Propose every CommitRequest at once, as concurrent writers would, and wait\n"
     "for all: for each, its version or the exception instance (ConflictError,\n"
     "LuigiValueError, LuigiTimeoutError), like gather(return_exceptions=True). A\n"
     "malformed request raises before anything is proposed."},
    {"latest", FUNC(TableLog_latest), METH_VARARGS | METH_KEYWORDS,
     "latest($self, /, table, *, timeout=1000)\n--\n\nThe table's latest version (linearizable)."},
    {"files", FUNC(TableLog_files), METH_VARARGS | METH_KEYWORDS,
     "files($self, /, table, version=None, *, timeout=1000)\n--\n\n"
     "The live DataFiles at `version` (None: the latest), in path byte order.\n"
     "LuigiValueError for a version that is not retained."},
    {"versions", FUNC(TableLog_versions), METH_VARARGS | METH_KEYWORDS,
     "versions($self, /, table, *, timeout=1000)\n--\n\n"
     "The readable versions, oldest first, as TableVersion."},
    {"schema", FUNC(TableLog_schema), METH_VARARGS | METH_KEYWORDS,
     "schema($self, /, table, *, timeout=1000)\n--\n\nThe schema bytes the table was created with."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef TableLog_getset[] = {
    {"cluster", TableLog_get_cluster, NULL, "The RaftCluster this table log runs on.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot TableLog_slots[] = {
    {Py_tp_doc, "TableLog(cluster)\n--\n\n"
                "Versioned table metadata on a RaftCluster(state_machine=\"tables\"): each\n"
                "table a log of versions, each version the set of live DataFiles.\n"
                "Commands go through the Raft log and are proposed again, with the same\n"
                "transaction id, until they complete or `timeout` ticks pass; reads go\n"
                "through ReadIndex (linearizable). Every call runs the cluster with the\n"
                "GIL released, under the cluster's lock."},
    {Py_tp_new, TableLog_new},
    {Py_tp_dealloc, TableLog_dealloc},
    {Py_tp_methods, TableLog_methods},
    {Py_tp_getset, TableLog_getset},
    {0, NULL},
};

PyType_Spec TableLog_spec = {
    .name = "luigi_node.TableLog",
    .basicsize = sizeof(TableLogObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = TableLog_slots,
};
