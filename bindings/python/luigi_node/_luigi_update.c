/* _luigi_update.c — luigi_node.Update, and lists of updates to and from the library. */

#include "_luigi.h"

/* ============================================================ Update */

PyObject *
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

int
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
luigi_update_list *
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

PyObject *
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

PyType_Spec Update_spec = {
    .name = "luigi_node.Update",
    .basicsize = sizeof(UpdateObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = Update_slots,
};
