/* _luigi_watermark.c — what the watermark types share: op tuples, string
 * options, transaction ids, and the byte formats luigi.h documents next to
 * luigi_wm_op (messages, reads, completions, and the shard's records). */

#include "_luigi.h"

/* ------------------------------------------------------------ string options */

/* The index of str `obj` in names[0..count): TypeError when it is not a str,
 * LuigiValueError (naming the choices) when it is none of them. */
int
wm_choose(module_state *st, PyObject *obj, const char *what, const char *const *names,
          uint32_t count, uint32_t *out)
{
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (PyUnicode_CompareWithASCIIString(obj, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    PyObject *choices = PyUnicode_FromString("");
    for (uint32_t i = 0; choices != NULL && i < count; i++) {
        PyUnicode_AppendAndDel(&choices, PyUnicode_FromFormat(i ? ", '%s'" : "'%s'", names[i]));
    }
    if (choices != NULL) {
        PyErr_Format(st->LuigiValueError, "%s must be one of %U, not %R", what, choices, obj);
        Py_DECREF(choices);
    }
    return -1;
}

/* A commit rule by name (NULL: keep *out); the index is the LUIGI_RULE_* code. */
int
wm_rule(module_state *st, PyObject *obj, uint32_t *out)
{
    static const char *const names[2] = {"all-streams", "own-stream"};
    _Static_assert(LUIGI_RULE_ALL_STREAMS == 0 && LUIGI_RULE_OWN_STREAM == 1, "rule codes");
    return obj == NULL ? 0 : wm_choose(st, obj, "rule", names, 2, out);
}

/* As opt_u64, where None also keeps the default (the library's own). */
int
wm_opt_u64(module_state *st, PyObject *obj, const char *what, uint64_t *out)
{
    return obj == Py_None ? 0 : opt_u64(st, obj, what, out);
}

/* ------------------------------------------------------------ ops */

/* Op tuples name their kind; names[i] is the kind codes[i]. */
static const char *const op_names[4] = {"read", "write", "add", "check"};
static const uint32_t op_codes[4] = {LUIGI_WM_READ, LUIGI_WM_WRITE, LUIGI_WM_ADD, LUIGI_WM_CHECK};

/* One op tuple: (kind, shard, key) for a read, (kind, shard, key, value) else. */
static int
collect_op(module_state *st, PyObject *item, Py_ssize_t index, luigi_wm_op *op)
{
    if (!PyTuple_Check(item)) {
        PyErr_Format(PyExc_TypeError,
                     "op %zd must be a tuple (kind, shard, key[, value]), not %.100s", index,
                     Py_TYPE(item)->tp_name);
        return -1;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(item);
    if (size == 0) {
        PyErr_Format(st->LuigiValueError, "op %zd is an empty tuple", index);
        return -1;
    }
    uint32_t kind;
    if (wm_choose(st, PyTuple_GET_ITEM(item, 0), "op kind", op_names, 4, &kind) < 0) {
        return -1;
    }
    Py_ssize_t expected = op_codes[kind] == LUIGI_WM_READ ? 3 : 4;
    if (size != expected) {
        PyErr_Format(st->LuigiValueError, "op %zd: a %s op is (kind, shard, key%s), not %zd items",
                     index, op_names[kind], expected == 3 ? "" : ", value", size);
        return -1;
    }
    op->kind = op_codes[kind];
    op->reserved = 0;
    op->value = 0;
    if (as_u64(st, PyTuple_GET_ITEM(item, 1), "shard", &op->shard) < 0 ||
        as_key(PyTuple_GET_ITEM(item, 2), &op->key, &op->key_len) < 0) {
        return -1;
    }
    return expected == 4 ? as_i64(st, PyTuple_GET_ITEM(item, 3), "value", &op->value) : 0;
}

/* A transaction's ops from any iterable of op tuples (see wm_ops). */
int
wm_collect_ops(module_state *st, PyObject *seq, wm_ops *out)
{
    out->owner = NULL;
    out->ops = NULL;
    out->count = 0;
    if (PyUnicode_Check(seq) || PyBytes_Check(seq)) {
        PyErr_Format(PyExc_TypeError, "ops must be a sequence of op tuples, not %.100s",
                     Py_TYPE(seq)->tp_name);
        return -1;
    }
    PyObject *items = PySequence_Tuple(seq);
    if (items == NULL) {
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    luigi_wm_op *ops = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(luigi_wm_op));
    if (ops == NULL) {
        Py_DECREF(items);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (collect_op(st, PyTuple_GET_ITEM(items, i), i, &ops[i]) < 0) {
            PyMem_Free(ops);
            Py_DECREF(items);
            return -1;
        }
    }
    out->owner = items;
    out->ops = ops;
    out->count = (size_t)n;
    return 0;
}

void
wm_release_ops(wm_ops *ops)
{
    PyMem_Free(ops->ops);
    Py_CLEAR(ops->owner);
    ops->ops = NULL;
    ops->count = 0;
}

/* ------------------------------------------------------------ ids */

PyObject *
wm_txn_id(module_state *st, const luigi_wm_txn_id *id)
{
    return PyObject_CallFunction(st->TxnIdType, "KKK", (unsigned long long)id->coordinator,
                                 (unsigned long long)id->worker, (unsigned long long)id->seq);
}

/* A TxnId, or any 3-tuple of ints, as the library's id. */
int
wm_as_txn_id(module_state *st, PyObject *obj, luigi_wm_txn_id *out)
{
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != 3) {
        PyErr_Format(PyExc_TypeError, "txn_id must be a TxnId (coordinator, worker, seq), not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    return as_u64(st, PyTuple_GET_ITEM(obj, 0), "coordinator", &out->coordinator) < 0 ||
                   as_u64(st, PyTuple_GET_ITEM(obj, 1), "worker", &out->worker) < 0 ||
                   as_u64(st, PyTuple_GET_ITEM(obj, 2), "seq", &out->seq) < 0
               ? -1
               : 0;
}

/* ------------------------------------------------------------ byte formats */

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

/* One read record: u64 shard, u32 key length, key, u8 present, i64 value;
 * stored into `reads` under (shard, key) (a later read of the same key wins,
 * as it saw the earlier ops). 0, or -1 with an exception. */
static int
read_one(module_state *st, const uint8_t *p, size_t n, size_t *i, PyObject *reads)
{
    const uint8_t *shard = take(p, n, i, 8), *key, *tail;
    size_t key_len;
    if (shard == NULL || read_chunk(p, n, i, &key, &key_len) < 0 ||
        (tail = take(p, n, i, 9)) == NULL || tail[0] > 1) {
        malformed_buffer(st, "reads");
        return -1;
    }
    PyObject *k = Py_BuildValue("(Ks#)", (unsigned long long)read_u64le(shard), (const char *)key,
                                (Py_ssize_t)key_len);
    PyObject *v = tail[0] ? PyLong_FromLongLong((long long)(int64_t)read_u64le(tail + 1))
                          : Py_NewRef(Py_None);
    int rc = (k == NULL || v == NULL) ? -1 : PyDict_SetItem(reads, k, v);
    Py_XDECREF(k);
    Py_XDECREF(v);
    return rc;
}

/* `count` read records from p[*i..n) (SIZE_MAX: up to the end) as a dict
 * {(shard, key): value or None}. */
PyObject *
wm_reads(module_state *st, const uint8_t *p, size_t n, size_t *i, size_t count)
{
    PyObject *reads = PyDict_New();
    for (size_t k = 0; reads != NULL && (count == SIZE_MAX ? *i < n : k < count); k++) {
        if (read_one(st, p, n, i, reads) < 0) {
            Py_CLEAR(reads);
        }
    }
    return reads;
}

/* Appends `item` (a new reference, or NULL) to `list`; clears the list on failure. */
static void
append_or_clear(PyObject **list, PyObject *item)
{
    if (item == NULL || PyList_Append(*list, item) < 0) {
        Py_CLEAR(*list);
    }
    Py_XDECREF(item);
}

/* Records of u8 to_shard, u64 to, u32 length, message as
 * [(to_shard, to, message)]. */
PyObject *
wm_messages(module_state *st, const luigi_buffer *buf)
{
    const uint8_t *p = buf->data, *head, *message;
    size_t n = buf->len, i = 0, len;
    PyObject *list = PyList_New(0);
    while (list != NULL && i < n) {
        if ((head = take(p, n, &i, 9)) == NULL || head[0] > 1 ||
            read_chunk(p, n, &i, &message, &len) < 0) {
            Py_CLEAR(list);
            return malformed_buffer(st, "messages");
        }
        append_or_clear(&list, Py_BuildValue("(OKy#)", head[0] ? Py_True : Py_False,
                                              (unsigned long long)read_u64le(head + 1),
                                              (const char *)message, (Py_ssize_t)len));
    }
    return list;
}

/* Records of u64 coordinator, u64 worker, u64 seq, u8 outcome, u64 ts,
 * u64 submitted_at, u64 completed_at, u32 read count, reads as
 * [(TxnId, committed, ts, reads)]. */
PyObject *
wm_completions(module_state *st, const luigi_buffer *buf)
{
    const uint8_t *p = buf->data, *h;
    size_t n = buf->len, i = 0;
    PyObject *list = PyList_New(0);
    while (list != NULL && i < n) {
        if ((h = take(p, n, &i, 53)) == NULL ||
            (h[24] != LUIGI_WM_COMMITTED && h[24] != LUIGI_WM_ABORTED)) {
            Py_CLEAR(list);
            return malformed_buffer(st, "completions");
        }
        luigi_wm_txn_id id = {read_u64le(h), read_u64le(h + 8), read_u64le(h + 16)};
        PyObject *txn = wm_txn_id(st, &id);
        PyObject *reads = wm_reads(st, p, n, &i, read_u32le(h + 49));
        PyObject *item = NULL;
        if (txn != NULL && reads != NULL) {
            item = Py_BuildValue("(OOKO)", txn, h[24] == LUIGI_WM_COMMITTED ? Py_True : Py_False,
                                 (unsigned long long)read_u64le(h + 25), reads);
        }
        Py_XDECREF(txn);
        Py_XDECREF(reads);
        append_or_clear(&list, item);
    }
    return list;
}

/* Records of u32 length, record as [bytes]. */
PyObject *
wm_records(module_state *st, const luigi_buffer *buf)
{
    const uint8_t *record;
    size_t i = 0, len;
    PyObject *list = PyList_New(0);
    while (list != NULL && i < buf->len) {
        if (read_chunk(buf->data, buf->len, &i, &record, &len) < 0) {
            Py_CLEAR(list);
            return malformed_buffer(st, "records");
        }
        append_or_clear(&list, PyBytes_FromStringAndSize((const char *)record, (Py_ssize_t)len));
    }
    return list;
}
